package serving

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/internal/source"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
	"github.com/portrait-dev/portrait/stream"
	"github.com/portrait-dev/portrait/warehouse"
)

// speedRig is a real speed layer on kfake beside a real warehouse: what
// it produces, the speed layer consumes, and what it lands, recompute
// reads.
type speedRig struct {
	t     *testing.T
	cat   *schemas.Catalog
	prod  *kafkatest.Producer
	s     *stream.Speed
	stop  func() // stops the speed layer and closes its store
	state string
	root  string
	sent  int64
	// events are every event produced, with their Kafka positions.
	events []schemas.Event
}

func startSpeed(t *testing.T, cat *schemas.Catalog, now time.Time) *speedRig {
	t.Helper()
	kc := kafkatest.StartBroker(t, "events", 2)
	stateDir := t.TempDir()
	s, err := stream.New(stream.Config{Catalog: cat, Kafka: kc, StateDir: stateDir,
		CheckpointInterval: 50 * time.Millisecond, Now: func() time.Time { return now }}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	r := &speedRig{t: t, cat: cat, prod: kafkatest.NewProducer(t, kc, false), s: s, root: t.TempDir(), state: stateDir}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			require.NoError(t, s.Close())
		})
	}
	t.Cleanup(r.stop)
	return r
}

// produce sends events (keyed by user), waits until the speed layer has
// consumed them, and returns them with their Kafka positions.
func (r *speedRig) produce(events []schemas.Event) []schemas.Event {
	r.t.Helper()
	events = slices.Clone(events)
	at := r.prod.Send(r.t, kafkatest.EncodeEvents(r.t, r.cat, events, 0))
	for i := range events {
		events[i].Partition, events[i].Offset = at[i].Partition, at[i].Offset
	}
	r.sent += int64(len(events))
	deadline := time.Now().Add(30 * time.Second)
	for r.s.Applied() < r.sent {
		require.True(r.t, time.Now().Before(deadline), "speed layer consumed %d of %d records", r.s.Applied(), r.sent)
		time.Sleep(10 * time.Millisecond)
	}
	r.events = append(r.events, events...)
	return events
}

// land writes events to the warehouse as the landing does: by Kafka
// partition and hour, named by their offsets.
func (r *speedRig) land(events []schemas.Event) {
	r.t.Helper()
	byPart := map[int32][]schemas.Event{}
	for _, e := range events {
		byPart[e.Partition] = append(byPart[e.Partition], e)
	}
	for _, evs := range byPart {
		_, err := warehouse.AppendEvents(r.root, r.cat, evs, 0, warehouse.PartFileName)
		require.NoError(r.t, err)
	}
}

func (r *speedRig) recompute(cat *schemas.Catalog, cutoff schemas.Timestamp) {
	r.t.Helper()
	_, err := batch.Recompute(context.Background(), batch.Config{Root: r.root, Catalog: cat, Cutoff: cutoff})
	require.NoError(r.t, err)
}

func (r *speedRig) reconcile(cutoff schemas.Timestamp, repair bool) (*Report, error) {
	return Reconcile(context.Background(), ReconcileConfig{
		Catalog: r.cat, Root: r.root, Snapshot: cutoff, Speed: r.s, Causes: r.s, Repair: repair, Repairer: r.s,
		WriteJSON: true,
	})
}

// taobaoHistory reads the full history of 114 Taobao users, sorted by
// event time (the order a live stream would bring them in).
func taobaoHistory(t *testing.T, cat *schemas.Catalog) []schemas.Event {
	t.Helper()
	out, err := source.ReadEvents(cat, filepath.Join("..", "testdata", "taobao", "userbehavior-users-114.csv"), 0, 0)
	require.NoError(t, err)
	slices.SortStableFunc(out, func(a, b schemas.Event) int { return int(a.Time - b.Time) })
	return out
}

var (
	// taobaoCutoff is the snapshot of the Taobao tests: the start of the
	// sample's last day, within the speed layer's kept buckets.
	taobaoCutoff = ts("2017-12-03T00:00:00Z")
	// taobaoNow is the speed layer's clock: just after the newest event.
	taobaoNow = time.Date(2017, 12, 3, 16, 0, 0, 0, time.UTC)
)

func requireNoDrift(t *testing.T, rep *Report) {
	t.Helper()
	for _, tg := range rep.Tags {
		assert.Zero(t, tg.Different+tg.OnlyBatch+tg.OnlySpeed, "tag %s: %+v", tg.Tag, tg)
	}
	require.Zero(t, rep.Drifting, "drifting users %v; causes %+v", rep.DriftingSample, rep.Causes)
}

