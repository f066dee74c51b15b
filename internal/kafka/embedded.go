package kafka

import (
	"context"
	"log/slog"

	"github.com/spf13/pflag"
)

// EmbeddedFlag is the --embedded-kafka[=ADDR] flag of the commands that
// need a broker (speed, land, run, produce): when given, the command starts
// an in-process development broker instead of using --brokers.
//
//	emb := kafka.AddEmbeddedFlag(cmd.Flags())
//	...
//	b, err := emb.Start(ctx, &cfg, logger) // sets cfg.Brokers when enabled
//	if err != nil { return err }
//	defer b.Close()                          // nil-safe
type EmbeddedFlag struct {
	// Addr is the listen address; empty when the flag was not given.
	Addr string
	// Partitions of the events and DLQ topics (0: DefaultPartitions).
	Partitions int32
}

// AddEmbeddedFlag registers --embedded-kafka[=ADDR] (bare form:
// 127.0.0.1:9092) and --embedded-kafka-partitions on fs.
func AddEmbeddedFlag(fs *pflag.FlagSet) *EmbeddedFlag {
	e := &EmbeddedFlag{}
	fs.StringVar(&e.Addr, "embedded-kafka", "",
		"start an in-process development Kafka broker on this address instead of using --brokers (bare flag: "+DefaultBrokerAddr+")")
	fs.Lookup("embedded-kafka").NoOptDefVal = DefaultBrokerAddr
	fs.Int32Var(&e.Partitions, "embedded-kafka-partitions", DefaultPartitions, "partitions of the embedded broker's topics")
	return e
}

// Enabled reports whether the flag was given.
func (e *EmbeddedFlag) Enabled() bool { return e != nil && e.Addr != "" }

// Start starts the broker when the flag was given, with cfg's events and
// DLQ topics created, and points cfg.Brokers at it. It returns a nil
// *Broker (whose Close does nothing) when the flag was not given.
func (e *EmbeddedFlag) Start(ctx context.Context, cfg *Config, log *slog.Logger) (*Broker, error) {
	if !e.Enabled() {
		return nil, nil
	}
	cfg.ApplyDefaults()
	b, err := StartBroker(ctx, e.Addr, []TopicSpec{
		{Name: cfg.Topic, Partitions: e.Partitions},
		{Name: cfg.DLQTopic, Partitions: e.Partitions},
	})
	if err != nil {
		return nil, err
	}
	cfg.Brokers = b.Brokers()
	if log != nil {
		log.Info("embedded kafka broker started", "addr", b.Addr(), "topic", cfg.Topic, "dlq_topic", cfg.DLQTopic, "partitions", e.Partitions)
	}
	return b, nil
}
