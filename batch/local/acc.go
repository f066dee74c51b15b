package local

import (
	"fmt"
	"math"
	"slices"

	"github.com/portrait-dev/portrait/schemas"
)

// acc accumulates one aggregate tag for every user in typed slices indexed
// by the dense user index. add takes the selected rows of a batch (sel) and
// the user index of every row (users); it is called once per batch, so the
// interface call is not in the per-row path.
type acc interface {
	grow(n int)
	add(b *batch, sel []int32, users []uint32) error
	merge(u uint32, p schemas.Partial) error
	filler
}

func newAcc(cat *schemas.Catalog, t *schemas.Tag, strs *interner) (acc, error) {
	var of *schemas.Field
	if t.Of >= 0 {
		of = &cat.Fields[t.Of]
	}
	switch t.Agg {
	case schemas.AggCount:
		return &countAcc{}, nil
	case schemas.AggSum, schemas.AggAvg:
		avg := t.Agg == schemas.AggAvg
		switch of.Type {
		case schemas.TypeInt64:
			return &sumAcc[int64]{field: t.Of, avg: avg}, nil
		case schemas.TypeFloat64:
			return &sumAcc[float64]{field: t.Of, avg: avg}, nil
		}
	case schemas.AggMin, schemas.AggMax:
		max := t.Agg == schemas.AggMax
		switch of.Type {
		case schemas.TypeInt64, schemas.TypeTimestamp:
			return &minMaxAcc[int64]{field: t.Of, max: max}, nil
		case schemas.TypeFloat64:
			return &minMaxAcc[float64]{field: t.Of, max: max}, nil
		case schemas.TypeString:
			return &minMaxStrAcc{field: t.Of, max: max, strs: strs}, nil
		}
	case schemas.AggFirst, schemas.AggLast:
		last := t.Agg == schemas.AggLast
		switch of.Type {
		case schemas.TypeInt64, schemas.TypeTimestamp:
			return &edgeAcc[int64]{field: t.Of, last: last}, nil
		case schemas.TypeFloat64:
			return &edgeAcc[float64]{field: t.Of, last: last}, nil
		case schemas.TypeBool:
			return &edgeAcc[bool]{field: t.Of, last: last}, nil
		case schemas.TypeString:
			return &edgeAcc[bool]{field: t.Of, last: last, strs: strs}, nil
		}
	case schemas.AggCountDistinct:
		return &distinctAcc{field: t.Of, codec: codec{typ: of.Type, strs: strs}, keep: t.Lifetime()}, nil
	case schemas.AggMode:
		return &modeAcc{field: t.Of, codec: codec{typ: of.Type, strs: strs}, counts: pairSet{counted: true}, keep: t.Lifetime()}, nil
	}
	return nil, fmt.Errorf("tag %s: no local aggregate for %s", t.Name, t.Agg)
}

// seer is an accumulator that tells whether a user had an event it
// aggregated.
type seer interface{ seen(u uint32) bool }

func (a *countAcc) seen(u uint32) bool     { return *a.n.at(u) > 0 }
func (a *sumAcc[T]) seen(u uint32) bool    { return a.s.at(u).n > 0 }
func (a *minMaxAcc[T]) seen(u uint32) bool { return a.v.at(u).has }
func (a *rangeView[T]) seen(u uint32) bool { return a.r.v.at(u).hasLo }
func (a *minMaxStrAcc) seen(u uint32) bool { return a.has[u] }
func (a *edgeAcc[T]) seen(u uint32) bool   { return a.e.at(u).has() }

func grow[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	if n <= cap(s) {
		return s[:n]
	}
	c := max(n, 2*cap(s), 1024)
	out := make([]T, n, c)
	copy(out, s)
	return out
}

// ---- count

type countAcc struct{ n userSlots[int64] }

func (a *countAcc) grow(n int) { a.n.grow(n) }

func (a *countAcc) add(_ *batch, sel []int32, users []uint32) error {
	base, stride := a.n.view()
	for _, r := range sel {
		*slotAt[int64](base, stride, users[r])++
	}
	return nil
}

func (a *countAcc) merge(u uint32, p schemas.Partial) error { *a.n.at(u) += p.N; return nil }

// ---- sum and avg

// Per-user state is one struct per user, so an event touches one cache
// line of each accumulator.
type sumAcc[T int64 | float64] struct {
	field int
	avg   bool
	s     userSlots[sumSlot[T]]
}

type sumSlot[T int64 | float64] struct {
	s T
	n int64
}

func (a *sumAcc[T]) grow(n int) { a.s.grow(n) }

