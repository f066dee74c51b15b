package batch

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
	"github.com/portrait-dev/portrait/warehouse"
)

// manyProfiles makes n profiles of smallCatalog with every value type and
// nulls, and a state whose users have 1 to 8 rows (so that row groups,
// which start at a user, end at different places).
func manyProfiles(t *testing.T, n int) (*schemas.Catalog, []schemas.Profile, *local.State) {
	t.Helper()
	cat, err := schemas.Parse([]byte(smallCatalog))
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(7, uint64(n)))
	maybe := func(v any) any {
		if r.IntN(4) == 0 {
			return nil
		}
		return v
	}
	c := schemas.Timestamp(1709280000000)
	state := &local.State{Cutoff: c, Tags: local.LifetimeTags(cat)}
	profiles := make([]schemas.Profile, n)
	for i := range profiles {
		key := fmt.Sprintf("user%07d", i)
		profiles[i] = schemas.Profile{Key: key, Values: []any{
			r.Int64N(9), maybe(r.Float64() * 100), maybe(r.Int64N(50) - 5), maybe(r.IntN(2) == 0),
			maybe(fmt.Sprint("tag", r.IntN(30))), maybe(c - schemas.Timestamp(r.Int64N(1e9))), r.IntN(2) == 0,
		}}
		// spend (sum of a float), last_promo (last), top_tag (mode), first_seen (min)
		var ps []schemas.Partial
		for _, ti := range state.Tags {
			var p schemas.Partial
			switch cat.Tags[ti].Agg {
			case schemas.AggSum:
				if r.IntN(3) > 0 {
					p = schemas.Partial{N: 1 + r.Int64N(5), Float: r.Float64()}
				}
			case schemas.AggLast:
				if r.IntN(3) > 0 {
					p = schemas.Partial{N: 1, Value: r.IntN(2) == 0, Time: c - 5, Partition: r.Int32N(4), Offset: r.Int64N(1000)}
				}
			case schemas.AggMode:
				for k := range r.IntN(6) {
					p.Values = append(p.Values, fmt.Sprint("v", k))
					p.Counts = append(p.Counts, 1+r.Int64N(3))
					p.N += p.Counts[k]
				}
			default:
				if r.IntN(3) > 0 {
					p = schemas.Partial{N: 1, Value: c - schemas.Timestamp(r.Int64N(1e9))}
				}
			}
			ps = append(ps, p)
		}
		state.Keys = append(state.Keys, key)
		state.Partials = append(state.Partials, ps)
	}
	return cat, profiles, state
}

// columns turns profiles into the columns WriteSnapshot takes.
func columns(t testing.TB, cat *schemas.Catalog, ps []schemas.Profile) *local.Profiles {
	t.Helper()
	out, err := local.ProfilesOf(cat, ps)
	require.NoError(t, err)
	return out
}

// smallGroups makes row groups of 300 rows written 64 at a time.
func smallGroups(t *testing.T) {
	rows, chunk := rowsPerGroup, writeChunk
	rowsPerGroup, writeChunk = 300, 64
	t.Cleanup(func() { rowsPerGroup, writeChunk = rows, chunk })
}

// openParquet opens the Parquet file at path, closed with the test.
func openParquet(t *testing.T, path string) *parquet.File {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	return pf
}

func rowGroups(t *testing.T, path string) int {
	t.Helper()
	return len(openParquet(t, path).RowGroups())
}

// pageCount counts the pages of column c in the first row group.
func pageCount(t *testing.T, path string, c int) int {
	t.Helper()
	pages := openParquet(t, path).RowGroups()[0].ColumnChunks()[c].Pages()
	defer pages.Close()
	n := 0
	for {
		if _, err := pages.ReadPage(); err != nil {
			require.ErrorIs(t, err, io.EOF)
			return n
		}
		n++
	}
}

