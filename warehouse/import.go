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

	"github.com/portrait-dev/portrait/internal/source"
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
	// (.jsonl, .ndjson, .json), optionally gzipped (.gz); see
	// internal/source for the rules.
	Files []string `yaml:"files"`
	// Format of every file; "" tells each file's format from its name
	// (source.FormatOf).
	Format source.Format `yaml:"format"`
	// Rejects is the folder rejects files are written to; default
	// <Root>/_rejects.
	Rejects string `yaml:"rejects"`
	// ChunkRows is how many rows are held in memory before they are
	// written out as files (one per hour they fall in); default
	// 500,000. Rows are buffered column by column, about 0.1 KB
	// (ecommerce: 11 fields) per row, and turned back into events a few
	// whole hours (about 64Ki rows) at a time as they are written: a
	// 500,000-row chunk of ecommerce peaks near 175 MB of live heap.
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
	if _, err := source.ParseFormat(string(c.Format)); err != nil {
		return fmt.Errorf("import: format: %w", err)
	}
	if c.Format == "" {
		for _, f := range c.Files {
			if _, err := source.FormatOf(f); err != nil {
				return fmt.Errorf("import: files: %w", err)
			}
		}
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
	r, err := source.Open(cfg.Catalog, path, cfg.Format)
	if err != nil {
		return nil, err
	}
	defer r.Close() //nolint:errcheck // read-only
	st, err := os.Stat(path)
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
	buf := newChunk(cat)
	flush := func() error {
		err := buf.batches(partition, func(events []schemas.Event) error {
			written, err := WriteHourFiles(cfg.Root, cat, events, ingest, PartFileName)
			for h, mf := range written {
				touched[h] = true
				fi.DataFiles = append(fi.DataFiles, filepath.Join(HourDir(cfg.Root, h), mf.Name))
			}
			return err
		})
		buf.reset()
		return err
	}

	nextProgress := cfg.ProgressEvery
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		var re *source.RowError
		if errors.As(err, &re) { // a bad header
			return nil, fmt.Errorf("line %d: %w", re.Line, re.Err)
		}
		if err != nil {
			return nil, err
		}
		if int64(row.Line) >= nextProgress {
			nextProgress = (int64(row.Line)/cfg.ProgressEvery + 1) * cfg.ProgressEvery
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "importing %s: %d lines (%.0f%%), %d rejected\n",
					path, row.Line, 100*float64(r.BytesRead())/float64(max(st.Size(), 1)), fi.Rejected)
			}
		}
		fi.Read++
		if row.Err != nil {
			fi.Rejected++
			reason := row.Err
			if errors.As(row.Err, &re) {
				reason = re.Err
			}
			if err := rej.write(Reject{File: path, Line: int64(row.Line), Reason: reason.Error(), Raw: string(row.Raw)}); err != nil {
				return nil, err
			}
			continue
		}
		buf.add(row.Values, int64(row.Line))
		fi.Imported++
		if buf.len() >= cfg.ChunkRows {
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
