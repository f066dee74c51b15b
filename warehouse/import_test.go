package warehouse

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/source"
	"github.com/portrait-dev/portrait/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

var importNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func importConfig(t testing.TB, root string, files ...string) ImportConfig {
	return ImportConfig{
		Root:    root,
		Catalog: loadCatalog(t, "taobao"),
		Files:   files,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:     func() time.Time { return importNow },
	}
}

func TestImportConfigValidate(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	for _, tc := range []struct {
		name string
		cfg  ImportConfig
		want string
	}{
		{"no root", ImportConfig{Catalog: cat, Files: []string{"a"}}, "import: root (the warehouse folder) is required"},
		{"no catalog", ImportConfig{Root: "w", Files: []string{"a"}}, "import: catalog is required"},
		{"no files", ImportConfig{Root: "w", Catalog: cat}, "import: files: nothing to import"},
		{"bad chunk", ImportConfig{Root: "w", Catalog: cat, Files: []string{"a.csv"}, ChunkRows: -1}, "import: chunk_rows -1 is negative"},
		{"bad format", ImportConfig{Root: "w", Catalog: cat, Files: []string{"a.csv"}, Format: "xml"}, `import: format: unknown format "xml" (want csv or jsonl)`},
		{"unknown extension", ImportConfig{Root: "w", Catalog: cat, Files: []string{"a.csv", "b.txt"}},
			"import: files: b.txt: cannot tell the format from the name (want .csv, .jsonl, .ndjson or .json, optionally .gz)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.EqualError(t, tc.cfg.Validate(), tc.want)
		})
	}
}

// TestImportRejectsGolden imports files full of bad rows: the good rows
// land, every bad one is in the rejects file with its line and reason.
func TestImportRejectsGolden(t *testing.T) {
	for _, tc := range []struct {
		file                     string
		read, imported, rejected int64
	}{
		{"testdata/import-bad.csv", 12, 4, 8},
		{"testdata/import-bad.jsonl", 10, 3, 7},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			root := t.TempDir()
			stats, err := Import(context.Background(), importConfig(t, root, tc.file))
			require.NoError(t, err)
			require.Len(t, stats.Files, 1)
			fi := stats.Files[0]
			require.Equal(t, []int64{tc.read, tc.imported, tc.rejected}, []int64{fi.Read, fi.Imported, fi.Rejected})
			require.Equal(t, []int64{tc.read, tc.imported, tc.rejected}, []int64{stats.Read, stats.Imported, stats.Rejected})
			require.Equal(t, tc.read, fi.Imported+fi.Rejected)

			sha, err := FileSHA256(tc.file)
			require.NoError(t, err)
			wantRejects := filepath.Join(root, RejectsDir, filepath.Base(tc.file)+"."+sha[:12]+".rejects.jsonl")
			require.Equal(t, wantRejects, fi.RejectsFile)
			got, err := os.ReadFile(fi.RejectsFile)
			require.NoError(t, err)
			golden(t, tc.file+".rejects.golden", got)

			events := readAll(t, root)
			require.Len(t, events, int(tc.imported))
			for _, ev := range events {
				require.Equal(t, int32(ImportPartitionBase), ev.Partition)
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	require.Equal(t, string(want), string(got))
}

func readAll(t *testing.T, root string) []schemas.Event {
	t.Helper()
	files, err := AllEventFiles(root)
	require.NoError(t, err)
	events, err := ReadEventRows(context.Background(), loadCatalog(t, "taobao"), files)
	require.NoError(t, err)
	sort.Slice(events, func(i, j int) bool { return events[i].Before(&events[j]) })
	return events
}

// TestImportTaobaoSample imports the real sample: every good row lands
// with (partition, line) as its place, the truncated last record of the
// stream file is rejected, and the hours are closed with row counts.
func TestImportTaobaoSample(t *testing.T) {
	root := t.TempDir()
	files := []string{
		"../testdata/taobao/userbehavior-users-43.csv",
		"../testdata/taobao/userbehavior-stream-96k.csv",
	}
	var progress bytes.Buffer
	cfg := importConfig(t, root, files...)
	cfg.Progress, cfg.ProgressEvery = &progress, 50_000
	cfg.ChunkRows = 40_000
	stats, err := Import(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, int64(4321+96169), stats.Read)
	require.Equal(t, int64(4321+96168), stats.Imported)
	require.Equal(t, int64(1), stats.Rejected)
	require.Equal(t, int32(ImportPartitionBase), stats.Files[0].Partition)
	require.Equal(t, int32(ImportPartitionBase+1), stats.Files[1].Partition)
	require.Contains(t, progress.String(), "importing ../testdata/taobao/userbehavior-stream-96k.csv: 50000 lines")

	rej, err := os.ReadFile(stats.Files[1].RejectsFile)
	require.NoError(t, err)
	require.Equal(t, `{"file":"../testdata/taobao/userbehavior-stream-96k.csv","line":96169,"reason":"truncated record (no trailing newline)","raw":"301780,543546,4181361,pv,15"}`+"\n", string(rej))
	require.Empty(t, stats.Files[0].RejectsFile)

	// Every row comes back with its line as offset; compare with the CSV.
	events := readAll(t, root)
	require.Len(t, events, int(stats.Imported))
	want := map[[2]int64]string{}
	for i, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for n, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			want[[2]int64{int64(ImportPartitionBase + i), int64(n + 1)}] = line
		}
	}
	for _, ev := range events {
		line := fmt.Sprintf("%d,%d,%d,%s,%d", ev.Values[0], ev.Values[1], ev.Values[2], ev.Values[3], int64(ev.Values[4].(schemas.Timestamp))/1000)
		require.Equal(t, want[[2]int64{int64(ev.Partition), ev.Offset}], line)
	}

	// Markers count every row of their hour.
	hours, err := ListHours(root, -1<<62, 1<<62)
	require.NoError(t, err)
	var total int64
	for _, h := range hours {
		m, ok, err := ReadMarker(h.Dir)
		require.NoError(t, err)
		require.True(t, ok, h.Dir)
		total += m.Rows
	}
	require.Equal(t, stats.Imported, total)

	// The stream file (in time order, 01:00 to 02:55; 02:00 starts at line
	// 46896) was written in chunks of 40,000 rows, so its hours hold
	// several files whose names never clash.
	for _, tc := range []struct {
		hour  int
		names []string
	}{
		{1, []string{"part-1048577-1-40000.parquet", "part-1048577-40001-46895.parquet"}},
		{2, []string{"part-1048577-46896-80000.parquet", "part-1048577-80001-96168.parquet"}},
	} {
		files, err := HourFiles(root, schemas.TimestampOf(time.Date(2017, 11, 26, tc.hour, 0, 0, 0, time.UTC)))
		require.NoError(t, err)
		var names []string
		for _, f := range files {
			if p, _, _, _ := ParsePartName(f); p == ImportPartitionBase+1 {
				names = append(names, filepath.Base(f))
			}
		}
		require.Equal(t, tc.names, names)
	}
}

