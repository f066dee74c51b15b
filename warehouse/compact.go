package warehouse

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/portrait-dev/portrait/schemas"
)

// Compaction merges the small files of a closed events hour into larger
// ones. It must never let a reader see an event twice or not at all, and
// readers come in two kinds:
//
//   - readers that go by the hour's _SUCCESS marker (the ClickHouse loader,
//     anything that wants a closed hour) read exactly the files it lists;
//   - readers that list the folder (EventFilesFor, HourFiles) read every
//     data file present.
//
// A compacted file merges a run of files of ONE source partition that are
// adjacent in offset order within the hour, and its name covers the union
// of their offset ranges: part-<p>-<first of the first>-<last of the
// last>.parquet. It therefore supersedes them: its range contains each of
// theirs. The steps, under the warehouse lock (LockWarehouse, which the
// landing also takes to write markers), are:
//
//  1. write the compacted file (temp name, fsync, rename, folder fsync);
//  2. rewrite the marker to list it instead of the merged files (atomic);
//  3. delete the merged files and fsync the folder.
//
// Marker readers see the old list or the new one, each complete, because
// the marker is replaced by one rename and the old files still exist until
// step 3 (a reader that read the old marker and opens a merged file after
// step 3 gets ENOENT and must re-read the marker; a fresh marker never
// lists a deleted file). Folder readers may see the compacted file and
// the merged ones together between steps 1 and 3 (or after a crash there):
// LiveFiles drops every file whose range another file of the same
// partition in the same folder contains, so they too read each event once.
// A crash between any two steps leaves a state both kinds read correctly,
// and the next compaction (or CloseHour) finishes the job.

// CompactOptions tune Compact.
type CompactOptions struct {
	// TargetBytes is the size compacted files grow to; files at least
	// this big are left alone (default 128 MiB).
	TargetBytes int64
	// MinFiles is the least number of files merged into one (default 2).
	MinFiles int
	// Now is the clock for ingest times and the marker (default time.Now).
	Now func() time.Time
}

