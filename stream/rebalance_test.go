package stream

import (
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
)

// TestSecondInstanceJoins runs two speed layers with their own state
// directories in one consumer group on a 4-partition topic: the second
// joins while events flow, the group rebalances, more events follow. Once
// both caught up, every user is held by exactly one instance (the owner
// of its key's partition), and the union of both equals the reference,
// value for value: the instance that took over a partition rebuilt it
// from the oldest offset, the one that gave it up dropped it, and no
// event was counted twice or lost.
func TestSecondInstanceJoins(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for consumer-group rebalances")
	}
	const partitions = 4
	c := loadCatalog(t, "ecommerce")
	kc := kafkatest.StartBroker(t, testTopic, partitions)
	o := gen.Defaults(33)
	o.Users, o.Events = 400, 8000
	events := gen.Events(c, o)
	recs := kafkatest.EncodeEvents(t, c, events, -1)
	p := kafkatest.NewProducer(t, kc, false)

	// Phase 1: the first instance alone owns every partition.
	first := len(events) / 3
	placed(events[:first], p.Send(t, recs[:first]))
	a := startSpeed(t, testConfig(t, c, kc, t.TempDir()))
	a.waitApplied(t, int64(first))
	require.Len(t, a.s.Positions(), partitions)

	// Phase 2: the second instance joins while records keep arriving in
	// small paced batches, so that the rebalance falls mid-stream.
	b := startSpeed(t, testConfig(t, c, kc, t.TempDir()))
	stopped := false
	stopBoth := func() {
		if stopped {
			return
		}
		stopped = true
		a.stop() // both at once: neither takes over the other's partitions
		b.stop()
		a.close(t)
		b.close(t)
	}
	defer stopBoth()
	// Batches go out until the second instance owns partitions (during
	// the rebalance), then the rest (after it).
	const batch = 100
	during, after := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	for lo := first; lo < len(events); {
		joined := len(b.s.Positions()) > 0
		if !joined && len(events)-lo <= len(events)/6 {
			require.True(t, time.Now().Before(deadline), "the second instance got no partition")
			time.Sleep(20 * time.Millisecond) // keep a sixth for after the rebalance
			continue
		}
		hi := min(lo+batch, len(events))
		placed(events[lo:hi], p.Send(t, recs[lo:hi]))
		if joined {
			after++
		} else {
			during++
		}
		lo = hi
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("batches of %d records sent while the second instance joined: %d, after: %d", batch, during, after)
	require.Positive(t, during, "records sent while the group rebalanced")
	require.Positive(t, after, "records sent after the rebalance")
	ends := map[int32]int64{}
	for _, e := range events {
		ends[e.Partition] = max(ends[e.Partition], e.Offset+1)
	}
	require.Len(t, ends, partitions, "every partition got records")

	// Both caught up, the partitions split between them and stable.
	owned := waitSplit(t, []*instance{a, b}, ends)
	for i := range owned {
		require.NotEmpty(t, owned[i], "instance %d owns partitions after the rebalance", i)
	}
	t.Logf("partitions: first instance %v, second %v; records consumed by the second: %v of %d",
		owned[0], owned[1], metricValue(b.s.m.consumed), len(events))
	// The second instance never owned its partitions before: it read each
	// of their records exactly once, from offset 0.
	var bRecords int64
	for _, p := range owned[1] {
		bRecords += ends[p]
	}
	require.Equal(t, float64(bRecords), metricValue(b.s.m.consumed))

	// Capture each instance's live values while both run, then stop both.
	asOf := []schemas.Timestamp{a.s.AsOf(), b.s.AsOf()}
	got := make([][]schemas.Profile, 2)
	for i, in := range []*instance{a, b} {
		var err error
		got[i], err = in.s.ProfilesAsOf(asOf[i])
		require.NoError(t, err)
		require.Equal(t, partitionLabels(owned[i]), lagPartitions(t, in.reg), "instance %d: lag series of the owned partitions only", i)
		require.Positive(t, histogramCount(t, in.reg, "portrait_speed_checkpoint_size_bytes"), "instance %d", i)
		require.Positive(t, metricValue(in.s.m.stateBytes), "instance %d", i)
	}
	stopBoth()

	// Each user is held by the owner of its partition, and by it only.
	partitionOf := map[any]int32{}
	for _, e := range events {
		partitionOf[e.Values[c.Key]] = e.Partition
	}
	holder := map[any]int{}
	for i := range got {
		for _, pr := range got[i] {
			prev, dup := holder[pr.Key]
			require.False(t, dup, "user %v held by instance %d and %d", pr.Key, prev, i)
			holder[pr.Key] = i
			require.Contains(t, owned[i], partitionOf[pr.Key], "user %v held by instance %d, which does not own its partition", pr.Key, i)
		}
	}

	// The union equals the reference's live values: each instance's users
	// as of its own live time (the end of its newest watermark's bucket),
	// from exactly the events of its partitions.
	want, _ := notLate(t, c, a.s.cfg.Grace, events)
	var union []schemas.Profile
	for i := range got {
		var mine []schemas.Event
		for _, e := range want {
			if slices.Contains(owned[i], e.Partition) {
				mine = append(mine, e)
			}
		}
		w := reference.Evaluate(c, mine, asOf[i])
		require.NotEmpty(t, w)
		if d := reference.Diff(c, w, got[i], 10); len(d) > 0 {
			t.Fatalf("instance %d (partitions %v, as of %s): %d want, %d got: %v", i, owned[i], asOf[i], len(w), len(got[i]), d)
		}
		union = append(union, got[i]...)
	}
	require.Len(t, union, len(holder))
	if asOf[0] == asOf[1] {
		// One live time: the union is the reference over every event.
		slices.SortFunc(union, func(x, y schemas.Profile) int { return schemas.Compare(x.Key, y.Key) })
		all := reference.Evaluate(c, want, asOf[0])
		if d := reference.Diff(c, all, union, 10); len(d) > 0 {
			t.Fatalf("union as of %s: %d want, %d got: %v", asOf[0], len(all), len(union), d)
		}
	} else {
		t.Logf("live times differ: first instance %s, second %s (each compared at its own)", asOf[0], asOf[1])
	}
}

