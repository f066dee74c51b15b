// Package kafkatest is the Kafka test harness of the events consumers
// (the speed layer and the landing): an in-process kfake broker with the
// events topic and its dead-letter topic, a producer that reports where
// each record landed, events encoded as the JSON records producers send,
// a reader for a whole topic, and the re-exec plumbing of crash tests that
// run a consumer in a child process and kill it.
package kafkatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/schemas"
)

// StartBroker starts kfake on a free loopback port with topic
// (partitions) and its dead-letter topic topic+".dlq" (one partition),
// stopped when the test ends, and returns the config that reaches it.
func StartBroker(t testing.TB, topic string, partitions int32) kafka.Config {
	t.Helper()
	b, err := kafka.StartBroker(context.Background(), "127.0.0.1:0", []kafka.TopicSpec{
		{Name: topic, Partitions: partitions}, {Name: topic + kafka.DLQSuffix, Partitions: 1},
	})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return Config(b.Brokers(), topic)
}

// Config reaches a running broker's topic and its dead-letter topic.
func Config(brokers []string, topic string) kafka.Config {
	cfg := kafka.DefaultConfig()
	cfg.Brokers = brokers
	cfg.Topic = topic
	cfg.DLQTopic = topic + kafka.DLQSuffix
	return cfg
}

// Record is one message to produce; Partition is used by a manual
// producer only (the key decides otherwise).
type Record struct {
	Key, Value []byte
	Partition  int32
}

// Placed is where a record landed.
type Placed struct {
	Partition int32
	Offset    int64
}

// Producer sends records to the config's topic, synchronously.
type Producer struct {
	SP    sarama.SyncProducer
	topic string
}

// NewProducer connects a producer, closed when the test ends; with manual
// each record goes to its Partition, else sarama's hash of the key picks.
func NewProducer(t testing.TB, kc kafka.Config, manual bool) *Producer {
	t.Helper()
	sc, err := kc.Sarama()
	require.NoError(t, err)
	sc.Producer.MaxMessageBytes = 4 << 20
	if manual {
		sc.Producer.Partitioner = sarama.NewManualPartitioner
	}
	sp, err := sarama.NewSyncProducer(kc.Brokers, sc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sp.Close() })
	return &Producer{SP: sp, topic: kc.Topic}
}

// Send produces recs in batches and returns where each landed.
func (p *Producer) Send(t testing.TB, recs []Record) []Placed {
	t.Helper()
	out := make([]Placed, 0, len(recs))
	for len(recs) > 0 {
		n := min(len(recs), 2000)
		msgs := make([]*sarama.ProducerMessage, n)
		for i := range msgs {
			msgs[i] = &sarama.ProducerMessage{Topic: p.topic, Key: sarama.ByteEncoder(recs[i].Key),
				Value: sarama.ByteEncoder(recs[i].Value), Partition: recs[i].Partition}
		}
		require.NoError(t, p.SP.SendMessages(msgs))
		for _, m := range msgs {
			out = append(out, Placed{m.Partition, m.Offset})
		}
		recs = recs[n:]
	}
	return out
}

// EncodeEvents writes events as the JSON records a producer sends, keyed
// by the key field in text form, each for partition.
func EncodeEvents(t testing.TB, c *schemas.Catalog, events []schemas.Event, partition int32) []Record {
	t.Helper()
	var buf bytes.Buffer
	w, err := gen.NewWriter(&buf, c, "jsonl")
	require.NoError(t, err)
	out := make([]Record, len(events))
	for i := range events {
		buf.Reset()
		require.NoError(t, w.Write(&events[i]))
		require.NoError(t, w.Flush())
		out[i] = Record{Key: []byte(fmt.Sprint(events[i].Values[c.Key])),
			Value: bytes.TrimSpace(append([]byte(nil), buf.Bytes()...)), Partition: partition}
	}
	return out
}

// Message is a record read back from a topic.
type Message struct {
	Key, Value string
	Headers    map[string]string
}

// ReadTopic reads n records of topic (every partition, from the oldest
// offset), failing the test when they do not arrive within 20s; it then
// waits 100ms so that a record beyond n would be noticed by a caller that
// reads again.
func ReadTopic(t testing.TB, kc kafka.Config, topic string, n int) []Message {
	t.Helper()
	sc, err := kc.Sarama()
	require.NoError(t, err)
	c, err := sarama.NewConsumer(kc.Brokers, sc)
	require.NoError(t, err)
	defer c.Close()
	parts, err := c.Partitions(topic)
	require.NoError(t, err)
	var (
		mu  sync.Mutex
		out []Message
		wg  sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-pc.Messages():
					r := Message{Key: string(m.Key), Value: string(m.Value), Headers: map[string]string{}}
					for _, h := range m.Headers {
						r.Headers[string(h.Key)] = string(h.Value)
					}
					mu.Lock()
					out = append(out, r)
					if len(out) >= n {
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("read %d of %d records from %s", len(out), n, topic)
	}
	time.Sleep(100 * time.Millisecond)
	return out
}
