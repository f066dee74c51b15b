package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
	"github.com/portrait-dev/portrait/warehouse"
)

// referenceView is a SpeedView computed by the reference evaluator over
// a slice of events: the values the speed layer must agree with.
type referenceView struct {
	cat    *schemas.Catalog
	events []schemas.Event
	hash   string
	marks  []mark
}

type mark struct {
	cause  string
	key    any
	events int64
}

func (v *referenceView) ProfilesAsOf(asOf schemas.Timestamp) ([]schemas.Profile, error) {
	return reference.Evaluate(v.cat, v.events, asOf), nil
}
func (v *referenceView) CatalogHash() string {
	if v.hash != "" {
		return v.hash
	}
	return v.cat.Hash
}
func (v *referenceView) Watermark() schemas.Timestamp {
	var wm schemas.Timestamp
	for _, e := range v.events {
		wm = max(wm, e.Time)
	}
	return wm
}
func (v *referenceView) DriftMarks(_ schemas.Timestamp, fn func(string, any, int64)) {
	for _, m := range v.marks {
		fn(m.cause, m.key, m.events)
	}
}

func loadCat(t *testing.T, name string) *schemas.Catalog {
	t.Helper()
	return schemas.MustLoad(filepath.Join("..", "schemas", "catalogs", name+".yaml"))
}

// landAndRecompute writes events to a fresh warehouse, one file per
// partition and hour, and recomputes the snapshot of cutoff.
func landAndRecompute(t *testing.T, cat *schemas.Catalog, events []schemas.Event, cutoff schemas.Timestamp) string {
	t.Helper()
	root := t.TempDir()
	byPart := map[int32][]schemas.Event{}
	for _, e := range events {
		byPart[e.Partition] = append(byPart[e.Partition], e)
	}
	for _, evs := range byPart {
		_, err := warehouse.AppendEvents(root, cat, evs, 0, warehouse.PartFileName)
		require.NoError(t, err)
	}
	_, err := batch.Recompute(context.Background(), batch.Config{Root: root, Catalog: cat, Cutoff: cutoff})
	require.NoError(t, err)
	return root
}

func genEvents(cat *schemas.Catalog, cutoff schemas.Timestamp) []schemas.Event {
	o := gen.Defaults(7)
	o.Events, o.Users, o.Partitions = 1500, 30, 2
	o.Span = 4 * 86_400_000
	o.Edges = []schemas.Timestamp{cutoff}
	for _, tag := range cat.Tags {
		if tag.Window > 0 {
			o.Edges = append(o.Edges, cutoff-schemas.Timestamp(tag.Window))
		}
	}
	return gen.Events(cat, o)
}

const day = 86_400_000

func TestReconcileAgreesOnSameEvents(t *testing.T) {
	for _, name := range []string{"taobao", "ecommerce"} {
		t.Run(name, func(t *testing.T) {
			cat := loadCat(t, name)
			cutoff := gen.Defaults(0).Start + 3*day
			events := genEvents(cat, cutoff)
			root := landAndRecompute(t, cat, events, cutoff)
			rep, err := Reconcile(context.Background(), ReconcileConfig{
				Catalog: cat, Root: root, Speed: &referenceView{cat: cat, events: events},
			})
			require.NoError(t, err)
			assert.Equal(t, cutoff, rep.Snapshot, "0 takes the newest snapshot")
			assert.Zero(t, rep.Different())
			assert.Zero(t, rep.Drifting)
			assert.Empty(t, rep.Causes)
			require.NotZero(t, rep.BatchUsers)
			assert.Equal(t, rep.BatchUsers, rep.SpeedUsers)
			for _, tg := range rep.Tags {
				assert.EqualValues(t, rep.Users, tg.Compared, tg.Tag)
				assert.Equal(t, tg.Compared, tg.Equal, tg.Tag)
				assert.Zero(t, tg.MaxAbsError, tg.Tag)
			}
		})
	}
}

// driftFixture is a taobao warehouse and a speed view that differs from
// it in known ways.
type driftFixture struct {
	cat    *schemas.Catalog
	root   string
	cutoff schemas.Timestamp
	view   *referenceView
}

