package local

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch/internal/eventrec"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
)

// kindsCatalog uses every aggregate over every field type it accepts, a
// string key, an int64 id and filters with every operator.
const kindsCatalog = `
name: kinds
events:
  key: user
  time: ts
  id: eid
  fields:
    user: string
    eid: int64
    ts: timestamp
    kind: {type: string, enum: [a, b, c]}
    n: int64
    x: float64
    s: string
    flag: bool
    at: timestamp
bucket: 1h
tags:
  c_all_2h:    {agg: count, window: 2h}
  c_life:      {agg: count, where: 'kind == "a" || flag'}
  sum_n_24h:   {agg: sum, of: n, where: 'n > -1 && !(kind in ["c"])', window: 24h}
  sum_x_life:  {agg: sum, of: x, where: 'x * 2 >= 1 || n + 1 == 0'}
  avg_n_3h:    {agg: avg, of: n, window: 3h}
  avg_x_life:  {agg: avg, of: x}
  min_n:       {agg: min, of: n, where: 'n != 0', window: 24h}
  max_x:       {agg: max, of: x, window: 1h}
  min_s_life:  {agg: min, of: s, where: 's startsWith "a" || s endsWith "z" || s contains "B"'}
  max_s_24h:   {agg: max, of: s, window: 24h}
  min_at_life: {agg: min, of: at}
  max_at_2h:   {agg: max, of: at, where: 'at - ts < 0', window: 2h}
  # Min and max of one field and selection share one accumulator.
  max_n:       {agg: max, of: n, where: 'n != 0', window: 24h}
  min_x:       {agg: min, of: x, window: 1h}
  max_at_life: {agg: max, of: at}
  first_s:     {agg: first, of: s}
  first_flag:  {agg: first, of: flag, window: 3h}
  last_x_24h:  {agg: last, of: x, window: 24h}
  last_n:      {agg: last, of: n, where: 'n / 2 > 0.4'}
  last_at:     {agg: last, of: at, where: 'flag == false', window: 2h}
  first_ts:    {agg: first, of: ts}
  cd_s_24h:    {agg: count_distinct, of: s, window: 24h}
  cd_n_life:   {agg: count_distinct, of: n}
  cd_x_2h:     {agg: count_distinct, of: x, window: 2h}
  cd_flag:     {agg: count_distinct, of: flag, window: 1h}
  cd_at:       {agg: count_distinct, of: at}
  mode_s_24h:  {agg: mode, of: s, window: 24h}
  mode_n_life: {agg: mode, of: n, where: 'kind != "b"'}
  mode_x_3h:   {agg: mode, of: x, window: 3h}
  mode_flag:   {agg: mode, of: flag}
  mode_kind:   {agg: mode, of: kind, where: 'ts >= 0 && -n < 3', window: 1h}
  r1:          {rule: 'c_all_2h > 2 && (max_x == nil || max_x > 10.0)'}
  r2:          {rule: 'r1 || avg_x_life / 2 > 10 && mode_s_24h != "a"'}
`

// windowedCatalog has no lifetime tag: only users with an event in the
// longest window get a profile.
const windowedCatalog = `
name: windowed
events:
  key: user_id
  time: ts
  fields:
    user_id: int64
    ts: timestamp
    item: int64
    what: {type: string, enum: [pv, buy]}
bucket: 1h
tags:
  pv_1h:    {agg: count, where: 'what == "pv"', window: 1h}
  items_2h: {agg: count_distinct, of: item, window: 2h}
  top_3h:   {agg: mode, of: item, window: 3h}
  last_2h:  {agg: last, of: item, window: 2h}
`

func testCatalogs(t *testing.T) map[string]*schemas.Catalog {
	t.Helper()
	out := map[string]*schemas.Catalog{}
	for _, name := range []string{"ecommerce", "taobao"} {
		out[name] = schemas.MustLoad(filepath.Join("..", "..", "schemas", "catalogs", name+".yaml"))
	}
	for name, src := range map[string]string{"kinds": kindsCatalog, "windowed": windowedCatalog} {
		c, err := schemas.Parse([]byte(src))
		require.NoError(t, err, name)
		out[name] = c
	}
	return out
}

func hour(s string) schemas.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return schemas.TimestampOf(t)
}

func TestComputeMatchesReference(t *testing.T) {
	cutoffs := []schemas.Timestamp{hour("2024-03-01T00:00:00Z"), hour("2024-03-01T01:00:00Z"), hour("2024-03-02T05:00:00Z"), hour("2024-03-09T00:00:00Z")}
	for name, cat := range testCatalogs(t) {
		for seed := uint64(1); seed <= 3; seed++ {
			events := randomEvents(cat, seed, 1500, cutoffs)
			for _, size := range []int{1, 97, 4096} {
				src := sliceSource(t, cat, events, size)
				for _, cutoff := range cutoffs {
					t.Run(name+"/"+cutoff.String(), func(t *testing.T) {
						want := reference.Evaluate(cat, events, cutoff)
						res, err := Compute(context.Background(), cat, cutoff, src, nil)
						require.NoError(t, err)
						require.NotEmpty(t, want)
						diff := reference.Diff(cat, want, res.Profiles.Boxed(), 10)
						require.Empty(t, diff, "seed %d batch size %d", seed, size)
					})
				}
			}
		}
	}
}

