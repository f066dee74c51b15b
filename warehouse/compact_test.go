package warehouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

func taobao(t testing.TB) *schemas.Catalog {
	t.Helper()
	return schemas.MustLoad("../schemas/catalogs/taobao.yaml")
}

// partEvents makes n events of one partition with offsets from first, all
// in the hour that starts at hour.
func partEvents(p int32, first int64, n int, hour schemas.Timestamp) []schemas.Event {
	out := make([]schemas.Event, n)
	for i := range out {
		at := hour + schemas.Timestamp(i*1000)
		out[i] = schemas.Event{Values: []any{int64(i%7 + 1), int64(i), int64(i % 3), "pv", at}, Time: at,
			Partition: p, Offset: first + int64(i)}
	}
	return out
}

func writePart(t testing.TB, root string, c *schemas.Catalog, evs []schemas.Event) string {
	t.Helper()
	path := filepath.Join(HourDir(root, evs[0].Time), PartName(evs[0].Partition, evs[0].Offset, evs[len(evs)-1].Offset))
	_, err := WriteEventsFile(path, c, evs, 1)
	require.NoError(t, err)
	return path
}

func TestLiveFiles(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in, wanted []string
	}{
		{"disjoint", []string{"a/part-0-0-9.parquet", "a/part-0-10-19.parquet"}, []string{"a/part-0-0-9.parquet", "a/part-0-10-19.parquet"}},
		{"compacted", []string{"a/part-0-0-9.parquet", "a/part-0-0-19.parquet", "a/part-0-10-19.parquet"}, []string{"a/part-0-0-19.parquet"}},
		{"other partition", []string{"a/part-1-0-9.parquet", "a/part-0-0-19.parquet"}, []string{"a/part-1-0-9.parquet", "a/part-0-0-19.parquet"}},
		{"other folder", []string{"a/part-0-0-9.parquet", "b/part-0-0-19.parquet"}, []string{"a/part-0-0-9.parquet", "b/part-0-0-19.parquet"}},
		{"other names kept", []string{"a/x.parquet", "a/part-0-0-19.parquet"}, []string{"a/x.parquet", "a/part-0-0-19.parquet"}},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.wanted, LiveFiles(tc.in)) })
	}
}

func TestCompactHour(t *testing.T) {
	c := taobao(t)
	root := t.TempDir()
	hour := schemas.Timestamp(1511568000000)
	var want []schemas.Event
	for i := range 5 {
		evs := partEvents(0, int64(i*10), 10, hour)
		writePart(t, root, c, evs)
		want = append(want, evs...)
	}
	for i := range 2 {
		evs := partEvents(1, int64(100+i*5), 5, hour)
		writePart(t, root, c, evs)
		want = append(want, evs...)
	}
	dir := HourDir(root, hour)

	// Open hours are left alone.
	st, err := Compact(context.Background(), root, c, hour, hour+1, CompactOptions{})
	require.NoError(t, err)
	require.Zero(t, st.FilesIn)

	require.NoError(t, CloseHour(dir))
	st, err = Compact(context.Background(), root, c, hour, hour+1, CompactOptions{})
	require.NoError(t, err)
	require.Equal(t, 7, st.FilesIn)
	require.Equal(t, 2, st.FilesOut)
	require.EqualValues(t, 60, st.Rows)
	files, err := DataFiles(dir)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, "part-0-0-49.parquet"), filepath.Join(dir, "part-1-100-109.parquet")}, files)
	m, ok, err := ReadMarker(dir)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 60, m.Rows)
	require.Len(t, m.Files, 2)
	got, err := ReadEventRows(context.Background(), c, files)
	require.NoError(t, err)
	// Each compacted file is clustered: rows by key, then offset.
	for _, f := range files {
		rows, err := ReadEventRows(context.Background(), c, []string{f})
		require.NoError(t, err)
		require.True(t, slices.IsSortedFunc(rows, func(a, b schemas.Event) int {
			return cmp.Or(cmp.Compare(a.Values[0].(int64), b.Values[0].(int64)), cmp.Compare(a.Offset, b.Offset))
		}), "rows of %s not in (key, offset) order", f)
	}
	sortEvents(want)
	sortEvents(got)
	require.Equal(t, want, got)

	// Again: nothing left to merge.
	st, err = Compact(context.Background(), root, c, hour, hour+1, CompactOptions{})
	require.NoError(t, err)
	require.Zero(t, st.FilesIn)
}

func TestCompactFinishesInterruptedRun(t *testing.T) {
	c := taobao(t)
	root := t.TempDir()
	hour := schemas.Timestamp(1511568000000)
	a := partEvents(0, 0, 10, hour)
	b := partEvents(0, 10, 10, hour)
	writePart(t, root, c, a)
	writePart(t, root, c, b)
	writePart(t, root, c, append(append([]schemas.Event{}, a...), b...)) // the compacted file, olds not yet removed
	dir := HourDir(root, hour)
	require.NoError(t, CloseHour(dir))
	m, _, err := ReadMarker(dir)
	require.NoError(t, err)
	require.EqualValues(t, 20, m.Rows, "the marker never lists superseded files")
	st, err := CompactHour(context.Background(), root, c, dir, CompactOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, st.Superseded)
	files, err := DataFiles(dir)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, "part-0-0-19.parquet")}, files)
}

func sortEvents(evs []schemas.Event) {
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].Partition != evs[j].Partition {
			return evs[i].Partition < evs[j].Partition
		}
		return evs[i].Offset < evs[j].Offset
	})
}

