package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"

	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/schemas"
)

// consumerFlags are the flags the events consumers (speed, land) share:
// the catalog, where Kafka is (or --embedded-kafka), the group and the
// record limits.
type consumerFlags struct {
	catalogPath, brokers string
	kc                   *kafka.Config
	emb                  *kafka.EmbeddedFlag
}

// addConsumerFlags registers the shared flags on f, writing into kc and
// tune; group is the default consumer group.
func addConsumerFlags(f *pflag.FlagSet, kc *kafka.Config, tune *kafka.ConsumerTuning, group string) *consumerFlags {
	*kc = kafka.DefaultConfig()
	cf := &consumerFlags{kc: kc}
	f.StringVar(&cf.catalogPath, "catalog", "schemas/catalogs/taobao.yaml", "catalog file")
	f.StringVar(&cf.brokers, "brokers", "", "Kafka bootstrap brokers, comma-separated")
	f.StringVar(&kc.Topic, "topic", kafka.DefaultTopic, "events topic (dead letters go to TOPIC.dlq)")
	f.StringVar(&kc.Group, "group", group, "consumer group")
	f.DurationVar(&tune.ClockSkew, "clock-skew", kafka.DefaultClockSkew, "how far event times may be ahead of the clock")
	f.IntVar(&tune.MaxRecordBytes, "max-record-bytes", kafka.DefaultMaxRecordBytes, "largest record accepted (key plus value)")
	cf.emb = kafka.AddEmbeddedFlag(f)
	return cf
}

// open loads the catalog, points the Kafka config at --brokers and the
// topic's dead-letter topic, and starts the embedded broker when asked for
// (the returned broker is nil otherwise; its Close is nil-safe). The
// broker outlives ctx so that the final commits and the group leave happen
// while it still answers.
func (cf *consumerFlags) open(ctx context.Context, logger *slog.Logger) (*schemas.Catalog, *kafka.Broker, error) {
	c, err := schemas.Load(cf.catalogPath)
	if err != nil {
		return nil, nil, err
	}
	if cf.brokers != "" {
		cf.kc.Brokers = strings.Split(cf.brokers, ",")
	}
	cf.kc.DLQTopic = "" // derived from --topic
	if !cf.emb.Enabled() && len(cf.kc.Brokers) == 0 {
		return nil, nil, errors.New("give --brokers or --embedded-kafka")
	}
	b, err := cf.emb.Start(context.WithoutCancel(ctx), cf.kc, logger)
	if err != nil {
		return nil, nil, err
	}
	return c, b, nil
}
