package stream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
	"github.com/portrait-dev/portrait/stream/incremental"
)

const testTopic = "events"

func loadCatalog(t testing.TB, name string) *schemas.Catalog {
	t.Helper()
	return schemas.MustLoad("../schemas/catalogs/" + name + ".yaml")
}

// startBroker starts kfake with the events topic (partitions) and its DLQ.
func startBroker(t testing.TB, partitions int32) kafka.Config {
	t.Helper()
	b, err := kafka.StartBroker(context.Background(), "127.0.0.1:0", []kafka.TopicSpec{
		{Name: testTopic, Partitions: partitions}, {Name: testTopic + ".dlq", Partitions: 1},
	})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	cfg := kafka.DefaultConfig()
	cfg.Brokers = b.Brokers()
	cfg.Topic = testTopic
	cfg.DLQTopic = testTopic + ".dlq"
	return cfg
}

// record is one message to produce.
type record struct {
	key, value []byte
}

// producer sends records with sarama's hash partitioner and returns where
// each landed.
type producer struct {
	sp sarama.SyncProducer
}

func newProducer(t testing.TB, kc kafka.Config) *producer {
	t.Helper()
	sc, err := kc.Sarama()
	require.NoError(t, err)
	sc.Producer.MaxMessageBytes = 4 << 20
	sp, err := sarama.NewSyncProducer(kc.Brokers, sc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sp.Close() })
	return &producer{sp: sp}
}

// send produces recs and returns their (partition, offset).
func (p *producer) send(t testing.TB, recs []record) [][2]int64 {
	t.Helper()
	out := make([][2]int64, 0, len(recs))
	for len(recs) > 0 {
		n := min(len(recs), 2000)
		msgs := make([]*sarama.ProducerMessage, n)
		for i := range msgs {
			msgs[i] = &sarama.ProducerMessage{Topic: testTopic, Key: sarama.ByteEncoder(recs[i].key), Value: sarama.ByteEncoder(recs[i].value)}
		}
		require.NoError(t, p.sp.SendMessages(msgs))
		for _, m := range msgs {
			out = append(out, [2]int64{int64(m.Partition), m.Offset})
		}
		recs = recs[n:]
	}
	return out
}

// encodeEvents writes events as the JSON records a producer sends.
func encodeEvents(t testing.TB, c *schemas.Catalog, events []schemas.Event) []record {
	t.Helper()
	var buf bytes.Buffer
	w, err := gen.NewWriter(&buf, c, "jsonl")
	require.NoError(t, err)
	out := make([]record, len(events))
	for i := range events {
		buf.Reset()
		require.NoError(t, w.Write(&events[i]))
		require.NoError(t, w.Flush())
		out[i] = record{key: []byte(fmt.Sprint(events[i].Values[c.Key])), value: bytes.TrimSpace(append([]byte(nil), buf.Bytes()...))}
	}
	return out
}

// taobaoEvents reads a Taobao sample CSV (repo testdata/taobao, else the
// shared data set).
func taobaoEvents(t testing.TB, c *schemas.Catalog, file string, limit int) []schemas.Event {
	t.Helper()
	path := filepath.Join("..", "testdata", "taobao", file)
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join("/work/shared/datasets/taobao", file)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("taobao sample not available: %v", err)
	}
	defer f.Close()
	var out []schemas.Event
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() && (limit <= 0 || len(out) < limit) {
		line++
		cols := strings.Split(sc.Text(), ",")
		require.Len(t, cols, len(c.Fields), "%s:%d", path, line)
		e := schemas.Event{Values: make([]any, len(c.Fields))}
		for i := range c.Fields {
			v, err := schemas.ParseValue(&c.Fields[i], cols[i])
			require.NoError(t, err, "%s:%d", path, line)
			e.Values[i] = v
		}
		e.Time = e.Values[c.Time].(schemas.Timestamp)
		out = append(out, e)
	}
	require.NoError(t, sc.Err())
	return out
}

// placed sets the partition and offset the events landed at.
func placed(events []schemas.Event, at [][2]int64) {
	for i := range events {
		events[i].Partition, events[i].Offset = int32(at[i][0]), at[i][1]
	}
}

