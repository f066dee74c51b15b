package serving

import (
	"context"
	"fmt"
	"math"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// Repairer rebuilds users' speed state from the warehouse (*stream.Speed).
type Repairer interface {
	// KeepFrom is the start of the oldest bucket the speed layer keeps:
	// rebuilt users need their events from there on.
	KeepFrom() schemas.Timestamp
	// RebuildUsers replaces, atomically and durably, the state of every
	// user in events (their warehouse events from KeepFrom on; a user may
	// have none) with state rebuilt from those events on top of the
	// lifetime base of the snapshot of cutoff snapshot in root. It
	// returns how many users it rebuilt.
	RebuildUsers(ctx context.Context, root string, snapshot schemas.Timestamp, events map[any][]schemas.Event) (int, error)
}

// RepairStats says what a repair did.
type RepairStats struct {
	// Users rebuilt, from Events read out of Files.
	Users  int   `json:"users"`
	Events int64 `json:"events"`
	Files  int   `json:"files"`
	// LandingBehind lists, by Kafka partition, the next offset the
	// warehouse's file names reach when it is below the speed layer's:
	// events in between were not in the rebuild (they reach the speed
	// layer again only by a replay). Empty when the landing had caught up.
	LandingBehind map[int32]int64 `json:"landing_behind,omitempty"`
}

// positioner is a Repairer that tells how far it consumed each partition
// (*stream.Speed).
type positioner interface {
	Positions() map[int32]int64
}

// landingBehind compares the offset ranges in the data file names with
// the speed layer's positions.
func landingBehind(files []string, pos map[int32]int64) map[int32]int64 {
	landed := map[int32]int64{}
	for _, f := range files {
		if p, _, last, ok := warehouse.ParsePartName(f); ok {
			landed[p] = max(landed[p], last+1)
		}
	}
	var out map[int32]int64
	for p, next := range pos {
		if got := landed[p]; next > 0 && got < next {
			if out == nil {
				out = map[int32]int64{}
			}
			out[p] = got
		}
	}
	return out
}

// repair reads the drifting users' events the speed layer keeps from the
// warehouse and has the speed layer rebuild them.
func repair(ctx context.Context, cfg *ReconcileConfig, keys []any) (RepairStats, error) {
	var st RepairStats
	from := cfg.Repairer.KeepFrom()
	files, err := warehouse.EventFilesFor(cfg.Root, from, math.MaxInt64)
	if err != nil {
		return st, fmt.Errorf("repair: listing event files from %s: %w", from, err)
	}
	st.Files = len(files)
	if ps, ok := cfg.Repairer.(positioner); ok {
		// Late records land in old hours: look at every file name.
		all, err := warehouse.AllEventFiles(cfg.Root)
		if err != nil {
			return st, fmt.Errorf("repair: listing event files: %w", err)
		}
		if st.LandingBehind = landingBehind(all, ps.Positions()); len(st.LandingBehind) > 0 {
			cfg.Logger.Warn("repair: the warehouse lags the speed layer; events not landed yet are left out of the rebuilt users",
				"landed_next_by_partition", st.LandingBehind, "speed_next_by_partition", ps.Positions())
		}
	}
	events, err := warehouse.ReadEventRows(ctx, cfg.Catalog, files)
	if err != nil {
		return st, fmt.Errorf("repair: reading events from %s: %w", from, err)
	}
	byKey := make(map[any][]schemas.Event, len(keys))
	for _, k := range keys {
		byKey[k] = nil
	}
	for i := range events {
		e := &events[i]
		if e.Time < from {
			continue
		}
		k := e.Values[cfg.Catalog.Key]
		if evs, ok := byKey[k]; ok {
			byKey[k] = append(evs, *e)
			st.Events++
		}
	}
	n, err := cfg.Repairer.RebuildUsers(ctx, cfg.Root, cfg.Snapshot, byKey)
	if err != nil {
		return st, fmt.Errorf("repair: rebuilding %d users: %w", len(keys), err)
	}
	st.Users = n
	cfg.Logger.Info("repaired drifting users", "snapshot", cfg.Snapshot, "users", n, "events", st.Events, "files", st.Files)
	return st, nil
}
