package incremental

import (
	"math"
	"strings"

	"github.com/portrait-dev/portrait/schemas"
)

// partial is the numeric part of the mergeable partial aggregate of one
// tag over one bucket (or over the lifetime base). Which fields are used
// depends on the aggregate:
//
//	count           n
//	sum, avg        n, i (int64 fields, exact) or f (float64 fields)
//	min, max        n, the value
//	first, last     n, the value and its order key (t, p, o)
//	count_distinct  the values (n is 1 for the inline value)
//	mode            the values and their counts
//
// partial holds no pointer, so the arrays of partials (most of the speed
// layer's memory at a million users) are not scanned by the garbage
// collector. Values of every type but string live as bits in i (unused
// by those aggregates otherwise); what needs a pointer — string values
// and the maps of count_distinct and mode — lives in a side (see
// partials), which most buckets never make.
//
// count_distinct and mode keep a single value inline, without a map:
// no map and n > 0 means one value, seen n times (n is 1 for
// count_distinct). The map is made when a second value arrives, and then
// holds every value (n and the inline value unused). Most buckets of
// most users see one value, so this saves the side and the map.
type partial struct {
	n int64
	i int64
	f float64
	t int64
	o int64
	p int32
}

// side is the part of a partial that needs pointers: the string value
// (string fields' min, max, first, last and inline count_distinct or
// mode value), or the count_distinct or mode map, keyed by the value's
// bits (bits) or by the string (strs). Keying by bits keeps the map's
// storage free of pointers too.
type side struct {
	s    string
	bits map[int64]int64
	strs map[string]int64
}

// partials is a view of one bucket's (or the lifetime base's) partials,
// one per slot, and of their sides: *side is nil until some slot needs
// one, then made for all slots where side points (the bucket's or the
// base's field).
type partials struct {
	num  []partial
	side *[]side
}

// newPartials is a fresh set of partials with its own sides.
func newPartials(slots int) partials {
	return partials{num: make([]partial, slots), side: new([]side)}
}

// sideAt is slot i's side, made on first use.
func (x *partials) sideAt(i int) *side {
	if *x.side == nil {
		*x.side = make([]side, len(x.num))
	}
	return &(*x.side)[i]
}

// peek is slot i's side, or nil when there is none.
func (x *partials) peek(i int) *side {
	if *x.side == nil {
		return nil
	}
	return &(*x.side)[i]
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

// value is slot i's value, of type t (min, max, first, last, or the
// inline count_distinct or mode value).
func (x *partials) value(i int, t schemas.Type) any {
	if t == schemas.TypeString {
		return (*x.side)[i].s
	}
	return fromBits(t, x.num[i].i)
}

// set makes v (of type t) slot i's value.
func (x *partials) set(i int, t schemas.Type, v any) {
	if t == schemas.TypeString {
		x.sideAt(i).s = v.(string)
	} else {
		x.num[i].i = bitsOf(v)
	}
}

// compare orders v (of type t) against slot i's value.
func (x *partials) compare(i int, t schemas.Type, v any) int {
	if t == schemas.TypeString {
		return strings.Compare(v.(string), (*x.side)[i].s)
	}
	return compareBits(t, bitsOf(v), x.num[i].i)
}

// compareWith orders y's value of slot i against x's (both of type t).
func (x *partials) compareWith(i int, t schemas.Type, y *partials) int {
	if t == schemas.TypeString {
		return strings.Compare((*y.side)[i].s, (*x.side)[i].s)
	}
	return compareBits(t, y.num[i].i, x.num[i].i)
}

// takeValue makes y's value of slot i (of type t) x's.
func (x *partials) takeValue(i int, t schemas.Type, y *partials) {
	if t == schemas.TypeString {
		x.sideAt(i).s = (*y.side)[i].s
	} else {
		x.num[i].i = y.num[i].i
	}
}

// before reports whether the order key (t, p, o) orders before x's.
func (x *partial) before(t int64, p int32, o int64) bool {
	if x.t != t {
		return x.t < t
	}
	if x.p != p {
		return x.p < p
	}
	return x.o < o
}

// add folds one event's value v, of type s.typ, into slot i.
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
			p.f += n
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
		if p.n == 0 || !p.before(int64(e.Time), e.Partition, e.Offset) {
			x.set(i, s.typ, v)
			p.t, p.p, p.o = int64(e.Time), e.Partition, e.Offset
		}
		p.n++
	case schemas.AggLast:
		if p.n == 0 || p.before(int64(e.Time), e.Partition, e.Offset) {
			x.set(i, s.typ, v)
			p.t, p.p, p.o = int64(e.Time), e.Partition, e.Offset
		}
		p.n++
	case schemas.AggCountDistinct, schemas.AggMode:
		x.addCount(i, s.agg, s.typ, v, 1)
	}
}