func newDriftFixture(t *testing.T) driftFixture {
	cat := loadCat(t, "taobao")
	start := gen.Defaults(0).Start
	cutoff := start + 2*day
	ev := func(user, item, cat_ int64, behavior string, at schemas.Timestamp, off int64) schemas.Event {
		return schemas.Event{Values: []any{user, item, cat_, behavior, at}, Time: at, Partition: 0, Offset: off}
	}
	events := []schemas.Event{
		ev(1, 10, 100, "pv", start+day+1000, 0),
		ev(1, 11, 100, "buy", start+day+2000, 1),
		ev(2, 12, 200, "pv", start+day+3000, 2),
		ev(3, 13, 300, "pv", start+day+4000, 3),
		ev(3, 14, 300, "pv", start+day+5000, 4),
	}
	root := landAndRecompute(t, cat, events, cutoff)
	// The speed view: user 1 missed a pv (pv_24h 1 → 0 ... counted as
	// late), user 2 is missing, user 4 exists only in speed.
	speed := []schemas.Event{events[1], events[3], events[4], ev(4, 15, 400, "pv", start+day+6000, 5)}
	return driftFixture{cat: cat, root: root, cutoff: cutoff, view: &referenceView{cat: cat, events: speed,
		marks: []mark{{CauseLate, int64(1), 1}, {CauseDuplicate, int64(3), 2}}}}
}

func TestReconcileCountsDriftAndCauses(t *testing.T) {
	f := newDriftFixture(t)
	reg := prometheus.NewRegistry()
	m := NewDriftMetrics(reg, f.cat)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rep, err := Reconcile(context.Background(), ReconcileConfig{
		Catalog: f.cat, Root: f.root, Snapshot: f.cutoff, Speed: f.view, Causes: f.view,
		Metrics: m, WriteJSON: true, Now: func() time.Time { return now },
	})
	require.NoError(t, err)
	assert.Equal(t, 3, rep.BatchUsers)
	assert.Equal(t, 3, rep.SpeedUsers)
	assert.Equal(t, 4, rep.Users)
	assert.Equal(t, 3, rep.Drifting)
	assert.Equal(t, []string{"1", "2", "4"}, rep.DriftingSample)

	byTag := map[string]TagDrift{}
	for _, tg := range rep.Tags {
		byTag[tg.Tag] = tg
		assert.EqualValues(t, 1, tg.OnlyBatch, tg.Tag)
		assert.EqualValues(t, 1, tg.OnlySpeed, tg.Tag)
		assert.EqualValues(t, 2, tg.Compared, tg.Tag)
	}
	pv := byTag["pv_24h"]
	assert.EqualValues(t, 1, pv.Different)
	assert.Equal(t, []string{"1", "2", "4"}, pv.Sample)
	assert.InDelta(t, 1.0, pv.MaxAbsError, 0)
	assert.InDelta(t, 0.5, pv.MeanAbsError, 0, "one error of 1 over two compared users")
	first := byTag["first_seen"]
	assert.EqualValues(t, 1, first.Different, "user 1's first event is gone")
	assert.False(t, first.Numeric, "timestamps count differences only")

	late, dup := rep.Cause(CauseLate), rep.Cause(CauseDuplicate)
	assert.Equal(t, CauseCount{Cause: CauseLate, Events: 1, Users: 1, Drifting: 1, Sample: []string{"1"}}, late)
	assert.Equal(t, CauseCount{Cause: CauseDuplicate, Events: 2, Users: 1, Drifting: 0, Sample: []string{}}, dup,
		"user 3 had duplicates but does not drift")
	assert.EqualValues(t, 2, rep.Cause(CauseUnexplained).Drifting)
	assert.Equal(t, []string{"2", "4"}, rep.Cause(CauseUnexplained).Sample)
	assert.Zero(t, rep.Cause(CauseCatalog).Drifting)

	// Gauges.
	assert.InDelta(t, 1, gaugeValue(t, m.values.WithLabelValues("pv_24h", KindDifferent)), 0)
	assert.InDelta(t, 4, gaugeValue(t, m.values.WithLabelValues("pv_24h", KindCompared)), 0, "users in either view")
	assert.InDelta(t, 1, gaugeValue(t, m.values.WithLabelValues("buys_7d", KindOnlySpeed)), 0)

	// The JSON beside the snapshot, and the table: golden files.
	written, err := os.ReadFile(filepath.Join(warehouse.SnapshotDir(f.root, f.cutoff), ReconcileFile))
	require.NoError(t, err)
	var table bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	golden(t, "reconcile_drift.json", written)
	golden(t, "reconcile_drift.txt", table.Bytes())
	snaps, err := warehouse.ListSnapshots(f.root)
	require.NoError(t, err)
	require.Len(t, snaps, 1, "the report file is not a snapshot")
	_, err = batch.ReadSnapshot(f.root, f.cat, f.cutoff)
	require.NoError(t, err, "profile readers skip the report")
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create %s", path)
	assert.Equal(t, string(want), string(got))
}

