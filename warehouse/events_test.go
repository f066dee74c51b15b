package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

func loadCatalog(t testing.TB, name string) *schemas.Catalog {
	t.Helper()
	c, err := schemas.Load(filepath.Join("..", "schemas", "catalogs", name+".yaml"))
	require.NoError(t, err)
	return c
}

// synthEvents makes n events with a value of the right type for every
// field, including edge values (empty and non-ASCII strings, extremes).
func synthEvents(cat *schemas.Catalog, n int, seed uint64) []schemas.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	base := schemas.Timestamp(1_511_658_000_000)
	out := make([]schemas.Event, n)
	for i := range out {
		vs := make([]any, len(cat.Fields))
		for j, f := range cat.Fields {
			switch f.Type {
			case schemas.TypeInt64:
				switch i % 50 {
				case 1:
					vs[j] = int64(-1 << 63)
				case 2:
					vs[j] = int64(1<<63 - 1)
				default:
					vs[j] = rng.Int64N(1_000_000)
				}
			case schemas.TypeFloat64:
				vs[j] = rng.NormFloat64() * 100
			case schemas.TypeString:
				switch {
				case len(f.Enum) > 0:
					vs[j] = f.Enum[rng.IntN(len(f.Enum))]
				case i%50 == 3:
					vs[j] = ""
				case i%50 == 4:
					vs[j] = "画像-ü"
				default:
					vs[j] = fmt.Sprintf("s%d", rng.IntN(500))
				}
			case schemas.TypeBool:
				vs[j] = rng.IntN(2) == 1
			case schemas.TypeTimestamp:
				vs[j] = base + schemas.Timestamp(rng.Int64N(3*3600_000))
			}
		}
		ev := schemas.Event{Values: vs, Partition: int32(i % 3), Offset: int64(i)}
		ev.Time = vs[cat.Time].(schemas.Timestamp)
		out[i] = ev
	}
	return out
}

func TestWriteReadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		catalog   string
		rows      int
		groupRows int
	}{
		{"taobao", 1, rowGroupRows},
		{"taobao", 1000, rowGroupRows},
		{"ecommerce", 777, rowGroupRows},
		{"ecommerce", 10000, 4000},       // three row groups
		{"taobao", writeChunk * 3, 9000}, // chunks across row groups
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.catalog, tc.rows), func(t *testing.T) {
			cat := loadCatalog(t, tc.catalog)
			events := synthEvents(cat, tc.rows, 1)
			path := filepath.Join(t.TempDir(), PartName(0, 0, int64(tc.rows-1)))
			ingest := schemas.Timestamp(1_700_000_000_123)
			var mf MarkerFile
			if tc.groupRows == rowGroupRows {
				var err error
				mf, err = WriteEventsFile(path, cat, events, ingest)
				require.NoError(t, err)
			} else {
				require.NoError(t, WriteFileAtomic(path, func(w io.Writer) error {
					return writeEvents(w, cat, events, ingest, tc.groupRows)
				}))
				mf = MarkerFile{Name: filepath.Base(path), Rows: int64(tc.rows)}
			}
			st, err := os.Stat(path)
			require.NoError(t, err)
			if mf.Bytes == 0 {
				mf.Bytes = st.Size()
			}
			require.Equal(t, MarkerFile{Name: filepath.Base(path), Rows: int64(tc.rows), Bytes: st.Size()}, mf)

			rows, err := FileRows(path)
			require.NoError(t, err)
			require.Equal(t, int64(tc.rows), rows)

			got, err := ReadEventRows(context.Background(), cat, []string{path})
			require.NoError(t, err)
			require.Equal(t, events, got)

			// The record batches carry the schema and the ingest time.
			var n, batches int64
			err = ReadEvents(context.Background(), cat, []string{path}, func(rec arrow.RecordBatch) error {
				require.True(t, rec.Schema().Equal(EventsSchema(cat)), "schema %s", rec.Schema())
				it := rec.Column(len(cat.Fields) + 2).(*array.Timestamp)
				for i := range it.Len() {
					require.Equal(t, arrow.Timestamp(ingest), it.Value(i))
				}
				n += rec.NumRows()
				batches++
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, int64(tc.rows), n)
			require.Equal(t, int64((tc.rows+tc.groupRows-1)/tc.groupRows), batches, "one batch per row group")
		})
	}
}

