package warehouse

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/portrait-dev/portrait/schemas"
)

// Table folder names under the warehouse root.
const (
	EventsTable   = "events"
	ProfilesTable = "profiles"
	SuccessMarker = "_SUCCESS"
)

const snapshotFormat = "20060102T150405Z"

// HourDir is the folder of the event-time hour that holds ts.
func HourDir(root string, ts schemas.Timestamp) string {
	t := ts.Time().Truncate(time.Hour)
	return filepath.Join(root, EventsTable, "dt="+t.Format("2006-01-02"), fmt.Sprintf("hour=%02d", t.Hour()))
}

// SnapshotDir is the folder of the profiles snapshot with cutoff c.
func SnapshotDir(root string, c schemas.Timestamp) string {
	return filepath.Join(root, ProfilesTable, "snapshot="+c.Time().Format(snapshotFormat))
}

// Hour is one event-time hour partition.
type Hour struct {
	Start schemas.Timestamp
	Dir   string
}

// ParseHourDir reads the hour of an events partition folder
// (…/dt=YYYY-MM-DD/hour=HH).
func ParseHourDir(dir string) (schemas.Timestamp, error) {
	hour := filepath.Base(dir)
	day := filepath.Base(filepath.Dir(dir))
	d, ok1 := strings.CutPrefix(day, "dt=")
	h, ok2 := strings.CutPrefix(hour, "hour=")
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("%s is not an events partition (want dt=YYYY-MM-DD/hour=HH)", dir)
	}
	t, err := time.Parse("2006-01-02 15", d+" "+h)
	if err != nil {
		return 0, fmt.Errorf("%s is not an events partition: %w", dir, err)
	}
	return schemas.TimestampOf(t), nil
}

// ListHours returns the events partitions whose hour overlaps [from, to),
// oldest first. Pass from = math.MinInt64 for "from the beginning".
func ListHours(root string, from, to schemas.Timestamp) ([]Hour, error) {
	days, err := readDirNames(filepath.Join(root, EventsTable))
	if err != nil {
		return nil, err
	}
	var out []Hour
	for _, day := range days {
		if !strings.HasPrefix(day, "dt=") {
			continue
		}
		hours, err := readDirNames(filepath.Join(root, EventsTable, day))
		if err != nil {
			return nil, err
		}
		for _, h := range hours {
			dir := filepath.Join(root, EventsTable, day, h)
			start, err := ParseHourDir(dir)
			if err != nil {
				continue
			}
			if start+schemas.Timestamp(time.Hour.Milliseconds()) <= from || start >= to {
				continue
			}
			out = append(out, Hour{Start: start, Dir: dir})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, nil
}

// ListSnapshots returns the cutoffs of the complete profiles snapshots
// (those with a _SUCCESS marker), oldest first.
func ListSnapshots(root string) ([]schemas.Timestamp, error) {
	names, err := readDirNames(filepath.Join(root, ProfilesTable))
	if err != nil {
		return nil, err
	}
	var out []schemas.Timestamp
	for _, n := range names {
		v, ok := strings.CutPrefix(n, "snapshot=")
		if !ok {
			continue
		}
		t, err := time.Parse(snapshotFormat, v)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, ProfilesTable, n, SuccessMarker)); err != nil {
			continue
		}
		out = append(out, schemas.TimestampOf(t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// DataFiles lists the data files (*.parquet, not hidden) of a folder,
// sorted by name.
func DataFiles(dir string) ([]string, error) {
	names, err := readDirNames(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if IsDataName(n) && strings.HasSuffix(n, ".parquet") {
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out, nil
}

// readDirNames lists a folder's entries by name; a missing folder is empty.
func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}
