package batch

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
	"github.com/portrait-dev/portrait/warehouse"
)

func loadCatalog(t *testing.T, name string) *schemas.Catalog {
	t.Helper()
	return schemas.MustLoad(filepath.Join("..", "schemas", "catalogs", name+".yaml"))
}

// writeEvents lands events in the warehouse: one file per partition and
// hour, each hour closed with _SUCCESS.
func writeEvents(t *testing.T, root string, cat *schemas.Catalog, events []schemas.Event, tag string) {
	t.Helper()
	byPart := map[int32][]schemas.Event{}
	for _, e := range events {
		byPart[e.Partition] = append(byPart[e.Partition], e)
	}
	for p, evs := range byPart {
		_, err := warehouse.AppendEvents(root, cat, evs, 0, func(h schemas.Timestamp, evs []schemas.Event) string {
			return tag + "-" + warehouse.PartFileName(h, evs)
		})
		require.NoError(t, err, "partition %d", p)
	}
}

func genEvents(cat *schemas.Catalog, seed uint64, edges ...schemas.Timestamp) []schemas.Event {
	o := gen.Defaults(seed)
	o.Events = 3000
	// Few hours and partitions: every file written is fsynced.
	o.Span, o.Partitions = 4*86_400_000, 2
	for _, c := range edges {
		o.Edges = append(o.Edges, c)
		for _, tag := range cat.Tags {
			if tag.Window > 0 {
				o.Edges = append(o.Edges, c-schemas.Timestamp(tag.Window))
			}
		}
	}
	return gen.Events(cat, o)
}

func TestRecomputeWithBase(t *testing.T) {
	start := gen.Defaults(0).Start
	c0, c1 := start+2*86_400_000, start+3*86_400_000+12*3_600_000
	for _, name := range []string{"taobao", "ecommerce"} {
		t.Run(name, func(t *testing.T) {
			cat := loadCatalog(t, name)
			root := t.TempDir()
			events := genEvents(cat, 5, c0, c1)
			writeEvents(t, root, cat, events, "a")
			ctx := context.Background()

			st0, err := Recompute(ctx, Config{Root: root, Catalog: cat, Cutoff: c0})
			require.NoError(t, err)
			require.Nil(t, st0.Base)
			got0, err := ReadSnapshot(root, cat, c0)
			require.NoError(t, err)
			require.Empty(t, reference.Diff(cat, reference.Evaluate(cat, events, c0), got0, 10))
			require.Equal(t, len(got0), st0.Users)

			st1, err := Recompute(ctx, Config{Root: root, Catalog: cat, Cutoff: c1})
			require.NoError(t, err)
			require.NotNil(t, st1.Base, "full reason: %s", st1.FullReason)
			require.Equal(t, c0, *st1.Base)
			require.Less(t, st1.Events, int64(len(events)), "the base run reads only hours from C₀ on")
			incremental, err := ReadSnapshot(root, cat, c1)
			require.NoError(t, err)

			stFull, err := Recompute(ctx, Config{Root: root, Catalog: cat, Cutoff: c1, Full: true})
			require.NoError(t, err)
			require.Nil(t, stFull.Base)
			require.Greater(t, stFull.Events, st1.Events)
			full, err := ReadSnapshot(root, cat, c1)
			require.NoError(t, err)
			require.Empty(t, reference.Diff(cat, full, incremental, 10))
			require.Empty(t, reference.Diff(cat, reference.Evaluate(cat, events, c1), full, 10))
		})
	}
}

func TestRecomputeChangedHourForcesFull(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	start := gen.Defaults(0).Start
	c0, c1 := start+2*86_400_000, start+3*86_400_000+12*3_600_000
	root := t.TempDir()
	events := genEvents(cat, 9, c0, c1)
	writeEvents(t, root, cat, events, "a")
	ctx := context.Background()
	_, err := Recompute(ctx, Config{Root: root, Catalog: cat, Cutoff: c0})
	require.NoError(t, err)

	// A straggler lands in an hour before C₀ after the snapshot was made.
	late := schemas.Event{Values: []any{int64(424242), int64(1), int64(2), "buy", start + 3_600_000}, Time: start + 3_600_000, Partition: 0, Offset: 1 << 40}
	writeEvents(t, root, cat, []schemas.Event{late}, "late")
	events = append(events, late)

	st, err := Recompute(ctx, Config{Root: root, Catalog: cat, Cutoff: c1})
	require.NoError(t, err)
	require.Nil(t, st.Base)
	require.Contains(t, st.FullReason, "changed")
	got, err := ReadSnapshot(root, cat, c1)
	require.NoError(t, err)
	require.Empty(t, reference.Diff(cat, reference.Evaluate(cat, events, c1), got, 10))
}