func (a *sumAcc[T]) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	xs := slice[T](c)
	base, stride := a.s.view()
	for _, r := range sel {
		st := slotAt[sumSlot[T]](base, stride, users[r])
		st.s += xs[r]
		st.n++
	}
	return nil
}

func (a *sumAcc[T]) partial(u uint32) schemas.Partial {
	st := a.s.at(u)
	p := schemas.Partial{N: st.n}
	switch s := any(st.s).(type) {
	case int64:
		p.Int = s
	case float64:
		p.Float = s
	}
	return p
}

func (a *sumAcc[T]) merge(u uint32, p schemas.Partial) error {
	var v T
	switch x := any(&v).(type) {
	case *int64:
		*x = p.Int
	case *float64:
		*x = p.Float
	}
	st := a.s.at(u)
	st.s += v
	st.n += p.N
	return nil
}

// slice returns a column's values as []T; T matches the column's type.
func slice[T any](v *vec) []T {
	var z T
	switch any(z).(type) {
	case int64:
		return any(v.i).([]T)
	case float64:
		return any(v.f).([]T)
	case bool:
		return any(v.b).([]T)
	}
	panic(fmt.Sprintf("local: no column slice of %T", z))
}

// ---- min and max

type minMaxAcc[T int64 | float64] struct {
	field int
	max   bool
	v     userSlots[minMaxSlot[T]]
}

type minMaxSlot[T int64 | float64] struct {
	v   T
	has bool
}

func (a *minMaxAcc[T]) grow(n int) { a.v.grow(n) }

func (a *minMaxAcc[T]) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	xs := slice[T](c)
	base, stride := a.v.view()
	if a.max {
		for _, r := range sel {
			st, x := slotAt[minMaxSlot[T]](base, stride, users[r]), xs[r]
			if !st.has || x > st.v {
				st.v, st.has = x, true
			}
		}
		return nil
	}
	for _, r := range sel {
		st, x := slotAt[minMaxSlot[T]](base, stride, users[r]), xs[r]
		if !st.has || x < st.v {
			st.v, st.has = x, true
		}
	}
	return nil
}

func (a *minMaxAcc[T]) merge(u uint32, p schemas.Partial) error {
	if p.N == 0 || p.Value == nil {
		return nil
	}
	x, err := unboxAs[T](p.Value)
	if err != nil {
		return err
	}
	st := a.v.at(u)
	if !st.has || (a.max && x > st.v) || (!a.max && x < st.v) {
		st.v, st.has = x, true
	}
	return nil
}

// unboxAs reads a partial's value into T.
func unboxAs[T any](v any) (T, error) {
	var out T
	switch x := v.(type) {
	case schemas.Timestamp:
		v = int64(x)
	}
	y, ok := v.(T)
	if !ok {
		return out, fmt.Errorf("partial value %v is %T, want %T", v, v, out)
	}
	return y, nil
}

type minMaxStrAcc struct {
	field int
	max   bool
	strs  *interner
	v     []uint32
	has   []bool
}

func (a *minMaxStrAcc) grow(n int) { a.v, a.has = grow(a.v, n), grow(a.has, n) }

func (a *minMaxStrAcc) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	ids, err := b.codes(a.field)
	if err != nil {
		return err
	}
	for _, r := range sel {
		u, x := users[r], c.s[r]
		if !a.has[u] {
			a.v[u], a.has[u] = uint32(ids[r]), true
			continue
		}
		cur := a.strs.vals[a.v[u]]
		if (a.max && x > cur) || (!a.max && x < cur) {
			a.v[u] = uint32(ids[r])
		}
	}
	return nil
}

func (a *minMaxStrAcc) merge(u uint32, p schemas.Partial) error {
	if p.N == 0 || p.Value == nil {
		return nil
	}
	x, ok := p.Value.(string)
	if !ok {
		return fmt.Errorf("partial value %v is %T, want string", p.Value, p.Value)
	}
	if !a.has[u] {
		a.v[u], a.has[u] = a.strs.id(x), true
		return nil
	}
	cur := a.strs.vals[a.v[u]]
	if (a.max && x > cur) || (!a.max && x < cur) {
		a.v[u] = a.strs.id(x)
	}
	return nil
}

// ---- first and last

// edgeAcc keeps the first or last value by (time, partition, offset).
// Strings are kept as interned ids in ref (T is then unused).
type edgeAcc[T int64 | float64 | bool] struct {
	field int
	last  bool
	strs  *interner
	e     userSlots[edgeSlot[T]]
}

// edgeSlot is 32 bytes, so that slots never straddle cache lines.
type edgeSlot[T int64 | float64 | bool] struct {
	t, o int64
	v    T
	p    int32
	// ref is 0 while there is no value, else the interned id + 1 of a
	// string value, 1 for others.
	ref uint32
}

