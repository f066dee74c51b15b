package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// EnsureTopics creates the topics that do not exist yet on the cluster of
// cfg. Existing topics are left as they are, whatever their partition
// count. Partitions 0 takes DefaultPartitions; ReplicationFactor 0 takes
// the cluster's default.
func EnsureTopics(ctx context.Context, cfg Config, topics []TopicSpec) error {
	sc, err := cfg.Sarama()
	if err != nil {
		return err
	}
	admin, err := sarama.NewClusterAdmin(cfg.Brokers, sc)
	if err != nil {
		return fmt.Errorf("connecting admin client to %v: %w", cfg.Brokers, err)
	}
	defer admin.Close() //nolint:errcheck // read-mostly client; create errors are reported below
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	for _, t := range topics {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, ok := existing[t.Name]; ok {
			continue
		}
		d := &sarama.TopicDetail{NumPartitions: t.Partitions, ReplicationFactor: t.ReplicationFactor}
		if d.NumPartitions <= 0 {
			d.NumPartitions = DefaultPartitions
		}
		if d.ReplicationFactor <= 0 {
			d.ReplicationFactor = -1
		}
		err := admin.CreateTopic(t.Name, d, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", t.Name, err)
		}
	}
	return nil
}
