package local

import "math/bits"

// The engine's hot lookups use open-addressing tables with linear probing
// and integer keys: one flat slice of slots, no per-entry allocation, and
// a probe that usually stays within one cache line.

const minTableSize = 1024

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// intIndex maps int64 keys to dense indexes 0, 1, 2, … in insertion order.
// Keys in [0, len(direct)) (user ids are often small integers) are looked
// up in a plain array, 4 bytes a key and no probing; others are hashed.
// The array grows to cover a new key while that keeps it within
// directSlack times the number of keys.
type intIndex struct {
	direct []uint32 // index+1; 0: absent
	slots  []intSlot
	shift  uint
	n      int
	keys   int
}

const directSlack = 8

// lookup returns the index of k, or next (and true) when k is new.
func (t *intIndex) lookup(k int64, next uint32) (uint32, bool) {
	if uint64(k) < uint64(len(t.direct)) {
		if v := t.direct[k]; v != 0 {
			return v - 1, false
		}
		t.direct[k] = next + 1
		t.keys++
		return next, true
	}
	if k >= 0 && k < int64(max(1<<16, directSlack*(t.keys+1))) {
		t.growDirect(int(k) + 1)
		if v := t.direct[k]; v != 0 { // k was hashed before
			return v - 1, false
		}
		t.direct[k] = next + 1
		t.keys++
		return next, true
	}
	v, isNew := t.get(k, next)
	if isNew {
		t.keys++
	}
	return v, isNew
}

type intSlot struct {
	k int64
	v uint32 // index+1; 0 marks an empty slot
}

func newIntIndex() *intIndex {
	return &intIndex{slots: make([]intSlot, minTableSize), shift: uint(64 - bits.TrailingZeros(minTableSize))}
}

// get returns the index of k, or next (and true) when k is new.
func (t *intIndex) get(k int64, next uint32) (uint32, bool) {
	mask := uint64(len(t.slots) - 1)
	i := (uint64(k) * 0x9E3779B97F4A7C15) >> t.shift
	for {
		s := &t.slots[i]
		if s.v == 0 {
			if t.n*4 >= len(t.slots)*3 {
				t.resize()
				return t.get(k, next)
			}
			s.k, s.v = k, next+1
			t.n++
			return next, true
		}
		if s.k == k {
			return s.v - 1, false
		}
		i = (i + 1) & mask
	}
}

// growDirect extends the array to cover [0, n), moving the keys it now
// covers out of the hash table.
func (t *intIndex) growDirect(n int) {
	t.direct = append(t.direct, make([]uint32, max(n, 2*len(t.direct))-len(t.direct))...)
	if t.n == 0 {
		return
	}
	old := t.slots
	t.slots, t.n = make([]intSlot, len(old)), 0
	for _, s := range old {
		if s.v == 0 {
			continue
		}
		if uint64(s.k) < uint64(len(t.direct)) {
			t.direct[s.k] = s.v
			continue
		}
		t.get(s.k, s.v-1)
	}
}

func (t *intIndex) resize() {
	old := t.slots
	t.slots = make([]intSlot, 2*len(old))
	t.shift--
	mask := uint64(len(t.slots) - 1)
	for _, s := range old {
		if s.v == 0 {
			continue
		}
		i := (uint64(s.k) * 0x9E3779B97F4A7C15) >> t.shift
		for t.slots[i].v != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}
