package batch

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
	"github.com/portrait-dev/portrait/warehouse"
)

// randomValue is a value of type t, extremes and empty strings included.
func randomValue(r *rand.Rand, t schemas.Type) any {
	switch t {
	case schemas.TypeInt64:
		return []int64{math.MinInt64, math.MaxInt64, 0, r.Int64N(2000) - 1000, r.Int64()}[r.IntN(5)]
	case schemas.TypeFloat64:
		return []float64{0, -1.5, math.MaxFloat64, r.NormFloat64() * 1000}[r.IntN(4)]
	case schemas.TypeString:
		return []string{"", "web", "app", "ü ∑ \x00", string(rune('a' + r.IntN(26)))}[r.IntN(5)]
	case schemas.TypeBool:
		return r.IntN(2) == 0
	case schemas.TypeTimestamp:
		return schemas.Timestamp(r.Int64N(4e12) - 1e12)
	}
	panic(t)
}

// randomPartial is a partial of tag t that saw events, as the engine
// makes them (see schemas.Partial).
func randomPartial(r *rand.Rand, cat *schemas.Catalog, t *schemas.Tag) schemas.Partial {
	switch t.Agg {
	case schemas.AggCount:
		return schemas.Partial{N: 1 + r.Int64N(50)}
	case schemas.AggSum, schemas.AggAvg:
		p := schemas.Partial{N: 1 + r.Int64N(9)}
		if cat.Fields[t.Of].Type == schemas.TypeFloat64 {
			p.Float = randomValue(r, schemas.TypeFloat64).(float64)
		} else {
			p.Int = randomValue(r, schemas.TypeInt64).(int64)
		}
		return p
	case schemas.AggMin, schemas.AggMax:
		return schemas.Partial{N: 1, Value: randomValue(r, t.Type)}
	case schemas.AggFirst, schemas.AggLast:
		return schemas.Partial{N: 1, Value: randomValue(r, t.Type), Time: randomValue(r, schemas.TypeTimestamp).(schemas.Timestamp),
			Partition: r.Int32N(64), Offset: r.Int64N(1 << 40)}
	}
	// count_distinct, mode: distinct values, ascending
	var p schemas.Partial
	for range 1 + r.IntN(5) {
		v := randomValue(r, cat.Fields[t.Of].Type)
		if slices.ContainsFunc(p.Values, func(x any) bool { return schemas.Compare(x, v) == 0 }) {
			continue
		}
		p.Values = append(p.Values, v)
	}
	slices.SortFunc(p.Values, schemas.Compare)
	p.N = int64(len(p.Values))
	if t.Agg == schemas.AggMode {
		p.N = 0
		for range p.Values {
			p.Counts = append(p.Counts, 1+r.Int64N(1000))
			p.N += p.Counts[len(p.Counts)-1]
		}
	}
	return p
}

// ecommerceState is a state of n users of the ecommerce catalog, whose
// lifetime tags use every aggregate: a quarter of the partials are empty,
// and users 300 to 599 have no set values (their row group of the values
// files is empty).
func ecommerceState(t *testing.T, n int) (*schemas.Catalog, *local.State) {
	t.Helper()
	cat := loadCatalog(t, "ecommerce")
	r := rand.New(rand.NewPCG(3, 4))
	state := &local.State{Cutoff: 1709280000000, Tags: local.LifetimeTags(cat)}
	for i := range n {
		ps := make([]schemas.Partial, len(state.Tags))
		for j, ti := range state.Tags {
			tag := &cat.Tags[ti]
			set := tag.Agg == schemas.AggCountDistinct || tag.Agg == schemas.AggMode
			if r.IntN(4) > 0 && !(set && i >= 300 && i < 600) {
				ps[j] = randomPartial(r, cat, tag)
			}
		}
		state.Keys = append(state.Keys, int64(i*5-700))
		state.Partials = append(state.Partials, ps)
	}
	return cat, state
}