// streamHead writes the first n lines of the Taobao stream sample (one
// hour, so few files and fsyncs) to a temp file.
func streamHead(t *testing.T, n int) string {
	data, err := os.ReadFile("../testdata/taobao/userbehavior-stream-96k.csv")
	require.NoError(t, err)
	lines := strings.SplitAfterN(string(data), "\n", n+1)
	path := filepath.Join(t.TempDir(), "head.csv")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines[:n], "")), 0o644))
	return path
}

func TestImportTwiceIsNoop(t *testing.T) {
	root := t.TempDir()
	src := streamHead(t, 3000)
	stats, err := Import(context.Background(), importConfig(t, root, src))
	require.NoError(t, err)
	require.Equal(t, int64(3000), stats.Imported)
	before := snapshotTree(t, root)

	// Same file again, and the same content under another name.
	dup := filepath.Join(t.TempDir(), "copy.csv")
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dup, data, 0o644))
	var logs bytes.Buffer
	cfg := importConfig(t, root, src, dup)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	stats, err = Import(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, 2, stats.Skipped)
	require.Equal(t, int64(0), stats.Read+stats.Imported+stats.Rejected)
	require.True(t, stats.Files[1].Skipped)
	require.Equal(t, src, stats.Files[1].Previous.File)
	require.Equal(t, int64(3000), stats.Files[1].Previous.Imported)
	require.Contains(t, logs.String(), "file already imported, nothing to do")
	require.Equal(t, before, snapshotTree(t, root), "nothing in the warehouse changed")

	// A different file gets the next ordinal.
	stats, err = Import(context.Background(), importConfig(t, root, "testdata/import-bad.csv"))
	require.NoError(t, err)
	require.Equal(t, int32(ImportPartitionBase+1), stats.Files[0].Partition)
}