func TestParquetSchemaKeepsCatalogOrder(t *testing.T) {
	cat := loadCatalog(t, "ecommerce")
	path := filepath.Join(t.TempDir(), "part-0-0-9.parquet")
	_, err := WriteEventsFile(path, cat, synthEvents(cat, 10, 2), 0)
	require.NoError(t, err)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	pf, err := openParquet(f, path)
	require.NoError(t, err)
	var names []string
	for _, c := range pf.Schema().Fields() {
		names = append(names, c.Name())
		require.True(t, c.Required(), c.Name())
	}
	want := []string{"event_id", "user_id", "ts", "event_type", "channel", "session_id", "sku", "category", "amount", "quantity", "promo", "_partition", "_offset", "_ingest_time"}
	require.Equal(t, want, names)
	require.Equal(t, "TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS)", pf.Schema().Fields()[2].Type().String())
	require.Equal(t, "STRING", pf.Schema().Fields()[0].Type().String())
}

func TestWriteRejectsWrongValueTypes(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	for _, tc := range []struct {
		name   string
		values []any
		want   string
	}{
		{"int instead of int64", []any{1, int64(2), int64(3), "pv", schemas.Timestamp(0)}, "event 0: field user_id: got int, want int64"},
		{"null", []any{int64(1), int64(2), int64(3), nil, schemas.Timestamp(0)}, "event 0: field behavior: got <nil>, want string"},
		{"short", []any{int64(1)}, "event 0 has 1 values, catalog taobao has 5 fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "part-0-0-0.parquet")
			_, err := WriteEventsFile(path, cat, []schemas.Event{{Values: tc.values}}, 0)
			require.ErrorContains(t, err, tc.want)
			_, statErr := os.Stat(path)
			require.True(t, os.IsNotExist(statErr), "no file is left behind")
			files, _ := os.ReadDir(filepath.Dir(path))
			require.Empty(t, files, "no temp file is left behind")
		})
	}
}

func TestReadCorruptFiles(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	_, err := WriteEventsFile(good, cat, synthEvents(cat, 5000, 3), 0)
	require.NoError(t, err)
	data, err := os.ReadFile(good)
	require.NoError(t, err)

	flipped := append([]byte(nil), data...)
	for i := 100; i < len(flipped)/2; i += 97 {
		flipped[i] ^= 0x5a
	}
	badMagic := append([]byte(nil), data...)
	copy(badMagic[len(badMagic)-4:], "XXXX")
	other := catalogMismatchFile(t, dir)

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", data[:len(data)/2]},
		{"bad magic", badMagic},
		{"flipped bytes", flipped},
		{"not parquet", []byte("user_id,item_id\n1,2\n")},
		{"other catalog", other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "part-9-0-0.parquet")
			require.NoError(t, os.WriteFile(path, tc.data, 0o644))
			_, err := ReadEventRows(context.Background(), cat, []string{good, path})
			require.Error(t, err)
			var ce *CorruptFileError
			require.True(t, errors.As(err, &ce), "got %v", err)
			require.Equal(t, path, ce.Path)
			require.Contains(t, err.Error(), path)
		})
	}
}

func catalogMismatchFile(t *testing.T, dir string) []byte {
	cat := loadCatalog(t, "ecommerce")
	path := filepath.Join(dir, "other.parquet")
	_, err := WriteEventsFile(path, cat, synthEvents(cat, 10, 4), 0)
	require.NoError(t, err)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.Remove(path))
	return data
}

func TestReadEventsStopsOnCallbackError(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	path := filepath.Join(t.TempDir(), "part-0-0-9.parquet")
	_, err := WriteEventsFile(path, cat, synthEvents(cat, 10, 5), 0)
	require.NoError(t, err)
	stop := errors.New("stop")
	err = ReadEvents(context.Background(), cat, []string{path}, func(arrow.RecordBatch) error { return stop })
	require.ErrorIs(t, err, stop)
	var ce *CorruptFileError
	require.False(t, errors.As(err, &ce))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = ReadEvents(ctx, cat, []string{path}, func(arrow.RecordBatch) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
}

func TestAppendEventsRoutesByHourAndClosesHours(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	root := t.TempDir()
	h0 := schemas.TimestampOf(time.Date(2017, 11, 25, 23, 0, 0, 0, time.UTC))
	mk := func(off int64, ts schemas.Timestamp) schemas.Event {
		return schemas.Event{Values: []any{off, int64(2), int64(3), "pv", ts}, Time: ts, Partition: 4, Offset: off}
	}
	events := []schemas.Event{
		mk(10, h0+5), mk(11, h0+3600_000), mk(12, h0+59*60_000), mk(13, h0+2*3600_000-1),
	}
	written, err := AppendEvents(root, cat, events, 99, PartFileName)
	require.NoError(t, err)
	require.Len(t, written, 2)

	dir0 := filepath.Join(root, "events", "dt=2017-11-25", "hour=23")
	dir1 := filepath.Join(root, "events", "dt=2017-11-26", "hour=00")
	files0, err := DataFiles(dir0)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir0, "part-4-10-12.parquet")}, files0)
	files1, err := HourFiles(root, h0+3600_000)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir1, "part-4-11-13.parquet")}, files1)

	m, ok, err := ReadMarker(dir0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(2), m.Rows)
	require.Equal(t, []MarkerFile{written[h0]}, m.Files)

	// A second append into hour 0 adds a file and the marker lists both.
	_, err = AppendEvents(root, cat, []schemas.Event{mk(20, h0+1)}, 100, PartFileName)
	require.NoError(t, err)
	m, _, err = ReadMarker(dir0)
	require.NoError(t, err)
	require.Equal(t, int64(3), m.Rows)
	require.Len(t, m.Files, 2)

	all, err := EventFilesFor(root, h0, h0+3600_000)
	require.NoError(t, err)
	require.Len(t, all, 2, "only hour 0 overlaps [h0, h0+1h)")
	got, err := ReadEventRows(context.Background(), cat, all)
	require.NoError(t, err)
	require.Len(t, got, 3)
	all, err = AllEventFiles(root)
	require.NoError(t, err)
	require.Len(t, all, 3)
}

