package batch

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// smallGroups makes row groups of 300 rows written 64 at a time.
func smallGroups(t *testing.T) {
	rows, chunk := rowsPerGroup, writeChunk
	rowsPerGroup, writeChunk = 300, 64
	t.Cleanup(func() { rowsPerGroup, writeChunk = rows, chunk })
}

func rowGroups(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	return len(pf.RowGroups())
}

// pageCount counts the pages of column c in the first row group.
func pageCount(t *testing.T, path string, c int) int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	pages := pf.RowGroups()[0].ColumnChunks()[c].Pages()
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
			m, err := WriteSnapshot(root, cat, SnapshotWrite{Cutoff: state.Cutoff, Profiles: profiles, State: state, Engine: EngineLocal})
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

// TestSnapshotWriteErrors checks that a bad value fails the write, also
// in a late row group (the others are then dropped), and leaves nothing
// behind.
func TestSnapshotWriteErrors(t *testing.T) {
	smallGroups(t)
	n := 10*rowsPerGroup + 5
	for _, tc := range []struct {
		name  string
		spoil func(ps []schemas.Profile, s *local.State)
		want  string
	}{
		{"wrong type", func(ps []schemas.Profile, _ *local.State) { ps[n-2].Values[1] = "lots" }, "column spend: value lots is string, want float64"},
		{"null key", func(ps []schemas.Profile, _ *local.State) { ps[rowsPerGroup+1].Key = nil }, "null in a required column"},
		{"short profile", func(ps []schemas.Profile, _ *local.State) { ps[7].Values = ps[7].Values[:3] }, "has 3 values, catalog has 7 tags"},
		{"state key type", func(_ []schemas.Profile, s *local.State) { s.Keys[n-1] = int64(5) }, "state key 5 is int64, want string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat, profiles, state := manyProfiles(t, n)
			tc.spoil(profiles, state)
			root := t.TempDir()
			_, err := WriteSnapshot(root, cat, SnapshotWrite{Cutoff: state.Cutoff, Profiles: profiles, State: state, Engine: EngineLocal})
			require.ErrorContains(t, err, tc.want)
			entries, err := os.ReadDir(filepath.Join(root, warehouse.ProfilesTable))
			require.NoError(t, err)
			require.Empty(t, entries, "no snapshot and no temporary folder")
		})
	}
}

// TestReadTableAcrossPages reads a file whose column chunks span many
// pages (written by parquet-go's row writer with tiny pages), nulls and
// dictionary-encoded strings included.
func TestReadTableAcrossPages(t *testing.T) {
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
				pv = pv.Level(0, defLevel(&cols[c]), c)
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
	gotCols, err := readTable(path, func(row []any) error {
		got = append(got, append([]any(nil), row...))
		return nil
	}, func([]column) error { return nil })
	require.NoError(t, err)
	require.Equal(t, cols, gotCols)
	require.Equal(t, want, got)
}