// addCount adds value v (of type t) seen n times to count_distinct or
// mode slot i.
func (x *partials) addCount(i int, agg schemas.Agg, t schemas.Type, v any, n int64) {
	if t == schemas.TypeString {
		x.addString(i, agg, v.(string), n)
	} else {
		x.addBits(i, agg, keyBits(v), n)
	}
}

// addBits adds the value whose key bits are b, seen n times, to
// count_distinct or mode slot i.
func (x *partials) addBits(i int, agg schemas.Agg, b, n int64) {
	if agg == schemas.AggCountDistinct {
		n = 1
	}
	p := &x.num[i]
	var m map[int64]int64
	if sd := x.peek(i); sd != nil {
		m = sd.bits
	}
	if m == nil {
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
		m = make(map[int64]int64, 4)
		m[p.i] = p.n
		p.i, p.n = 0, 0
		x.sideAt(i).bits = m
	}
	if agg == schemas.AggCountDistinct {
		m[b] = 1
	} else {
		m[b] += n
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
		case sd.bits != nil:
			return len(sd.bits)
		case sd.strs != nil:
			return len(sd.strs)
		}
	}
	return int(min(x.num[i].n, 1))
}

// merge folds y's slot i into x's; s is the slot. Maps of y are not
// retained.
func (x *partials) merge(i int, s *slot, y *partials) {
	p, q := &x.num[i], &y.num[i]
	switch s.agg {
	case schemas.AggCount:
		p.n += q.n
	case schemas.AggSum, schemas.AggAvg:
		p.n += q.n
		p.i += q.i
		p.f += q.f
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
			yBefore := q.before(p.t, p.p, p.o)
			take = (s.agg == schemas.AggFirst) == yBefore
		}
		if take {
			x.takeValue(i, s.typ, y)
			p.t, p.p, p.o = q.t, q.p, q.o
		}
		p.n += q.n
	case schemas.AggCountDistinct, schemas.AggMode:
		x.mergeCounts(i, s.agg, s.typ, y)
	}
}

// mergeCounts adds the values of y's count_distinct or mode slot i to
// x's.
func (x *partials) mergeCounts(i int, agg schemas.Agg, t schemas.Type, y *partials) {
	if sd := y.peek(i); sd != nil {
		switch {
		case sd.bits != nil:
			for b, n := range sd.bits {
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
		x.addString(i, agg, (*y.side)[i].s, q.n)
	default:
		x.addBits(i, agg, q.i, q.n)
	}
}

// result is slot i's tag value; s is the slot.
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
		if s.tag.Type == schemas.TypeInt64 {
			return p.i
		}
		return p.f
	case schemas.AggAvg:
		return (p.f + float64(p.i)) / float64(p.n)
	}
	return x.value(i, s.typ) // min, max, first, last
}

// mode is the most frequent value (of type t) of mode slot i, the
// smallest among ties; nil without any.
func (x *partials) mode(i int, t schemas.Type) any {
	if sd := x.peek(i); sd != nil {
		switch {
		case sd.bits != nil:
			var best, bestN int64
			for b, n := range sd.bits {
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