func TestReconcileSpeedAgrees(t *testing.T) {
	t.Run("taobao", func(t *testing.T) {
		cat := loadCat(t, "taobao")
		r := startSpeed(t, cat, taobaoNow)
		r.land(r.produce(taobaoHistory(t, cat)))
		r.recompute(cat, taobaoCutoff)
		rep, err := r.reconcile(taobaoCutoff, false)
		require.NoError(t, err)
		requireNoDrift(t, rep)
		require.Equal(t, 114, rep.Users)
		require.Empty(t, rep.Causes)
	})
	t.Run("ecommerce", func(t *testing.T) {
		cat := loadCat(t, "ecommerce")
		o := gen.Defaults(11)
		o.Events, o.Users = 2000, 40
		events := gen.Events(cat, o)
		var newest schemas.Timestamp
		for _, e := range events {
			newest = max(newest, e.Time)
		}
		cutoff := cat.BucketStart(newest) - 12*3_600_000
		r := startSpeed(t, cat, newest.Time().Add(time.Minute))
		r.land(r.produce(events))
		r.recompute(cat, cutoff)
		rep, err := r.reconcile(cutoff, false)
		require.NoError(t, err)
		requireNoDrift(t, rep)
		require.Equal(t, 40, rep.Users)
		assert.Positive(t, rep.Cause(CauseDuplicate).Events, "gen sends duplicates; both layers drop them alike")
		assert.Zero(t, rep.Cause(CauseDuplicate).Drifting)
	})
}

// driftThenRepair checks that rep finds exactly the users in want, all
// explained by cause, and that a repair brings the drift to 0 for good.
func driftThenRepair(t *testing.T, r *speedRig, cutoff schemas.Timestamp, cause string, want []string) {
	t.Helper()
	rep, err := r.reconcile(cutoff, false)
	require.NoError(t, err)
	require.Equal(t, len(want), rep.Drifting, "drifting %v, causes %+v", rep.DriftingSample, rep.Causes)
	require.Equal(t, want, rep.DriftingSample)
	c := rep.Cause(cause)
	assert.Equal(t, int64(len(want)), c.Drifting, "cause %s: %+v", cause, rep.Causes)
	assert.Equal(t, want, c.Sample)
	assert.Zero(t, rep.Cause(CauseUnexplained).Drifting, "causes %+v", rep.Causes)

	fixed, err := r.reconcile(cutoff, true)
	require.NoError(t, err)
	require.NotNil(t, fixed.Repaired)
	assert.Equal(t, len(want), fixed.Repaired.Users)
	assert.Empty(t, fixed.Repaired.LandingBehind, "every consumed record was landed")
	assert.Equal(t, len(want), fixed.Before.Drifting)
	requireNoDrift(t, fixed)

	again, err := r.reconcile(cutoff, false)
	require.NoError(t, err)
	requireNoDrift(t, again)
	assert.Zero(t, again.Cause(cause).Users, "a rebuilt user's marks are forgotten")
}

func TestReconcileLateEvents(t *testing.T) {
	cat := loadCat(t, "taobao")
	r := startSpeed(t, cat, taobaoNow)
	events := r.produce(taobaoHistory(t, cat))
	// A phone that was offline for ten days uploads an old buy: older than
	// the kept buckets (7d + 24h grace), the speed layer counts it late;
	// the landing writes it into its old hour and the batch takes it.
	user := events[len(events)-1].Values[cat.Key].(int64)
	old := ts("2017-11-23T10:30:00Z")
	late := r.produce([]schemas.Event{{Values: []any{user, int64(42), int64(4242), "buy", old}, Time: old}})
	r.land(append(events, late...))
	r.recompute(cat, taobaoCutoff)
	driftThenRepair(t, r, taobaoCutoff, CauseLate, []string{formatKey(user)})
}

func TestReconcileDeadLetters(t *testing.T) {
	cat := loadCat(t, "taobao")
	r := startSpeed(t, cat, taobaoNow)
	events := r.produce(taobaoHistory(t, cat))
	// A device whose clock runs 4h fast stamps two events in the future:
	// the speed layer dead-letters them (clock skew), while the same
	// records reach the warehouse through the device's file upload
	// (portrait import has no clock rule). Snapshot 12-04 counts them.
	ahead := ts("2017-12-03T19:30:00Z")
	u1, u2 := events[0].Values[cat.Key].(int64), events[len(events)-1].Values[cat.Key].(int64)
	skewed := r.produce([]schemas.Event{
		{Values: []any{u1, int64(7), int64(77), "pv", ahead}, Time: ahead},
		{Values: []any{u2, int64(8), int64(88), "cart", ahead + 1000}, Time: ahead + 1000},
	})
	r.land(append(events, skewed...))
	cutoff := ts("2017-12-04T00:00:00Z")
	r.recompute(cat, cutoff)
	want := []string{formatKey(min(u1, u2)), formatKey(max(u1, u2))}
	driftThenRepair(t, r, cutoff, CauseDLQ, want)
}

