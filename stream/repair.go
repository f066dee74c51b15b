package stream

import (
	"context"
	"fmt"
	"slices"

	"github.com/portrait-dev/portrait/schemas"
)

// KeepFrom is the start of the oldest bucket kept by any owned partition:
// a rebuilt user needs its events from there on (0 with no partition).
func (s *Speed) KeepFrom() schemas.Timestamp {
	g := s.eng
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out schemas.Timestamp
	first := true
	for _, part := range g.parts {
		if kf := g.x.KeepFrom(part.wm); first || kf < out {
			out, first = kf, false
		}
	}
	return out
}

// RebuildUsers replaces the state of every user in events with state
// rebuilt from their events (from the warehouse, from KeepFrom on; a user
// may have none) on top of the lifetime base of the snapshot of cutoff
// snapshot under root. Only the events the speed layer has consumed
// already count (offset below its partition's next offset): later ones
// arrive through Kafka. A user is placed in the partition that holds it,
// else the one of its events or of its drift marks; users with none of
// these, or whose partition is not owned, are skipped. The rebuilt users
// are written in one checkpoint before RebuildUsers returns, and their
// drift marks are forgotten. It returns how many users it rebuilt.
func (s *Speed) RebuildUsers(ctx context.Context, root string, snapshot schemas.Timestamp, events map[any][]schemas.Event) (int, error) {
	var base map[any][]schemas.Partial
	if r := s.eng.rebase.Load(); r != nil && r.cutoff == snapshot {
		base = r.base
	} else {
		var err error
		if base, err = s.readBase(root, snapshot); err != nil {
			return 0, fmt.Errorf("rebuilding users: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	g := s.eng
	keys := make([]any, 0, len(events))
	for k := range events {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, schemas.Compare)

	g.gate.Lock()
	g.mu.RLock()
	parts := make(map[int32]*partition, len(g.parts))
	for p, part := range g.parts {
		parts[p] = part
	}
	g.mu.RUnlock()
	rebuilt, newDirty := 0, 0
	var skipped, done []any
	var failure error
	for _, key := range keys {
		k, ok := g.normalizeKey(key)
		if !ok {
			skipped = append(skipped, key)
			continue
		}
		var part *partition
		var en *entry
		for _, pt := range parts {
			if e := pt.users.get(k); e != nil { // gate: no other writer
				part, en = pt, e
				break
			}
		}
		evs := events[key]
		if part == nil {
			p, ok := int32(0), false
			if len(evs) > 0 {
				p, ok = evs[0].Partition, true
			} else {
				p, ok = g.drift.partitionOf(k)
			}
			if part = parts[p]; !ok || part == nil {
				skipped = append(skipped, key)
				continue
			}
		}
		g.mu.RLock()
		kf, next := g.x.KeepFrom(part.wm), part.next
		g.mu.RUnlock()
		if kf > snapshot {
			failure = fmt.Errorf("partition %d keeps buckets from %s only, after snapshot %s", part.id, kf, snapshot)
			break
		}
		evs = slices.Clone(evs)
		slices.SortFunc(evs, func(a, b schemas.Event) int {
			if a.Before(&b) {
				return -1
			}
			if b.Before(&a) {
				return 1
			}
			return 0
		})
		u := g.x.NewUser(k)
		g.x.Rebase(u, snapshot, base[k])
		for i := range evs {
			if e := &evs[i]; e.Partition == part.id && e.Offset < next {
				g.x.Apply(u, e, kf)
			}
		}
		if en == nil {
			if u.Empty() {
				continue
			}
			part.mu.Lock()
			en = part.users.add(k)
			part.mu.Unlock()
			en.mu.Lock()
			en.u = *u
			en.mu.Unlock()
		} else {
			en.mu.Lock()
			g.x.Replace(&en.u, u)
			en.mu.Unlock()
		}
		if !en.dirty {
			en.dirty = true
			part.dirty = append(part.dirty, en)
			newDirty++
		}
		rebuilt++
		done = append(done, k)
	}
	g.drift.forget(done) // in the same checkpoint as the rebuilt users
	g.mu.Lock()
	g.dirty += newDirty
	g.mu.Unlock()
	g.gate.Unlock()
	if _, err := g.checkpoint(false); err != nil {
		return rebuilt, fmt.Errorf("rebuilding users: %w", err)
	}
	if failure != nil {
		return rebuilt, fmt.Errorf("rebuilding users: %w", failure)
	}
	if len(skipped) > 0 {
		s.log.Warn("users not rebuilt: no owned partition holds them", "users", len(skipped), "sample", skipped[:min(len(skipped), 10)])
	}
	return rebuilt, nil
}