// notLate drops the events the speed layer counts late: per partition in
// offset order, older than the kept buckets at the partition watermark.
func notLate(t testing.TB, c *schemas.Catalog, grace time.Duration, events []schemas.Event) ([]schemas.Event, int) {
	t.Helper()
	x, err := incremental.New(c, grace)
	require.NoError(t, err)
	sorted := append([]schemas.Event(nil), events...)
	sortByPosition(sorted)
	wm := map[int32]schemas.Timestamp{}
	var out []schemas.Event
	late := 0
	for _, e := range sorted {
		wm[e.Partition] = max(wm[e.Partition], e.Time)
		if e.Time < x.KeepFrom(wm[e.Partition]) {
			late++
			continue
		}
		out = append(out, e)
	}
	return out, late
}

func sortByPosition(events []schemas.Event) {
	slices.SortFunc(events, func(a, b schemas.Event) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
}

// instance is one running speed layer.
type instance struct {
	s    *Speed
	reg  *prometheus.Registry
	stop context.CancelFunc
	done chan error
}

func startSpeed(t testing.TB, cfg Config) *instance {
	t.Helper()
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s, err := New(cfg, logger, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{s: s, reg: reg, stop: cancel, done: make(chan error, 1)}
	go func() { in.done <- s.Run(ctx) }()
	return in
}

// close stops the instance gracefully and closes its store.
func (in *instance) close(t testing.TB) {
	t.Helper()
	in.stop()
	select {
	case err := <-in.done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("speed layer did not stop")
	}
	require.NoError(t, in.s.Close())
}

// waitApplied waits until the owned partitions' next offsets sum to
// total records (every partition started at 0).
func (in *instance) waitApplied(t testing.TB, total int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var sum int64
		for _, next := range in.s.eng.positions() {
			sum += max(next, 0)
		}
		if sum == total && in.s.Ready() {
			return
		}
		select {
		case err := <-in.done:
			t.Fatalf("speed layer stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %d of %d records applied", sum, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// compareWithReference checks every user's live values and a few past
// cutoffs against the reference evaluator.
func compareWithReference(t testing.TB, s *Speed, events []schemas.Event) {
	t.Helper()
	c := s.Catalog()
	live := s.AsOf()
	for _, asOf := range []schemas.Timestamp{live, live - schemas.Timestamp(c.Bucket), live - schemas.Timestamp(5*c.Bucket)} {
		if asOf < live-schemas.Timestamp(s.x.Grace().Milliseconds()) {
			continue // not covered by the kept buckets
		}
		want := reference.Evaluate(c, events, asOf)
		got, err := s.ProfilesAsOf(asOf)
		require.NoError(t, err)
		require.NotEmpty(t, want)
		if d := reference.Diff(c, want, got, 10); len(d) > 0 {
			t.Fatalf("as of %s (live %s): %d want, %d got: %v", asOf, live, len(want), len(got), d)
		}
	}
	// Lookups agree with the profile set.
	want := reference.Evaluate(c, events, live)
	for _, p := range want[:min(len(want), 20)] {
		got, ok := s.Lookup(p.Key)
		require.True(t, ok, "lookup %v", p.Key)
		require.Empty(t, reference.Diff(c, []schemas.Profile{p}, []schemas.Profile{got}, 0))
		got, ok = s.Lookup(fmt.Sprint(p.Key)) // string form of the key
		require.True(t, ok, "lookup %q", fmt.Sprint(p.Key))
		require.Equal(t, p.Key, got.Key)
	}
}

// dlqRecord is a record read back from the DLQ topic.
type dlqRecord struct {
	key, value string
	headers    map[string]string
}

// readTopic reads n records of topic (all partitions).
func readTopic(t testing.TB, kc kafka.Config, topic string, n int) []dlqRecord {
	t.Helper()
	sc, err := kc.Sarama()
	require.NoError(t, err)
	c, err := sarama.NewConsumer(kc.Brokers, sc)
	require.NoError(t, err)
	defer c.Close()
	parts, err := c.Partitions(topic)
	require.NoError(t, err)
	var mu sync.Mutex
	var out []dlqRecord
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
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
					r := dlqRecord{key: string(m.Key), value: string(m.Value), headers: map[string]string{}}
					for _, h := range m.Headers {
						r.headers[string(h.Key)] = string(h.Value)
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
	// Nothing beyond n.
	time.Sleep(100 * time.Millisecond)
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// metricValue reads a counter or gauge with a single series.
func metricValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var d dto.Metric
	if err := (<-ch).Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
