package landing

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

const testTopic = "events"

func loadCatalog(t testing.TB, name string) *schemas.Catalog {
	t.Helper()
	return schemas.MustLoad("../../schemas/catalogs/" + name + ".yaml")
}

// clock runs with the wall clock and jumps ahead when told.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Add(d time.Duration) { c.offset.Add(int64(d)) }

func testConfig(c *schemas.Catalog, kc kafka.Config, root string) Config {
	cfg := Config{Catalog: c, Kafka: kc, Warehouse: root}
	cfg.Kafka.Group = DefaultGroup
	cfg.RollAge = 50 * time.Millisecond
	cfg.RollBytes = 1 << 20
	cfg.IdleTimeout = time.Hour
	cfg.CloseInterval = 50 * time.Millisecond
	cfg.ClockSkew = 100 * 365 * 24 * time.Hour
	cfg.SessionTimeout = 2 * time.Second
	cfg.RebalanceTimeout = 2 * time.Second
	return cfg
}

// instance is a Lander running in this process.
type instance struct {
	l      *Lander
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startLander(t testing.TB, cfg Config) *instance {
	t.Helper()
	reg := prometheus.NewRegistry()
	l, err := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{l: l, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- l.Run(ctx) }()
	t.Cleanup(func() { in.stop(t) })
	return in
}

func (in *instance) stop(t testing.TB) {
	in.once.Do(func() {
		in.cancel()
		select {
		case err := <-in.done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("landing did not stop")
		}
	})
}

func counter(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		_ = m.Write(&d)
		if d.Counter != nil {
			sum += d.Counter.GetValue()
		}
		if d.Gauge != nil {
			sum += d.Gauge.GetValue()
		}
	}
	return sum
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// landed reads every live events file under root.
func landed(t testing.TB, c *schemas.Catalog, root string) []schemas.Event {
	t.Helper()
	files, err := warehouse.AllEventFiles(root)
	require.NoError(t, err)
	evs, err := warehouse.ReadEventRows(context.Background(), c, warehouse.LiveFiles(files))
	require.NoError(t, err)
	return evs
}

// positions reads the durable next offset of each partition.
func positions(t testing.TB, root string, parts int32) []int64 {
	t.Helper()
	out := make([]int64, parts)
	for p := range parts {
		st, ok, err := readPartitionState(root, testTopic, p)
		require.NoError(t, err)
		if ok {
			out[p] = st.Next
		} else {
			out[p] = -1
		}
	}
	return out
}

// checkExactlyOnce asserts that the warehouse holds every placed record
// exactly once, and nothing else, by (partition, offset).
func checkExactlyOnce(t testing.TB, got []schemas.Event, want []kafkatest.Placed) {
	t.Helper()
	seen := make(map[kafkatest.Placed]int, len(got))
	for _, e := range got {
		seen[kafkatest.Placed{Partition: e.Partition, Offset: e.Offset}]++
	}
	var dup, missing int
	for k, n := range seen {
		if n > 1 {
			dup++
			if dup < 5 {
				t.Errorf("partition %d offset %d landed %d times", k.Partition, k.Offset, n)
			}
		}
	}
	for _, w := range want {
		if seen[w] == 0 {
			missing++
			if missing < 5 {
				t.Errorf("partition %d offset %d is missing", w.Partition, w.Offset)
			}
		}
	}
	require.Zero(t, dup, "duplicated records")
	require.Zero(t, missing, "missing records")
	require.Len(t, seen, len(want), "records that were never produced")
}

// highWatermarks are the next offsets of the events topic's partitions.
func highWatermarks(t testing.TB, kc kafka.Config, parts int32) []int64 {
	t.Helper()
	sc, err := kc.Sarama()
	require.NoError(t, err)
	cl, err := sarama.NewClient(kc.Brokers, sc)
	require.NoError(t, err)
	defer cl.Close()
	out := make([]int64, parts)
	for p := range parts {
		out[p], err = cl.GetOffset(testTopic, p, sarama.OffsetNewest)
		require.NoError(t, err)
	}
	return out
}
