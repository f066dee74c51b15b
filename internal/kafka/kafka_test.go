package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// startTestBroker starts a broker on a free loopback port for one test.
func startTestBroker(t *testing.T, topics []TopicSpec) (*Broker, Config) {
	t.Helper()
	b, err := StartBroker(context.Background(), "127.0.0.1:0", topics)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	cfg := DefaultConfig()
	cfg.Brokers = b.Brokers()
	return b, cfg
}

type record struct {
	key, value string
	headers    map[string]string
	partition  int32
	offset     int64
}

// consumeAll reads every partition of topic from the oldest offset until n
// records arrived.
func consumeAll(t *testing.T, cfg Config, topic string, n int) []record {
	t.Helper()
	sc, err := cfg.Sarama()
	require.NoError(t, err)
	c, err := sarama.NewConsumer(cfg.Brokers, sc)
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()
	parts, err := c.Partitions(topic)
	require.NoError(t, err)
	out := make(chan record, n)
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		defer pc.Close() //nolint:errcheck // test reader
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range pc.Messages() {
				out <- toRecord(m)
			}
		}()
	}
	var got []record
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case r := <-out:
			got = append(got, r)
		case <-timeout:
			t.Fatalf("consumed %d of %d records from %s", len(got), n, topic)
		}
	}
	return got
}

func toRecord(m *sarama.ConsumerMessage) record {
	r := record{key: string(m.Key), value: string(m.Value), partition: m.Partition, offset: m.Offset, headers: map[string]string{}}
	for _, h := range m.Headers {
		r.headers[string(h.Key)] = string(h.Value)
	}
	return r
}

func TestStartBrokerTopics(t *testing.T) {
	b, cfg := startTestBroker(t, []TopicSpec{{Name: "events", Partitions: 3}, {Name: "events.dlq"}})
	require.Regexp(t, `^127\.0\.0\.1:\d+$`, b.Addr())
	sc, err := cfg.Sarama()
	require.NoError(t, err)
	client, err := sarama.NewClient(cfg.Brokers, sc)
	require.NoError(t, err)
	defer client.Close() //nolint:errcheck // test reader
	for topic, want := range map[string]int{"events": 3, "events.dlq": DefaultPartitions} {
		parts, err := client.Partitions(topic)
		require.NoError(t, err, topic)
		require.Len(t, parts, want, topic)
	}
}

func TestStartBrokerStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b, err := StartBroker(ctx, "127.0.0.1:0", nil)
	require.NoError(t, err)
	cancel()
	require.Eventually(t, func() bool {
		sc := sarama.NewConfig()
		sc.Net.DialTimeout = 100 * time.Millisecond
		sc.Metadata.Retry.Max = 0
		c, err := sarama.NewClient(b.Brokers(), sc)
		if err == nil {
			c.Close() //nolint:errcheck // probe
		}
		return err != nil
	}, 5*time.Second, 50*time.Millisecond)
	b.Close() // after the context stopped it: no panic
	var nilBroker *Broker
	nilBroker.Close()
}

