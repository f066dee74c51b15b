package warehouse

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Marker is the content of a _SUCCESS file: what a complete partition or
// snapshot holds.
type Marker struct {
	Files []MarkerFile `json:"files"`
	Rows  int64        `json:"rows"`
	// CatalogHash is set on snapshots: the catalog the tags were computed
	// with.
	CatalogHash string    `json:"catalog_hash,omitempty"`
	Written     time.Time `json:"written"`
	// Extra holds table-specific facts (for snapshots: the cutoff, the
	// base snapshot used, per-hour row counts read).
	Extra map[string]any `json:"extra,omitempty"`
}

// MarkerFile is one data file listed in a marker.
type MarkerFile struct {
	Name  string `json:"name"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// WriteMarker writes dir/_SUCCESS atomically.
func WriteMarker(dir string, m Marker) error {
	if m.Written.IsZero() {
		m.Written = time.Now().UTC()
	}
	return WriteFileAtomic(filepath.Join(dir, SuccessMarker), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	})
}

// ReadMarker reads dir/_SUCCESS; ok is false when there is none.
func ReadMarker(dir string) (m Marker, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, SuccessMarker))
	if os.IsNotExist(err) {
		return Marker{}, false, nil
	}
	if err != nil {
		return Marker{}, false, fmt.Errorf("reading marker in %s: %w", dir, err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return Marker{}, false, fmt.Errorf("marker %s: %w", filepath.Join(dir, SuccessMarker), err)
	}
	return m, true, nil
}
