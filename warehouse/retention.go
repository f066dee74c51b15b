package warehouse

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-dev/portrait/schemas"
)

// RetentionStats is what Retention removed (or, dry, would remove).
type RetentionStats struct {
	// Hours and Snapshots are the partition folders removed, relative to
	// the root.
	Hours, Snapshots []string
	Files            int
	Bytes            int64
}

// ParseRetention reads a retention period: a Go duration ("36h") or a
// whole number of days ("90d").
func ParseRetention(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("retention %q: want a positive number of days like 90d or a duration like 36h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("retention %q: want a positive number of days like 90d or a duration like 36h", s)
	}
	return d, nil
}

// Retention removes the events hours that end at or before now−keep and
// the profiles snapshots with a cutoff at or before now−keep, except the
// newest complete snapshot (the base of the next recompute's lifetime
// tags). Each partition folder is first renamed to a hidden name, so a
// reader sees it whole or not at all, then deleted. It holds the
// warehouse lock. With dry, nothing is removed.
func Retention(root string, keep time.Duration, now time.Time, dry bool) (st RetentionStats, err error) {
	if keep <= 0 {
		return st, fmt.Errorf("retention: keep %s must be positive", keep)
	}
	horizon := schemas.TimestampOf(now.Add(-keep))
	unlock, err := LockWarehouse(root)
	if err != nil {
		return st, err
	}
	defer func() {
		if uerr := unlock(); err == nil {
			err = uerr
		}
	}()
	hours, err := ListHours(root, math.MinInt64, horizon)
	if err != nil {
		return st, err
	}
	for _, h := range hours {
		if h.Start+schemas.Timestamp(time.Hour.Milliseconds()) > horizon {
			continue
		}
		if err := removePartition(root, h.Dir, dry, &st); err != nil {
			return st, err
		}
		st.Hours = append(st.Hours, rel(root, h.Dir))
		if !dry {
			// Drop the day folder once its last hour is gone.
			_ = os.Remove(filepath.Dir(h.Dir))
		}
	}
	snaps, err := ListSnapshots(root)
	if err != nil {
		return st, err
	}
	for i, c := range snaps {
		if i == len(snaps)-1 || c > horizon {
			break
		}
		dir := SnapshotDir(root, c)
		if err := removePartition(root, dir, dry, &st); err != nil {
			return st, err
		}
		st.Snapshots = append(st.Snapshots, rel(root, dir))
	}
	return st, nil
}

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return r
}

// removePartition counts a partition folder's data files and removes it:
// rename to .deleting-<name> in its parent, fsync, then RemoveAll.
func removePartition(root, dir string, dry bool, st *RetentionStats) error {
	files, err := DataFiles(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			st.Files++
			st.Bytes += fi.Size()
		}
	}
	if dry {
		return nil
	}
	parent := filepath.Dir(dir)
	tmp := filepath.Join(parent, ".deleting-"+filepath.Base(dir)+"-"+randomSuffix())
	if err := os.Rename(dir, tmp); err != nil {
		return fmt.Errorf("retention: removing %s: %w", rel(root, dir), err)
	}
	if err := SyncDir(parent); err != nil {
		return fmt.Errorf("retention: removing %s: %w", rel(root, dir), err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("retention: removing %s: %w", rel(root, dir), err)
	}
	return nil
}
