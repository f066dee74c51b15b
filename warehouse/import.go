package warehouse

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/portrait-dev/portrait/schemas"
)

// RejectsDir is the default folder of rejects files under the warehouse
// root.
const RejectsDir = "_rejects"

// ImportConfig configures Import.
type ImportConfig struct {
	// Root is the warehouse folder.
	Root string `yaml:"root"`
	// Catalog gives the event schema the files are read with.
	Catalog *schemas.Catalog `yaml:"-"`
	// Files to import: CSV (with or without a header line) or JSON Lines
	// (.jsonl, .ndjson, .json).
	Files []string `yaml:"files"`
	// Rejects is the folder rejects files are written to; default
	// <Root>/_rejects.
	Rejects string `yaml:"rejects"`
	// ChunkRows is how many rows are held in memory before they are
	// written out as files (one per hour they fall in); default
	// 500,000. Memory grows with it: about 0.3 KB (taobao) to 0.7 KB
	// (ecommerce) per buffered row.
	ChunkRows int `yaml:"chunk_rows"`
	// Logger gets a line per file; default slog.Default().
	Logger *slog.Logger `yaml:"-"`
	// Progress, when set, gets a progress line every ProgressEvery lines
	// (default 1,000,000).
	Progress      io.Writer `yaml:"-"`
	ProgressEvery int64     `yaml:"progress_every"`
	// Now is the clock for _ingest_time and the ledger; default time.Now.
	Now func() time.Time `yaml:"-"`
}

