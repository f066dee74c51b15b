package stream

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream/incremental"
	"github.com/portrait-dev/portrait/stream/internal/yield"
	"github.com/portrait-dev/portrait/stream/state"
)

// ErrNotCovered is returned for an as-of time the kept buckets no longer
// (or not yet) cover.
var ErrNotCovered = errors.New("as-of time not covered by the kept buckets")

// engine holds the in-memory state of the partitions this instance owns
// and writes it to the store at checkpoints.
//
// Locking, so that lookups never wait for more than one user's update,
// and the partitions are applied and checkpointed independently:
//   - gate is the structural lock: load, release, rebase and repair take
//     it exclusively (no other writer runs); apply and checkpoint share it.
//   - partition.wmu serializes the writers of one partition: apply (per
//     chunk of events) and the checkpoint's turn at that partition.
//     Holding it (and gate shared), a writer may read partition.users and
//     entry.dirty and change partition.dirty without other locks; with
//     gate held exclusively, so may load, release, rebase and repair.
//   - mu guards parts, watermark, dirty, active and the partition
//     positions (next, hwm, wm, posDirty, caughtUp); it is held briefly.
//   - partition.mu guards the users map: writers change it under the
//     write lock, lookups read it under the read lock.
//   - entry.mu guards one user's state: apply, eviction and encoding
//     hold it for that one user, lookups while they compute the values.
//
// Lock order: gate, partition.wmu, then mu, partition.mu or entry.mu.
type engine struct {
	x       *incremental.Executor
	cat     *schemas.Catalog
	keyType schemas.Type
	store   *state.Store
	m       *metrics

	ckMu sync.Mutex // serializes checkpoints
	// gate: see Locking above; lookups never take it.
	gate sync.RWMutex
	// ckArena and ckUsers are a checkpoint's buffers, reused by the next
	// (under ckMu).
	ckArena []byte
	ckUsers []state.UserRecord

	// drift remembers the users of late and duplicate events for the
	// reconciler; rebase is the snapshot the lifetime tags rest on (nil:
	// none), swapped whole under gate (drift.go, rebase.go).
	drift  *driftLog
	rebase atomic.Pointer[rebaseState]

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
	hwm      int64 // the claim's last seen high-water mark; -1 unknown
	wm       schemas.Timestamp
	posDirty bool
	caughtUp bool

	// wmu serializes the partition's writers (apply, checkpoint).
	wmu   sync.Mutex
	mu    sync.RWMutex // guards users
	users userMap
	dirty []*entry // under wmu
	// warmed keeps what warm read (under wmu).
	warmed int64
}

