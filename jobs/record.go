package jobs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portrait-dev/portrait/warehouse"
)

// Dir is the scheduler's folder under the warehouse root: run records and
// lock files.
const Dir = "_jobs"

// Status is the outcome of one attempt.
type Status string

// The statuses of a run record.
const (
	StatusOK      Status = "ok"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped"
)

// Triggers: what started a run.
const (
	TriggerSchedule = "schedule"
	TriggerCatchUp  = "catchup"
	TriggerManual   = "manual"
)

// Run is the record of one attempt of a job run. Every attempt of a run
// shares its RunID; a run that could not start (the job was already
// running) is one record with status skipped and the reason in Error.
type Run struct {
	Job     string `json:"job"`
	RunID   string `json:"run_id"`
	Attempt int    `json:"attempt"`
	Trigger string `json:"trigger"`
	// Scheduled is the activation the run is for (for manual runs, when
	// it was asked for).
	Scheduled time.Time `json:"scheduled"`
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended"`
	Status    Status    `json:"status"`
	Rows      int64     `json:"rows"`
	Error     string    `json:"error,omitempty"`
	// Detail is the job's own one-line summary (e.g. the cutoff used).
	Detail string `json:"detail,omitempty"`
}

// Recorder stores run records somewhere durable.
type Recorder interface {
	Record(ctx context.Context, r Run) error
}

// RunLog keeps run records in the warehouse as JSON Lines, one file per
// UTC day of the attempt's start: <root>/_jobs/runs-YYYY-MM-DD.jsonl.
// Each record is one write(2) of one line to a file opened O_APPEND,
// fsynced before Record returns, so records of concurrent processes never
// interleave and a crash loses at most a torn last line, which readers
// skip.
type RunLog struct {
	root string
	mu   sync.Mutex
}

// NewRunLog returns the run log of the warehouse at root.
func NewRunLog(root string) *RunLog { return &RunLog{root: root} }

// Path is the file that holds the records of attempts started on day.
func (l *RunLog) Path(day time.Time) string {
	return filepath.Join(l.root, Dir, "runs-"+day.UTC().Format("2006-01-02")+".jsonl")
}

// Record appends r to its day's file and fsyncs it.
func (l *RunLog) Record(_ context.Context, r Run) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding run record of %s: %w", r.Job, err)
	}
	line = append(line, '\n')
	path := l.Path(r.Started)
	l.mu.Lock()
	defer l.mu.Unlock()
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("recording run of %s: %w", r.Job, err)
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("recording run of %s: %w", r.Job, err)
	}
	if _, err := f.Write(line); err != nil {
		_ = f.Close()
		return fmt.Errorf("recording run of %s in %s: %w", r.Job, path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	if os.IsNotExist(statErr) {
		return warehouse.SyncDir(dir) // the new file's name must survive a crash too
	}
	return nil
}

// History returns the newest records first; job "" means every job, and
// limit <= 0 means all.
func (l *RunLog) History(job string, limit int) ([]Run, error) {
	var out []Run
	err := l.scan(func(r Run) bool {
		if job == "" || r.Job == job {
			out = append(out, r)
		}
		return limit <= 0 || len(out) < limit
	})
	return out, err
}

// Last returns the newest record of job whose status is one of statuses
// (any status when none is given).
func (l *RunLog) Last(job string, statuses ...Status) (Run, bool, error) {
	var (
		found Run
		ok    bool
	)
	err := l.scan(func(r Run) bool {
		if r.Job == job && (len(statuses) == 0 || slices.Contains(statuses, r.Status)) {
			found, ok = r, true
			return false
		}
		return true
	})
	return found, ok, err
}

// scan calls fn with the records newest first (by day file, then by line
// in reverse order; within a day, later lines were appended later) until
// fn returns false.
func (l *RunLog) scan(fn func(Run) bool) error {
	dir := filepath.Join(l.root, Dir)
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing run records in %s: %w", dir, err)
	}
	var files []string
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "runs-") && strings.HasSuffix(n, ".jsonl") {
			files = append(files, n)
		}
	}
	slices.Sort(files)
	for i := len(files) - 1; i >= 0; i-- {
		runs, err := readRuns(filepath.Join(dir, files[i]))
		if err != nil {
			return err
		}
		for j := len(runs) - 1; j >= 0; j-- {
			if !fn(runs[j]) {
				return nil
			}
		}
	}
	return nil
}

// readRuns reads one day's records. A last line without its newline is
// a record torn by a crash and is skipped; any other bad line is an error
// naming file and line.
func readRuns(path string) ([]Run, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading run records: %w", err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
		data = data[:i+1] // torn last line
	}
	var out []Run
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r Run
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("run record %s:%d: %w", path, line, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

// multiRecorder records in each recorder; the errors are joined.
type multiRecorder []Recorder

func (m multiRecorder) Record(ctx context.Context, r Run) error {
	var errs []error
	for _, rec := range m {
		if err := rec.Record(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