func (c *ImportConfig) defaults() {
	if c.Rejects == "" {
		c.Rejects = filepath.Join(c.Root, RejectsDir)
	}
	if c.ChunkRows <= 0 {
		c.ChunkRows = 500_000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 1_000_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate names the first bad field of the config.
func (c *ImportConfig) Validate() error {
	switch {
	case c.Root == "":
		return errors.New("import: root (the warehouse folder) is required")
	case c.Catalog == nil:
		return errors.New("import: catalog is required")
	case len(c.Files) == 0:
		return errors.New("import: files: nothing to import")
	case c.ChunkRows < 0:
		return fmt.Errorf("import: chunk_rows %d is negative", c.ChunkRows)
	}
	return nil
}

// ImportStats sums up an import.
type ImportStats struct {
	Files []FileImport
	// Totals over the files.
	Read, Imported, Rejected int64
	// Skipped counts files whose content was imported before.
	Skipped int
}

// FileImport is what happened to one file.
type FileImport struct {
	File      string
	SHA256    string
	Partition int32
	// Skipped is true when the content was imported before (Previous
	// then says when); nothing is written.
	Skipped  bool
	Previous *LedgerEntry
	// Read counts records (non-blank lines, the header excluded);
	// Read = Imported + Rejected.
	Read, Imported, Rejected int64
	DataFiles                []string
	// RejectsFile holds one JSON object per rejected line (empty when
	// none were).
	RejectsFile string
}

// Reject is one line of a rejects file.
type Reject struct {
	File   string `json:"file"`
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
	Raw    string `json:"raw"`
}

// Import reads event files into the events table. Every row is validated
// against the catalog; a row that fails is written to a rejects file with
// its file, line and reason, never dropped. An imported row's _partition
// is the file's import partition (ImportPartitionBase + its ordinal in the
// ledger) and its _offset the line number, so among equal times the later
// line is last. Rows go to one file per event-time hour and chunk
// (part-<partition>-<firstLine>-<lastLine>.parquet), and the hours written
// are closed with _SUCCESS. The ledger makes imports idempotent: a file
// whose content was imported before is skipped, and a file whose import
// was interrupted is imported again under the same partition, its
// leftover files replaced. One import runs per warehouse at a time.
func Import(ctx context.Context, cfg ImportConfig) (ImportStats, error) {
	var stats ImportStats
	if err := cfg.Validate(); err != nil {
		return stats, err
	}
	cfg.defaults()
	ledger := OpenLedger(cfg.Root)
	unlock, err := ledger.lock()
	if err != nil {
		return stats, err
	}
	defer unlock()
	for _, path := range cfg.Files {
		fi, err := importFile(ctx, &cfg, ledger, path)
		if fi != nil {
			stats.Files = append(stats.Files, *fi)
			stats.Read += fi.Read
			stats.Imported += fi.Imported
			stats.Rejected += fi.Rejected
			if fi.Skipped {
				stats.Skipped++
			}
		}
		if err != nil {
			return stats, fmt.Errorf("importing %s: %w", path, err)
		}
	}
	return stats, nil
}

func importFile(ctx context.Context, cfg *ImportConfig, ledger *Ledger, path string) (*FileImport, error) {
	sha, err := FileSHA256(path)
	if err != nil {
		return nil, err
	}
	fi := &FileImport{File: path, SHA256: sha}
	prev, ok, err := ledger.Get(sha)
	if err != nil {
		return fi, err
	}
	if ok && prev.Status == ImportDone {
		fi.Skipped, fi.Previous, fi.Partition = true, &prev, prev.Partition
		cfg.Logger.Info("file already imported, nothing to do", "file", path, "sha256", sha[:12],
			"as", prev.File, "at", prev.Finished, "rows", prev.Imported)
		return fi, nil
	}
	entry := LedgerEntry{SHA256: sha, File: path, Status: ImportPending, Started: cfg.Now().UTC()}
	if ok { // an interrupted import of this content: resume under its partition
		entry.Ordinal, entry.Partition = prev.Ordinal, prev.Partition
		removed, err := removePartitionFiles(cfg.Root, prev.Partition)
		if err != nil {
			return fi, err
		}
		cfg.Logger.Info("resuming interrupted import", "file", path, "partition", prev.Partition, "removed_files", len(removed))
	} else {
		if entry.Ordinal, err = ledger.NextOrdinal(); err != nil {
			return fi, err
		}
		entry.Partition = int32(ImportPartitionBase + entry.Ordinal)
	}
	fi.Partition = entry.Partition
	if err := ledger.Put(entry); err != nil {
		return fi, err
	}

	rejectsPath := filepath.Join(cfg.Rejects, fmt.Sprintf("%s.%s.rejects.jsonl", filepath.Base(path), sha[:12]))
	hours, err := readFileInto(ctx, cfg, path, entry.Partition, fi, rejectsPath)
	if err != nil {
		return fi, err
	}
	if err := CloseHours(cfg.Root, hours); err != nil {
		return fi, err
	}
	entry.Status, entry.Finished = ImportDone, cfg.Now().UTC()
	entry.Read, entry.Imported, entry.Rejected = fi.Read, fi.Imported, fi.Rejected
	entry.DataFiles, entry.RejectsFile = fi.DataFiles, fi.RejectsFile
	if err := ledger.Put(entry); err != nil {
		return fi, err
	}
	cfg.Logger.Info("imported file", "file", path, "partition", entry.Partition, "read", fi.Read,
		"imported", fi.Imported, "rejected", fi.Rejected, "data_files", len(fi.DataFiles))
	return fi, nil
}

// readFileInto parses one file, writing its rows in chunks and its rejects
// to rejectsPath, and returns the hours it wrote to.
func readFileInto(ctx context.Context, cfg *ImportConfig, path string, partition int32, fi *FileImport, rejectsPath string) ([]schemas.Timestamp, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	rej, err := newRejectsWriter(rejectsPath)
	if err != nil {
		return nil, err
	}
	defer rej.abort()

	cat := cfg.Catalog
	ingest := schemas.TimestampOf(cfg.Now())
	touched := map[schemas.Timestamp]bool{}
	var buf []schemas.Event
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		written, err := WriteHourFiles(cfg.Root, cat, buf, ingest, PartFileName)
		if err != nil {
			return err
		}
		for h, mf := range written {
			touched[h] = true
			fi.DataFiles = append(fi.DataFiles, filepath.Join(HourDir(cfg.Root, h), mf.Name))
		}
		clear(buf) // drop the values so the GC can free them
		buf = buf[:0]
		return nil
	}
	reject := func(line int64, raw []byte, reason error) error {
		fi.Rejected++
		return rej.write(Reject{File: path, Line: line, Reason: reason.Error(), Raw: string(raw)})
	}

	lr := newLineReader(f)
	var dec rowDecoder
	format := FormatOf(path)
	if format == FormatJSONL {
		dec = &jsonDecoder{cat: cat}
	}
	nextProgress := cfg.ProgressEvery
	for {
		line, terminated, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading line %d: %w", lr.line+1, err)
		}
		if lr.line >= nextProgress {
			nextProgress += cfg.ProgressEvery
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "importing %s: %d lines (%.0f%%), %d rejected\n",
					path, lr.line, 100*float64(lr.bytes)/float64(max(st.Size(), 1)), fi.Rejected)
			}
		}
		if len(line) == 0 || isBlank(line) {
			continue // no record on a blank line
		}
		if dec == nil { // first CSV line: a header or data
			d, header, err := newCSVDecoder(cat, line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", lr.line, err)
			}
			dec = d
			if header {
				continue
			}
		}
		fi.Read++
		if !terminated {
			if err := reject(lr.line, line, errTruncated); err != nil {
				return nil, err
			}
			continue
		}
		values, err := dec.decode(line)
		if err != nil {
			if err := reject(lr.line, line, err); err != nil {
				return nil, err
			}
			continue
		}
		ts := values[cat.Time].(schemas.Timestamp)
		buf = append(buf, schemas.Event{Values: values, Time: ts, Partition: partition, Offset: lr.line})
		fi.Imported++
		if len(buf) >= cfg.ChunkRows {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if fi.Rejected > 0 {
		if err := rej.commit(); err != nil {
			return nil, err
		}
		fi.RejectsFile = rejectsPath
	}
	hours := make([]schemas.Timestamp, 0, len(touched))
	for h := range touched {
		hours = append(hours, h)
	}
	return hours, nil
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// removePartitionFiles deletes every events data file of one source
// partition (what an interrupted import left behind) and reopens the
// hours it touched by rewriting their markers.
func removePartitionFiles(root string, partition int32) ([]string, error) {
	files, err := AllEventFiles(root)
	if err != nil {
		return nil, err
	}
	var removed []string
	dirs := map[string]bool{}
	for _, path := range files {
		if p, _, _, ok := ParsePartName(path); ok && p == partition {
			if err := os.Remove(path); err != nil {
				return removed, fmt.Errorf("removing leftover %s: %w", path, err)
			}
			removed = append(removed, path)
			dirs[filepath.Dir(path)] = true
		}
	}
	for dir := range dirs {
		if err := SyncDir(dir); err != nil {
			return removed, err
		}
		if err := CloseHour(dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// rejectsWriter streams rejects into a temp file that is renamed into
// place on commit, so a rejects file is complete or absent.
type rejectsWriter struct {
	path, tmp string
	f         *os.File
	bw        *bufio.Writer
	enc       *json.Encoder
}

func newRejectsWriter(path string) (*rejectsWriter, error) {
	return &rejectsWriter{path: path}, nil
}

func (r *rejectsWriter) write(rj Reject) error {
	if r.f == nil {
		dir := filepath.Dir(r.path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		r.tmp = filepath.Join(dir, TempPrefix+filepath.Base(r.path)+"."+randomSuffix())
		f, err := os.OpenFile(r.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("creating rejects file: %w", err)
		}
		r.f, r.bw = f, bufio.NewWriterSize(f, 1<<16)
		r.enc = json.NewEncoder(r.bw)
		r.enc.SetEscapeHTML(false)
	}
	if err := r.enc.Encode(rj); err != nil {
		return fmt.Errorf("writing rejects file: %w", err)
	}
	return nil
}

func (r *rejectsWriter) commit() error {
	if r.f == nil {
		return nil
	}
	if err := r.bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", r.path, err)
	}
	if err := r.f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", r.path, err)
	}
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", r.path, err)
	}
	r.f = nil
	if err := os.Rename(r.tmp, r.path); err != nil {
		return fmt.Errorf("renaming %s: %w", r.tmp, err)
	}
	return SyncDir(filepath.Dir(r.path))
}

// abort removes the temp file of an uncommitted rejects file.
func (r *rejectsWriter) abort() {
	if r.f != nil {
		_ = r.f.Close()
		_ = os.Remove(r.tmp)
		r.f = nil
	}
}
