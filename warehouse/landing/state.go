package landing

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// StateDir is the landing's folder under the warehouse root. It holds
//
//	partitions/<topic>-<p>.json  where partition p resumes and how far its
//	                             event time has reached (partitionState)
//	reload/<hour ms>.json        the durable re-load queue: closed or
//	                             re-opened hours not yet loaded into
//	                             ClickHouse
const StateDir = "_landing"

// partitionState is what a partition's landing has made durable: every
// record before Next is in a committed file or in the DLQ.
type partitionState struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Next      int64  `json:"next"`
	// Reached is the newest event time in the partition's committed
	// files (unix ms); HasReached is false while there is none.
	Reached    int64     `json:"reached_ms"`
	HasReached bool      `json:"has_reached"`
	Written    time.Time `json:"written"`
}

func partitionPath(root, topic string, p int32) string {
	return filepath.Join(root, StateDir, "partitions", fmt.Sprintf("%s-%d.json", topic, p))
}

func readPartitionState(root, topic string, p int32) (partitionState, bool, error) {
	path := partitionPath(root, topic, p)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return partitionState{}, false, nil
	}
	if err != nil {
		return partitionState{}, false, fmt.Errorf("reading landing state: %w", err)
	}
	var s partitionState
	if err := json.Unmarshal(b, &s); err != nil {
		return partitionState{}, false, fmt.Errorf("landing state %s: %w", path, err)
	}
	return s, true, nil
}

func writePartitionState(root string, s partitionState) error {
	return warehouse.WriteFileAtomic(partitionPath(root, s.Topic, s.Partition), func(w io.Writer) error {
		return json.NewEncoder(w).Encode(s)
	})
}

// committedOffsets reads, from the names of the committed events files,
// the highest offset of each source partition in each hour: a record of
// partition p whose event time falls in hour h is in the warehouse iff
// its offset is at most that (files of one partition and hour are written
// in offset order, each holding every record of its range for its hour).
func committedOffsets(root string) (map[int32]map[schemas.Timestamp]int64, error) {
	hours, err := warehouse.ListHours(root, minTS, maxTS)
	if err != nil {
		return nil, err
	}
	out := map[int32]map[schemas.Timestamp]int64{}
	for _, h := range hours {
		files, err := warehouse.DataFiles(h.Dir)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			p, _, last, ok := warehouse.ParsePartName(f)
			if !ok {
				continue
			}
			m := out[p]
			if m == nil {
				m = map[schemas.Timestamp]int64{}
				out[p] = m
			}
			if cur, ok := m[h.Start]; !ok || last > cur {
				m[h.Start] = last
			}
		}
	}
	return out, nil
}

const (
	minTS = schemas.Timestamp(-1 << 63)
	maxTS = schemas.Timestamp(1<<63 - 1)
)

// reloadEntry is one queued hour.
type reloadEntry struct {
	Hour   int64     `json:"hour_ms"`
	Reason string    `json:"reason"`
	Queued time.Time `json:"queued"`
}

func reloadDir(root string) string { return filepath.Join(root, StateDir, "reload") }

// enqueueReload adds an hour to the durable re-load queue (idempotent).
func enqueueReload(root string, hour schemas.Timestamp, reason string, now time.Time) error {
	path := filepath.Join(reloadDir(root), strconv.FormatInt(int64(hour), 10)+".json")
	return warehouse.WriteFileAtomic(path, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(reloadEntry{Hour: int64(hour), Reason: reason, Queued: now.UTC()})
	})
}

// ReloadQueue lists the hours waiting to be loaded into ClickHouse,
// oldest first.
func ReloadQueue(root string) ([]schemas.Timestamp, error) {
	entries, err := os.ReadDir(reloadDir(root))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the re-load queue: %w", err)
	}
	var out []schemas.Timestamp
	for _, e := range entries {
		s, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !warehouse.IsDataName(e.Name()) {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, schemas.Timestamp(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func dequeueReload(root string, hour schemas.Timestamp) error {
	path := filepath.Join(reloadDir(root), strconv.FormatInt(int64(hour), 10)+".json")
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing %s from the re-load queue: %w", hour, err)
	}
	return warehouse.SyncDir(reloadDir(root))
}
