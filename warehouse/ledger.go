package warehouse

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ImportsDir is the folder of the import ledger under the warehouse root:
// one <sha256 of the content>.json per imported file.
const ImportsDir = "_imports"

// ImportPartitionBase is the _partition of the first imported file; the
// n-th import (its ordinal, counted from 0 across the warehouse's life)
// gets ImportPartitionBase+n. Keeping imports far above Kafka partition
// numbers means their part-<p>-… names never collide with the landing's.
const ImportPartitionBase = 1 << 20

// Import ledger entry states.
const (
	ImportPending = "pending" // ordinal reserved, data files may be partly written
	ImportDone    = "done"    // data files and markers committed
)

// LedgerEntry records one imported file, keyed by the SHA-256 of its
// content so that importing the same content again is a no-op.
type LedgerEntry struct {
	SHA256      string    `json:"sha256"`
	File        string    `json:"file"`
	Ordinal     int       `json:"ordinal"`
	Partition   int32     `json:"partition"`
	Status      string    `json:"status"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished,omitzero"`
	Read        int64     `json:"read"`
	Imported    int64     `json:"imported"`
	Rejected    int64     `json:"rejected"`
	DataFiles   []string  `json:"data_files,omitempty"`
	RejectsFile string    `json:"rejects_file,omitempty"`
}

// Ledger is the import ledger of a warehouse.
type Ledger struct {
	dir string
}

// OpenLedger returns the import ledger under root.
func OpenLedger(root string) *Ledger { return &Ledger{dir: filepath.Join(root, ImportsDir)} }

// Get returns the entry for a content hash; ok is false when there is none.
func (l *Ledger) Get(sha string) (e LedgerEntry, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(l.dir, sha+".json"))
	if os.IsNotExist(err) {
		return LedgerEntry{}, false, nil
	}
	if err != nil {
		return LedgerEntry{}, false, fmt.Errorf("reading import ledger: %w", err)
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return LedgerEntry{}, false, fmt.Errorf("import ledger entry %s: %w", filepath.Join(l.dir, sha+".json"), err)
	}
	return e, true, nil
}

// Put writes an entry atomically.
func (l *Ledger) Put(e LedgerEntry) error {
	return WriteFileAtomic(filepath.Join(l.dir, e.SHA256+".json"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(e)
	})
}

// List returns every entry, in no particular order.
func (l *Ledger) List() ([]LedgerEntry, error) {
	names, err := readDirNames(l.dir)
	if err != nil {
		return nil, err
	}
	var out []LedgerEntry
	for _, n := range names {
		sha, ok := strings.CutSuffix(n, ".json")
		if !ok || !IsDataName(n) {
			continue
		}
		e, ok, err := l.Get(sha)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// NextOrdinal is one past the largest ordinal in the ledger (pending
// entries included), 0 for an empty ledger.
func (l *Ledger) NextOrdinal() (int, error) {
	entries, err := l.List()
	if err != nil {
		return 0, err
	}
	next := 0
	for _, e := range entries {
		next = max(next, e.Ordinal+1)
	}
	return next, nil
}

// lock takes an exclusive lock on the ledger so that two imports into one
// warehouse never run at once. Call the returned function to release it.
func (l *Ledger) lock() (func(), error) {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", l.dir, err)
	}
	path := filepath.Join(l.dir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another import into %s is running (%s is locked)", filepath.Dir(l.dir), path)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// FileSHA256 hashes a file's content.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
