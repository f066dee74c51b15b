package warehouse

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

func columnsOf(t testing.TB, cat *schemas.Catalog, events []schemas.Event) *EventColumns {
	t.Helper()
	cols := NewEventColumns(cat)
	for i := range events {
		require.NoError(t, cols.Append(&events[i]), "event %d", i)
	}
	return cols
}

// The columnar writer must write exactly the bytes of the row writer: the
// events schema contract is the file, not the code path.
func TestWriteEventColumnsMatchesWriteEvents(t *testing.T) {
	for _, tc := range []struct {
		catalog   string
		n         int
		groupRows int
	}{
		{"taobao", 0, rowGroupRows},
		{"taobao", 1, rowGroupRows},
		{"taobao", 3000, 1000},
		{"ecommerce", 9000, 4000}, // chunks of writeChunk inside row groups
		{"ecommerce", 200, rowGroupRows},
	} {
		t.Run(tc.catalog, func(t *testing.T) {
			cat := loadCatalog(t, tc.catalog)
			events := synthEvents(cat, tc.n, 11)
			var want, got bytes.Buffer
			require.NoError(t, writeEvents(&want, cat, events, 77, tc.groupRows))
			require.NoError(t, writeEventColumns(&got, columnsOf(t, cat, events), 77, tc.groupRows))
			require.True(t, bytes.Equal(want.Bytes(), got.Bytes()), "files differ: %d vs %d bytes", want.Len(), got.Len())
		})
	}
}

func TestEventColumnsFileReadsBack(t *testing.T) {
	cat := loadCatalog(t, "ecommerce")
	events := synthEvents(cat, 500, 12)
	path := filepath.Join(t.TempDir(), "2017", "part-0-0-499.parquet")
	mf, err := WriteEventColumnsFile(path, columnsOf(t, cat, events), 5)
	require.NoError(t, err)
	require.Equal(t, int64(500), mf.Rows)
	got, err := ReadEventRows(context.Background(), cat, []string{path})
	require.NoError(t, err)
	require.Equal(t, events, got)
}

func TestEventColumnsTruncate(t *testing.T) {
	cat := loadCatalog(t, "ecommerce")
	events := synthEvents(cat, 300, 13)
	cols := columnsOf(t, cat, events)
	cols.Truncate(120)
	require.Equal(t, 120, cols.Len())
	// Appending after a truncate reuses the arena from the cut on.
	for i := 120; i < 200; i++ {
		require.NoError(t, cols.Append(&events[i]))
	}
	var want, got bytes.Buffer
	require.NoError(t, WriteEvents(&want, cat, events[:200], 1))
	require.NoError(t, WriteEventColumns(&got, cols, 1))
	require.True(t, bytes.Equal(want.Bytes(), got.Bytes()))

	cols.Reset()
	require.Equal(t, 0, cols.Len())
	require.NoError(t, cols.Append(&events[7]))
	require.Equal(t, events[7].Offset, cols.Offset(0))
	require.Equal(t, events[7].Partition, cols.Partition(0))
	require.Equal(t, events[7].Time, cols.Time(0))
}

func TestEventColumnsAppendRejects(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	good := synthEvents(cat, 1, 14)[0]
	for _, tc := range []struct {
		name   string
		values func() []any
		err    string
	}{
		{"too few values", func() []any { return good.Values[:2] }, "event has 2 values, catalog taobao has 5 fields"},
		{"null", func() []any { v := append([]any(nil), good.Values...); v[1] = nil; return v }, "field item_id: got <nil>, want int64"},
		{"wrong type", func() []any { v := append([]any(nil), good.Values...); v[3] = int64(1); return v }, "field behavior: got int64, want string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cols := NewEventColumns(cat)
			e := good
			e.Values = tc.values()
			require.EqualError(t, cols.Append(&e), tc.err)
			require.Equal(t, 0, cols.Len(), "nothing appended")
			var buf bytes.Buffer
			require.NoError(t, WriteEventColumns(&buf, cols, 1))
		})
	}
}

func BenchmarkWriteEventColumns(b *testing.B) {
	for _, name := range []string{"taobao", "ecommerce"} {
		b.Run(name, func(b *testing.B) {
			cat := loadCatalog(b, name)
			cols := columnsOf(b, cat, synthEvents(cat, benchRows, 42))
			var size int64
			for b.Loop() {
				cw := &CountingWriter{W: &discard{}}
				if err := WriteEventColumns(cw, cols, 1); err != nil {
					b.Fatal(err)
				}
				size = cw.N
			}
			b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/benchRows, "bytes/row")
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