// snapshotTree maps every file under root (ledger lock aside) to its size
// and modification time.
func snapshotTree(t *testing.T, root string) map[string]string {
	out := map[string]string{}
	require.NoError(t, filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Name() == ".lock" {
			return err
		}
		out[path] = fmt.Sprint(info.Size(), info.ModTime().UnixNano())
		return nil
	}))
	return out
}

// TestImportResumesInterrupted fakes a crash after some data files were
// written: the ledger entry is pending, a leftover file sits in an hour.
// The re-import replaces the leftovers and keeps the reserved partition.
func TestImportResumesInterrupted(t *testing.T) {
	root := t.TempDir()
	src := streamHead(t, 3000)
	cat := loadCatalog(t, "taobao")
	sha, err := FileSHA256(src)
	require.NoError(t, err)
	ledger := OpenLedger(root)
	require.NoError(t, ledger.Put(LedgerEntry{SHA256: sha, File: src, Ordinal: 0, Partition: ImportPartitionBase, Status: ImportPending}))
	// Another file imported meanwhile took ordinal 1.
	require.NoError(t, ledger.Put(LedgerEntry{SHA256: "other", Ordinal: 1, Partition: ImportPartitionBase + 1, Status: ImportDone}))
	ts := schemas.Timestamp(1_511_658_000_000)
	leftover := []schemas.Event{{Values: []any{int64(1), int64(2), int64(3), "pv", ts}, Time: ts, Partition: ImportPartitionBase, Offset: 99999}}
	_, err = AppendEvents(root, cat, leftover, 0, PartFileName)
	require.NoError(t, err)

	stats, err := Import(context.Background(), importConfig(t, root, src))
	require.NoError(t, err)
	require.Equal(t, int32(ImportPartitionBase), stats.Files[0].Partition)
	events := readAll(t, root)
	require.Len(t, events, 3000, "the leftover row is gone")
	files, err := HourFiles(root, ts)
	require.NoError(t, err)
	for _, f := range files {
		require.NotContains(t, f, "-99999-99999")
	}
	m, _, err := ReadMarker(HourDir(root, ts))
	require.NoError(t, err)
	require.Len(t, m.Files, len(files))

	next, err := ledger.NextOrdinal()
	require.NoError(t, err)
	require.Equal(t, 2, next)
	e, ok, err := ledger.Get(sha)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, ImportDone, e.Status)
	require.Equal(t, int64(3000), e.Imported)
}

// TestImportFormatsAgree imports the same rows as headerless CSV, CSV with
// a reordered header, and JSON Lines: the events are the same.
func TestImportFormatsAgree(t *testing.T) {
	dir := t.TempDir()
	plain := "1,100,10,pv,1511658000\n1,101,10,buy,1511658001\n2,102,11,cart,1511661600\n"
	header := "ts,behavior,user_id,item_id,category_id\r\n1511658000,pv,1,100,10\r\n1511658001,buy,1,101,10\r\n\r\n1511661600,cart,2,102,11\r\n"
	jsonl := `{"user_id":1,"item_id":100,"category_id":10,"behavior":"pv","ts":1511658000}
{"ts":"2017-11-26T01:00:01Z","user_id":1,"item_id":101,"category_id":10,"behavior":"buy"}
{"user_id":2,"item_id":102,"category_id":11,"behavior":"cart","ts":1511661600000}
`
	var results [][]schemas.Event
	for name, content := range map[string]string{"plain.csv": plain, "header.csv": header, "events.jsonl": jsonl} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
		root := t.TempDir()
		stats, err := Import(context.Background(), importConfig(t, root, path))
		require.NoError(t, err, name)
		require.Equal(t, int64(3), stats.Imported, name)
		require.Equal(t, int64(0), stats.Rejected, name)
		events := readAll(t, root)
		for i := range events {
			events[i].Offset = 0 // line numbers differ with the header and the blank line
		}
		results = append(results, events)
	}
	require.Equal(t, results[0], results[1])
	require.Equal(t, results[0], results[2])
}

func TestImportBadHeader(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"user_id,item_id,category_id,behavior\n", "line 1: header has no column for field ts"},
		{"user_id,item_id,ts\n", "line 1: header has no column for fields category_id, behavior"},
		{"\nuser_id,item_id,category_id,behavior,ts,ts\n", "line 2: header names field ts twice"},
	} {
		path := filepath.Join(t.TempDir(), "h.csv")
		require.NoError(t, os.WriteFile(path, []byte(tc.header+"1,2,3,pv,4\n"), 0o644))
		_, err := Import(context.Background(), importConfig(t, t.TempDir(), path))
		require.EqualError(t, err, "importing "+path+": "+tc.want)
	}
}

