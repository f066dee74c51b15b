package stream

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream/incremental"
	"github.com/portrait-dev/portrait/stream/state"
)

// ErrNotCovered is returned for an as-of time the kept buckets no longer
// (or not yet) cover.
var ErrNotCovered = errors.New("as-of time not covered by the kept buckets")

// engine holds the in-memory state of the partitions this instance owns
// and writes it to the store at checkpoints. Applies take the write lock,
// lookups the read lock; checkpoints encode under the write lock and
// write to Pebble outside it.
type engine struct {
	x       *incremental.Executor
	cat     *schemas.Catalog
	keyType schemas.Type
	store   *state.Store
	m       *metrics

	ckMu sync.Mutex // serializes checkpoints

	mu        sync.RWMutex
	parts     map[int32]*partition
	watermark schemas.Timestamp
	dirty     int
	active    bool // a consumer-group session owns the partitions
}

// partition is the state of one owned Kafka partition.
type partition struct {
	id       int32
	next     int64 // first offset not yet applied; -1 before any
	wm       schemas.Timestamp
	users    map[any]*entry
	dirty    []*entry
	posDirty bool
	caughtUp bool
}

type entry struct {
	u     *incremental.User
	dirty bool
}

func newEngine(x *incremental.Executor, store *state.Store, m *metrics) *engine {
	c := x.Catalog()
	return &engine{x: x, cat: c, keyType: c.KeyField().Type, store: store, m: m, parts: map[int32]*partition{}}
}

// load makes partition p owned, reading its users and position from the
// store unless it is already in memory. It returns the next offset to
// consume (-1: none stored, start at the oldest).
func (g *engine) load(p int32) (int64, error) {
	g.mu.RLock()
	if part, ok := g.parts[p]; ok {
		next := part.next
		g.mu.RUnlock()
		return next, nil
	}
	g.mu.RUnlock()
	part := &partition{id: p, next: -1, users: map[any]*entry{}}
	pos, ok, err := g.store.Partition(p)
	if err != nil {
		return 0, err
	}
	if ok {
		part.next, part.wm = pos.Next, pos.Watermark
	}
	err = g.store.Users(p, func(k, v []byte) error {
		key, err := state.DecodeKey(g.keyType, k)
		if err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		u, err := g.x.DecodeUser(key, v)
		if err != nil {
			return fmt.Errorf("partition %d user %v: %w", p, key, err)
		}
		part.users[key] = &entry{u: u}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("loading state: %w", err)
	}
	g.mu.Lock()
	g.parts[p] = part
	g.watermark = max(g.watermark, part.wm)
	g.updateGauges()
	g.mu.Unlock()
	return part.next, nil
}

// release drops partitions not in keep from memory; their state stays in
// the store (checkpoint first).
func (g *engine) release(keep map[int32]bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for p, part := range g.parts {
		if !keep[p] {
			g.dirty -= len(part.dirty)
			delete(g.parts, p)
		}
	}
	g.updateGauges()
}

// setActive marks whether a consumer session is running.
func (g *engine) setActive(on bool) {
	g.mu.Lock()
	g.active = on
	if on {
		for _, part := range g.parts {
			part.caughtUp = false
		}
	}
	g.mu.Unlock()
}

// apply folds a batch of decoded events of partition p into the state and
// moves the partition's next offset to next. skewCap bounds the watermark
// (wall clock plus the allowed skew). It returns the dirty user count.
func (g *engine) apply(p int32, events []schemas.Event, next int64, skewCap schemas.Timestamp) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	part := g.parts[p]
	if part == nil {
		return g.dirty // revoked meanwhile: the records will be consumed again
	}
	var applied, late, dup float64
	for i := range events {
		e := &events[i]
		if t := min(e.Time, skewCap); t > part.wm {
			part.wm = t
		}
		key := e.Values[g.cat.Key]
		en := part.users[key]
		isNew := en == nil
		if isNew {
			en = &entry{u: g.x.NewUser(key)}
		}
		switch g.x.Apply(en.u, e, g.x.KeepFrom(part.wm)) {
		case incremental.Applied:
			applied++
			if isNew {
				part.users[key] = en
			}
			if !en.dirty {
				en.dirty = true
				part.dirty = append(part.dirty, en)
				g.dirty++
			}
		case incremental.Late:
			late++
		case incremental.Duplicate:
			dup++
		}
	}
	part.next = next
	part.posDirty = true
	g.watermark = max(g.watermark, part.wm)
	g.m.applied.Add(applied)
	g.m.late.Add(late)
	g.m.duplicates.Add(dup)
	return g.dirty
}

// markCaughtUp records that partition p reached the high-water mark.
func (g *engine) markCaughtUp(p int32) {
	g.mu.Lock()
	if part := g.parts[p]; part != nil {
		part.caughtUp = true
	}
	g.mu.Unlock()
}

// positions returns the next offset of every owned partition.
func (g *engine) positions() map[int32]int64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make(map[int32]int64, len(g.parts))
	for p, part := range g.parts {
		out[p] = part.next
	}
	return out
}