func newEngine(x *incremental.Executor, store *state.Store, m *metrics) *engine {
	c := x.Catalog()
	return &engine{x: x, cat: c, keyType: c.KeyField().Type, store: store, m: m, parts: map[int32]*partition{}, drift: newDriftLog()}
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
	part := &partition{id: p, next: -1, hwm: -1, users: newUserMap()}
	pos, ok, err := g.store.Partition(p)
	if err != nil {
		return 0, err
	}
	if ok {
		part.next, part.wm = pos.Next, pos.Watermark
	}
	var cur *entry
	var curKey []byte
	users := 0
	err = g.store.Users(p, func(k, name, v []byte) error {
		if cur == nil || !bytes.Equal(k, curKey) {
			yield.After(users, yieldUsers)
			users++
			key, err := state.DecodeKey(g.keyType, k)
			if err != nil {
				return fmt.Errorf("partition %d: %w", p, err)
			}
			cur = part.users.add(key) // part is not in g.parts yet: no lock
			curKey = append(curKey[:0], k...)
		}
		if err := g.x.DecodePart(&cur.u, name, v); err != nil {
			return fmt.Errorf("partition %d user %v: %w", p, cur.u.Key(), err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("loading state: %w", err)
	}
	if err := g.drift.load(g.store, p, g.keyType); err != nil {
		return 0, fmt.Errorf("loading state: %w", err)
	}
	g.gate.Lock()
	rebased := g.rebaseLoaded(part)
	g.mu.Lock()
	g.dirty += rebased
	g.parts[p] = part
	g.watermark = max(g.watermark, part.wm)
	g.updateGauges()
	g.mu.Unlock()
	g.gate.Unlock()
	return part.next, nil
}

// release drops partitions not in keep from memory; their state stays in
// the store (checkpoint first).
func (g *engine) release(keep map[int32]bool) {
	g.gate.Lock()
	defer g.gate.Unlock()
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

// applyChunk is how many events apply folds per hold of the write lock,
// so that lookups wait at most for one chunk; apply yields the processor
// after each (≈2 µs per event at a million users, see yield.go).
const applyChunk = 32

// apply folds a batch of decoded events of partition p into the state and
// moves the partition's next offset to next. skewCap bounds the watermark
// (wall clock plus the allowed skew). It returns the dirty user count.
// It takes the write lock once per applyChunk events, so that lookups
// wait at most for one chunk; each chunk moves the offset to the next
// event's, so a checkpoint between chunks stores state and offset that
// match (the records between them were dead-lettered already).
func (g *engine) apply(p int32, events []schemas.Event, next int64, skewCap schemas.Timestamp) int {
	for len(events) > applyChunk {
		if g.applyLocked(p, events[:applyChunk], events[applyChunk].Offset, skewCap) < 0 {
			return g.dirtyCount()
		}
		events = events[applyChunk:]
		runtime.Gosched() // see package yield
	}
	if n := g.applyLocked(p, events, next, skewCap); n >= 0 {
		return n
	}
	return g.dirtyCount()
}

func (g *engine) dirtyCount() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.dirty
}

// applyLocked applies events under the partition's writer lock, each
// under its user's lock, then publishes the partition's offset (next)
// and watermark; -1 when the partition is not owned.
func (g *engine) applyLocked(p int32, events []schemas.Event, next int64, skewCap schemas.Timestamp) int {
	g.gate.RLock()
	defer g.gate.RUnlock()
	g.mu.RLock()
	part := g.parts[p]
	g.mu.RUnlock()
	if part == nil {
		return -1 // revoked meanwhile: the records will be consumed again
	}
	part.wmu.Lock()
	defer part.wmu.Unlock()
	g.mu.RLock()
	wm := part.wm // only this partition's writers change it
	g.mu.RUnlock()
	var applied, late, dup float64
	newDirty := 0
	var ents [applyChunk]*entry
	part.warm(events, g.cat.Key, ents[:])
	for i := range events {
		e := &events[i]
		if t := min(e.Time, skewCap); t > wm {
			wm = t
		}
		key := e.Values[g.cat.Key]
		en := ents[i]
		if en == nil { // new, or added by an earlier event of the chunk
			en = part.users.get(key) // wmu: no other writer
		}
		keepFrom := g.x.KeepFrom(wm)
		var o incremental.Outcome
		if en == nil && e.Time < keepFrom {
			o = incremental.Late // a new user's late event: the user is not made
		} else {
			if en == nil {
				en = g.addUser(part, key) // Apply cannot find a duplicate id in it
			}
			en.mu.Lock()
			o = g.x.Apply(&en.u, e, keepFrom)
			en.mu.Unlock()
		}
		switch o {
		case incremental.Applied:
			applied++
			if !en.dirty {
				en.dirty = true
				part.dirty = append(part.dirty, en)
				newDirty++
			}
		case incremental.Late:
			late++
			g.drift.add(causeLate, key, e.Time, p)
		case incremental.Duplicate:
			dup++
			g.drift.add(causeDuplicate, key, e.Time, p)
		}
	}
	g.mu.Lock()
	part.wm = wm
	part.next = next
	part.posDirty = true
	g.watermark = max(g.watermark, wm)
	g.dirty += newDirty
	dirty := g.dirty
	g.mu.Unlock()
	g.m.applied.Add(applied)
	g.m.late.Add(late)
	g.m.duplicates.Add(dup)
	return dirty
}

// warm looks up the users of events (at most applyChunk; key is the key
// field) into ents (nil: not held yet) and reads the first state Apply
// reads of each, in a loop of independent loads: at a million users
// nearly every event misses the cache on its map slot, its entry and its
// buckets, and the CPU overlaps those misses across the events of the
// loop where apply would wait for each in turn. The caller holds wmu.
func (part *partition) warm(events []schemas.Event, key int, ents []*entry) {
	var sum int64
	for i := range events {
		en := part.users.get(events[i].Values[key])
		ents[i] = en
		if en != nil {
			sum += en.u.Warm()
		}
	}
	part.warmed = sum
}

// warmChunk is how many users a checkpoint warms at a time.
const warmChunk = 32

// warmUsers reads the first state of each of users that a checkpoint
// reads (see warm). The caller holds wmu.
func (part *partition) warmUsers(users []*entry) {
	var sum int64
	for _, en := range users {
		sum += en.u.Warm()
	}
	part.warmed = sum
}

// setHighWater records the high-water mark last seen for partition p.
func (g *engine) setHighWater(p int32, hwm int64) {
	g.mu.Lock()
	if part := g.parts[p]; part != nil {
		part.hwm = hwm
	}
	g.mu.Unlock()
}

// lag sums, over the owned partitions, the records between the next
// offset and the last seen high-water mark; false when a partition's
// high-water mark is not known yet.
func (g *engine) lag() (int64, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var n int64
	for _, part := range g.parts {
		if part.hwm < 0 {
			return 0, false
		}
		n += max(part.hwm-max(part.next, 0), 0)
	}
	return n, true
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
//
// It takes the partitions one at a time: holding a partition's writer
// lock, it takes the partition's dirty users, position and drift marks
// apart and encodes them, so that they match each other while the other
// partitions keep applying. A lookup only waits while the one user it
// wants is evicted or encoded.
func (g *engine) checkpoint(sweep bool) (map[int32]int64, error) {
	g.ckMu.Lock()
	defer g.ckMu.Unlock()
	start := time.Now()
	cp := &state.Checkpoint{Partitions: map[int32]state.Partition{}, Users: g.ckUsers[:0]}
	defer func() {
		clear(cp.Users) // keep the buffers, not what they point to
		g.ckUsers, g.ckArena = cp.Users[:0], g.ckArena[:0]
	}()
	written, users, err := g.takeApart(cp, sweep)
	if err != nil {
		return nil, err
	}
	if len(cp.Users) == 0 && len(cp.Partitions) == 0 && len(cp.Drift) == 0 {
		return written, nil
	}
	n, err := g.store.WriteSize(cp)
	if err != nil {
		return nil, err
	}
	g.m.checkpointSeconds.Observe(time.Since(start).Seconds())
	g.m.checkpointUsers.Add(float64(users))
	g.m.checkpointBytes.Observe(float64(n))
	g.m.stateBytes.Set(float64(g.store.DiskUsage()))
	return written, nil
}

// takeApart fills cp with every owned partition's share, one partition
// at a time, and returns the partitions' next offsets and the number of
// users encoded.
func (g *engine) takeApart(cp *state.Checkpoint, sweep bool) (map[int32]int64, int, error) {
	g.gate.RLock()
	defer g.gate.RUnlock()
	g.mu.RLock()
	parts := make([]*partition, 0, len(g.parts))
	for _, part := range g.parts {
		parts = append(parts, part)
	}
	g.mu.RUnlock()
	// In partition order, the order of the store's keys (see
	// state.Store.WriteSize).
	slices.SortFunc(parts, func(a, b *partition) int { return cmp.Compare(a.id, b.id) })
	written := make(map[int32]int64, len(parts))
	users := 0
	for _, part := range parts {
		n, err := g.takePartition(cp, part, sweep, written)
		if err != nil {
			return nil, 0, err
		}
		users += n
	}
	g.mu.Lock()
	g.updateGauges()
	g.mu.Unlock()
	return written, users, nil
}

// takePartition adds one partition's dirty users (all with sweep, after
// eviction; the users left empty are dropped), position and drift marks
// to cp, under the partition's writer lock. It returns the users encoded.
func (g *engine) takePartition(cp *state.Checkpoint, part *partition, sweep bool, written map[int32]int64) (int, error) {
	part.wmu.Lock()
	defer part.wmu.Unlock()
	p := part.id
	g.mu.Lock()
	keepFrom := g.x.KeepFrom(part.wm)
	g.dirty -= len(part.dirty)
	if part.next >= 0 && (part.posDirty || sweep) {
		cp.Partitions[p] = state.Partition{Next: part.next, Watermark: part.wm}
		part.posDirty = false
	}
	written[p] = part.next
	g.mu.Unlock()
	users := part.dirty
	if sweep {
		users = make([]*entry, 0, part.users.len())
		for en := range part.users.all {
			users = append(users, en)
		}
	}
	// The users are encoded in the order they became dirty, which for
	// new users is the order their state was allocated in: sorting them
	// by key here, for the store, made the encoding slower by more than
	// the store gained (cache and TLB misses); the store sorts the
	// records instead (state.Store.WriteSize).
	part.dirty = nil

	arena := g.ckArena
	encoded := 0
	for i, en := range users {
		yield.After(i, yieldUsers)
		if i%warmChunk == 0 {
			part.warmUsers(users[i:min(i+warmChunk, len(users))])
		}
		en.mu.Lock()
		changed := g.x.Evict(&en.u, keepFrom)
		empty := en.u.Empty()
		if changed || en.dirty {
			start := len(arena)
			var err error
			if k, ok := en.u.IntKey(); ok && g.keyType == schemas.TypeInt64 {
				arena = state.AppendIntKey(arena, k)
			} else {
				arena, err = state.EncodeKey(arena, g.keyType, en.u.Key())
			}
			if err != nil {
				en.mu.Unlock()
				g.ckArena = arena
				return 0, fmt.Errorf("encoding checkpoint: %w", err)
			}
			k := arena[start:len(arena):len(arena)]
			g.x.Flush(&en.u, &arena, func(name, value []byte) {
				cp.Users = append(cp.Users, state.UserRecord{Partition: p, Key: k, Part: name, Value: value})
			})
			encoded++
		}
		en.mu.Unlock()
		en.dirty = false
		if empty {
			part.mu.Lock()
			part.users.remove(en)
			part.mu.Unlock()
		}
	}
	g.ckArena = arena
	if !sweep { // keep the dirty list's array for the next checkpoint
		clear(users)
		part.dirty = users[:0]
	}
	drift, err := g.drift.flush(g.keyType, p)
	if err != nil {
		return 0, err
	}
	cp.Drift = append(cp.Drift, drift...)
	return encoded, nil
}

// updateGauges refreshes the state gauges; the caller holds mu.
func (g *engine) updateGauges() {
	n := 0
	for _, part := range g.parts {
		part.mu.RLock()
		n += part.users.len()
		part.mu.RUnlock()
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

// find returns the user with key, locked (its mu held), and its
// partition; nil when there is none. at runs under mu (read) with the
// partition, before the user is locked.
func (g *engine) find(key any, at func(*partition)) *entry {
	k, ok := g.normalizeKey(key)
	if !ok {
		return nil
	}
	for {
		g.mu.RLock()
		var en *entry
		var part *partition
		for _, pt := range g.parts {
			pt.mu.RLock()
			en = pt.users.get(k)
			pt.mu.RUnlock()
			if en != nil {
				part = pt
				break
			}
		}
		at(part)
		g.mu.RUnlock()
		if en == nil {
			return nil
		}
		en.mu.Lock()
		if en.holds(k) {
			return en
		}
		// Removed since the map lookup, its slot maybe reused: look again.
		en.mu.Unlock()
	}
}

// lookup returns the live profile of key.
func (g *engine) lookup(key any) (schemas.Profile, bool) {
	var asOf schemas.Timestamp
	en := g.find(key, func(*partition) { asOf = g.x.LiveAsOf(g.watermark) })
	if en == nil {
		return g.baseOnly(key, asOf)
	}
	defer en.mu.Unlock()
	return g.x.Profile(&en.u, asOf)
}

// asOf returns the profile of key as of the bucket boundary t.
func (g *engine) asOf(key any, t schemas.Timestamp) (schemas.Profile, bool, error) {
	var keepFrom schemas.Timestamp
	en := g.find(key, func(part *partition) {
		if part != nil {
			keepFrom = g.x.KeepFrom(part.wm)
		}
	})
	if en == nil {
		p, ok := g.baseOnly(key, t)
		return p, ok, nil
	}
	defer en.mu.Unlock()
	if !g.x.Covers(keepFrom, t) {
		return schemas.Profile{}, false, fmt.Errorf("%w: %s (kept from %s)", ErrNotCovered, t, keepFrom)
	}
	p, ok := g.x.Profile(&en.u, t)
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
		part.mu.RLock()
		for en := range part.users.all {
			en.mu.Lock()
			p, ok := g.x.Profile(&en.u, t)
			en.mu.Unlock()
			if ok {
				out = append(out, p)
			}
		}
		part.mu.RUnlock()
	}
	out = g.appendBaseOnly(out, t)
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