func TestProducerRoundTrip(t *testing.T) {
	_, cfg := startTestBroker(t, nil)
	p, err := NewProducer(cfg)
	require.NoError(t, err)
	ctx := context.Background()

	var msgs []Message
	for i := range 20 {
		key := fmt.Sprint(i % 5)
		m, err := JSONMessage("", key, map[string]any{"user_id": i % 5, "n": i}, Header{Key: "source", Value: "test"})
		require.NoError(t, err)
		msgs = append(msgs, m)
	}
	require.NoError(t, p.Send(ctx, msgs...))
	part, off, err := p.SendOne(ctx, Message{Topic: cfg.DLQTopic, Key: []byte("x"), Value: []byte("not json"),
		Headers: []Header{{Key: "reason", Value: "decode"}}})
	require.NoError(t, err)
	require.Equal(t, int64(0), off)
	require.NoError(t, p.Close())

	got := consumeAll(t, cfg, cfg.Topic, 20)
	require.Len(t, got, 20)
	partOf := map[string]int32{}
	byKey := map[string][]int{}
	sort.Slice(got, func(i, j int) bool {
		if got[i].partition != got[j].partition {
			return got[i].partition < got[j].partition
		}
		return got[i].offset < got[j].offset
	})
	for _, r := range got {
		if p, ok := partOf[r.key]; ok {
			require.Equal(t, p, r.partition, "key %s moved partition", r.key)
		}
		partOf[r.key] = r.partition
		require.Equal(t, "test", r.headers["source"])
		var v struct{ UserID, N int }
		require.NoError(t, json.Unmarshal([]byte(r.value), &v))
		require.Equal(t, r.key, fmt.Sprint(v.N%5))
		byKey[r.key] = append(byKey[r.key], v.N)
	}
	for k, ns := range byKey {
		require.True(t, sort.IntsAreSorted(ns), "key %s out of order: %v", k, ns)
	}

	dlq := consumeAll(t, cfg, cfg.DLQTopic, 1)
	require.Equal(t, record{key: "x", value: "not json", headers: map[string]string{"reason": "decode"}, partition: part, offset: 0}, dlq[0])
}

func TestProducerUnknownTopic(t *testing.T) {
	_, cfg := startTestBroker(t, nil)
	sc, err := cfg.Sarama()
	require.NoError(t, err)
	sc.Producer.Retry.Max = 0
	sc.Metadata.Retry.Max = 0
	sp, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	require.NoError(t, err)
	p := &Producer{sp: sp, topic: cfg.Topic}
	defer p.Close() //nolint:errcheck // test
	err = p.Send(context.Background(), Message{Topic: "nope", Value: []byte("{}")}, Message{Value: []byte("{}")})
	var se *SendError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 1, se.Failed)
	require.Equal(t, 2, se.Total)
	require.ErrorIs(t, err, sarama.ErrUnknownTopicOrPartition)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, p.Send(ctx, Message{Value: []byte("{}")}), context.Canceled)
}

type groupHandler struct {
	mu   sync.Mutex
	got  map[string]bool
	want int
	done chan struct{}
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-s.Context().Done():
			return nil
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			s.MarkMessage(m, "")
			h.mu.Lock()
			h.got[string(m.Value)] = true
			if len(h.got) == h.want {
				close(h.done)
			}
			h.mu.Unlock()
		}
	}
}

// consumeGroup runs the group until want distinct values arrived and
// returns them.
func consumeGroup(t *testing.T, cfg Config, want int) map[string]bool {
	t.Helper()
	sc, err := cfg.Sarama()
	require.NoError(t, err)
	sc.Consumer.Offsets.AutoCommit.Interval = 50 * time.Millisecond
	g, err := sarama.NewConsumerGroup(cfg.Brokers, cfg.Group, sc)
	require.NoError(t, err)
	h := &groupHandler{got: map[string]bool{}, want: want, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{cfg.Topic}, h); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("group %s consumed %d of %d", cfg.Group, len(h.got), want)
	}
	cancel()
	require.NoError(t, <-errc)
	require.NoError(t, g.Close())
	return h.got
}