// checkpoint writes every dirty user (after evicting its old buckets) and
// every partition position in one synced batch. With sweep, every user is
// evicted and written when that changed it, so quiet users shrink too.
func (g *engine) checkpoint(sweep bool) (map[int32]int64, error) {
	g.ckMu.Lock()
	defer g.ckMu.Unlock()
	start := time.Now()
	cp := &state.Checkpoint{Partitions: map[int32]state.Partition{}}
	var arena []byte
	var err error
	written := map[int32]int64{}
	g.mu.Lock()
	for p, part := range g.parts {
		keepFrom := g.x.KeepFrom(part.wm)
		write := func(key any, en *entry) {
			if err != nil {
				return
			}
			start := len(arena)
			arena, err = state.EncodeKey(arena, g.keyType, key)
			if err != nil {
				return
			}
			k := arena[start:len(arena):len(arena)]
			rec := state.UserRecord{Partition: p, Key: k}
			if en.u.Empty() {
				delete(part.users, key)
			} else {
				vs := len(arena)
				arena = g.x.AppendUser(arena, en.u)
				rec.Value = arena[vs:len(arena):len(arena)]
			}
			cp.Users = append(cp.Users, rec)
		}
		if sweep {
			for key, en := range part.users {
				if g.x.Evict(en.u, keepFrom) || en.dirty {
					write(key, en)
				}
			}
		} else {
			for _, en := range part.dirty {
				g.x.Evict(en.u, keepFrom)
				write(en.u.Key, en)
			}
		}
		for _, en := range part.dirty {
			en.dirty = false
		}
		part.dirty = part.dirty[:0]
		if part.next >= 0 && (part.posDirty || sweep) {
			cp.Partitions[p] = state.Partition{Next: part.next, Watermark: part.wm}
			part.posDirty = false
		}
		written[p] = part.next
	}
	g.dirty = 0
	g.updateGauges()
	g.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("encoding checkpoint: %w", err)
	}
	if len(cp.Users) == 0 && len(cp.Partitions) == 0 {
		return written, nil
	}
	if err := g.store.Write(cp); err != nil {
		return nil, err
	}
	g.m.checkpointSeconds.Observe(time.Since(start).Seconds())
	g.m.checkpointUsers.Add(float64(len(cp.Users)))
	return written, nil
}

// updateGauges refreshes the state gauges; the caller holds mu.
func (g *engine) updateGauges() {
	n := 0
	for _, part := range g.parts {
		n += len(part.users)
	}
	g.m.users.Set(float64(n))
	g.m.watermark.Set(float64(g.watermark) / 1000)
}

// normalizeKey converts a lookup key to the key field's type: int64 keys
// accept int64, int, json.Number-like strings and decimal strings.
func (g *engine) normalizeKey(key any) (any, bool) {
	switch g.keyType {
	case schemas.TypeInt64:
		switch k := key.(type) {
		case int64:
			return k, true
		case int:
			return int64(k), true
		case int32:
			return int64(k), true
		case string:
			n, err := strconv.ParseInt(k, 10, 64)
			return n, err == nil
		case fmt.Stringer:
			n, err := strconv.ParseInt(k.String(), 10, 64)
			return n, err == nil
		}
	case schemas.TypeString:
		if k, ok := key.(string); ok {
			return k, true
		}
	}
	return nil, false
}

// find returns the user with key and its partition; the caller holds mu.
func (g *engine) find(key any) (*entry, *partition) {
	k, ok := g.normalizeKey(key)
	if !ok {
		return nil, nil
	}
	for _, part := range g.parts {
		if en := part.users[k]; en != nil {
			return en, part
		}
	}
	return nil, nil
}

// lookup returns the live profile of key.
func (g *engine) lookup(key any) (schemas.Profile, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	en, _ := g.find(key)
	if en == nil {
		return schemas.Profile{}, false
	}
	return g.x.Profile(en.u, g.x.LiveAsOf(g.watermark))
}

// asOf returns the profile of key as of the bucket boundary t.
func (g *engine) asOf(key any, t schemas.Timestamp) (schemas.Profile, bool, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	en, part := g.find(key)
	if en == nil {
		return schemas.Profile{}, false, nil
	}
	if !g.x.Covers(g.x.KeepFrom(part.wm), t) {
		return schemas.Profile{}, false, fmt.Errorf("%w: %s (kept from %s)", ErrNotCovered, t, g.x.KeepFrom(part.wm))
	}
	p, ok := g.x.Profile(en.u, t)
	return p, ok, nil
}

// profilesAsOf returns every owned user's profile as of t, sorted by key,
// following reference.Evaluate's rule for which users appear.
func (g *engine) profilesAsOf(t schemas.Timestamp) ([]schemas.Profile, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []schemas.Profile
	for _, part := range g.parts {
		if !g.x.Covers(g.x.KeepFrom(part.wm), t) {
			return nil, fmt.Errorf("partition %d: %w: %s (kept from %s)", part.id, ErrNotCovered, t, g.x.KeepFrom(part.wm))
		}
		for _, en := range part.users {
			if p, ok := g.x.Profile(en.u, t); ok {
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return schemas.Compare(out[i].Key, out[j].Key) < 0 })
	return out, nil
}

// ready reports whether a session owns partitions and each has caught up
// with its high-water mark at least once.
func (g *engine) ready() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.active {
		return false
	}
	for _, part := range g.parts {
		if !part.caughtUp {
			return false
		}
	}
	return true
}
