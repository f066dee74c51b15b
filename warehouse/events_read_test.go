package warehouse

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// readAheadFiles writes files of 500 events in row groups of 200 (3 row
// groups a file), and returns them with their events in order.
func readAheadFiles(t *testing.T, cat *schemas.Catalog, files int) ([]string, []schemas.Event) {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	var all []schemas.Event
	for i := range files {
		events := synthEvents(cat, 500, uint64(i))
		path := filepath.Join(dir, PartName(0, int64(i)*500, int64(i)*500+499))
		require.NoError(t, WriteFileAtomic(path, func(w io.Writer) error {
			return writeEvents(w, cat, events, 0, 200)
		}))
		paths = append(paths, path)
		all = append(all, events...)
	}
	return paths, all
}

// TestReadEventsReadsAhead checks that the batches come in file and row
// group order although a goroutine reads ahead while fn works, that
// fn's error and a corrupt file's stop the read (the batches before the
// corrupt file are given), and that the reader goroutine always ends.
func TestReadEventsReadsAhead(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	files, want := readAheadFiles(t, cat, 5)

	var got []schemas.Event
	batches := 0
	err := ReadEvents(context.Background(), cat, files, func(rec arrow.RecordBatch) error {
		time.Sleep(time.Millisecond) // let the reader run ahead
		got = AppendEventRows(got, cat, rec)
		batches++
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, 15, batches)

	stop := errors.New("stop")
	batches = 0
	err = ReadEvents(context.Background(), cat, files, func(rec arrow.RecordBatch) error {
		if batches++; batches == 4 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 4, batches, "no batch after fn's error")

	bad := append([]string(nil), files...)
	require.NoError(t, os.WriteFile(bad[3], []byte("not parquet at all"), 0o644))
	got = nil
	err = ReadEvents(context.Background(), cat, bad, func(rec arrow.RecordBatch) error {
		got = AppendEventRows(got, cat, rec)
		return nil
	})
	var ce *CorruptFileError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, bad[3], ce.Path)
	require.Equal(t, want[:3*500], got, "the files before the corrupt one were read")

	ctx, cancel := context.WithCancel(context.Background())
	batches = 0
	err = ReadEvents(ctx, cat, files, func(arrow.RecordBatch) error {
		if batches++; batches == 2 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.LessOrEqual(t, batches, 2+readAhead, "the reader stops at the cancellation")

	require.Eventually(t, func() bool { return readers() == 0 }, time.Second, 5*time.Millisecond, "reader goroutines left")
}

// readers counts the goroutines running ReadEvents' reader.
func readers() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "warehouse.ReadEvents.func")
}
