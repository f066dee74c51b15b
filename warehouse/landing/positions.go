package landing

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/portrait-dev/portrait/schemas"
)

// Position is how far the landing of one Kafka partition has durably
// come, as `portrait warehouse ls` shows it.
type Position struct {
	Topic     string
	Partition int32
	// Next is the offset the partition resumes from.
	Next int64
	// Reached is the newest event time in its committed files (valid when
	// HasReached).
	Reached    schemas.Timestamp
	HasReached bool
	Written    time.Time
}

// Positions reads the landing positions stored under root, ordered by
// topic and partition; none when nothing was landed.
func Positions(root string) ([]Position, error) {
	dir := filepath.Join(root, StateDir, "partitions")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing landing positions: %w", err)
	}
	var out []Position
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading landing position: %w", err)
		}
		var s partitionState
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("landing position %s: %w", path, err)
		}
		out = append(out, Position{Topic: s.Topic, Partition: s.Partition, Next: s.Next,
			Reached: schemas.Timestamp(s.Reached), HasReached: s.HasReached, Written: s.Written})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}