func TestReconcileCatalogChange(t *testing.T) {
	f := newDriftFixture(t)
	f.view.hash = "other-catalog"
	rep, err := Reconcile(context.Background(), ReconcileConfig{
		Catalog: f.cat, Root: f.root, Snapshot: f.cutoff, Speed: f.view, Causes: f.view,
	})
	require.NoError(t, err)
	c := rep.Cause(CauseCatalog)
	assert.EqualValues(t, 3, c.Drifting)
	assert.Contains(t, c.Detail, "other-catalog")
	assert.Zero(t, rep.Cause(CauseUnexplained).Drifting, "a catalog change explains every drifting user")

	_, err = Reconcile(context.Background(), ReconcileConfig{
		Catalog: f.cat, Root: f.root, Snapshot: f.cutoff, Speed: f.view, Repair: true, Repairer: noRepair{},
	})
	require.ErrorIs(t, err, ErrNotComparable, "a repair cannot undo a catalog change")
}

type noRepair struct{}

func (noRepair) KeepFrom() schemas.Timestamp { return 0 }
func (noRepair) RebuildUsers(context.Context, string, schemas.Timestamp, map[any][]schemas.Event) (int, error) {
	panic("not reached")
}

func TestReconcileConfigErrors(t *testing.T) {
	cat := loadCat(t, "taobao")
	view := &referenceView{cat: cat}
	for _, tc := range []struct {
		name string
		cfg  ReconcileConfig
		want string
	}{
		{"no catalog", ReconcileConfig{Root: "x", Speed: view}, "reconcile: catalog is required"},
		{"no root", ReconcileConfig{Catalog: cat, Speed: view}, "reconcile: warehouse root is required"},
		{"no speed", ReconcileConfig{Catalog: cat, Root: "x"}, "reconcile: speed view is required"},
		{"repair without repairer", ReconcileConfig{Catalog: cat, Root: "x", Speed: view, Repair: true},
			"reconcile: repair needs a speed layer that can rebuild users"},
		{"off boundary", ReconcileConfig{Catalog: cat, Root: "x", Speed: view, Snapshot: 1000},
			"reconcile: snapshot 1970-01-01T00:00:01Z is not a bucket boundary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Reconcile(context.Background(), tc.cfg)
			require.EqualError(t, err, tc.want)
		})
	}
	_, err := Reconcile(context.Background(), ReconcileConfig{Catalog: cat, Root: t.TempDir(), Speed: view})
	require.ErrorIs(t, err, batch.ErrNoSnapshot)
}

// adminSpeed adds a repairer to the reference view.
type adminSpeed struct {
	*referenceView
	noRepair
}

