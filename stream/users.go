package stream

import (
	"fmt"
	"sync"

	"github.com/portrait-dev/portrait/stream/incremental"
)

// entry is one user's state and its lock, in its partition's slab (see
// userMap).
type entry struct {
	mu    sync.Mutex
	u     incremental.User
	dirty bool
	// live: the slot holds a user (false once removed, until reused);
	// slot is the entry's index in the slab. Both change under mu.
	live bool
	slot int32
}

// holds reports whether en holds the user with key k (an int64 or a
// string); the caller holds en.mu. A lookup that found en in the map
// checks this once it has the lock: the user may have been removed in
// between and the slot given to another.
func (en *entry) holds(k any) bool {
	if !en.live {
		return false
	}
	switch k := k.(type) {
	case int64:
		ik, ok := en.u.IntKey()
		return ok && ik == k
	case string:
		sk, ok := en.u.StringKey()
		return ok && sk == k
	}
	return false
}

// slabChunk is how many entries one slab chunk holds.
const slabChunk = 4096

// userMap is a partition's users by key. The entries live in a slab of
// fixed-size chunks that never move, and the maps hold their slot
// numbers: the garbage collector marks one object per chunk instead of
// one per user, and never scans the maps (int32 values hold no pointer),
// where a map of *entry had it chase a million pointers to a million
// scattered objects at every collection (the lookup tail latency follows
// how long marking takes). Removed slots are reused.
//
// Keys are int64 or string (the key field's types, see normalizeKey),
// each kind in its own map: an int64 key is hashed and compared as an
// int64 rather than as an interface (the speed layer's most frequent map
// access), and is not kept boxed by the map.
//
// Writers (add, remove) hold the partition's writer lock and its users
// lock; get may run under either.
type userMap struct {
	ints   map[int64]int32
	strs   map[string]int32
	chunks []*[slabChunk]entry
	free   []int32 // removed slots
	n      int     // users held
}

func newUserMap() userMap {
	return userMap{ints: map[int64]int32{}, strs: map[string]int32{}}
}

func (m *userMap) at(slot int32) *entry {
	return &m.chunks[slot/slabChunk][slot%slabChunk]
}

// get is the user with key k, or nil.
func (m *userMap) get(k any) *entry {
	var slot int32
	var ok bool
	switch k := k.(type) {
	case int64:
		slot, ok = m.ints[k]
	case string:
		slot, ok = m.strs[k]
	}
	if !ok {
		return nil
	}
	return m.at(slot)
}

// add makes an empty user with key k (an int64 or a string, not held
// yet) and returns it.
func (m *userMap) add(k any) *entry {
	var slot int32
	if n := len(m.free); n > 0 {
		slot, m.free = m.free[n-1], m.free[:n-1]
	} else {
		slot = int32(m.n) // every slot before is held

		if int(slot) == len(m.chunks)*slabChunk {
			m.chunks = append(m.chunks, new([slabChunk]entry))
		}
	}
	switch k := k.(type) {
	case int64:
		m.ints[k] = slot
	case string:
		m.strs[k] = slot
	default:
		panic(fmt.Sprintf("stream: user key of type %T", k))
	}
	m.n++
	en := m.at(slot)
	en.mu.Lock()
	en.u = incremental.User{}
	en.u.SetKey(k)
	en.dirty, en.live, en.slot = false, true, slot
	en.mu.Unlock()
	return en
}

// remove drops en's user and frees its slot.
func (m *userMap) remove(en *entry) {
	en.mu.Lock()
	if ik, ok := en.u.IntKey(); ok {
		delete(m.ints, ik)
	} else {
		sk, _ := en.u.StringKey()
		delete(m.strs, sk)
	}
	en.u = incremental.User{}
	en.dirty, en.live = false, false
	en.mu.Unlock()
	m.free = append(m.free, en.slot)
	m.n--
}

func (m *userMap) len() int { return m.n }

// all yields every user, in slot order.
func (m *userMap) all(yield func(*entry) bool) {
	for _, c := range m.chunks {
		for i := range c {
			if en := &c[i]; en.live && !yield(en) {
				return
			}
		}
	}
}