func TestRecomputeRejectsBadConfig(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	start := gen.Defaults(0).Start
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"not a boundary", Config{Root: "x", Catalog: cat, Cutoff: start + 1}, "recompute: cutoff 2017-11-25T00:00:00.001Z is not a bucket boundary (bucket 1h0m0s); try 2017-11-25T00:00:00Z"},
		{"no root", Config{Catalog: cat, Cutoff: start}, "recompute: root: the warehouse folder is required"},
		{"bad engine", Config{Root: "x", Catalog: cat, Cutoff: start, Engine: "spark"}, `recompute: engine "spark": want local or clickhouse`},
		{"clickhouse without connection", Config{Root: "x", Catalog: cat, Cutoff: start, Engine: EngineClickHouse}, "recompute: engine clickhouse needs a ClickHouse connection"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Recompute(context.Background(), tc.cfg)
			require.EqualError(t, err, tc.want)
		})
	}
}

type fakeSQL struct{ profiles []schemas.Profile }

func (f fakeSQL) Compute(context.Context, *schemas.Catalog, schemas.Timestamp) ([]schemas.Profile, error) {
	return f.profiles, nil
}

type recordingPublisher struct {
	got  map[schemas.Timestamp]int
	last []schemas.Profile
}

func (r *recordingPublisher) Publish(_ context.Context, _ *schemas.Catalog, c schemas.Timestamp, ps []schemas.Profile) error {
	r.got[c] = len(ps)
	r.last = ps
	return nil
}

func TestRecomputeSQLEngineAndPublisher(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	start := gen.Defaults(0).Start
	events := genEvents(cat, 3)
	want := reference.Evaluate(cat, events, start+86_400_000)
	pub := &recordingPublisher{got: map[schemas.Timestamp]int{}}
	root := t.TempDir()
	st, err := Recompute(context.Background(), Config{Root: root, Catalog: cat, Cutoff: start + 86_400_000,
		Engine: EngineClickHouse, SQL: fakeSQL{want}, Publisher: pub})
	require.NoError(t, err)
	require.Equal(t, len(want), st.Users)
	require.Equal(t, map[schemas.Timestamp]int{start + 86_400_000: len(want)}, pub.got)
	got, err := ReadSnapshot(root, cat, start+86_400_000)
	require.NoError(t, err)
	require.Empty(t, reference.Diff(cat, want, got, 10))
	info, err := ReadSnapshotInfo(root, start+86_400_000)
	require.NoError(t, err)
	require.False(t, info.State)
	require.Equal(t, EngineClickHouse, info.Engine)

	// Values of the wrong type fail the recompute before anything is written.
	bad := slices.Clone(want)
	bad[1].Values = slices.Clone(bad[1].Values)
	bad[1].Values[0] = "many"
	_, err = Recompute(context.Background(), Config{Root: root, Catalog: cat, Cutoff: start + 2*86_400_000,
		Engine: EngineClickHouse, SQL: fakeSQL{bad}})
	require.ErrorContains(t, err, "recompute 2017-11-27T00:00:00Z on clickhouse: profile "+fmt.Sprint(bad[1].Key)+": tag pv_24h: value many is string, want int64")
}

// TestLocalEngineOnTaobaoSamples runs the whole recompute over the real
// Taobao samples landed in a warehouse.
func TestRecomputeTaobaoSamples(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "taobao", "*.csv"))
	if len(files) == 0 {
		t.Fatal("no Taobao samples in testdata/taobao")
	}
	sort.Strings(files)
	events := readCSVEvents(t, cat, files[len(files)-1])
	root := t.TempDir()
	writeEvents(t, root, cat, events, "tb")
	var maxT schemas.Timestamp
	for _, e := range events {
		maxT = max(maxT, e.Time)
	}
	c := cat.BucketStart(maxT)
	pub := &recordingPublisher{got: map[schemas.Timestamp]int{}}
	_, err := Recompute(context.Background(), Config{Root: root, Catalog: cat, Cutoff: c, Publisher: pub})
	require.NoError(t, err)
	got, err := ReadSnapshot(root, cat, c)
	require.NoError(t, err)
	want := reference.Evaluate(cat, events, c)
	require.NotEmpty(t, want)
	require.Empty(t, reference.Diff(cat, want, got, 10), fmt.Sprintf("file %s", files[len(files)-1]))
	// The publisher gets the same profiles, boxed from the engine's columns.
	require.Empty(t, reference.Diff(cat, want, pub.last, 10))
}

// TestKeyHints: the key range and row count read from the events files'
// footers are those of the events; a file without them gives no hint.
func TestKeyHints(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	root := t.TempDir()
	events := genEvents(cat, 3)
	writeEvents(t, root, cat, events, "a")
	files, err := warehouse.AllEventFiles(root)
	require.NoError(t, err)
	lo, hi := events[0].Values[cat.Key].(int64), events[0].Values[cat.Key].(int64)
	for _, e := range events {
		k := e.Values[cat.Key].(int64)
		lo, hi = min(lo, k), max(hi, k)
	}
	h := keyHints(cat, files)
	require.True(t, h.KeyRange)
	require.Equal(t, lo, h.KeyMin)
	require.Equal(t, hi, h.KeyMax)
	require.Equal(t, int64(len(events)), h.Rows)

	require.False(t, keyHints(cat, append(files, filepath.Join(root, "missing.parquet"))).KeyRange)
}