func TestReconcileDuplicateIDs(t *testing.T) {
	cat := loadCat(t, "ecommerce")
	o := gen.Defaults(3)
	o.Events, o.Users, o.DupRate, o.Disorder = 1500, 30, 0, 0
	events := gen.Events(cat, o)
	newest := events[len(events)-1].Time
	cutoff := cat.BucketStart(newest) + 3_600_000
	r := startSpeed(t, cat, newest.Time().Add(time.Minute))
	events = r.produce(events)
	// A client retries the user's last event with the time its own clock
	// stamped, two days earlier, after the server's copy went through:
	// same event id. The speed layer keeps the copy that came first; the
	// batch keeps the earliest by event time, so events_24h differs.
	dup := slices.Clone(events[len(events)-1].Values)
	dup[cat.Time] = newest - 2*day
	copyEvent := r.produce([]schemas.Event{{Values: dup, Time: newest - 2*day}})
	r.land(append(events, copyEvent...))
	r.recompute(cat, cutoff)
	driftThenRepair(t, r, cutoff, CauseDuplicate, []string{formatKey(dup[cat.Key].(int64))})
}

func TestReconcileCatalogChangeOnSpeed(t *testing.T) {
	old := loadCat(t, "taobao")
	src, err := os.ReadFile(filepath.Join("..", "schemas", "catalogs", "taobao.yaml"))
	require.NoError(t, err)
	changed := strings.Replace(string(src), `pv_24h:          {agg: count, where: 'behavior == "pv"', window: 24h}`,
		`pv_24h:          {agg: count, where: 'behavior == "pv" || behavior == "fav"', window: 24h}`, 1)
	require.NotEqual(t, string(src), changed)
	path := filepath.Join(t.TempDir(), "taobao.yaml")
	require.NoError(t, os.WriteFile(path, []byte(changed), 0o644))
	cat, err := schemas.Load(path)
	require.NoError(t, err)
	require.NotEqual(t, old.Hash, cat.Hash)

	// The speed layer follows the new catalog; the snapshot is the old one's.
	r := startSpeed(t, cat, taobaoNow)
	r.land(r.produce(taobaoHistory(t, cat)))
	r.recompute(old, taobaoCutoff)
	rep, err := r.reconcile(taobaoCutoff, false)
	require.NoError(t, err)
	require.Positive(t, rep.Drifting)
	c := rep.Cause(CauseCatalog)
	assert.Equal(t, int64(rep.Drifting), c.Drifting)
	assert.Contains(t, c.Detail, old.Hash)
	assert.Zero(t, rep.Cause(CauseUnexplained).Drifting)
	for _, tg := range rep.Tags {
		if tg.Tag != "pv_24h" && tg.Tag != "window_shopper" {
			assert.Zero(t, tg.Different, "only the changed tag and the rule over it drift: %s", tg.Tag)
		}
	}
	_, err = r.reconcile(taobaoCutoff, true)
	require.ErrorIs(t, err, ErrNotComparable, "rebuilding users cannot undo a catalog change")

	_, _, err = r.s.Rebase(context.Background(), r.root)
	require.ErrorIs(t, err, stream.ErrSnapshotUnusable, "lifetime tags cannot rest on another catalog's snapshot")
	_, rebased := r.s.Rebased()
	require.False(t, rebased)

	// The remedy is a recompute with the catalog the speed layer follows.
	r.recompute(cat, taobaoCutoff)
	rep, err = r.reconcile(taobaoCutoff, false)
	require.NoError(t, err)
	requireNoDrift(t, rep)
}

