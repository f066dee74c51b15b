package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// Defaults of ConsumerTuning.
const (
	DefaultSessionTimeout   = 10 * time.Second
	DefaultRebalanceTimeout = 60 * time.Second
	DefaultMaxRecordBytes   = 64 << 10
	DefaultClockSkew        = 5 * time.Minute
)

// ConsumerTuning is the part of an events consumer's configuration that
// the speed layer and the landing share: the consumer group's timeouts
// and the limits a record must keep. Component configs embed it inline.
type ConsumerTuning struct {
	// MaxRecordBytes is the largest key plus value accepted; larger
	// records go to the DLQ (default 64 KiB).
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// ClockSkew is how far an event time may be ahead of the wall clock;
	// further ones go to the DLQ (default 5m).
	ClockSkew time.Duration `yaml:"clock_skew"`
	// SessionTimeout and RebalanceTimeout are the consumer group's
	// (defaults 10s and 60s, sarama's): a crashed member's partitions move
	// after SessionTimeout.
	SessionTimeout   time.Duration `yaml:"session_timeout"`
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
}

// ApplyDefaults fills the fields left at their zero value.
func (t *ConsumerTuning) ApplyDefaults() {
	if t.MaxRecordBytes == 0 {
		t.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if t.ClockSkew == 0 {
		t.ClockSkew = DefaultClockSkew
	}
	if t.SessionTimeout == 0 {
		t.SessionTimeout = DefaultSessionTimeout
	}
	if t.RebalanceTimeout == 0 {
		t.RebalanceTimeout = DefaultRebalanceTimeout
	}
}

// Validate reports the first bad field by its yaml name.
func (t *ConsumerTuning) Validate() error {
	if t.MaxRecordBytes < 0 {
		return fmt.Errorf("max_record_bytes: %d is negative", t.MaxRecordBytes)
	}
	if t.ClockSkew < 0 {
		return fmt.Errorf("clock_skew: %s is negative", t.ClockSkew)
	}
	if t.SessionTimeout < 0 {
		return fmt.Errorf("session_timeout: %s is negative", t.SessionTimeout)
	}
	if t.RebalanceTimeout < 0 {
		return fmt.Errorf("rebalance_timeout: %s is negative", t.RebalanceTimeout)
	}
	return nil
}

// Group is a consumer group member of Config.Group with the client it
// reads through and a producer for its dead-letter records.
type Group struct {
	Client   sarama.Client
	Group    sarama.ConsumerGroup
	Producer *Producer
}

// OpenGroup connects to c's brokers with sc, where the tuning's group
// timeouts are set and offsets are auto-committed every second (the
// consumers keep their positions elsewhere: the group's offsets are for
// monitoring). Close releases everything.
func OpenGroup(c Config, t ConsumerTuning, sc *sarama.Config) (*Group, error) {
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Group.Session.Timeout = t.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = t.SessionTimeout / 3
	sc.Consumer.Group.Rebalance.Timeout = t.RebalanceTimeout
	client, err := sarama.NewClient(c.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("connecting to kafka %v: %w", c.Brokers, err)
	}
	group, err := sarama.NewConsumerGroupFromClient(c.Group, client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("joining consumer group %s: %w", c.Group, err)
	}
	producer, err := NewProducer(c)
	if err != nil {
		_ = group.Close()
		_ = client.Close()
		return nil, fmt.Errorf("dead-letter producer: %w", err)
	}
	return &Group{Client: client, Group: group, Producer: producer}, nil
}

// Run consumes topics with h until ctx is done or the group is closed,
// then closes the group; see RunGroup.
func (g *Group) Run(ctx context.Context, topics []string, h sarama.ConsumerGroupHandler, log *slog.Logger) error {
	return RunGroup(ctx, g.Group, topics, h, log)
}

// Close closes the producer and the client (Run closed the group).
func (g *Group) Close() error {
	return errors.Join(g.Producer.Close(), g.Client.Close())
}

// RunGroup consumes topics with h as a member of group until ctx is done
// or the group is closed: a session that fails is logged and rejoined
// after a second, and the group's errors are logged as they come. It then
// closes the group and returns the error of closing it.
func RunGroup(ctx context.Context, group sarama.ConsumerGroup, topics []string, h sarama.ConsumerGroupHandler, log *slog.Logger) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for err := range group.Errors() {
			log.Warn("consumer group error", "err", err)
		}
	}()
	for ctx.Err() == nil {
		err := group.Consume(ctx, topics, h)
		if err == nil || ctx.Err() != nil {
			continue
		}
		if errors.Is(err, sarama.ErrClosedConsumerGroup) {
			break
		}
		log.Warn("consumer group session failed; rejoining", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	err := group.Close()
	wg.Wait()
	return err
}

// AppendWaiting appends to batch the messages already waiting in ch,
// without blocking, until batch holds limit messages or ch is empty or
// closed. A ConsumeClaim loop calls it after receiving a first message, to
// process what arrived with it in one step.
func AppendWaiting(batch []*sarama.ConsumerMessage, ch <-chan *sarama.ConsumerMessage, limit int) []*sarama.ConsumerMessage {
	for len(batch) < limit {
		select {
		case m, ok := <-ch:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}