func TestHalfWrittenFilesAreInvisible(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	root := t.TempDir()
	ts := schemas.Timestamp(1_511_658_000_000)
	dir := HourDir(root, ts)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	// What a crash in the middle of WriteFileAtomic leaves behind.
	require.NoError(t, os.WriteFile(filepath.Join(dir, TempPrefix+"part-0-0-9.parquet.abc123"), []byte("PAR1 half"), 0o644))

	files, err := HourFiles(root, ts)
	require.NoError(t, err)
	require.Empty(t, files)

	// While a write is in progress, only the temp name exists; the data
	// name appears whole by rename.
	events := synthEvents(cat, 100, 6)
	for i := range events {
		events[i].Time, events[i].Values[cat.Time] = ts, ts
	}
	path := filepath.Join(dir, "part-0-0-99.parquet")
	err = WriteFileAtomic(path, func(w io.Writer) error {
		files, err := DataFiles(dir)
		require.NoError(t, err)
		require.Empty(t, files, "the file being written is not listed")
		return WriteEvents(w, cat, events, 0)
	})
	require.NoError(t, err)
	files, err = HourFiles(root, ts)
	require.NoError(t, err)
	require.Equal(t, []string{path}, files)
	got, err := ReadEventRows(context.Background(), cat, files)
	require.NoError(t, err)
	require.Equal(t, events, got)

	// Closing the hour lists the data file only.
	require.NoError(t, CloseHour(dir))
	m, ok, err := ReadMarker(dir)
	require.NoError(t, err)
	require.True(t, ok)
	require.Len(t, m.Files, 1)
	require.Equal(t, int64(100), m.Rows)
}

func TestPartName(t *testing.T) {
	for _, tc := range []struct {
		p           int32
		first, last int64
	}{{0, 0, 0}, {3, 17, 123456789}, {1 << 20, 2, 20_000_001}} {
		n := PartName(tc.p, tc.first, tc.last)
		p, f, l, ok := ParsePartName(n)
		require.True(t, ok, n)
		require.Equal(t, []int64{int64(tc.p), tc.first, tc.last}, []int64{int64(p), f, l})
	}
	for _, bad := range []string{"part-1-2.parquet", "x-1-2-3.parquet", "part-a-1-2.parquet", "part-1-2-3.csv"} {
		_, _, _, ok := ParsePartName(bad)
		require.False(t, ok, bad)
	}
}

// TestReadNeverPanicsOnFlippedByte flips bytes of a small file (every
// seventh, and all of the footer frame) in turn: reading must give events or an error, never a panic.
func TestReadNeverPanicsOnFlippedByte(t *testing.T) {
	cat := loadCatalog(t, "ecommerce")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	_, err := WriteEventsFile(good, cat, synthEvents(cat, 20, 8), 0)
	require.NoError(t, err)
	data, err := os.ReadFile(good)
	require.NoError(t, err)
	path := filepath.Join(dir, "flipped.parquet")
	failed, tried := 0, 0
	for i := range data {
		if i%7 != 0 && i < len(data)-16 { // keep the test fast; every footer byte
			continue
		}
		tried++
		b := append([]byte(nil), data...)
		b[i] ^= 0xff
		require.NoError(t, os.WriteFile(path, b, 0o644))
		_, err := ReadEventRows(context.Background(), cat, []string{path})
		if err != nil {
			failed++
			var ce *CorruptFileError
			require.True(t, errors.As(err, &ce), "byte %d: %v", i, err)
		}
	}
	t.Logf("%d of %d single-byte flips detected", failed, tried)
	require.Greater(t, failed, tried/2)
}