func TestComputeEmptyAndEdges(t *testing.T) {
	cat := testCatalogs(t)["windowed"]
	c := hour("2024-03-01T10:00:00Z")
	ev := func(user int64, ts schemas.Timestamp, item int64, what string, off int64) schemas.Event {
		return schemas.Event{Values: []any{user, ts, item, what}, Time: ts, Offset: off}
	}
	tests := []struct {
		name   string
		events []schemas.Event
	}{
		{"no events", nil},
		{"only at the cutoff", []schemas.Event{ev(1, c, 1, "pv", 0)}},
		{"exactly at cutoff-3h", []schemas.Event{ev(1, c-3*3_600_000, 5, "pv", 0)}},
		{"one before cutoff-3h", []schemas.Event{ev(1, c-3*3_600_000-1, 5, "pv", 0)}},
		{"ties on time", []schemas.Event{ev(1, c-1, 5, "pv", 2), ev(1, c-1, 7, "buy", 1), ev(1, c-1, 6, "pv", 3)}},
		{"exactly at cutoff-1h", []schemas.Event{ev(2, c-3_600_000, 9, "pv", 0), ev(2, c-3_600_000-1, 9, "pv", 1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := reference.Evaluate(cat, tc.events, c)
			res, err := Compute(context.Background(), cat, c, sliceSource(t, cat, tc.events, 2), nil)
			require.NoError(t, err)
			require.Empty(t, reference.Diff(cat, want, res.Profiles.Boxed(), 0))
			require.Equal(t, len(want), res.Profiles.Len())
		})
	}
}

// TestComputeBase: computing at C₁ from the state at C₀ plus the events
// at or after C₀ (and those the windows need) equals computing at C₁ from
// every event.
func TestComputeBase(t *testing.T) {
	c0, c1 := hour("2024-03-01T01:00:00Z"), hour("2024-03-02T05:00:00Z")
	for name, cat := range testCatalogs(t) {
		if !cat.HasLifetime() {
			continue
		}
		t.Run(name, func(t *testing.T) {
			events := randomEvents(cat, 11, 3000, []schemas.Timestamp{c0, c1})
			all := sliceSource(t, cat, events, 500)
			r0, err := Compute(context.Background(), cat, c0, all, nil)
			require.NoError(t, err)
			require.NotNil(t, r0.State)
			// Duplicates across C₀ are resolved only among the events read,
			// so keep the read set exact: drop ids that straddle the split.
			lo := min(c0, c1-schemas.Timestamp(cat.LongestWindow()))
			var later []schemas.Event
			for _, e := range events {
				if e.Time >= lo {
					later = append(later, e)
				}
			}
			full, err := Compute(context.Background(), cat, c1, all, nil)
			require.NoError(t, err)
			inc, err := Compute(context.Background(), cat, c1, sliceSource(t, cat, later, 500), r0.State.State())
			require.NoError(t, err)
			if cat.ID < 0 {
				require.Empty(t, reference.Diff(cat, full.Profiles.Boxed(), inc.Profiles.Boxed(), 10))
			}
			require.Empty(t, reference.Diff(cat, reference.Evaluate(cat, events, c1), full.Profiles.Boxed(), 10))
			require.Less(t, inc.Scanned, full.Scanned)
		})
	}
}

func loadTaobaoCSV(t *testing.T, cat *schemas.Catalog, path string) []schemas.Event {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	var out []schemas.Event
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		vals := make([]any, len(cat.Fields))
		for i := range cat.Fields {
			v, err := schemas.ParseValue(&cat.Fields[i], strings.TrimSpace(rec[i]))
			require.NoError(t, err, "%s line %d", path, line)
			vals[i] = v
		}
		out = append(out, schemas.Event{Values: vals, Time: vals[cat.Time].(schemas.Timestamp), Offset: int64(line)})
	}
	return out
}

// taobaoSamples lists the real Taobao samples in testdata/taobao at the
// repo root.
func taobaoSamples(t *testing.T) []string {
	m, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "taobao", "*.csv"))
	if len(m) == 0 {
		t.Fatal("no Taobao samples in testdata/taobao")
	}
	return m
}