func TestConsumerGroupRoundTrip(t *testing.T) {
	_, cfg := startTestBroker(t, []TopicSpec{{Name: "events", Partitions: 3}})
	cfg.Group = "portrait-test"
	p, err := NewProducer(cfg)
	require.NoError(t, err)
	defer p.Close() //nolint:errcheck // test
	send := func(from, to int) {
		var msgs []Message
		for i := from; i < to; i++ {
			msgs = append(msgs, Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
		}
		require.NoError(t, p.Send(context.Background(), msgs...))
	}
	send(0, 30)
	first := consumeGroup(t, cfg, 30)
	require.Len(t, first, 30)

	// The group committed its offsets: a second run sees only new records.
	send(30, 40)
	second := consumeGroup(t, cfg, 10)
	for i := 30; i < 40; i++ {
		require.True(t, second[fmt.Sprint(i)], "missing %d", i)
	}
	require.Len(t, second, 10)
}

func TestEnsureTopics(t *testing.T) {
	_, cfg := startTestBroker(t, []TopicSpec{{Name: "events", Partitions: 2}})
	ctx := context.Background()
	specs := []TopicSpec{{Name: "events", Partitions: 8}, {Name: "events.dlq", Partitions: 2}, {Name: "other"}}
	require.NoError(t, EnsureTopics(ctx, cfg, specs))
	require.NoError(t, EnsureTopics(ctx, cfg, specs)) // idempotent

	sc, err := cfg.Sarama()
	require.NoError(t, err)
	client, err := sarama.NewClient(cfg.Brokers, sc)
	require.NoError(t, err)
	defer client.Close() //nolint:errcheck // test reader
	for topic, want := range map[string]int{"events": 2, "events.dlq": 2, "other": DefaultPartitions} {
		parts, err := client.Partitions(topic)
		require.NoError(t, err, topic)
		require.Len(t, parts, want, topic)
	}
}

func TestSASLAgainstKfake(t *testing.T) {
	for _, mech := range []string{SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
				kfake.Superuser(mech, "alice", "s3cret"), kfake.SeedTopics(1, "events"))
			require.NoError(t, err)
			defer c.Close()
			cfg := DefaultConfig()
			cfg.Brokers = c.ListenAddrs()
			cfg.SASL = SASL{Mechanism: mech, User: "alice", Password: "s3cret"}
			p, err := NewProducer(cfg)
			require.NoError(t, err)
			_, _, err = p.SendOne(context.Background(), Message{Key: []byte("1"), Value: []byte("{}")})
			require.NoError(t, err)
			require.NoError(t, p.Close())

			cfg.SASL.Password = "wrong"
			sc, err := cfg.Sarama()
			require.NoError(t, err)
			sc.Metadata.Retry.Max = 0
			_, err = sarama.NewSyncProducer(cfg.Brokers, sc)
			require.Error(t, err)
		})
	}
}

func TestEmbeddedFlag(t *testing.T) {
	tests := []struct {
		args     []string
		wantAddr string
	}{
		{nil, ""},
		{[]string{"--embedded-kafka"}, DefaultBrokerAddr},
		{[]string{"--embedded-kafka=127.0.0.1:0"}, "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.args), func(t *testing.T) {
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			e := AddEmbeddedFlag(fs)
			require.NoError(t, fs.Parse(tt.args))
			require.Equal(t, tt.wantAddr, e.Addr)
			require.Equal(t, tt.wantAddr != "", e.Enabled())
		})
	}

	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	e := AddEmbeddedFlag(fs)
	require.NoError(t, fs.Parse([]string{"--embedded-kafka=127.0.0.1:0", "--embedded-kafka-partitions=2"}))
	cfg := Config{Topic: "clicks"}
	b, err := e.Start(context.Background(), &cfg, nil)
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, b.Brokers(), cfg.Brokers)
	require.NoError(t, EnsureTopics(context.Background(), cfg, nil))
	sc, err := cfg.Sarama()
	require.NoError(t, err)
	client, err := sarama.NewClient(cfg.Brokers, sc)
	require.NoError(t, err)
	defer client.Close() //nolint:errcheck // test reader
	for _, topic := range []string{"clicks", "clicks.dlq"} {
		parts, err := client.Partitions(topic)
		require.NoError(t, err, topic)
		require.Len(t, parts, 2, topic)
	}

	var off EmbeddedFlag
	nb, err := off.Start(context.Background(), &cfg, nil)
	require.NoError(t, err)
	require.Nil(t, nb)
	nb.Close()
}
