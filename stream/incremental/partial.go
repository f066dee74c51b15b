package incremental

import (
	"math"
	"strings"

	"github.com/portrait-dev/portrait/schemas"
)

// partial is a cell of the numeric part of the mergeable partial
// aggregates of one bucket (or of the lifetime base). Each aggregate tag
// (slot) takes one cell, first and last three; which fields are used
// depends on the aggregate:
//
//	count           n
//	sum, avg        n, i (int64 fields, exact; float64 fields: the bits
//	                of the float64 sum)
//	min, max        n, the value
//	first, last     n, the value; the order key (t, p, o) in the next two
//	                cells: (t, o) and (p, unused), see order
//	count_distinct  the values (n is 1 for the inline value)
//	mode            the values and their counts
//
// Cells are 16 bytes, so that a bucket takes less than half of what one
// 48-byte partial per slot took (taobao: 160 bytes instead of 384):
// every new bucket copies and clears its user's cells, the speed layer's
// most frequent allocation.
//
// partial holds no pointer, so the arrays of partials (most of the speed
// layer's memory at a million users) are not scanned by the garbage
// collector. Values of every type but string live as bits in i (unused
// by those aggregates otherwise); what needs a pointer — string values
// and the value sets of count_distinct and mode — lives in a side (see
// partials), which most buckets never make.
//
// count_distinct and mode keep a single value inline, without a set:
// no set and n > 0 means one value, seen n times (n is 1 for
// count_distinct). The set (bitCounts, or a map for strings) is made
// when a second value arrives, and then holds every value (n and the
// inline value unused). Most buckets of most users see one value, so
// this saves the side and the set.
type partial struct {
	n int64
	i int64
}

// orderCells is how many cells a first or last slot takes: its value and
// the order key of its value.
const orderCells = 3

// floatOf is the float64 whose bits are b; floatBits the bits of f.
func floatOf(b int64) float64   { return math.Float64frombits(uint64(b)) }
func floatBits(f float64) int64 { return int64(math.Float64bits(f)) }

// side is the part of a partial that needs pointers: the string value
// (string fields' min, max, first, last and inline count_distinct or
// mode value), or the count_distinct or mode values with their counts,
// kept by the value's bits (bits, see bitCounts) or in a map by the
// string (strs). Keeping them by bits keeps their storage free of
// pointers too.
type side struct {
	s    string
	bits bitCounts
	strs map[string]int64
}

// partials is a view of one bucket's (or the lifetime base's) cells and
// of their sides: *side is nil until some cell needs one, then made (size
// sides, see sideAt) for all cells where side points (the user's array
// of every bucket's sides, or the base's). The sides of this view start
// at off in it. The methods below take the index of the slot's (first)
// cell.
type partials struct {
	num  []partial
	side *[]side
	// off is where this view's sides start in *side; size is how many
	// sides to make when *side is nil (0: those of one set of cells).
	off, size int
	// sides lays the sides out (Executor.sides); nil: one per cell.
	sides *sideLayout
}

// sideLayout places the sides of a bucket's (or the base's) cells: only
// the slots that can need one (string values, count_distinct and mode)
// have one, so that the side array a bucket makes when one of them needs
// it is short (taobao: 2 sides for 10 cells), for the garbage collector
// to scan too.
type sideLayout struct {
	// of is the index of each cell's side, -1 for the cells of slots
	// that never need one; n is the number of sides.
	of []int
	n  int
}

// sideIndex is the index of cell i's side in *x.side.
func (x *partials) sideIndex(i int) int {
	if x.sides == nil {
		return x.off + i
	}
	return x.off + x.sides.of[i]
}

// newPartials is a fresh set of cells with its own sides.
func newPartials(cells int) partials {
	return partials{num: make([]partial, cells), side: new([]side)}
}

// sideAt is cell i's side, made on first use.
func (x *partials) sideAt(i int) *side {
	if *x.side == nil {
		n := x.size
		switch {
		case n > 0:
		case x.sides != nil:
			n = x.sides.n
		default:
			n = len(x.num)
		}
		*x.side = make([]side, n)
	}
	return &(*x.side)[x.sideIndex(i)]
}

// peek is cell i's side, or nil when there is none.
func (x *partials) peek(i int) *side {
	if *x.side == nil {
		return nil
	}
	return &(*x.side)[x.sideIndex(i)]
}

// bitsOf is the bits of a value of a non-string type.
func bitsOf(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case schemas.Timestamp:
		return int64(x)
	case float64:
		return int64(math.Float64bits(x))
	case bool:
		if x {
			return 1
		}
		return 0
	}
	panic("incremental: value of a string or unknown type kept as bits")
}