func TestComputeTaobaoSamples(t *testing.T) {
	cat := testCatalogs(t)["taobao"]
	for _, path := range taobaoSamples(t) {
		events := loadTaobaoCSV(t, cat, path)
		src := sliceSource(t, cat, events, 8192)
		var maxT schemas.Timestamp
		for _, e := range events {
			maxT = max(maxT, e.Time)
		}
		end := cat.BucketStart(maxT) + schemas.Timestamp(cat.Bucket)
		for _, cutoff := range []schemas.Timestamp{end - 86_400_000*3, end - 86_400_000, end - 3_600_000*5, end} {
			t.Run(filepath.Base(path)+"/"+cutoff.String(), func(t *testing.T) {
				want := reference.Evaluate(cat, events, cutoff)
				res, err := Compute(context.Background(), cat, cutoff, src, nil)
				require.NoError(t, err)
				require.NotEmpty(t, want)
				require.Empty(t, reference.Diff(cat, want, res.Profiles.Boxed(), 10))
			})
		}
	}
}

// TestComputeMatchesReferenceGen runs the differential test on the shared
// generator's streams (ties, duplicates, disorder, window edges), with
// string columns as String arrays and as dictionary arrays.
func TestComputeMatchesReferenceGen(t *testing.T) {
	for name, cat := range testCatalogs(t) {
		o := gen.Defaults(21)
		cutoffs := []schemas.Timestamp{o.Start + 86_400_000, o.Start + 4*86_400_000 + 5*3_600_000, o.Start + 10*86_400_000}
		for _, c := range cutoffs {
			o.Edges = append(o.Edges, c)
			for _, tag := range cat.Tags {
				if tag.Window > 0 {
					o.Edges = append(o.Edges, c-schemas.Timestamp(tag.Window))
				}
			}
		}
		events := gen.Events(cat, o)
		for _, s := range []struct {
			name string
			src  Source
		}{
			{"strings", sliceSource(t, cat, events, 700)},
			{"dictionaries", dictSliceSource(t, cat, events, 700)},
		} {
			for _, cutoff := range cutoffs {
				t.Run(name+"/"+s.name+"/"+cutoff.String(), func(t *testing.T) {
					want := reference.Evaluate(cat, events, cutoff)
					res, err := Compute(context.Background(), cat, cutoff, s.src, nil)
					require.NoError(t, err)
					require.NotEmpty(t, want)
					require.Empty(t, reference.Diff(cat, want, res.Profiles.Boxed(), 10))
				})
			}
		}
	}
}

// TestComputeShards runs the differential test with one and with several
// shards (users split by key hash, aggregated concurrently).
func TestComputeShards(t *testing.T) {
	cutoffs := []schemas.Timestamp{hour("2024-03-01T01:00:00Z"), hour("2024-03-09T00:00:00Z")}
	for name, cat := range testCatalogs(t) {
		events := randomEvents(cat, 5, 2000, cutoffs)
		src := sliceSource(t, cat, events, 300)
		for _, shards := range []int{1, 3} {
			for _, cutoff := range cutoffs {
				t.Run(fmt.Sprintf("%s/%d/%s", name, shards, cutoff), func(t *testing.T) {
					e, err := newEngine(cat, cutoff, nil, shards)
					require.NoError(t, err)
					if e.Dedup() {
						require.NoError(t, src(context.Background(), e.Observe))
					}
					require.NoError(t, src(context.Background(), e.Add))
					res := e.Result()
					want := reference.Evaluate(cat, events, cutoff)
					require.Empty(t, reference.Diff(cat, want, res.Profiles.Boxed(), 10))
					require.Equal(t, len(want), res.Profiles.Len())
				})
			}
		}
	}
}

// TestComputeSourceMustRepeat: with an id field the source is read twice;
// a second pass that yields other batches is an error, not wrong values.
func TestComputeSourceMustRepeat(t *testing.T) {
	cat := testCatalogs(t)["ecommerce"]
	c := hour("2024-03-09T00:00:00Z")
	events := randomEvents(cat, 3, 400, []schemas.Timestamp{c})
	recs, err := eventrec.Records(cat, events, 100)
	require.NoError(t, err)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for _, tc := range []struct {
		name   string
		second []int // batch order of the second pass
		err    string
	}{
		{"reordered", []int{1, 0, 2, 3}, "differs from the one de-duplicated"},
		{"missing batch", []int{0, 1, 2}, "yielded 3 batches to aggregate and 4 to de-duplicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			src := func(_ context.Context, fn func(arrow.RecordBatch) error) error {
				calls++
				order := []int{0, 1, 2, 3}
				if calls > 1 {
					order = tc.second
				}
				for _, i := range order {
					if err := fn(recs[i]); err != nil {
						return err
					}
				}
				return nil
			}
			_, err := Compute(context.Background(), cat, c, src, nil)
			require.ErrorContains(t, err, tc.err)
		})
	}
}