// TestSnapshotManyRowGroups round-trips snapshots whose files have no, one
// and several row groups (written in parallel, committed in order).
func TestSnapshotManyRowGroups(t *testing.T) {
	smallGroups(t)
	for _, tc := range []struct {
		n, groups int
	}{
		{0, 0},
		{1, 1},
		{rowsPerGroup, 1},
		{2*rowsPerGroup + 17, 3},
		{9*rowsPerGroup - 1, 9},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			cat, profiles, state := manyProfiles(t, tc.n)
			root := t.TempDir()
			m, err := WriteSnapshot(root, cat, SnapshotWrite{Cutoff: state.Cutoff, Profiles: columns(t, cat, profiles), State: state, Engine: EngineLocal})
			require.NoError(t, err)
			require.Equal(t, int64(tc.n), m.Rows)
			dir := warehouse.SnapshotDir(root, state.Cutoff)
			require.Equal(t, tc.groups, rowGroups(t, filepath.Join(dir, "part-00000.parquet")))

			// File order: the row groups were committed in order.
			table, err := ReadSnapshotTable(root, state.Cutoff)
			require.NoError(t, err)
			require.Len(t, table.Profiles, tc.n)
			for i := range profiles {
				require.Equal(t, profiles[i].Key, table.Profiles[i].Key, "row %d", i)
			}
			got, err := ReadSnapshot(root, cat, state.Cutoff)
			require.NoError(t, err)
			require.Empty(t, reference.Diff(cat, profiles, got, 5))

			gotState, err := readState(root, cat, state.Cutoff)
			require.NoError(t, err)
			if tc.n == 0 {
				require.Empty(t, gotState.Keys)
				return
			}
			require.Equal(t, state, gotState)
		})
	}
}

// TestSnapshotWriteErrors checks that profiles that do not fit the
// catalog or a bad state value fail the write, also in a late row group
// (the others are then dropped), and leave nothing behind.
func TestSnapshotWriteErrors(t *testing.T) {
	smallGroups(t)
	n := 10*rowsPerGroup + 5
	for _, tc := range []struct {
		name  string
		spoil func(ps *local.Profiles, s *local.State)
		want  string
	}{
		{"wrong column type", func(ps *local.Profiles, _ *local.State) { ps.Tags[1].Type = schemas.TypeInt64 }, "tag spend column is int64, want float64"},
		{"short column", func(ps *local.Profiles, _ *local.State) { ps.Tags[6].Bool = ps.Tags[6].Bool[:n-1] }, fmt.Sprintf("tag big column has %d values for %d profiles", n-1, n)},
		{"key type", func(ps *local.Profiles, _ *local.State) { ps.IntKeys, ps.StrKeys = make([]int64, n), nil }, "profiles have keys of the wrong type, want string"},
		{"state key type", func(_ *local.Profiles, s *local.State) { s.Keys[n-1] = int64(5) }, "state key 5 is int64, want string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat, profiles, state := manyProfiles(t, n)
			ps := columns(t, cat, profiles)
			tc.spoil(ps, state)
			root := t.TempDir()
			_, err := WriteSnapshot(root, cat, SnapshotWrite{Cutoff: state.Cutoff, Profiles: ps, State: state, Engine: EngineLocal})
			require.ErrorContains(t, err, tc.want)
			entries, err := os.ReadDir(filepath.Join(root, warehouse.ProfilesTable))
			require.NoError(t, err)
			require.Empty(t, entries, "no snapshot and no temporary folder")
		})
	}
}