func (st *edgeSlot[T]) has() bool { return st.ref != 0 }

func (a *edgeAcc[T]) grow(n int) { a.e.grow(n) }

// before reports whether (t1, p1, o1) orders before (t2, p2, o2).
func before(t1 int64, p1 int32, o1 int64, t2 int64, p2 int32, o2 int64) bool {
	if t1 != t2 {
		return t1 < t2
	}
	if p1 != p2 {
		return p1 < p2
	}
	return o1 < o2
}

func (a *edgeAcc[T]) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	var xs []T
	var ids []uint64
	if a.strs == nil {
		xs = slice[T](c)
	} else if ids, err = b.codes(a.field); err != nil {
		return err
	}
	base, stride := a.e.view()
	for _, r := range sel {
		st := slotAt[edgeSlot[T]](base, stride, users[r])
		t, p, o := b.ts[r], b.part[r], b.off[r]
		if st.has() {
			if a.last {
				if !before(st.t, st.p, st.o, t, p, o) {
					continue
				}
			} else if !before(t, p, o, st.t, st.p, st.o) {
				continue
			}
		}
		if a.strs != nil {
			st.ref = uint32(ids[r]) + 1
		} else {
			st.v, st.ref = xs[r], 1
		}
		st.t, st.p, st.o = t, p, o
	}
	return nil
}

func (a *edgeAcc[T]) merge(u uint32, p schemas.Partial) error {
	if p.N == 0 || p.Value == nil {
		return nil
	}
	st := a.e.at(u)
	t := int64(p.Time)
	if st.has() {
		if a.last && !before(st.t, st.p, st.o, t, p.Partition, p.Offset) {
			return nil
		}
		if !a.last && !before(t, p.Partition, p.Offset, st.t, st.p, st.o) {
			return nil
		}
	}
	if a.strs != nil {
		s, ok := p.Value.(string)
		if !ok {
			return fmt.Errorf("partial value %v is %T, want string", p.Value, p.Value)
		}
		st.ref = a.strs.id(s) + 1
	} else {
		v, err := unboxAs[T](p.Value)
		if err != nil {
			return err
		}
		st.v, st.ref = v, 1
	}
	st.t, st.p, st.o = t, p.Partition, p.Offset
	return nil
}

// ---- value codes for count_distinct and mode

// codec maps a field's values to uint64 codes that are equal exactly when
// the values are: int64 and timestamps as their bits, float64 as its bits
// (with -0 folded into 0), bools as 0/1 and strings as interned ids.
type codec struct {
	typ  schemas.Type
	strs *interner
}

func floatCode(f float64) uint64 {
	if f == 0 {
		f = 0 // folds -0
	}
	return math.Float64bits(f)
}

func (c codec) decode(bx *boxer, x uint64) any {
	switch c.typ {
	case schemas.TypeInt64:
		return bx.int64(int64(x))
	case schemas.TypeTimestamp:
		return bx.timestamp(int64(x))
	case schemas.TypeFloat64:
		return bx.float64(math.Float64frombits(x))
	case schemas.TypeBool:
		return x == 1
	default:
		return bx.stringAt(&c.strs.vals[uint32(x)])
	}
}

func (c codec) encode(v any) (uint64, error) {
	switch x := v.(type) {
	case int64:
		if c.typ == schemas.TypeInt64 {
			return uint64(x), nil
		}
	case schemas.Timestamp:
		if c.typ == schemas.TypeTimestamp {
			return uint64(x), nil
		}
	case float64:
		if c.typ == schemas.TypeFloat64 {
			return floatCode(x), nil
		}
	case bool:
		if c.typ == schemas.TypeBool {
			if x {
				return 1, nil
			}
			return 0, nil
		}
	case string:
		if c.typ == schemas.TypeString {
			return uint64(c.strs.id(x)), nil
		}
	}
	return 0, fmt.Errorf("partial value %v is %T, want %s", v, v, c.typ)
}

// cmp orders two codes by their values.
func (c codec) cmp(x, y uint64) int {
	switch {
	case c.less(x, y):
		return -1
	case c.less(y, x):
		return 1
	}
	return 0
}

// less orders two codes by their values.
func (c codec) less(x, y uint64) bool {
	switch c.typ {
	case schemas.TypeInt64, schemas.TypeTimestamp:
		return int64(x) < int64(y)
	case schemas.TypeFloat64:
		return math.Float64frombits(x) < math.Float64frombits(y)
	case schemas.TypeBool:
		return x < y
	default:
		if r := c.strs.ranks; x < uint64(len(r)) && y < uint64(len(r)) {
			return r[x] < r[y]
		}
		return c.strs.vals[uint32(x)] < c.strs.vals[uint32(y)]
	}
}