// keyBits is the bits of a value as count_distinct and mode tell values
// apart: like bitsOf, but 0 and -0 are one key (as for Go's map keys).
func keyBits(v any) int64 {
	if f, ok := v.(float64); ok && f == 0 {
		return 0
	}
	return bitsOf(v)
}

// fromBits is the value of non-string type t whose bits are b.
func fromBits(t schemas.Type, b int64) any {
	switch t {
	case schemas.TypeInt64:
		return b
	case schemas.TypeTimestamp:
		return schemas.Timestamp(b)
	case schemas.TypeFloat64:
		return math.Float64frombits(uint64(b))
	case schemas.TypeBool:
		return b != 0
	}
	panic("incremental: bits of type " + t.String())
}

// compareBits orders the bits of two values of non-string type t like
// schemas.Compare orders the values.
func compareBits(t schemas.Type, a, b int64) int {
	if t == schemas.TypeFloat64 {
		x, y := math.Float64frombits(uint64(a)), math.Float64frombits(uint64(b))
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	switch { // int64, timestamp, bool (0 and 1)
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// value is the value of the slot at cell i, of type t (min, max, first,
// last, or the inline count_distinct or mode value).
func (x *partials) value(i int, t schemas.Type) any {
	if t == schemas.TypeString {
		return x.peek(i).s
	}
	return fromBits(t, x.num[i].i)
}

// set makes v (of type t) the value of the slot at cell i.
func (x *partials) set(i int, t schemas.Type, v any) {
	if t == schemas.TypeString {
		x.sideAt(i).s = v.(string)
	} else {
		x.num[i].i = bitsOf(v)
	}
}

// compare orders v (of type t) against the value of the slot at cell i.
func (x *partials) compare(i int, t schemas.Type, v any) int {
	if t == schemas.TypeString {
		return strings.Compare(v.(string), x.peek(i).s)
	}
	return compareBits(t, bitsOf(v), x.num[i].i)
}

// compareWith orders y's value of the slot at cell i against x's (both
// of type t).
func (x *partials) compareWith(i int, t schemas.Type, y *partials) int {
	if t == schemas.TypeString {
		return strings.Compare(y.peek(i).s, x.peek(i).s)
	}
	return compareBits(t, y.num[i].i, x.num[i].i)
}

// takeValue makes y's value of the slot at cell i (of type t) x's.
func (x *partials) takeValue(i int, t schemas.Type, y *partials) {
	if t == schemas.TypeString {
		x.sideAt(i).s = y.peek(i).s
	} else {
		x.num[i].i = y.num[i].i
	}
}

// order is the order key (event time, partition, offset) of the value of
// the first or last slot at cell i.
func (x *partials) order(i int) (t int64, p int32, o int64) {
	return x.num[i+1].n, int32(x.num[i+2].n), x.num[i+1].i
}

// setOrder sets the order key of the first or last slot at cell i.
func (x *partials) setOrder(i int, t int64, p int32, o int64) {
	x.num[i+1].n, x.num[i+1].i, x.num[i+2].n = t, o, int64(p)
}

// before reports whether the order key (t, p, o) orders before that of
// the first or last slot at cell i.
func (x *partials) before(i int, t int64, p int32, o int64) bool {
	xt, xp, xo := x.order(i)
	if xt != t {
		return xt < t
	}
	if xp != p {
		return xp < p
	}
	return xo < o
}

// add folds one event's value v, of type s.typ, into the slot at cell i.
func (x *partials) add(i int, s *slot, v any, e *schemas.Event) {
	p := &x.num[i]
	switch s.agg {
	case schemas.AggCount:
		p.n++
	case schemas.AggSum, schemas.AggAvg:
		p.n++
		switch n := v.(type) {
		case int64:
			p.i += n
		case float64:
			p.i = floatBits(floatOf(p.i) + n)
		}
	case schemas.AggMin:
		if p.n == 0 || x.compare(i, s.typ, v) < 0 {
			x.set(i, s.typ, v)
		}
		p.n++
	case schemas.AggMax:
		if p.n == 0 || x.compare(i, s.typ, v) > 0 {
			x.set(i, s.typ, v)
		}
		p.n++
	case schemas.AggFirst:
		// first: keep the value whose order key is smallest.
		if p.n == 0 || !x.before(i, int64(e.Time), e.Partition, e.Offset) {
			x.set(i, s.typ, v)
			x.setOrder(i, int64(e.Time), e.Partition, e.Offset)
		}
		p.n++
	case schemas.AggLast:
		if p.n == 0 || x.before(i, int64(e.Time), e.Partition, e.Offset) {
			x.set(i, s.typ, v)
			x.setOrder(i, int64(e.Time), e.Partition, e.Offset)
		}
		p.n++
	case schemas.AggCountDistinct, schemas.AggMode:
		x.addCount(i, s.agg, s.typ, v, 1)
	}
}

// addCount adds value v (of type t) seen n times to count_distinct or
// mode slot at cell i.
func (x *partials) addCount(i int, agg schemas.Agg, t schemas.Type, v any, n int64) {
	if t == schemas.TypeString {
		x.addString(i, agg, v.(string), n)
	} else {
		x.addBits(i, agg, keyBits(v), n)
	}
}

// addBits adds the value whose key bits are b, seen n times, to
// count_distinct or mode slot at cell i.
func (x *partials) addBits(i int, agg schemas.Agg, b, n int64) {
	if agg == schemas.AggCountDistinct {
		n = 1
	}
	p := &x.num[i]
	sd := x.peek(i)
	if sd == nil || sd.bits.len() == 0 {
		switch {
		case p.n == 0:
			p.i, p.n = b, n
			return
		case p.i == b:
			if agg == schemas.AggMode {
				p.n += n
			}
			return
		}
		sd = x.sideAt(i)
		sd.bits.add(p.i, p.n, false)
		p.i, p.n = 0, 0
	}
	sd.bits.add(b, n, agg == schemas.AggCountDistinct)
}

// bitCounts are the values of a count_distinct or mode partial that has
// more than one, keyed by their bits, with their counts (1 for
// count_distinct): the first few in place (most sets are that small, and
// then they cost the garbage collector no object of their own), more in
// a short list searched in place (cheaper than a map to make, fill and
// walk for the handful of values most users have in a bucket), a map
// beyond maxFewCounts. None of them holds pointers to scan.
type bitCounts struct {
	inline [inlineCounts]bitCount
	// n is the number of values in inline, the rest are in few (both
	// unused once m is made).
	n   int
	few []bitCount
	m   map[int64]int64
}

type bitCount struct{ b, n int64 }

// inlineCounts is how many values bitCounts keeps in place; maxFewCounts
// the most it keeps in place and in its list together.
const (
	inlineCounts = 4
	maxFewCounts = 16
)

// len is the number of values.
func (c *bitCounts) len() int {
	if c.m != nil {
		return len(c.m)
	}
	return c.n + len(c.few)
}

// add counts value b n times more; with distinct, its count stays 1.
func (c *bitCounts) add(b, n int64, distinct bool) {
	if distinct {
		n = 1
	}
	if c.m != nil {
		if distinct {
			c.m[b] = 1
		} else {
			c.m[b] += n
		}
		return
	}
	if e := c.find(b); e != nil {
		if !distinct {
			e.n += n
		}
		return
	}
	switch {
	case c.n < inlineCounts:
		c.inline[c.n] = bitCount{b: b, n: n}
		c.n++
	case c.len() < maxFewCounts:
		c.few = append(c.few, bitCount{b: b, n: n})
	default:
		m := make(map[int64]int64, 2*maxFewCounts)
		for b, n := range c.all {
			m[b] = n
		}
		m[b] = n
		c.m, c.n, c.few = m, 0, nil
	}
}

// find is the entry of value b in the list, or nil.
func (c *bitCounts) find(b int64) *bitCount {
	for k := range c.n {
		if c.inline[k].b == b {
			return &c.inline[k]
		}
	}
	for k := range c.few {
		if c.few[k].b == b {
			return &c.few[k]
		}
	}
	return nil
}

// all yields every value and its count, in no particular order.
func (c *bitCounts) all(yield func(b, n int64) bool) {
	if c.m != nil {
		for b, n := range c.m {
			if !yield(b, n) {
				return
			}
		}
		return
	}
	for _, e := range c.inline[:c.n] {
		if !yield(e.b, e.n) {
			return
		}
	}
	for _, e := range c.few {
		if !yield(e.b, e.n) {
			return
		}
	}
}

// addString adds string value v, seen n times, to count_distinct or mode
// slot i.
func (x *partials) addString(i int, agg schemas.Agg, v string, n int64) {
	if agg == schemas.AggCountDistinct {
		n = 1
	}
	p := &x.num[i]
	sd := x.sideAt(i)
	if sd.strs == nil {
		switch {
		case p.n == 0:
			sd.s, p.n = v, n
			return
		case sd.s == v:
			if agg == schemas.AggMode {
				p.n += n
			}
			return
		}
		sd.strs = make(map[string]int64, 4)
		sd.strs[sd.s] = p.n
		sd.s, p.n = "", 0
	}
	if agg == schemas.AggCountDistinct {
		sd.strs[v] = 1
	} else {
		sd.strs[v] += n
	}
}

// distinct is the number of distinct values of count_distinct or mode
// slot i.
func (x *partials) distinct(i int) int {
	if sd := x.peek(i); sd != nil {
		switch {
		case sd.bits.len() > 0:
			return sd.bits.len()
		case sd.strs != nil:
			return len(sd.strs)
		}
	}
	return int(min(x.num[i].n, 1))
}

// merge folds y's slot s, at cell i, into x's. Maps of y are not
// retained.
func (x *partials) merge(i int, s *slot, y *partials) {
	p, q := &x.num[i], &y.num[i]
	switch s.agg {
	case schemas.AggCount:
		p.n += q.n
	case schemas.AggSum, schemas.AggAvg:
		p.n += q.n
		if s.typ == schemas.TypeFloat64 {
			p.i = floatBits(floatOf(p.i) + floatOf(q.i))
		} else {
			p.i += q.i
		}
	case schemas.AggMin, schemas.AggMax:
		if q.n == 0 {
			return
		}
		if p.n == 0 {
			x.takeValue(i, s.typ, y)
		} else if c := x.compareWith(i, s.typ, y); (s.agg == schemas.AggMin && c < 0) || (s.agg == schemas.AggMax && c > 0) {
			x.takeValue(i, s.typ, y)
		}
		p.n += q.n
	case schemas.AggFirst, schemas.AggLast:
		if q.n == 0 {
			return
		}
		take := p.n == 0
		if !take {
			t, part, o := x.order(i)
			take = (s.agg == schemas.AggFirst) == y.before(i, t, part, o)
		}
		if take {
			x.takeValue(i, s.typ, y)
			t, part, o := y.order(i)
			x.setOrder(i, t, part, o)
		}
		p.n += q.n
	case schemas.AggCountDistinct, schemas.AggMode:
		x.mergeCounts(i, s.agg, s.typ, y)
	}
}

// mergeCounts adds the values of y's count_distinct or mode slot at cell
// i to x's.
func (x *partials) mergeCounts(i int, agg schemas.Agg, t schemas.Type, y *partials) {
	if sd := y.peek(i); sd != nil {
		switch {
		case sd.bits.len() > 0:
			for b, n := range sd.bits.all {
				x.addBits(i, agg, b, n)
			}
			return
		case sd.strs != nil:
			for v, n := range sd.strs {
				x.addString(i, agg, v, n)
			}
			return
		}
	}
	q := &y.num[i]
	switch {
	case q.n == 0:
	case t == schemas.TypeString:
		x.addString(i, agg, y.peek(i).s, q.n)
	default:
		x.addBits(i, agg, q.i, q.n)
	}
}

// result is the tag value of slot s, at cell i.
func (x *partials) result(i int, s *slot) any {
	p := &x.num[i]
	switch s.agg {
	case schemas.AggCount:
		return p.n
	case schemas.AggCountDistinct:
		return int64(x.distinct(i))
	case schemas.AggMode:
		return x.mode(i, s.typ)
	}
	if p.n == 0 {
		return nil
	}
	switch s.agg {
	case schemas.AggSum:
		if s.typ == schemas.TypeFloat64 {
			return floatOf(p.i)
		}
		return p.i
	case schemas.AggAvg:
		if s.typ == schemas.TypeFloat64 {
			return floatOf(p.i) / float64(p.n)
		}
		return float64(p.i) / float64(p.n)
	}
	return x.value(i, s.typ) // min, max, first, last
}

// mode is the most frequent value (of type t) of mode slot at cell i, the
// smallest among ties; nil without any.
func (x *partials) mode(i int, t schemas.Type) any {
	if sd := x.peek(i); sd != nil {
		switch {
		case sd.bits.len() > 0:
			var best, bestN int64
			for b, n := range sd.bits.all {
				if n > bestN || (n == bestN && compareBits(t, b, best) < 0) {
					best, bestN = b, n
				}
			}
			return fromBits(t, best)
		case sd.strs != nil:
			var best string
			var bestN int64
			for v, n := range sd.strs {
				if n > bestN || (n == bestN && v < best) {
					best, bestN = v, n
				}
			}
			return best
		}
	}
	if x.num[i].n == 0 {
		return nil
	}
	return x.value(i, t)
}
