package batch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// TestEventSourceConcatenatesSmallBatches checks that runs of small
// batches become one, big batches pass as they are, the events and their
// order are kept, and a second call gives the same batches.
func TestEventSourceConcatenatesSmallBatches(t *testing.T) {
	rows := smallBatchRows
	smallBatchRows = 300
	t.Cleanup(func() { smallBatchRows = rows })

	cat := loadCatalog(t, "taobao")
	sizes := []int{10, 20, 500, 5, 400, 100, 100, 150, 7}
	o := gen.Defaults(3)
	for _, n := range sizes {
		o.Events += n
	}
	events := gen.Events(cat, o)
	dir := t.TempDir()
	var files []string
	for i, n := range sizes {
		path := filepath.Join(dir, fmt.Sprintf("part-%d.parquet", i))
		_, err := warehouse.WriteEventsFile(path, cat, events[:n], 0)
		require.NoError(t, err)
		events = events[n:]
		files = append(files, path)
	}
	want, err := warehouse.ReadEventRows(context.Background(), cat, files)
	require.NoError(t, err)

	src := eventSource(cat, files)
	var dicts int
	plainBatch := func(t *testing.T, cat *schemas.Catalog, rec arrow.RecordBatch) arrow.RecordBatch {
		plain := warehouse.EventsSchema(cat)
		require.Equal(t, plain.NumFields(), rec.Schema().NumFields())
		cols := make([]arrow.Array, rec.NumCols())
		for i := range cols {
			f := rec.Schema().Field(i)
			require.Equal(t, plain.Field(i).Name, f.Name)
			cols[i] = rec.Column(i)
			if d, ok := cols[i].(*array.Dictionary); ok {
				require.Equal(t, arrow.BinaryTypes.String, plain.Field(i).Type)
				s, err := dictStrings(d)
				require.NoError(t, err)
				t.Cleanup(s.Release)
				cols[i] = s
				dicts++
				continue
			}
			require.True(t, arrow.TypeEqual(plain.Field(i).Type, f.Type), "column %s is %s", f.Name, f.Type)
		}
		out := array.NewRecordBatch(plain, cols, rec.NumRows())
		t.Cleanup(out.Release)
		return out
	}
	read := func() ([]int64, []schemas.Event) {
		var batches []int64
		var got []schemas.Event
		dicts = 0
		require.NoError(t, src(context.Background(), func(rec arrow.RecordBatch) error {
			batches = append(batches, rec.NumRows())
			got = warehouse.AppendEventRows(got, cat, plainBatch(t, cat, rec))
			return nil
		}))
		return batches, got
	}
	batches, got := read()
	// The batches that come straight from the reader (500, 5, 400, 7
	// rows) have their enum column (behavior) as a dictionary array, the
	// concatenated ones as a String array.
	require.Equal(t, 4, dicts)
	require.Equal(t, []int64{30, 500, 5, 400, 350, 7}, batches)
	require.Equal(t, want, got)
	batches2, got2 := read()
	require.Equal(t, batches, batches2)
	require.Equal(t, got, got2)

	stop := errors.New("stop")
	n := 0
	err = src(context.Background(), func(arrow.RecordBatch) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 5, n)
}