// waitSplit waits until the instances own disjoint sets of partitions
// that cover ends, each caught up with ends (the next offset of every
// partition), with the same split seen twice 300ms apart; it returns each
// instance's partitions, sorted.
func waitSplit(t *testing.T, ins []*instance, ends map[int32]int64) [][]int32 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last [][]int32
	for {
		split, ok := splitOf(ins, ends)
		if ok && last != nil && slices.EqualFunc(split, last, slices.Equal) {
			return split
		}
		last = nil
		if ok {
			last = split
		}
		for i, in := range ins {
			select {
			case err := <-in.done:
				t.Fatalf("instance %d stopped: %v", i, err)
			default:
			}
		}
		if time.Now().After(deadline) {
			var pos []map[int32]int64
			for _, in := range ins {
				pos = append(pos, in.s.Positions())
			}
			t.Fatalf("timed out waiting for the partitions to split and catch up: positions %v, ends %v", pos, ends)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// splitOf returns each instance's partitions when they are disjoint,
// cover ends and are caught up with it.
func splitOf(ins []*instance, ends map[int32]int64) ([][]int32, bool) {
	seen := map[int32]bool{}
	out := make([][]int32, len(ins))
	for i, in := range ins {
		if !in.s.Ready() {
			return nil, false
		}
		pos := in.s.Positions()
		for p, next := range pos {
			if seen[p] || next != ends[p] {
				return nil, false
			}
			seen[p] = true
		}
		out[i] = slices.Sorted(maps.Keys(pos))
	}
	return out, len(seen) == len(ends)
}

func partitionLabels(ps []int32) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strconv.Itoa(int(p))
	}
	slices.Sort(out)
	return out
}

// lagPartitions lists the partition labels of the lag gauge, sorted.
func lagPartitions(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "portrait_speed_consumer_lag_records" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" {
					out = append(out, l.GetValue())
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// histogramCount is the sample count of an unlabelled histogram.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("%s not registered", name)
	return 0
}
