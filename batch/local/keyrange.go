package local

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
)

// Hints describe the events a computation will be given, so that the
// engine can lay out its state; results do not depend on them.
type Hints struct {
	// KeyRange is set when every int64 key is known to be in [KeyMin,
	// KeyMax] (keys outside are still handled, more slowly).
	KeyRange       bool
	KeyMin, KeyMax int64
	// Rows is the number of events (0: unknown).
	Rows int64
}

// keyRange gives the int64 keys of a dense range a slot each, so that
// resolving an event's user is arithmetic rather than a lookup (a cache
// miss per event), and users come out in key order. The range is cut
// into blocks of blockUsers keys, dealt to the shards in turn: key k,
// g = k − lo blocks into the range, goes to shard (g / blockUsers) mod
// shards as user (g / (blockUsers·shards))·blockUsers + g mod blockUsers.
// Each shard's first nd users are thus its slots, in key order, and a
// pairSet block is one block of keys. Other keys are looked up as without
// a range, as users after the slots.
type keyRange struct {
	lo   int64
	span uint64 // keys lo..lo+span-1 have slots (0: no range)
	bits int    // log2 of the number of shards
	mask int    // shards − 1
	nd   int    // slots per shard
}

func (kr *keyRange) on() bool { return kr.span != 0 }

// slot returns the user of key k in its shard, when k has a slot.
func (kr *keyRange) slot(k int64) (uint32, bool) {
	g := uint64(k - kr.lo)
	if g >= kr.span {
		return 0, false
	}
	return uint32(g>>(blockBits+kr.bits))<<blockBits | uint32(g)&(blockUsers-1), true
}

// maxSlots bounds the slots of a key range: about 100 bytes of state
// each.
const maxSlots = 1 << 28

// minDenseSlots: a range of up to that many keys is used whatever the
// number of events; a wider one needs at least one event per 8 keys.
const minDenseSlots = 1 << 20

// useKeyRange gives the keys of the hinted range (widened to the keys of
// base) slots, when the key is an int64, the number of shards a power of
// two, and the range dense enough for its slots not to cost much more
// memory than the users would: up to minDenseSlots keys, or one per 8
// events. It must be called before any event is added.
func (e *Engine) useKeyRange(h Hints, base *State) {
	if !h.KeyRange || h.KeyMin > h.KeyMax || e.shards[0].intKeys == nil {
		return
	}
	ns := len(e.shards)
	if ns&(ns-1) != 0 {
		return
	}
	lo, hi := h.KeyMin, h.KeyMax
	users := int64(0)
	if base != nil && len(base.Keys) > 0 {
		// The base's keys come sorted.
		k0, ok0 := base.Keys[0].(int64)
		k1, ok1 := base.Keys[len(base.Keys)-1].(int64)
		if !ok0 || !ok1 {
			return
		}
		lo, hi, users = min(lo, k0, k1), max(hi, k0, k1), int64(len(base.Keys))
	}
	if hi-lo < 0 || uint64(hi-lo) >= maxSlots {
		return // wraps, or too wide
	}
	span := uint64(hi-lo) + 1
	if span > minDenseSlots && span > uint64(h.Rows/8) && span > uint64(2*users) {
		return
	}
	// Whole blocks, as many for every shard.
	per := uint64(blockUsers * ns)
	span = (span + per - 1) / per * per
	if lo > math.MaxInt64-int64(span) {
		return
	}
	e.keys = keyRange{lo: lo, span: span, bits: bits.TrailingZeros(uint(ns)), mask: ns - 1, nd: int(span) / ns}
	for si, s := range e.shards {
		s.nd = e.keys.nd
		s.nusers = s.nd
		// Room for a few keys out of the range before the state grows.
		s.growUsersTo(s.nd + 1024)
		s.ikeys = make([]int64, s.nd, s.nd+1024)
		for u := range s.nd {
			blk := u >> blockBits
			s.ikeys[u] = lo + int64((blk*ns+si)<<blockBits+u&(blockUsers-1))
		}
	}
}

// keyShard is the shard of an int64 key.
func (e *Engine) keyShard(k int64) int {
	if g := uint64(k - e.keys.lo); g < e.keys.span {
		return int(g>>blockBits) & e.keys.mask
	}
	return e.intShard(k)
}

// sortedUsers sets *out to the shard's present users sorted by key: its
// slots in order, merged with the other users, sorted.
func (s *shard) sortedUsers(out *[]uint32) error {
	var users, rest []uint32
	for u := range s.nd {
		if s.present[u] {
			users = append(users, uint32(u))
		}
	}
	for u := s.nd; u < s.nusers; u++ {
		if s.present[u] {
			rest = append(rest, uint32(u))
		}
	}
	if len(rest) == 0 {
		*out = users
		return nil
	}
	slices.SortFunc(rest, func(a, b uint32) int { return cmp.Compare(s.ikeys[a], s.ikeys[b]) })
	merged := make([]uint32, 0, len(users)+len(rest))
	i, j := 0, 0
	for i < len(users) && j < len(rest) {
		if s.ikeys[rest[j]] < s.ikeys[users[i]] {
			merged = append(merged, rest[j])
			j++
		} else {
			merged = append(merged, users[i])
			i++
		}
	}
	*out = append(append(merged, users[i:]...), rest[j:]...)
	return nil
}