// TestReadersDuringCommits commits 1,000 files (each followed by a marker
// rewrite, with a compaction every 50) while two readers read: one by
// listing folders (with LiveFiles), one by the marker. Neither may ever
// see a temp file, a file it cannot read whole, or an event twice; the
// marker reader must always see a gap-free prefix of the commits.
func TestReadersDuringCommits(t *testing.T) {
	c := taobao(t)
	root := fastTempDir(t)
	hour := schemas.Timestamp(1511568000000)
	dir := HourDir(root, hour)
	const commits, per = 1000, 3
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	// read checks what a listing shows: every file opens (footer) with
	// the rows its name promises, ranges do not overlap, and (for the
	// marker, prefix) they cover 0..n-1 without a gap; every 20th time the
	// files are decoded in full.
	read := func(list func() ([]string, error), prefix bool) {
		defer wg.Done()
		reads := 0
		for {
			select {
			case <-done:
				if reads == 0 {
					errs <- errors.New("reader never read")
				}
				errs <- nil
				return
			default:
			}
			files, err := list()
			if err != nil {
				errs <- err
				return
			}
			type span struct{ first, last int64 }
			var spans []span
			var rows int64
			gone := false
			for _, f := range files {
				if strings.HasPrefix(filepath.Base(f), TempPrefix) {
					errs <- errors.New("listed a temp file: " + f)
					return
				}
				_, first, last, ok := ParsePartName(f)
				if !ok {
					errs <- errors.New("listed a file that is not a part: " + f)
					return
				}
				n, err := FileRows(f)
				if errors.Is(err, os.ErrNotExist) {
					gone = true // a compaction removed a merged file after the listing
					break
				}
				if err != nil {
					errs <- err
					return
				}
				if n != last-first+1 {
					errs <- fmt.Errorf("%s holds %d rows, its name says %d", f, n, last-first+1)
					return
				}
				spans = append(spans, span{first, last})
				rows += n
			}
			if gone {
				continue
			}
			sort.Slice(spans, func(i, j int) bool { return spans[i].first < spans[j].first })
			for i := 1; i < len(spans); i++ {
				if spans[i].first <= spans[i-1].last {
					errs <- fmt.Errorf("offsets %d-%d and %d-%d read twice", spans[i-1].first, spans[i-1].last, spans[i].first, spans[i].last)
					return
				}
				if prefix && spans[i].first != spans[i-1].last+1 {
					errs <- fmt.Errorf("the marker misses offsets %d-%d", spans[i-1].last+1, spans[i].first-1)
					return
				}
			}
			if reads%20 == 0 {
				evs, err := ReadEventRows(context.Background(), c, files)
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					errs <- err
					return
				}
				if err == nil && int64(len(evs)) != rows {
					errs <- fmt.Errorf("decoded %d rows, footers say %d", len(evs), rows)
					return
				}
			}
			reads++
			time.Sleep(time.Millisecond) // leave the writer a core
		}
	}
	byListing := func() ([]string, error) {
		files, err := DataFiles(dir)
		return LiveFiles(files), err
	}
	byMarker := func() ([]string, error) {
		m, _, err := ReadMarker(dir)
		out := make([]string, len(m.Files))
		for i, f := range m.Files {
			out[i] = filepath.Join(dir, f.Name)
		}
		return out, err
	}
	wg.Add(2)
	go read(byListing, false)
	go read(byMarker, true)
	for i := range commits {
		writePart(t, root, c, partEvents(0, int64(i*per), per, hour))
		unlock, err := LockWarehouse(root)
		require.NoError(t, err)
		require.NoError(t, CloseHour(dir))
		require.NoError(t, unlock())
		if i%50 == 49 {
			_, err := CompactHour(context.Background(), root, c, dir, CompactOptions{TargetBytes: 1 << 30})
			require.NoError(t, err)
		}
	}
	close(done)
	wg.Wait()
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	m, _, err := ReadMarker(dir)
	require.NoError(t, err)
	require.EqualValues(t, commits*per, m.Rows)
}

func TestRetention(t *testing.T) {
	c := taobao(t)
	root := t.TempDir()
	now := time.Date(2017, 12, 10, 0, 30, 0, 0, time.UTC)
	for _, h := range []string{"2017-12-01T00:00:00Z", "2017-12-07T23:00:00Z", "2017-12-08T00:00:00Z", "2017-12-09T10:00:00Z"} {
		at, _ := time.Parse(time.RFC3339, h)
		writePart(t, root, c, partEvents(0, 0, 2, schemas.TimestampOf(at)))
	}
	keep, err := ParseRetention("2d")
	require.NoError(t, err)
	st, err := Retention(root, keep, now, true)
	require.NoError(t, err)
	require.Equal(t, []string{"events/dt=2017-12-01/hour=00", "events/dt=2017-12-07/hour=23"}, st.Hours)
	files, _ := AllEventFiles(root)
	require.Len(t, files, 4, "dry run removes nothing")
	st, err = Retention(root, keep, now, false)
	require.NoError(t, err)
	require.Len(t, st.Hours, 2)
	files, _ = AllEventFiles(root)
	require.Len(t, files, 2)
	_, err = os.Stat(filepath.Join(root, EventsTable, "dt=2017-12-01"))
	require.True(t, os.IsNotExist(err), "empty day folder removed")

	for _, bad := range []string{"", "0d", "-3d", "xd", "90"} {
		_, err := ParseRetention(bad)
		require.Error(t, err, bad)
	}
}

// fastTempDir is a temp folder on tmpfs when there is one: fsync costs
// nothing there, and renames are as atomic as on disk.
func fastTempDir(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "portrait-test-")
		if err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}
