package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// Header is one Kafka record header.
type Header struct {
	Key, Value string
}

// Message is one record to produce. An empty Topic sends to the producer's
// default topic (Config.Topic).
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []Header
}

// JSONMessage encodes v as the JSON value of a message keyed by key.
func JSONMessage(topic, key string, v any, headers ...Header) (Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, fmt.Errorf("encoding message for key %q: %w", key, err)
	}
	return Message{Topic: topic, Key: []byte(key), Value: b, Headers: headers}, nil
}

// Producer sends messages synchronously: Send returns once the brokers have
// acknowledged every message (acks=all) or with the errors. Messages with
// the same key go to the same partition (sarama's hash partitioner).
// It is safe for concurrent use.
type Producer struct {
	sp    sarama.SyncProducer
	topic string
}

// NewProducer connects a producer to cfg.Brokers.
func NewProducer(cfg Config) (*Producer, error) {
	cfg.ApplyDefaults()
	sc, err := cfg.Sarama()
	if err != nil {
		return nil, err
	}
	sp, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("connecting producer to %v: %w", cfg.Brokers, err)
	}
	return &Producer{sp: sp, topic: cfg.Topic}, nil
}

// SendError reports the messages of a Send that failed; the others were
// written.
type SendError struct {
	Failed int
	Total  int
	First  error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("%d of %d messages not sent: %v", e.Failed, e.Total, e.First)
}

func (e *SendError) Unwrap() error { return e.First }

// Send produces msgs as one batch and waits for their acknowledgement. When
// some fail, it returns a *SendError. A done ctx stops it before sending.
func (p *Producer) Send(ctx context.Context, msgs ...Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	pms := make([]*sarama.ProducerMessage, len(msgs))
	for i := range msgs {
		pms[i] = p.producerMessage(&msgs[i])
	}
	err := p.sp.SendMessages(pms)
	if err == nil {
		return nil
	}
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) && len(perrs) > 0 {
		return &SendError{Failed: len(perrs), Total: len(msgs), First: fmt.Errorf("topic %s: %w", perrs[0].Msg.Topic, perrs[0].Err)}
	}
	return &SendError{Failed: len(msgs), Total: len(msgs), First: err}
}

// SendOne produces one message and returns where it was written.
func (p *Producer) SendOne(ctx context.Context, m Message) (partition int32, offset int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	pm := p.producerMessage(&m)
	partition, offset, err = p.sp.SendMessage(pm)
	if err != nil {
		return 0, 0, fmt.Errorf("producing to %s: %w", pm.Topic, err)
	}
	return partition, offset, nil
}

func (p *Producer) producerMessage(m *Message) *sarama.ProducerMessage {
	topic := m.Topic
	if topic == "" {
		topic = p.topic
	}
	pm := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(m.Value)}
	if m.Key != nil {
		pm.Key = sarama.ByteEncoder(m.Key)
	}
	if len(m.Headers) > 0 {
		pm.Headers = make([]sarama.RecordHeader, len(m.Headers))
		for i, h := range m.Headers {
			pm.Headers[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: []byte(h.Value)}
		}
	}
	return pm
}

// Close flushes and closes the producer.
func (p *Producer) Close() error {
	if err := p.sp.Close(); err != nil {
		return fmt.Errorf("closing producer: %w", err)
	}
	return nil
}
