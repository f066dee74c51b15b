package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/internal/kafka"
)

func init() { commands = append(commands, newBrokerCmd()) }

func newBrokerCmd() *cobra.Command {
	var (
		listen     string
		partitions int32
		topic      string
	)
	cmd := &cobra.Command{
		Use:   "broker [--listen 127.0.0.1:9092] [--partitions N]",
		Short: "Run an in-memory development Kafka broker for other portrait processes",
		Long: `broker runs franz-go's kfake, an in-memory Kafka broker speaking the real
wire protocol, with the events topic and its dead-letter topic created. Other
processes (portrait produce, speed, land) reach it with --brokers ADDR. It
runs until SIGINT or SIGTERM; everything it holds is lost when it stops.

The listen address is also the address the broker advertises, so give one
that clients can reach (a loopback address, not ":9092").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			b, err := kafka.StartBroker(ctx, listen, []kafka.TopicSpec{
				{Name: topic, Partitions: partitions},
				{Name: topic + kafka.DLQSuffix, Partitions: partitions},
			})
			if err != nil {
				return err
			}
			defer b.Close()
			fmt.Fprintln(cmd.OutOrStdout(), b.Addr())
			slog.Info("kafka broker running", "addr", b.Addr(), "topics", []string{topic, topic + kafka.DLQSuffix}, "partitions", partitions)
			<-ctx.Done()
			slog.Info("kafka broker stopping")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", kafka.DefaultBrokerAddr, "address to listen on and advertise (port 0 picks a free one)")
	f.Int32Var(&partitions, "partitions", kafka.DefaultPartitions, "partitions of each topic")
	f.StringVar(&topic, "topic", kafka.DefaultTopic, "events topic (its dead-letter topic adds .dlq)")
	return cmd
}