// TestStateRoundTripEcommerce writes and reads back a state with every
// aggregate kind, empty partials and values, extreme values, and values
// files with an empty row group, and checks the wide file's layout.
func TestStateRoundTripEcommerce(t *testing.T) {
	smallGroups(t)
	cat, state := ecommerceState(t, 1000)
	root := t.TempDir()
	_, err := WriteSnapshot(root, cat, SnapshotWrite{Cutoff: state.Cutoff, State: state, Engine: EngineLocal})
	require.NoError(t, err)
	got, err := readState(root, cat, state.Cutoff)
	require.NoError(t, err)
	require.Equal(t, state, got)

	dir := filepath.Join(warehouse.SnapshotDir(root, state.Cutoff), StateDir)
	wide := openParquet(t, filepath.Join(dir, stateFile))
	require.Equal(t, int64(1000), wide.NumRows(), "a row per user")
	require.Len(t, wide.RowGroups(), 4)
	var cols []string
	for _, f := range wide.Schema().Fields() {
		opt := ""
		if f.Optional() {
			opt = "?"
		}
		cols = append(cols, f.Name()+" "+f.Type().Kind().String()+opt)
	}
	require.Equal(t, []string{
		"user_id INT64",
		"first_channel.v BYTE_ARRAY?", "first_channel.time INT64?", "first_channel.partition INT64?", "first_channel.offset INT64?",
		"last_promo.v BOOLEAN?", "last_promo.time INT64?", "last_promo.partition INT64?", "last_promo.offset INT64?",
		"first_purchase.v INT64?",
		"last_purchase.v INT64?", "last_purchase.time INT64?", "last_purchase.partition INT64?", "last_purchase.offset INT64?",
		"lifetime_spend.n INT64", "lifetime_spend.sum DOUBLE",
		"lifetime_refunds.n INT64",
		"avg_quantity.n INT64", "avg_quantity.sum INT64",
	}, cols)
	for name, want := range map[string][]string{
		"top_sku_lifetime":    {"user_id", "value", "count"},
		"categories_lifetime": {"user_id", "value"},
	} {
		pf := openParquet(t, filepath.Join(dir, stateValuesFile(name)))
		var names []string
		for _, f := range pf.Schema().Fields() {
			require.False(t, f.Optional())
			names = append(names, f.Name())
		}
		require.Equal(t, want, names)
		j := slices.IndexFunc(state.Tags, func(ti int) bool { return cat.Tags[ti].Name == name })
		values := 0
		for _, ps := range state.Partials {
			values += len(ps[j].Values)
		}
		require.Equal(t, int64(values), pf.NumRows(), "a row per value")
	}
}

// TestStateOfEngine round-trips the states the engine computes, read from
// its accumulators (every aggregate kind in ecommerce), against the
// partials it boxes.
func TestStateOfEngine(t *testing.T) {
	smallGroups(t)
	start := gen.Defaults(0).Start
	c := start + 3*86_400_000
	for _, name := range []string{"taobao", "ecommerce"} {
		t.Run(name, func(t *testing.T) {
			cat := loadCatalog(t, name)
			root := t.TempDir()
			o := gen.Defaults(5)
			// Many users of few events: some partials are empty.
			o.Users, o.Events, o.Span, o.Partitions = 2000, 4000, 4*86_400_000, 2
			writeEvents(t, root, cat, gen.Events(cat, o), "a")
			files, err := warehouse.EventFilesFor(root, math.MinInt64, c)
			require.NoError(t, err)
			res, err := local.Compute(context.Background(), cat, c, eventSource(cat, files), nil)
			require.NoError(t, err)
			_, err = WriteSnapshot(root, cat, SnapshotWrite{Cutoff: c, Profiles: res.Profiles, State: res.State, Engine: EngineLocal})
			require.NoError(t, err)
			got, err := readState(root, cat, c)
			require.NoError(t, err)
			want := res.State.State()
			require.Greater(t, len(want.Keys), rowsPerGroup, "several row groups")
			set, empty := make([]bool, len(want.Tags)), make([]bool, len(want.Tags))
			for _, ps := range want.Partials {
				for j := range ps {
					if len(ps[j].Values) == 0 {
						ps[j].Values, ps[j].Counts = nil, nil // the reader leaves a partial without values nil
					}
					set[j] = set[j] || ps[j].N > 0
					empty[j] = empty[j] || ps[j].N == 0
				}
			}
			require.NotContains(t, set, false, "every tag has a partial")
			require.Contains(t, empty, true, "some partials are empty")
			require.Equal(t, want, got)
		})
	}
}