// TestMergedLookupsAcrossRebase checks the live lookups against the
// reference evaluator before any snapshot, after a rebase on a first
// snapshot, and after a rebase on a newer one.
// TestRebaseOnOldStateFormat: a snapshot whose lifetime state is in the
// format before the wide one is not a base; the speed layer says so and
// keeps its own state until a recompute writes the current format.
func TestRebaseOnOldStateFormat(t *testing.T) {
	cat := loadCat(t, "taobao")
	r := startSpeed(t, cat, taobaoNow)
	r.land(r.produce(taobaoHistory(t, cat)))
	r.recompute(cat, taobaoCutoff)
	dir := warehouse.SnapshotDir(r.root, taobaoCutoff)
	m, ok, err := warehouse.ReadMarker(dir)
	require.NoError(t, err)
	require.True(t, ok)
	delete(m.Extra, "state_format") // as written before the wide state
	require.NoError(t, warehouse.WriteMarker(dir, m))

	_, _, err = r.s.Rebase(context.Background(), r.root)
	require.ErrorIs(t, err, stream.ErrSnapshotUnusable)
	require.ErrorIs(t, err, batch.ErrOldState)
	_, rebased := r.s.Rebased()
	require.False(t, rebased)

	r.recompute(cat, taobaoCutoff)
	_, _, err = r.s.Rebase(context.Background(), r.root)
	require.NoError(t, err)
	_, rebased = r.s.Rebased()
	require.True(t, rebased)
}

func TestMergedLookupsAcrossRebase(t *testing.T) {
	cat := loadCat(t, "taobao")
	r := startSpeed(t, cat, taobaoNow)
	all := taobaoHistory(t, cat)
	c1 := ts("2017-12-02T00:00:00Z")
	split := 0
	for split < len(all) && all[split].Time < c1+6*3_600_000 {
		split++
	}
	check := func(stage string, events []schemas.Event) {
		t.Helper()
		want := reference.Evaluate(cat, events, r.s.AsOf())
		require.NotEmpty(t, want)
		got := make([]schemas.Profile, 0, len(want))
		for _, p := range want {
			sp, ok := r.s.Lookup(p.Key)
			require.True(t, ok, "%s: user %v not found", stage, p.Key)
			got = append(got, sp)
		}
		require.Empty(t, reference.Diff(cat, want, got, 10), stage)
		_, found := r.s.Lookup(int64(1)) // not a user
		require.False(t, found)
	}

	first := r.produce(all[:split])
	check("no snapshot", r.events)
	_, ok := r.s.Rebased()
	require.False(t, ok)

	r.land(first)
	r.recompute(cat, c1)
	c, changed, err := r.s.Rebase(context.Background(), r.root)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, c1, c)
	check("rebased on the first snapshot", r.events)
	got, ok := r.s.Rebased()
	require.True(t, ok)
	require.Equal(t, c1, got)

	rest := r.produce(all[split:])
	check("events after the first snapshot", r.events)
	// An event older than the kept buckets: the speed layer drops it, the
	// warehouse has it, so the next snapshot's base brings it in.
	user := rest[0].Values[cat.Key].(int64)
	old := ts("2017-11-20T08:00:00Z")
	before := slices.Clone(r.events)
	late := r.produce([]schemas.Event{{Values: []any{user, int64(5), int64(55), "buy", old}, Time: old}})
	check("a late event is left to the batch layer", before)
	r.land(append(rest, late...))
	r.recompute(cat, taobaoCutoff)
	c, changed, err = r.s.Rebase(context.Background(), r.root)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, taobaoCutoff, c)
	check("rebased on the second snapshot, with the late event", r.events)
	_, changed, err = r.s.Rebase(context.Background(), r.root)
	require.NoError(t, err)
	require.False(t, changed, "the same snapshot again changes nothing")
	// A recompute of the same cutoff replaces the snapshot: the base follows.
	r.recompute(cat, taobaoCutoff)
	_, changed, err = r.s.Rebase(context.Background(), r.root)
	require.NoError(t, err)
	require.True(t, changed, "a re-written snapshot of the same cutoff is a new base")
	check("rebased on the re-written snapshot", r.events)

	rep, err := r.reconcile(taobaoCutoff, false)
	require.NoError(t, err)
	requireNoDrift(t, rep)
	require.Equal(t, taobaoCutoff.String(), rep.SpeedSnapshot)

	// The rebased state survives a restart (read back without Kafka).
	asOf := r.s.AsOf()
	want := reference.Evaluate(cat, r.events, asOf)
	r.stop()
	s, err := stream.OpenState(stream.Config{Catalog: cat, StateDir: r.state}, nil)
	require.NoError(t, err)
	defer s.Close()
	restarted, err := s.ProfilesAsOf(asOf)
	require.NoError(t, err)
	require.Empty(t, reference.Diff(cat, want, restarted, 10))
	// So do the drift marks, written with the checkpoints.
	marks := map[string]int64{}
	s.DriftMarks(asOf, func(cause string, key any, events int64) {
		marks[cause+" "+formatKey(key.(int64))] += events
	})
	require.Equal(t, map[string]int64{"late " + formatKey(user): 1}, marks)
}

func formatKey(k int64) string { return strconv.FormatInt(k, 10) }
