package incremental

import (
	"encoding/binary"

	"github.com/portrait-dev/portrait/schemas"
)

// LifetimeTags lists the catalog indexes of the lifetime aggregate tags,
// the order Rebase takes their partials in.
func (x *Executor) LifetimeTags() []int {
	out := make([]int, len(x.life))
	for i, s := range x.life {
		out[i] = x.slots[s].tag.Index
	}
	return out
}

// Rebase makes base (one partial per LifetimeTags entry; nil: the user had
// no event before from) u's lifetime base, covering every event before the
// bucket boundary from: the lifetime tags then merge it with the kept
// buckets from `from` on only, and eviction no longer folds the buckets
// before it. The buckets before from must be kept still (from ≥ the
// KeepFrom they were evicted at), or their events are lost.
func (x *Executor) Rebase(u *User, from schemas.Timestamp, base []schemas.Partial) {
	u.baseFrom = from
	u.rebased, u.baseDirty = true, true
	u.baseNum, u.baseSide = nil, nil
	if len(x.life) == 0 || base == nil {
		return
	}
	u.baseNum = make([]partial, x.cells)
	ub := x.base(u)
	for j, slot := range x.life {
		b := &base[j]
		s, typ := x.slots[slot].cell, x.slots[slot].typ
		p := &ub.num[s]
		switch agg := x.slots[slot].agg; agg {
		case schemas.AggCountDistinct, schemas.AggMode:
			for k, v := range b.Values {
				n := int64(1)
				if agg == schemas.AggMode && k < len(b.Counts) {
					n = b.Counts[k]
				}
				ub.addCount(s, agg, typ, v, n)
			}
		case schemas.AggFirst, schemas.AggLast:
			p.n = b.N
			if b.N > 0 && b.Value != nil {
				ub.set(s, typ, b.Value)
			}
			ub.setOrder(s, int64(b.Time), b.Partition, b.Offset)
		default:
			p.n, p.i = b.N, b.Int
			if typ == schemas.TypeFloat64 {
				p.i = floatBits(b.Float)
			}
			if b.N > 0 && b.Value != nil {
				ub.set(s, typ, b.Value)
			}
		}
	}
}

// BaseFrom is where u's snapshot base ends (0: u was never rebased).
func (u *User) BaseFrom() schemas.Timestamp { return u.baseFrom }

// flushRebase emits the base's end a Rebase changed (deleted when
// nothing is left to store); Flush emitted the base.
func (x *Executor) flushRebase(u *User, a []byte, emit func(part, value []byte)) []byte {
	u.rebased = false
	ns := len(a)
	a = append(a, partBaseFrom)
	if u.Empty() {
		emit(a[ns:len(a):len(a)], nil)
		return a
	}
	vs := len(a)
	a = binary.AppendUvarint(a, codecVersion)
	a = binary.AppendVarint(a, int64(u.baseFrom))
	emit(a[ns:vs:vs], a[vs:len(a):len(a)])
	return a
}

// Replace makes u hold the state of v, a user rebuilt from scratch with
// the same key (v must not be used afterwards): the next Flush rewrites
// every part of v and deletes the parts u had that v lacks.
func (x *Executor) Replace(u, v *User) {
	keep := make(map[schemas.Timestamp]bool, x.buckets(v))
	for i := range x.buckets(v) {
		h := x.header(v, i)
		keep[h.start()] = true
		h.setDirty(true)
	}
	dropped := append([]schemas.Timestamp(nil), u.dropped...)
	for i := range x.buckets(u) {
		if start := x.header(u, i).start(); !keep[start] {
			dropped = append(dropped, start)
		}
	}
	*u = *v
	u.dropped = append(dropped, v.dropped...)
	u.baseDirty, u.rebased = true, true
}