// TestStateWriteErrors checks that a partial that does not fit its tag
// fails the write.
func TestStateWriteErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tag   string
		spoil func(p *schemas.Partial)
		want  string
	}{
		{"value type", "first_purchase", func(p *schemas.Partial) { *p = schemas.Partial{N: 1, Value: int64(5)} },
			"state key -690: tag first_purchase: partial value 5 is int64, want timestamp"},
		{"set value type", "categories_lifetime", func(p *schemas.Partial) { *p = schemas.Partial{N: 1, Values: []any{true}} },
			"state tag categories_lifetime: value true is bool, want string"},
		{"mode counts", "top_sku_lifetime", func(p *schemas.Partial) { *p = schemas.Partial{N: 1, Values: []any{int64(1)}} },
			"state key -690: mode partial has 1 values and 0 counts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat, state := ecommerceState(t, 10)
			j := slices.IndexFunc(state.Tags, func(ti int) bool { return cat.Tags[ti].Name == tc.tag })
			tc.spoil(&state.Partials[2][j])
			_, err := WriteSnapshot(t.TempDir(), cat, SnapshotWrite{Cutoff: state.Cutoff, State: state, Engine: EngineLocal})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// writeRows writes rows (nil: null) of columns cols as a Parquet file.
func writeRows(t *testing.T, path string, cols []column, rows [][]any) {
	t.Helper()
	prows := make([]parquet.Row, len(rows))
	for i, row := range rows {
		for c, v := range row {
			pv := parquet.NullValue().Level(0, 0, c)
			if v != nil {
				require.True(t, setValue(&pv, cols[c].Type, v))
				def := 0
				if cols[c].Nullable {
					def = 1
				}
				pv = pv.Level(0, def, c)
			}
			prows[i] = append(prows[i], pv)
		}
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	pw := parquet.NewWriter(f, tableSchema("t", cols))
	_, err = pw.WriteRows(prows)
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	require.NoError(t, f.Close())
}

// TestOldStateFormat makes a snapshot look like one written before the
// wide state (a long state table, no state_format in the marker): it is
// not read, and a recompute on it runs in full, saying why, and writes a
// state the next run rests on.
func TestOldStateFormat(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	start := gen.Defaults(0).Start
	c0, c1, c2 := start+2*86_400_000, start+3*86_400_000, start+3*86_400_000+12*3_600_000
	root := t.TempDir()
	events := genEvents(cat, 11, c0, c1, c2)
	writeEvents(t, root, cat, events, "a")
	ctx := context.Background()
	_, err := Recompute(ctx, Config{Root: root, Catalog: cat, Cutoff: c0})
	require.NoError(t, err)

	dir := warehouse.SnapshotDir(root, c0)
	m, ok, err := warehouse.ReadMarker(dir)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, float64(stateFormat), m.Extra["state_format"])
	delete(m.Extra, "state_format")
	require.NoError(t, warehouse.WriteMarker(dir, m))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, StateDir)))
	long := []column{
		newColumn("user_id", schemas.TypeInt64, false), newColumn("tag", schemas.TypeString, false),
		newColumn("n", schemas.TypeInt64, false), newColumn("sum_int", schemas.TypeInt64, true),
		newColumn("sum_float", schemas.TypeFloat64, true), newColumn("v_int", schemas.TypeInt64, true),
		newColumn("v_float", schemas.TypeFloat64, true), newColumn("v_string", schemas.TypeString, true),
		newColumn("v_bool", schemas.TypeBool, true), newColumn("v_time", schemas.TypeTimestamp, true),
		newColumn("time", schemas.TypeTimestamp, true), newColumn("partition", schemas.TypeInt64, true),
		newColumn("offset", schemas.TypeInt64, true),
	}
	writeRows(t, filepath.Join(dir, StateDir, "part-00000.parquet"), long, [][]any{
		{int64(7), "", int64(0), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(7), "first_seen", int64(1), nil, nil, nil, nil, nil, nil, schemas.Timestamp(start), nil, nil, nil},
	})

	_, err = ReadState(root, cat, c0)
	require.ErrorIs(t, err, ErrOldState)

	st, err := Recompute(ctx, Config{Root: root, Catalog: cat, Cutoff: c1})
	require.NoError(t, err)
	require.Nil(t, st.Base)
	require.Contains(t, st.FullReason, "base state is in an old format")
	got, err := ReadSnapshot(root, cat, c1)
	require.NoError(t, err)
	require.Empty(t, reference.Diff(cat, reference.Evaluate(cat, events, c1), got, 10))
	info, err := ReadSnapshotInfo(root, c1)
	require.NoError(t, err)
	require.Equal(t, stateFormat, info.StateFormat)

	st, err = Recompute(ctx, Config{Root: root, Catalog: cat, Cutoff: c2})
	require.NoError(t, err)
	require.NotNil(t, st.Base, "full reason: %s", st.FullReason)
	require.Equal(t, c1, *st.Base)
	got, err = ReadSnapshot(root, cat, c2)
	require.NoError(t, err)
	require.Empty(t, reference.Diff(cat, reference.Evaluate(cat, events, c2), got, 10))
}