// ---- count_distinct

// distinctAcc gathers every user's values in a pairSet; the set sizes are
// counted once all events are in. Only a lifetime tag (whose partial
// lists the values) keeps the sets.
type distinctAcc struct {
	field int
	codec codec
	set   pairSet
	keep  bool
	n     []int64
	done  bool
}

func (a *distinctAcc) grow(n int) { a.n = grow(a.n, n) }

func (a *distinctAcc) add(b *batch, sel []int32, users []uint32) error {
	xs, err := b.codes(a.field)
	if err != nil {
		return err
	}
	a.set.add(sel, users, xs)
	return nil
}

func (a *distinctAcc) finish() {
	if a.done {
		return
	}
	a.done = true
	a.set.finish(a.keep, func(u uint32, xs []uint64, _ []int64) { a.n[u] = int64(len(xs)) })
}

func (a *distinctAcc) partial(u uint32, bx *boxer) schemas.Partial {
	a.finish()
	rx, _ := a.set.runs(u)
	xs := slices.Clone(rx)
	slices.SortFunc(xs, a.codec.cmp)
	vals := make([]any, len(xs))
	for i, x := range xs {
		vals[i] = a.codec.decode(bx, x)
	}
	return schemas.Partial{N: int64(len(vals)), Values: vals}
}

func (a *distinctAcc) merge(u uint32, p schemas.Partial) error {
	for _, v := range p.Values {
		x, err := a.codec.encode(v)
		if err != nil {
			return err
		}
		a.set.push(u, x)
	}
	return nil
}

// ---- mode

// modeAcc counts every (user, value) in a pairSet; every user's mode is
// then found in one pass over the runs. Only a lifetime tag (whose
// partial lists the values and counts) keeps the runs.
type modeAcc struct {
	field  int
	codec  codec
	counts pairSet
	keep   bool

	// best: the mode's code of every user, and whether it has one, once
	// done.
	best []uint64
	has  []bool
	done bool
}

func (a *modeAcc) grow(n int) { a.best, a.has = grow(a.best, n), grow(a.has, n) }

func (a *modeAcc) add(b *batch, sel []int32, users []uint32) error {
	xs, err := b.codes(a.field)
	if err != nil {
		return err
	}
	a.counts.add(sel, users, xs)
	return nil
}

func (a *modeAcc) finish() {
	if a.done {
		return
	}
	a.done = true
	signed := a.codec.typ == schemas.TypeInt64 || a.codec.typ == schemas.TypeTimestamp
	a.counts.finish(a.keep, func(u uint32, rx []uint64, rc []int64) {
		if signed {
			// The common case, with the comparison inlined and, as the
			// codes come in no particular order and most counts tie,
			// conditional moves rather than branches to mispredict.
			bc, bx := rc[0], int64(rx[0])
			for i := 1; i < len(rx); i++ {
				c, x := rc[i], int64(rx[i])
				better := c > bc
				if c == bc {
					better = x < bx
				}
				if better {
					bc = c
				}
				if better {
					bx = x
				}
			}
			a.best[u], a.has[u] = uint64(bx), true
			return
		}
		best := 0
		for i := 1; i < len(rx); i++ {
			if rc[i] > rc[best] || (rc[i] == rc[best] && a.codec.less(rx[i], rx[best])) {
				best = i
			}
		}
		a.best[u], a.has[u] = rx[best], true
	})
}

func (a *modeAcc) partial(u uint32, bx *boxer) schemas.Partial {
	a.finish()
	rx, rc := a.counts.runs(u)
	idx := make([]int, len(rx))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int { return a.codec.cmp(rx[i], rx[j]) })
	vals, counts := make([]any, len(idx)), make([]int64, len(idx))
	var total int64
	for k, i := range idx {
		vals[k], counts[k] = a.codec.decode(bx, rx[i]), rc[i]
		total += rc[i]
	}
	return schemas.Partial{N: total, Values: vals, Counts: counts}
}

func (a *modeAcc) merge(u uint32, p schemas.Partial) error {
	if len(p.Counts) != len(p.Values) {
		return fmt.Errorf("mode partial has %d values and %d counts", len(p.Values), len(p.Counts))
	}
	for i, v := range p.Values {
		x, err := a.codec.encode(v)
		if err != nil {
			return err
		}
		a.counts.pushN(u, x, p.Counts[i])
	}
	return nil
}