// TestReadGroupsAcrossPages reads a file whose column chunks span many
// pages (written by parquet-go's row writer with tiny pages), nulls and
// dictionary-encoded strings included.
func TestReadGroupsAcrossPages(t *testing.T) {
	cols := []column{
		newColumn("k", schemas.TypeInt64, false),
		newColumn("s", schemas.TypeString, true),
		newColumn("f", schemas.TypeFloat64, true),
		newColumn("b", schemas.TypeBool, true),
		newColumn("t", schemas.TypeTimestamp, true),
	}
	const n = 5000
	want := make([][]any, n)
	rows := make([]parquet.Row, n)
	for i := range want {
		want[i] = []any{int64(i), fmt.Sprint("s", i%7), float64(i) / 4, i%3 == 0, schemas.Timestamp(i * 1000)}
		if i%5 == 1 {
			want[i][1+i%4] = nil
		}
		for c, v := range want[i] {
			pv := parquet.NullValue().Level(0, 0, c)
			if v != nil {
				setValue(&pv, cols[c].Type, v)
				def := 0 // a value's definition level: 1 in a nullable column
				if cols[c].Nullable {
					def = 1
				}
				pv = pv.Level(0, def, c)
			}
			rows[i] = append(rows[i], pv)
		}
	}
	path := filepath.Join(t.TempDir(), "t.parquet")
	f, err := os.Create(path)
	require.NoError(t, err)
	pw := parquet.NewWriter(f, tableSchema("t", cols), parquet.PageBufferSize(512), parquet.Compression(snapshotCodec))
	_, err = pw.WriteRows(rows)
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	require.NoError(t, f.Close())
	require.Greater(t, pageCount(t, path, 1), 3, "the string column spans pages")

	var got [][]any
	gotCols, err := readGroups(path, func([]column) error { return nil }, func(g *rowGroup) error {
		for i := range g.n {
			row := make([]any, len(g.cols))
			for c := range row {
				row[c] = g.value(c, i)
			}
			got = append(got, row)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, cols, gotCols)
	require.Equal(t, want, got)
}

// TestStateKeyOrder round-trips states whose keys come sorted (read
// without a key index) and out of order (the index is built at the first
// key out of order), for both key types.
func TestStateKeyOrder(t *testing.T) {
	smallGroups(t)
	for _, intKeys := range []bool{false, true} {
		for _, order := range []string{"sorted", "reversed", "one swap"} {
			t.Run(fmt.Sprint(order, " int keys ", intKeys), func(t *testing.T) {
				cat, _, state := manyProfiles(t, 1000)
				if intKeys {
					var err error
					cat, err = schemas.Parse([]byte(strings.Replace(smallCatalog, "user: string", "user: int64", 1)))
					require.NoError(t, err)
					for i := range state.Keys {
						state.Keys[i] = int64(i*3 - 500)
					}
				}
				switch order {
				case "reversed":
					slices.Reverse(state.Keys)
					slices.Reverse(state.Partials)
				case "one swap":
					k, p := state.Keys, state.Partials
					k[400], k[700], p[400], p[700] = k[700], k[400], p[700], p[400]
				}
				root := t.TempDir()
				_, err := WriteSnapshot(root, cat, SnapshotWrite{Cutoff: state.Cutoff, State: state, Engine: EngineLocal})
				require.NoError(t, err)
				got, err := readState(root, cat, state.Cutoff)
				require.NoError(t, err)
				require.Equal(t, state, got)
			})
		}
	}
}

// TestProfilesOfGroup reads row groups into profiles: typed values, nulls,
// a tag without a column in the file, and the errors of bad key columns.
func TestProfilesOfGroup(t *testing.T) {
	intKey := newColumn("k", schemas.TypeInt64, false)
	amount := newColumn("a", schemas.TypeFloat64, true)
	group := func(key column, keys ...parquet.Value) *rowGroup {
		return &rowGroup{n: len(keys), cols: []column{key, amount},
			fields: []parquet.Field{nil, nil},
			vals:   [][]parquet.Value{keys, {parquet.DoubleValue(1.5).Level(0, 1, 1), parquet.NullValue()}}}
	}
	for _, tc := range []struct {
		name string
		g    *rowGroup
		want []schemas.Profile
		err  string
	}{
		{"int keys", group(intKey, parquet.Int64Value(7), parquet.Int64Value(1<<40)),
			[]schemas.Profile{{Key: int64(7), Values: []any{1.5, nil}}, {Key: int64(1 << 40), Values: []any{nil, nil}}}, ""},
		{"string keys", group(newColumn("k", schemas.TypeString, false), parquet.ByteArrayValue([]byte("x")), parquet.ByteArrayValue(nil)),
			[]schemas.Profile{{Key: "x", Values: []any{1.5, nil}}, {Key: "", Values: []any{nil, nil}}}, ""},
		{"null key", group(intKey, parquet.Int64Value(7), parquet.NullValue()), nil, "key column k: null in row 1"},
		{"key type", group(newColumn("k", schemas.TypeFloat64, false), parquet.DoubleValue(1), parquet.DoubleValue(2)), nil,
			"key column k is float64, want int64 or string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := profilesOfGroup(tc.g, []int{0, 1, -1})
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, ps.Boxed())
		})
	}
}
