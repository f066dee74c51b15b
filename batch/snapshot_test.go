package batch

import (
	"bytes"
	"encoding/csv"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
	"github.com/portrait-dev/portrait/warehouse"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func readCSVEvents(t *testing.T, cat *schemas.Catalog, path string) []schemas.Event {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	var out []schemas.Event
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		vals := make([]any, len(cat.Fields))
		for i := range cat.Fields {
			vals[i], err = schemas.ParseValue(&cat.Fields[i], strings.TrimSpace(rec[i]))
			require.NoError(t, err, "%s line %d", path, line)
		}
		out = append(out, schemas.Event{Values: vals, Time: vals[cat.Time].(schemas.Timestamp), Offset: int64(line)})
	}
}

// smallCatalog has a tag of every value type, for the round trip and the
// dump golden files.
const smallCatalog = `
name: small
events:
  key: user
  time: ts
  fields:
    user: string
    ts: timestamp
    amount: float64
    qty: int64
    promo: bool
    tag: string
bucket: 1h
tags:
  orders_24h:  {agg: count, window: 24h}
  spend:       {agg: sum, of: amount}
  units_24h:   {agg: sum, of: qty, window: 24h}
  last_promo:  {agg: last, of: promo}
  top_tag:     {agg: mode, of: tag}
  first_seen:  {agg: min, of: ts}
  big:         {rule: 'spend != nil && spend > 100'}
`

func smallProfiles() (*schemas.Catalog, []schemas.Profile) {
	cat, err := schemas.Parse([]byte(smallCatalog))
	if err != nil {
		panic(err)
	}
	return cat, []schemas.Profile{
		{Key: "alice", Values: []any{int64(3), 120.5, int64(7), true, "red, \"blue\"", schemas.Timestamp(1709251200000), true}},
		{Key: "bob", Values: []any{int64(0), nil, nil, false, nil, schemas.Timestamp(1709251200123), false}},
		{Key: "carol", Values: []any{int64(1), 0.1, int64(-2), nil, "", schemas.Timestamp(-1000), false}},
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	cat, profiles := smallProfiles()
	root := t.TempDir()
	c := schemas.Timestamp(1709280000000)
	state := &local.State{Cutoff: c, Tags: local.LifetimeTags(cat), Keys: []any{"alice"}, Partials: [][]schemas.Partial{{
		{N: 2, Float: 120.5},
		{N: 1, Value: true, Time: 5, Partition: 2, Offset: 9},
		{N: 3, Values: []any{"a", "b"}, Counts: []int64{1, 2}},
		{N: 1, Value: schemas.Timestamp(1709251200000)},
	}}}
	m, err := WriteSnapshot(root, cat, SnapshotWrite{Cutoff: c, Profiles: columns(t, cat, profiles), State: state, Engine: EngineLocal,
		Hours: map[schemas.Timestamp]int64{c - 3_600_000: 12}})
	require.NoError(t, err)
	require.Equal(t, int64(3), m.Rows)
	require.Equal(t, cat.Hash, m.CatalogHash)

	got, err := ReadSnapshot(root, cat, c)
	require.NoError(t, err)
	require.Empty(t, reference.Diff(cat, profiles, got, 0))
	latest, err := LatestSnapshot(root)
	require.NoError(t, err)
	require.Equal(t, c, latest)

	gotState, err := readState(root, cat, c)
	require.NoError(t, err)
	require.Equal(t, state, gotState)

	// The profiles are zstd-compressed (users and ClickHouse read them),
	// the state (only a later recompute reads it) snappy-compressed; in
	// both, integers and timestamps are delta-encoded (fewer bytes to
	// compress).
	dir := warehouse.SnapshotDir(root, c)
	for path, want := range map[string]format.CompressionCodec{
		filepath.Join(dir, "part-00000.parquet"):           format.Zstd,
		filepath.Join(dir, StateDir, "part-00000.parquet"): format.Snappy,
	} {
		ints := 0
		for _, rg := range openParquet(t, path).Metadata().RowGroups {
			for _, cc := range rg.Columns {
				require.Equal(t, want, cc.MetaData.Codec, "%s column %v", path, cc.MetaData.PathInSchema)
				if cc.MetaData.Type == format.Int64 {
					ints++
					require.Contains(t, cc.MetaData.Encoding, format.DeltaBinaryPacked, "%s column %v", path, cc.MetaData.PathInSchema)
				}
			}
		}
		require.NotZero(t, ints, path)
	}

	info, err := ReadSnapshotInfo(root, c)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"2024-03-01T07:00:00Z": 12}, info.Hours)
	require.Equal(t, "user", info.Key.Name)
	require.Len(t, info.Columns, len(cat.Tags))
	require.Equal(t, schemas.TypeTimestamp, info.Columns[5].Type)

	// A re-run replaces the snapshot whole.
	_, err = WriteSnapshot(root, cat, SnapshotWrite{Cutoff: c, Profiles: columns(t, cat, profiles[1:2]), Engine: EngineLocal})
	require.NoError(t, err)
	got, err = ReadSnapshot(root, cat, c)
	require.NoError(t, err)
	require.Empty(t, reference.Diff(cat, profiles[1:2], got, 0))
	_, err = os.Stat(filepath.Join(warehouse.SnapshotDir(root, c), StateDir))
	require.True(t, os.IsNotExist(err), "the old state is gone with the old snapshot")
	entries, err := os.ReadDir(filepath.Join(root, warehouse.ProfilesTable))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary folder is left behind")

	other, err := schemas.Parse([]byte(strings.Replace(smallCatalog, "window: 24h}", "window: 48h}", 1)))
	require.NoError(t, err)
	_, err = ReadSnapshot(root, other, c)
	require.ErrorContains(t, err, "was computed with catalog hash")

	_, err = LatestSnapshot(t.TempDir())
	require.ErrorIs(t, err, ErrNoSnapshot)
}

func TestDumpGolden(t *testing.T) {
	cat, profiles := smallProfiles()
	root := t.TempDir()
	c := schemas.Timestamp(1709280000000)
	_, err := WriteSnapshot(root, cat, SnapshotWrite{Cutoff: c, Profiles: columns(t, cat, profiles), Engine: EngineLocal})
	require.NoError(t, err)
	// Read without the catalog: the marker and files describe the columns.
	table, err := ReadSnapshotTable(root, c)
	require.NoError(t, err)
	for _, format := range []string{"jsonl", "csv"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if format == "jsonl" {
				require.NoError(t, table.WriteJSONL(&buf))
			} else {
				require.NoError(t, table.WriteCSV(&buf))
			}
			golden := filepath.Join("testdata", "dump."+format)
			if *update {
				require.NoError(t, os.MkdirAll("testdata", 0o755))
				require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), buf.String())
		})
	}
	p, ok := table.Find("bob")
	require.True(t, ok)
	b, err := table.AppendJSON(nil, p)
	require.NoError(t, err)
	require.JSONEq(t, `{"user":"bob","orders_24h":0,"spend":null,"units_24h":null,"last_promo":false,"top_tag":null,"first_seen":"2024-03-01T00:00:00.123Z","big":false}`, string(b))
	_, ok = table.Find("nobody")
	require.False(t, ok)
}