func (o *CompactOptions) defaults() {
	if o.TargetBytes <= 0 {
		o.TargetBytes = 128 << 20
	}
	if o.MinFiles < 2 {
		o.MinFiles = 2
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// CompactStats counts what Compact did.
type CompactStats struct {
	// Hours compacted (at least one merge) and hours looked at.
	Hours, HoursSeen int
	// FilesIn were merged into FilesOut new files.
	FilesIn, FilesOut int
	Rows              int64
	BytesIn, BytesOut int64
	// Superseded counts files left by an interrupted compaction and
	// removed now.
	Superseded int
	// Quarantined lists the files found corrupt and moved away.
	Quarantined []Quarantined
}

func (s *CompactStats) add(o CompactStats) {
	s.Hours += o.Hours
	s.HoursSeen += o.HoursSeen
	s.FilesIn += o.FilesIn
	s.FilesOut += o.FilesOut
	s.Rows += o.Rows
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
	s.Superseded += o.Superseded
	s.Quarantined = append(s.Quarantined, o.Quarantined...)
}

// Compact compacts every closed events hour overlapping [from, to) (see
// CompactHour). Open hours (no marker, or files the marker does not list)
// are left to the landing to close first.
func Compact(ctx context.Context, root string, cat *schemas.Catalog, from, to schemas.Timestamp, opts CompactOptions) (CompactStats, error) {
	hours, err := ListHours(root, from, to)
	if err != nil {
		return CompactStats{}, err
	}
	var total CompactStats
	for _, h := range hours {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		st, err := CompactHour(ctx, root, cat, h.Dir, opts)
		total.add(st)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// CompactHour merges the small files of one closed events hour, holding
// the warehouse lock. Files a previous compaction superseded are removed
// first; corrupt files are quarantined and the hour's marker rewritten.
func CompactHour(ctx context.Context, root string, cat *schemas.Catalog, dir string, opts CompactOptions) (st CompactStats, err error) {
	opts.defaults()
	st.HoursSeen = 1
	unlock, err := LockWarehouse(root)
	if err != nil {
		return st, err
	}
	defer func() {
		if uerr := unlock(); err == nil {
			err = uerr
		}
	}()
	m, ok, err := ReadMarker(dir)
	if err != nil || !ok {
		return st, err
	}
	all, err := DataFiles(dir)
	if err != nil {
		return st, err
	}
	// Finish an interrupted compaction: drop superseded files.
	live := LiveFiles(all)
	if len(live) != len(all) {
		st.Superseded, err = removeSuperseded(dir, all, live)
		if err != nil {
			return st, err
		}
		if err := CloseHour(dir); err != nil {
			return st, err
		}
		if m, _, err = ReadMarker(dir); err != nil {
			return st, err
		}
	}
	listed := make(map[string]MarkerFile, len(m.Files))
	for _, f := range m.Files {
		listed[f.Name] = f
	}
	if len(listed) != len(live) {
		return st, nil // open: files the marker does not list
	}
	for _, p := range live {
		if _, ok := listed[filepath.Base(p)]; !ok {
			return st, nil
		}
	}
	runs := compactionRuns(live, listed, opts)
	for _, run := range runs {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		merged, qs, err := mergeRun(ctx, root, cat, dir, run, opts)
		st.Quarantined = append(st.Quarantined, qs...)
		if err != nil {
			return st, err
		}
		if merged.Name == "" {
			continue // a corrupt file was quarantined; the next run retries
		}
		st.FilesIn += len(run)
		st.FilesOut++
		st.Rows += merged.Rows
		st.BytesOut += merged.Bytes
		for _, f := range run {
			st.BytesIn += listed[filepath.Base(f)].Bytes
		}
	}
	if st.FilesOut > 0 {
		st.Hours = 1
	}
	return st, nil
}

// compactionRuns groups the live files of each source partition, in
// offset order, into runs of adjacent small files whose sizes add up to
// at most the target.
func compactionRuns(live []string, listed map[string]MarkerFile, opts CompactOptions) [][]string {
	type file struct {
		path        string
		first, last int64
		bytes       int64
	}
	byPart := map[int32][]file{}
	for _, p := range live {
		part, first, last, ok := ParsePartName(p)
		if !ok {
			continue
		}
		byPart[part] = append(byPart[part], file{p, first, last, listed[filepath.Base(p)].Bytes})
	}
	parts := make([]int32, 0, len(byPart))
	for p := range byPart {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var runs [][]string
	for _, p := range parts {
		fs := byPart[p]
		sort.Slice(fs, func(i, j int) bool { return fs[i].first < fs[j].first })
		var run []string
		var size int64
		flush := func() {
			if len(run) >= opts.MinFiles {
				runs = append(runs, run)
			}
			run, size = nil, 0
		}
		for _, f := range fs {
			if f.bytes >= opts.TargetBytes {
				flush() // a big file breaks adjacency
				continue
			}
			if size+f.bytes > opts.TargetBytes {
				flush()
			}
			run = append(run, f.path)
			size += f.bytes
		}
		flush()
	}
	return runs
}

// mergeRun writes the events of run (files of one partition, adjacent in
// offset order) into one file named for their union range, rewrites the
// marker and removes the run. A corrupt file in the run is quarantined and
// nothing is merged (merged.Name is empty).
func mergeRun(ctx context.Context, root string, cat *schemas.Catalog, dir string, run []string, opts CompactOptions) (merged MarkerFile, qs []Quarantined, err error) {
	cols := NewEventColumns(cat)
	ingest := schemas.Timestamp(math.MinInt64)
	for _, f := range run {
		err := ReadEvents(ctx, cat, []string{f}, func(rec arrow.RecordBatch) error {
			newest, err := cols.AppendRecord(rec)
			ingest = max(ingest, newest)
			return err
		})
		if err != nil {
			q, ok, qerr := QuarantineCorrupt(root, err)
			if !ok {
				return MarkerFile{}, nil, fmt.Errorf("compacting %s: %w", dir, err)
			}
			if qerr != nil {
				return MarkerFile{}, nil, qerr
			}
			return MarkerFile{}, []Quarantined{q}, nil
		}
	}
	if ingest == math.MinInt64 {
		ingest = schemas.TimestampOf(opts.Now())
	}
	p, first, _, _ := ParsePartName(run[0])
	_, _, last, _ := ParsePartName(run[len(run)-1])
	cols.SortByKey()
	// The compacted rows keep the newest ingest time of the files merged
	// (a file holds one ingest time per row, WriteEventsFile one per file).
	merged, err = WriteEventColumnsFile(filepath.Join(dir, PartName(p, first, last)), cols, ingest)
	if err != nil {
		return MarkerFile{}, nil, fmt.Errorf("compacting %s: %w", dir, err)
	}
	if err := CloseHour(dir); err != nil {
		return MarkerFile{}, nil, err
	}
	for _, f := range run {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return merged, nil, fmt.Errorf("compacting %s: removing merged file: %w", dir, err)
		}
	}
	return merged, nil, SyncDir(dir)
}

func removeSuperseded(dir string, all, live []string) (int, error) {
	keep := make(map[string]bool, len(live))
	for _, p := range live {
		keep[p] = true
	}
	n := 0
	for _, p := range all {
		if keep[p] {
			continue
		}
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return n, fmt.Errorf("removing superseded file: %w", err)
		}
		n++
	}
	return n, SyncDir(dir)
}

// LiveFiles drops from a list of data files every file that another file
// of the same source partition in the same folder supersedes: one whose
// offset range contains its own (see the compaction notes above). Other
// names are kept. The order of the rest is kept. Readers that list
// folders call it so that they never read an event twice while a
// compaction is under way.
func LiveFiles(paths []string) []string {
	type key struct {
		dir  string
		part int32
	}
	type span struct{ first, last int64 }
	spans := map[key][]span{}
	for _, p := range paths {
		part, first, last, ok := ParsePartName(p)
		if ok {
			k := key{filepath.Dir(p), part}
			spans[k] = append(spans[k], span{first, last})
		}
	}
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		part, first, last, ok := ParsePartName(p)
		if ok {
			superseded := false
			for _, s := range spans[key{filepath.Dir(p), part}] {
				if s.first <= first && last <= s.last && (s.first != first || s.last != last) {
					superseded = true
					break
				}
			}
			if superseded {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// LockFile is the file under the warehouse root that LockWarehouse locks.
const LockFile = "_lock"

// LockWarehouse takes the warehouse's exclusive lock (flock on
// <root>/_lock), which writers of events markers hold: the landing while
// it closes hours, compaction while it compacts one, retention while it
// removes partitions. It blocks until the lock is free. The lock is not
// re-entrant: do not take it twice in one process.
func LockWarehouse(root string) (unlock func() error, err error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("locking warehouse: %w", err)
	}
	path := filepath.Join(root, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking warehouse: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking warehouse %s: %w", path, err)
	}
	return func() error {
		uerr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		if cerr := f.Close(); uerr == nil {
			uerr = cerr
		}
		if uerr != nil {
			return fmt.Errorf("unlocking warehouse %s: %w", path, uerr)
		}
		return nil
	}, nil
}
