package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream/internal/yield"
	"github.com/portrait-dev/portrait/warehouse"
)

// ErrSnapshotUnusable is wrapped by Rebase's errors for a snapshot the
// lifetime tags cannot rest on: another catalog, no stored state, or
// older than the buckets the speed layer still keeps.
var ErrSnapshotUnusable = errors.New("snapshot unusable as lifetime base")

// rebaseState is the snapshot the lifetime tags rest on: its cutoff and
// every user's lifetime partials.
type rebaseState struct {
	cutoff schemas.Timestamp
	// written is when the snapshot's marker was written: a recompute of
	// the same cutoff replaces the snapshot, and its new content must
	// replace the base too.
	written time.Time
	base    map[any][]schemas.Partial
}

// Rebased is the cutoff of the batch snapshot the lifetime tags rest on
// (false: none; they cover every event the speed layer applied).
func (s *Speed) Rebased() (schemas.Timestamp, bool) {
	if r := s.eng.rebase.Load(); r != nil {
		return r.cutoff, true
	}
	return 0, false
}

// Rebase makes the newest snapshot under root the base of the lifetime
// tags, when it is newer than the current one: every user's lifetime
// partials become the snapshot's, merged with the speed layer's buckets
// from the cutoff on; users the speed layer does not hold are served from
// the snapshot alone. The change is checkpointed before Rebase returns.
// It reports the cutoff in use and whether it changed. Call it on start
// (before Run) and whenever a recompute published a snapshot.
func (s *Speed) Rebase(ctx context.Context, root string) (schemas.Timestamp, bool, error) {
	c, err := batch.LatestSnapshot(root)
	if errors.Is(err, batch.ErrNoSnapshot) {
		cur, _ := s.Rebased()
		return cur, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("rebase: %w", err)
	}
	if r := s.eng.rebase.Load(); r != nil && (r.cutoff > c || (r.cutoff == c && r.written.Equal(snapshotWritten(root, c)))) {
		return r.cutoff, false, nil
	}
	if err := s.RebaseOn(ctx, root, c); err != nil {
		return 0, false, err
	}
	return c, true, nil
}