// TestReadStateFileAcrossPages reads a file whose column chunks span many
// pages, with nulls, in every encoding the state reader meets: delta and
// plain integers and doubles (copied out of the pages), a dictionary of
// integers, strings and booleans (read as values).
func TestReadStateFileAcrossPages(t *testing.T) {
	node := func(n parquet.Node, opt bool) parquet.Node {
		if opt {
			return parquet.Optional(n)
		}
		return n
	}
	fields := []parquet.Field{
		warehouse.OrderedField("k", node(leafNode(schemas.TypeInt64), false)),
		warehouse.OrderedField("delta", node(leafNode(schemas.TypeInt64), true)),
		warehouse.OrderedField("plain", node(parquet.Leaf(parquet.Int64Type), true)),
		warehouse.OrderedField("dict", node(parquet.Encoded(parquet.Leaf(parquet.Int64Type), &parquet.RLEDictionary), true)),
		warehouse.OrderedField("f", node(leafNode(schemas.TypeFloat64), true)),
		warehouse.OrderedField("s", node(leafNode(schemas.TypeString), true)),
		warehouse.OrderedField("b", node(leafNode(schemas.TypeBool), true)),
		warehouse.OrderedField("ts", node(leafNode(schemas.TypeTimestamp), true)),
	}
	cols := []column{
		newColumn("k", schemas.TypeInt64, false), newColumn("delta", schemas.TypeInt64, true),
		newColumn("plain", schemas.TypeInt64, true), newColumn("dict", schemas.TypeInt64, true),
		newColumn("f", schemas.TypeFloat64, true), newColumn("s", schemas.TypeString, true),
		newColumn("b", schemas.TypeBool, true), newColumn("ts", schemas.TypeTimestamp, true),
	}
	const n = 5000
	want := make([][]any, n)
	rows := make([]parquet.Row, n)
	for i := range want {
		x := int64(i*i - 7000)
		want[i] = []any{int64(i), x, -x, x % 5, float64(i) / 4, fmt.Sprint("s", i%7), i%3 == 0, schemas.Timestamp(x * 1000)}
		if i%5 == 1 || i > 4000 && i < 4600 {
			want[i][1+i%7] = nil
		}
		for c, v := range want[i] {
			pv := parquet.NullValue().Level(0, 0, c)
			if v != nil {
				setValue(&pv, cols[c].Type, v)
				pv = pv.Level(0, min(c, 1), c)
			}
			rows[i] = append(rows[i], pv)
		}
	}
	path := filepath.Join(t.TempDir(), "t.parquet")
	f, err := os.Create(path)
	require.NoError(t, err)
	pw := parquet.NewWriter(f, warehouse.OrderedSchema("t", fields), parquet.PageBufferSize(512), parquet.Compression(stateCodec))
	for lo := 0; lo < n; lo += 2000 { // row groups of 2000 rows
		_, err = pw.WriteRows(rows[lo:min(lo+2000, n)])
		require.NoError(t, err)
		require.NoError(t, pw.Flush())
	}
	require.NoError(t, pw.Close())
	require.NoError(t, f.Close())
	for c := range cols {
		require.Greater(t, pageCount(t, path, c), 3, "column %s spans pages", cols[c].Name)
	}

	var got [][]any
	err = readStateFile(path, cols, func(g *stateGroup) error {
		for i := range g.n {
			row := make([]any, len(cols))
			for c := range cols {
				sc := &g.cols[c]
				if !sc.has(i) {
					continue
				}
				switch cols[c].Type {
				case schemas.TypeInt64:
					row[c] = sc.ints[i]
				case schemas.TypeTimestamp:
					row[c] = schemas.Timestamp(sc.ints[i])
				case schemas.TypeFloat64:
					row[c] = sc.floats[i]
				default:
					row[c] = goValue(cols[c].Type, &sc.vals[i], sc.node)
				}
			}
			got = append(got, row)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, want, got)

	cols[2].Name = "other"
	require.ErrorContains(t, readStateFile(path, cols, func(*stateGroup) error { return nil }), "column 2 is plain INT64, want other int64")
}
