package stream

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/internal/source"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
	"github.com/portrait-dev/portrait/stream/incremental"
)

const testTopic = "events"

func loadCatalog(t testing.TB, name string) *schemas.Catalog {
	t.Helper()
	return schemas.MustLoad("../schemas/catalogs/" + name + ".yaml")
}

// taobaoEvents reads a Taobao sample CSV of the repo's testdata/taobao.
func taobaoEvents(t testing.TB, c *schemas.Catalog, file string, limit int) []schemas.Event {
	t.Helper()
	events, err := source.ReadEvents(c, filepath.Join("..", "testdata", "taobao", file), 0, limit)
	require.NoError(t, err)
	return events
}

// placed sets the partition and offset the events landed at.
func placed(events []schemas.Event, at []kafkatest.Placed) {
	for i := range events {
		events[i].Partition, events[i].Offset = at[i].Partition, at[i].Offset
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
