package warehouse

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// PartitionInfo describes one partition folder of a table: an events hour
// or a profiles snapshot.
type PartitionInfo struct {
	Table string
	// Name is the partition's path under its table, e.g.
	// dt=2017-11-26/hour=01 or snapshot=20171126T020000Z.
	Name string
	Dir  string
	// Files are the data files in the folder; Rows is -1 for a file the
	// marker does not list.
	Files []MarkerFile
	// Rows and Bytes sum the files (Rows counts only files with known rows).
	Rows, Bytes int64
	// Marked is true when the folder has a _SUCCESS marker; Complete when
	// the marker lists exactly the data files in the folder (a straggler
	// file written after the marker re-opens an events hour).
	Marked, Complete bool
}

// Inventory lists every partition of the events and profiles tables under
// root, events hours oldest first, then snapshots oldest first. Row counts
// come from the markers; no data file is opened.
func Inventory(root string) ([]PartitionInfo, error) {
	var out []PartitionInfo
	hours, err := ListHours(root, math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	for _, h := range hours {
		name := filepath.Base(filepath.Dir(h.Dir)) + "/" + filepath.Base(h.Dir)
		p, err := partitionInfo(EventsTable, name, h.Dir)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	snaps, err := readDirNames(filepath.Join(root, ProfilesTable))
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		if !strings.HasPrefix(s, "snapshot=") {
			continue
		}
		p, err := partitionInfo(ProfilesTable, s, filepath.Join(root, ProfilesTable, s))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func partitionInfo(table, name, dir string) (PartitionInfo, error) {
	p := PartitionInfo{Table: table, Name: name, Dir: dir}
	m, ok, err := ReadMarker(dir)
	if err != nil {
		return p, err
	}
	p.Marked = ok
	known := make(map[string]MarkerFile, len(m.Files))
	for _, f := range m.Files {
		known[f.Name] = f
	}
	files, err := DataFiles(dir)
	files = LiveFiles(files)
	if err != nil {
		return p, err
	}
	p.Complete = ok && len(files) == len(m.Files)
	for _, path := range files {
		name := filepath.Base(path)
		mf, inMarker := known[name]
		if !inMarker {
			p.Complete = false
			st, err := os.Stat(path)
			if err != nil {
				return p, fmt.Errorf("listing %s: %w", dir, err)
			}
			mf = MarkerFile{Name: name, Rows: -1, Bytes: st.Size()}
		} else {
			p.Rows += mf.Rows
		}
		p.Bytes += mf.Bytes
		p.Files = append(p.Files, mf)
	}
	return p, nil
}