// TestImportFirstLineNotHeader: a first line is a header only when every
// cell names a field; one with an unknown column is a data row, rejected
// with a reason that says why it is not a header.
func TestImportFirstLineNotHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.csv")
	require.NoError(t, os.WriteFile(path, []byte("user_id,item_id,category_id,behavior,time\n1,2,3,pv,1511658000\n"), 0o644))
	root := t.TempDir()
	stats, err := Import(context.Background(), importConfig(t, root, path))
	require.NoError(t, err)
	require.Equal(t, []int64{2, 1, 1}, []int64{stats.Read, stats.Imported, stats.Rejected})
	rej, err := os.ReadFile(stats.Files[0].RejectsFile)
	require.NoError(t, err)
	require.Equal(t, `{"file":"`+path+`","line":1,"reason":"field user_id: \"user_id\" is not an int64 (not a header: column 5 \"time\" is not a field)","raw":"user_id,item_id,category_id,behavior,time"}`+"\n", string(rej))
}

// TestImportGzipAndFormat: gzipped files are read, and Format overrides
// the name.
func TestImportGzipAndFormat(t *testing.T) {
	dir := t.TempDir()
	rows := "1,100,10,pv,1511658000\n2,101,10,buy,1511658001\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write([]byte(rows))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	gzPath := filepath.Join(dir, "events.csv.gz")
	require.NoError(t, os.WriteFile(gzPath, gz.Bytes(), 0o644))
	txtPath := filepath.Join(dir, "events.txt")
	require.NoError(t, os.WriteFile(txtPath, []byte(rows), 0o644))

	root := t.TempDir()
	stats, err := Import(context.Background(), importConfig(t, root, gzPath))
	require.NoError(t, err)
	require.Equal(t, int64(2), stats.Imported)
	gzEvents := readAll(t, root)

	root = t.TempDir()
	cfg := importConfig(t, root, txtPath)
	cfg.Format = source.CSV
	stats, err = Import(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, int64(2), stats.Imported)
	require.Equal(t, gzEvents, readAll(t, root))
}

func TestImportOneAtATime(t *testing.T) {
	root := t.TempDir()
	unlock, err := OpenLedger(root).lock()
	require.NoError(t, err)
	defer unlock()
	_, err = Import(context.Background(), importConfig(t, root, "testdata/import-bad.csv"))
	require.ErrorContains(t, err, "another import into "+root+" is running")
}

// TestChunkBatches: a chunk gives back its rows as events, whole hours at
// a time, oldest hour first and in key order within an hour (row order
// among rows of one key).
func TestChunkBatches(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	const hour = 3600_000
	base := schemas.Timestamp(1_511_658_000_000)
	times := []schemas.Timestamp{base + 2*hour, base, base + 2*hour + 1, base + hour, base + 5, base + 2*hour + 2}
	c := newChunk(cat)
	c.batchRows = 2
	var want []schemas.Event
	keys := []int64{9, 4, 9, 1, 4, 2}
	for i, ts := range times {
		vs := []any{keys[i], int64(-i), int64(1 << 40), []string{"pv", "buy"}[i%2], ts}
		c.add(vs, int64(10+i))
		want = append(want, schemas.Event{Values: vs, Time: ts, Partition: 7, Offset: int64(10 + i)})
	}
	require.Equal(t, len(times), c.len())
	var got [][]int64
	require.NoError(t, c.batches(7, func(events []schemas.Event) error {
		var offsets []int64
		for _, ev := range events {
			require.Equal(t, want[ev.Offset-10], ev)
			offsets = append(offsets, ev.Offset)
		}
		got = append(got, offsets)
		return nil
	}))
	// Hour 0 holds two rows (a batch), hour 1 one row and hour 2 three:
	// batches end after the hour that reaches two rows. Hour 2's rows
	// (keys 9, 9, 2) come key first, the two rows of key 9 in row order.
	require.Equal(t, [][]int64{{11, 14}, {13, 15, 10, 12}}, got)

	c.reset()
	require.Equal(t, 0, c.len())
	require.NoError(t, c.batches(7, func([]schemas.Event) error { t.Fatal("empty chunk"); return nil }))
}