// WatchSnapshots calls Rebase now and then every interval until ctx is
// done, so that the lifetime tags rest on the newest snapshot under root;
// failures are logged and retried at the next tick. Reconcile a new
// snapshot before the speed layer rests on it: once rebased, the lifetime
// tags as of its cutoff equal the snapshot's by construction.
func (s *Speed) WatchSnapshots(ctx context.Context, root string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, _, err := s.Rebase(ctx, root); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("rebasing lifetime tags", "root", root, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// snapshotWritten is when the snapshot of cutoff c was (last) written,
// from its marker; the zero time when it cannot be read.
func snapshotWritten(root string, c schemas.Timestamp) time.Time {
	m, _, _ := warehouse.ReadMarker(warehouse.SnapshotDir(root, c))
	return m.Written
}

// RebaseOn rebases the lifetime tags on the snapshot of cutoff c.
func (s *Speed) RebaseOn(ctx context.Context, root string, c schemas.Timestamp) error {
	base, err := s.readBase(root, c)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	g := s.eng
	g.gate.Lock()
	g.mu.RLock()
	for _, part := range g.parts {
		if kf := g.x.KeepFrom(part.wm); kf > c {
			g.mu.RUnlock()
			g.gate.Unlock()
			return fmt.Errorf("rebase on %s: %w: partition %d keeps buckets from %s only", c, ErrSnapshotUnusable, part.id, kf)
		}
	}
	parts := make([]*partition, 0, len(g.parts))
	for _, part := range g.parts {
		parts = append(parts, part)
	}
	g.mu.RUnlock()
	r := &rebaseState{cutoff: c, written: snapshotWritten(root, c), base: base}
	n, step := 0, 0
	for _, part := range parts {
		for en := range part.users.all {
			yield.After(step, yieldUsers)
			step++
			en.mu.Lock()
			g.x.Rebase(&en.u, c, base[en.u.Key()])
			en.mu.Unlock()
			if !en.dirty {
				en.dirty = true
				part.dirty = append(part.dirty, en)
				n++
			}
		}
	}
	g.rebase.Store(r)
	g.mu.Lock()
	g.dirty += n
	g.mu.Unlock()
	g.gate.Unlock()
	if _, err := g.checkpoint(false); err != nil {
		return fmt.Errorf("rebase on %s: %w", c, err)
	}
	s.log.Info("lifetime tags rebased", "snapshot", c, "snapshot_users", len(base), "users", n)
	return nil
}

// readBase reads the lifetime partials of the snapshot of c, by user.
func (s *Speed) readBase(root string, c schemas.Timestamp) (map[any][]schemas.Partial, error) {
	cat := s.cfg.Catalog
	info, err := batch.ReadSnapshotInfo(root, c)
	if err != nil {
		return nil, fmt.Errorf("rebase on %s: %w", c, err)
	}
	if info.CatalogHash != cat.Hash {
		return nil, fmt.Errorf("rebase on %s: %w: computed with catalog %s, the speed layer follows %s",
			c, ErrSnapshotUnusable, info.CatalogHash, cat.Hash)
	}
	life := s.x.LifetimeTags()
	if len(life) == 0 {
		return map[any][]schemas.Partial{}, nil
	}
	if !info.State {
		return nil, fmt.Errorf("rebase on %s: %w: it stores no lifetime state", c, ErrSnapshotUnusable)
	}
	st, err := batch.ReadState(root, cat, c)
	if errors.Is(err, batch.ErrOldState) {
		return nil, fmt.Errorf("rebase on %s: %w: %w (the next recompute writes the current format)", c, ErrSnapshotUnusable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("rebase on %s: %w", c, err)
	}
	if len(st.Tags) != len(life) {
		return nil, fmt.Errorf("rebase on %s: %w: state has %d lifetime tags, catalog %d", c, ErrSnapshotUnusable, len(st.Tags), len(life))
	}
	for j := range life {
		if st.Tags[j] != life[j] {
			return nil, fmt.Errorf("rebase on %s: %w: state tag %d is #%d, catalog #%d", c, ErrSnapshotUnusable, j, st.Tags[j], life[j])
		}
	}
	out := make(map[any][]schemas.Partial, len(st.Keys))
	for i, k := range st.Keys {
		out[k] = st.Partials[i]
	}
	return out, nil
}

// addUser adds a new user to part, resting on the snapshot base when
// there is one. The caller holds part's writer lock (or gate
// exclusively).
func (g *engine) addUser(part *partition, key any) *entry {
	part.mu.Lock()
	en := part.users.add(key)
	part.mu.Unlock()
	if r := g.rebase.Load(); r != nil {
		en.mu.Lock()
		g.x.Rebase(&en.u, r.cutoff, r.base[key])
		en.mu.Unlock()
	}
	return en
}

// rebaseLoaded rebases the users of a partition just read from the store
// that rest on an older base than the current snapshot; the caller holds
// gate. It returns how many it marked dirty.
func (g *engine) rebaseLoaded(part *partition) int {
	r := g.rebase.Load()
	if r == nil {
		return 0
	}
	if part.next >= 0 && g.x.KeepFrom(part.wm) > r.cutoff {
		return 0 // the snapshot is older than what the partition keeps: its own base is better
	}
	n, step := 0, 0
	for en := range part.users.all {
		yield.After(step, yieldUsers)
		step++
		if en.u.BaseFrom() >= r.cutoff {
			continue
		}
		g.x.Rebase(&en.u, r.cutoff, r.base[en.u.Key()])
		en.dirty = true
		part.dirty = append(part.dirty, en)
		n++
	}
	return n
}

// baseOnly is the profile of a user the speed layer does not hold, from
// the snapshot base alone.
func (g *engine) baseOnly(key any, asOf schemas.Timestamp) (schemas.Profile, bool) {
	r := g.rebase.Load()
	if r == nil || asOf < r.cutoff {
		return schemas.Profile{}, false
	}
	k, ok := g.normalizeKey(key)
	if !ok {
		return schemas.Profile{}, false
	}
	base, ok := r.base[k]
	if !ok {
		return schemas.Profile{}, false
	}
	u := g.x.NewUser(k)
	g.x.Rebase(u, r.cutoff, base)
	return g.x.Profile(u, asOf)
}

// appendBaseOnly appends the profiles of the snapshot's users no owned
// partition holds; the caller holds mu (read). With several instances
// each one answers for them: a reconcile runs against one instance.
func (g *engine) appendBaseOnly(out []schemas.Profile, asOf schemas.Timestamp) []schemas.Profile {
	r := g.rebase.Load()
	if r == nil || asOf < r.cutoff {
		return out
	}
	for k, base := range r.base {
		held := false
		for _, part := range g.parts {
			part.mu.RLock()
			held = part.users.get(k) != nil
			part.mu.RUnlock()
			if held {
				break
			}
		}
		if held {
			continue
		}
		u := g.x.NewUser(k)
		g.x.Rebase(u, r.cutoff, base)
		if p, ok := g.x.Profile(u, asOf); ok {
			out = append(out, p)
		}
	}
	return out
}