func TestAdminReconcile(t *testing.T) {
	f := newDriftFixture(t)
	h, err := NewAdminHandler(AdminConfig{Token: "s3cret", Catalog: f.cat, Root: f.root, Speed: adminSpeed{referenceView: f.view}})
	require.NoError(t, err)
	srv := httptest.NewServer(WithAdmin(http.NotFoundHandler(), h))
	defer srv.Close()
	ctx := context.Background()

	rep, err := RequestReconcile(ctx, srv.Client(), srv.URL, "s3cret", "latest", false)
	require.NoError(t, err)
	assert.Equal(t, f.cutoff, rep.Snapshot)
	assert.Equal(t, 3, rep.Drifting)
	assert.EqualValues(t, 1, rep.Cause(CauseLate).Drifting)
	_, err = os.Stat(filepath.Join(warehouse.SnapshotDir(f.root, f.cutoff), ReconcileFile))
	require.NoError(t, err, "the endpoint writes the report beside the snapshot")

	for _, tc := range []struct {
		name, token, snapshot string
		want                  string
	}{
		{"no token", "", "latest", "401 Unauthorized: missing or wrong bearer token"},
		{"bad token", "nope", "latest", "401 Unauthorized: missing or wrong bearer token"},
		{"bad snapshot", "s3cret", "yesterday", `400 Bad Request: snapshot: "yesterday" is neither latest, RFC 3339 nor unix seconds`},
		{"unknown snapshot", "s3cret", "3600", "404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RequestReconcile(ctx, srv.Client(), srv.URL, tc.token, tc.snapshot, false)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	resp, err := srv.Client().Get(srv.URL + "/v1/profiles/1")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "other paths go to the lookup handler")

	_, err = NewAdminHandler(AdminConfig{Catalog: f.cat, Root: f.root, Speed: adminSpeed{referenceView: f.view}})
	require.EqualError(t, err, "admin: a token is required")
}

func TestInsertTagDrift(t *testing.T) {
	ch := chtest.Open(t)
	f := newDriftFixture(t)
	ctx := context.Background()
	cfg := ReconcileConfig{Catalog: f.cat, Root: f.root, Snapshot: f.cutoff, Speed: f.view, Causes: f.view, ClickHouse: ch,
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
	rep, err := Reconcile(ctx, cfg)
	require.NoError(t, err)
	rows, err := ch.Conn().Query(ctx, "SELECT tag, users_compared, different, only_batch, only_speed, max_abs_error, sample, causes, toUnixTimestamp(snapshot) FROM tag_drift ORDER BY tag")
	require.NoError(t, err)
	defer rows.Close()
	got := map[string][]any{}
	for rows.Next() {
		var (
			tag, sample, causes          string
			compared, diff, onlyB, onlyS int64
			maxErr                       float64
			snap                         uint32
		)
		require.NoError(t, rows.Scan(&tag, &compared, &diff, &onlyB, &onlyS, &maxErr, &sample, &causes, &snap))
		got[tag] = []any{compared, diff, onlyB, onlyS, maxErr, sample, int64(snap) * 1000}
		var cs []CauseCount
		require.NoError(t, json.Unmarshal([]byte(causes), &cs))
		require.Equal(t, rep.Causes, cs)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, len(f.cat.Tags))
	assert.Equal(t, []any{int64(2), int64(1), int64(1), int64(1), 1.0, "1,2,4", int64(f.cutoff)}, got["pv_24h"])
	assert.True(t, strings.HasPrefix(got["buys_7d"][5].(string), "2,4"))
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, g.Write(&m))
	return m.GetGauge().GetValue()
}

func TestLandingBehind(t *testing.T) {
	files := []string{"/w/dt=x/hour=00/part-0-0-99.parquet", "/w/dt=x/hour=01/part-0-100-149.parquet",
		"/w/dt=x/hour=01/part-1-0-9.parquet", "/w/dt=x/hour=01/compacted-3.parquet"}
	for _, tc := range []struct {
		name string
		pos  map[int32]int64
		want map[int32]int64
	}{
		{"caught up", map[int32]int64{0: 150, 1: 10}, nil},
		{"landing ahead", map[int32]int64{0: 120, 1: 5}, nil},
		{"behind", map[int32]int64{0: 160, 1: 10, 2: 3}, map[int32]int64{0: 150, 2: 0}},
		{"nothing consumed", map[int32]int64{2: -1, 3: 0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, landingBehind(files, tc.pos))
		})
	}
}
