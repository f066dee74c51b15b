package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/portrait-dev/portrait/schemas"
)

// QuarantineDir is the folder under the warehouse root that takes data
// files which are not valid events files. A quarantined file keeps its path
// relative to the root (…/_quarantine/events/dt=…/hour=…/part-….parquet)
// and gets a <name>.reason file beside it. Nothing in the warehouse reads or
// deletes what is there: an operator inspects it and removes it by hand.
const QuarantineDir = "_quarantine"

// ReasonSuffix ends the name of the file that says why a file was
// quarantined.
const ReasonSuffix = ".reason"

// Quarantined is one file moved to quarantine.
type Quarantined struct {
	// Path is where the file was; Dest where it is now.
	Path, Dest string
	// Reason is the error that made it unreadable.
	Reason string
}

// Quarantine moves the data file at path (under root) to the quarantine
// folder and writes why beside it, then rewrites the marker of an events
// hour that listed it, so that it is never read as data again (and never
// deleted). A file already quarantined under the same name gets a numbered
// suffix. It returns the new path.
func Quarantine(root, path string, reason error) (string, error) {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("quarantining %s: not under the warehouse %s", path, root)
	}
	dest := filepath.Join(root, QuarantineDir, rel)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", fmt.Errorf("quarantining %s: %w", path, err)
	}
	for i := 1; ; i++ {
		if _, err := os.Lstat(dest); os.IsNotExist(err) {
			break
		}
		dest = filepath.Join(root, QuarantineDir, rel+"."+strconv.Itoa(i))
	}
	msg := "unknown"
	if reason != nil {
		msg = reason.Error()
	}
	// The reason goes first: a crash between the two steps leaves a reason
	// file without its data file, never an unexplained file.
	err = WriteFileAtomic(dest+ReasonSuffix, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "file: %s\nquarantined: %s\nreason: %s\n", rel, time.Now().UTC().Format(time.RFC3339), msg)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("quarantining %s: %w", path, err)
	}
	if err := os.Rename(path, dest); err != nil {
		return "", fmt.Errorf("quarantining %s: %w", path, err)
	}
	if err := SyncDir(filepath.Dir(dest)); err != nil {
		return "", fmt.Errorf("quarantining %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := SyncDir(dir); err != nil {
		return "", fmt.Errorf("quarantining %s: %w", path, err)
	}
	if _, ok, _ := ReadMarker(dir); ok {
		if err := CloseHour(dir); err != nil {
			return dest, fmt.Errorf("quarantined %s but could not rewrite the marker: %w", path, err)
		}
	}
	return dest, nil
}

// QuarantineCorrupt quarantines the file named by a *CorruptFileError in
// err (as ReadEvents, ReadEventRows and FileRows return them). ok is false
// when err holds none; then nothing is moved.
func QuarantineCorrupt(root string, err error) (q Quarantined, ok bool, qerr error) {
	var ce *CorruptFileError
	if !errors.As(err, &ce) {
		return Quarantined{}, false, nil
	}
	dest, qerr := Quarantine(root, ce.Path, ce.Err)
	return Quarantined{Path: ce.Path, Dest: dest, Reason: ce.Err.Error()}, true, qerr
}

// ReadEventsQuarantining is ReadEvents over the listed files that moves
// every corrupt file to quarantine (QuarantineCorrupt) and goes on with the
// next file instead of failing. A file that fails after some of its row
// groups were given to fn has given those rows: callers that must not see
// part of a file should check files first (VerifyEvents). It returns the
// files quarantined.
func ReadEventsQuarantining(ctx context.Context, root string, cat *schemas.Catalog, files []string, fn func(arrow.RecordBatch) error) ([]Quarantined, error) {
	var out []Quarantined
	for _, f := range files {
		err := ReadEvents(ctx, cat, []string{f}, fn)
		if err == nil {
			continue
		}
		q, ok, qerr := QuarantineCorrupt(root, err)
		if !ok {
			return out, err
		}
		if qerr != nil {
			return out, qerr
		}
		out = append(out, q)
	}
	return out, nil
}

// VerifyEvents reads every data file of the events hours overlapping
// [from, to) in full and quarantines the ones that are not valid events
// files of the catalog (empty, truncated, bad magic, checksum or decoding
// failures, wrong columns). It returns the files quarantined.
func VerifyEvents(ctx context.Context, root string, cat *schemas.Catalog, from, to schemas.Timestamp) ([]Quarantined, error) {
	files, err := EventFilesFor(root, from, to)
	if err != nil {
		return nil, err
	}
	return ReadEventsQuarantining(ctx, root, cat, files, func(arrow.RecordBatch) error { return nil })
}

// ListQuarantine lists what is in quarantine: every file with its reason
// (empty when the reason file is missing).
func ListQuarantine(root string) ([]Quarantined, error) {
	base := filepath.Join(root, QuarantineDir)
	var out []Quarantined
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if os.IsNotExist(err) && p == base {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(p, ReasonSuffix) || strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		q := Quarantined{Path: filepath.Join(root, rel), Dest: p}
		if b, err := os.ReadFile(p + ReasonSuffix); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if r, ok := strings.CutPrefix(line, "reason: "); ok {
					q.Reason = r
				}
			}
		}
		out = append(out, q)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", base, err)
	}
	return out, nil
}
