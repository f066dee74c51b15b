package incremental

import (
	"math"

	"github.com/portrait-dev/portrait/schemas"
)

// partial is the mergeable partial aggregate of one tag over one bucket
// (or over the lifetime base). Which fields are used depends on the
// aggregate:
//
//	count           n
//	sum, avg        n, i (int64 fields, exact) or f (float64 fields)
//	min, max        n, the value
//	first, last     n, the value and its order key (t, p, o)
//	count_distinct  m (value → 1)
//	mode            m (value → count)
//
// The value is kept without a heap pointer for every type but string:
// int64, timestamp, float64 and bool values live as bits in i (unused by
// those aggregates otherwise), strings in v. At a million users most
// partials hold a value, and boxed values would be millions of small
// heap objects for the garbage collector to mark.
//
// count_distinct and mode keep a single value inline, without a map: m
// nil and n > 0 means one value, seen n times (n is 1 for
// count_distinct). The map is made when a second value arrives, and then
// holds every value, boxed (n and the inline value unused). Most buckets
// of most users see one value, so this saves two allocations per new
// bucket.
type partial struct {
	n int64
	i int64
	f float64
	v any
	t int64
	o int64
	p int32
	m map[any]int64
}

// inBits reports whether values of type t are kept as bits in i.
func inBits(t schemas.Type) bool { return t != schemas.TypeString }

// bitsOf is the bits of a value of a type inBits accepts.
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

// fromBits is the value of type t whose bits are b.
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

// compareBits orders the bits of two values of type t like
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

// value is the partial's value of type t.
func (x *partial) value(t schemas.Type) any {
	if inBits(t) {
		return fromBits(t, x.i)
	}
	return x.v
}

// set makes v (of type t) the partial's value.
func (x *partial) set(t schemas.Type, v any) {
	if inBits(t) {
		x.i = bitsOf(v)
	} else {
		x.v = v
	}
}

// compare orders v (of type t) against the partial's value.
func (x *partial) compare(t schemas.Type, v any) int {
	if inBits(t) {
		return compareBits(t, bitsOf(v), x.i)
	}
	return schemas.Compare(v, x.v)
}

// compareWith orders y's value against x's (both of type t).
func (x *partial) compareWith(t schemas.Type, y *partial) int {
	if inBits(t) {
		return compareBits(t, y.i, x.i)
	}
	return schemas.Compare(y.v, x.v)
}

// holds reports whether the partial's value (of type t) equals v, as the
// map of count_distinct and mode tells keys apart.
func (x *partial) holds(t schemas.Type, v any) bool {
	switch {
	case t == schemas.TypeFloat64: // as floats: 0 and -0 are one key
		return math.Float64frombits(uint64(x.i)) == v.(float64)
	case inBits(t):
		return x.i == bitsOf(v)
	}
	return x.v == v
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

// add folds one event's value v, of type t, into the partial.
func (x *partial) add(agg schemas.Agg, t schemas.Type, v any, e *schemas.Event) {
	switch agg {
	case schemas.AggCount:
		x.n++
	case schemas.AggSum, schemas.AggAvg:
		x.n++
		switch n := v.(type) {
		case int64:
			x.i += n
		case float64:
			x.f += n
		}
	case schemas.AggMin:
		if x.n == 0 || x.compare(t, v) < 0 {
			x.set(t, v)
		}
		x.n++
	case schemas.AggMax:
		if x.n == 0 || x.compare(t, v) > 0 {
			x.set(t, v)
		}
		x.n++
	case schemas.AggFirst:
		// first: keep the value whose order key is smallest.
		if x.n == 0 || !x.before(int64(e.Time), e.Partition, e.Offset) {
			x.set(t, v)
			x.t, x.p, x.o = int64(e.Time), e.Partition, e.Offset
		}
		x.n++
	case schemas.AggLast:
		if x.n == 0 || x.before(int64(e.Time), e.Partition, e.Offset) {
			x.set(t, v)
			x.t, x.p, x.o = int64(e.Time), e.Partition, e.Offset
		}
		x.n++
	case schemas.AggCountDistinct, schemas.AggMode:
		x.addCount(agg, t, v, 1)
	}
}

// addCount adds value v (of type t) seen n times to a count_distinct or
// mode partial.
func (x *partial) addCount(agg schemas.Agg, t schemas.Type, v any, n int64) {
	if agg == schemas.AggCountDistinct {
		n = 1
	}
	if x.m == nil {
		switch {
		case x.n == 0:
			x.set(t, v)
			x.n = n
			return
		case x.holds(t, v):
			if agg == schemas.AggMode {
				x.n += n
			}
			return
		}
		x.m = make(map[any]int64, 4)
		x.m[x.value(t)] = x.n
		x.i, x.v, x.n = 0, nil, 0
	}
	if agg == schemas.AggCountDistinct {
		x.m[v] = 1
	} else {
		x.m[v] += n
	}
}

// distinct is the number of distinct values of a count_distinct or mode
// partial.
func (x *partial) distinct() int {
	if x.m == nil {
		return int(min(x.n, 1))
	}
	return len(x.m)
}

// counts calls fn with every value (of type t) of a count_distinct or
// mode partial and its count.
func (x *partial) counts(t schemas.Type, fn func(v any, n int64)) {
	if x.m == nil {
		if x.n > 0 {
			fn(x.value(t), x.n)
		}
		return
	}
	for v, n := range x.m {
		fn(v, n)
	}
}

// merge folds y into x; t is the type of their values. Maps of y are not
// retained.
func (x *partial) merge(agg schemas.Agg, t schemas.Type, y *partial) {
	switch agg {
	case schemas.AggCount:
		x.n += y.n
	case schemas.AggSum, schemas.AggAvg:
		x.n += y.n
		x.i += y.i
		x.f += y.f
	case schemas.AggMin, schemas.AggMax:
		if y.n == 0 {
			return
		}
		if x.n == 0 {
			x.i, x.v = y.i, y.v
		} else if c := x.compareWith(t, y); (agg == schemas.AggMin && c < 0) || (agg == schemas.AggMax && c > 0) {
			x.i, x.v = y.i, y.v
		}
		x.n += y.n
	case schemas.AggFirst, schemas.AggLast:
		if y.n == 0 {
			return
		}
		take := x.n == 0
		if !take {
			yBefore := y.before(x.t, x.p, x.o)
			take = (agg == schemas.AggFirst) == yBefore
		}
		if take {
			x.i, x.v, x.t, x.p, x.o = y.i, y.v, y.t, y.p, y.o
		}
		x.n += y.n
	case schemas.AggCountDistinct, schemas.AggMode:
		y.counts(t, func(v any, n int64) { x.addCount(agg, t, v, n) })
	}
}

// result is the tag value of the partial; tag is the tag (for its
// aggregate and type), t the type of the values it aggregates.
func (x *partial) result(tag *schemas.Tag, t schemas.Type) any {
	switch tag.Agg {
	case schemas.AggCount:
		return x.n
	case schemas.AggCountDistinct:
		return int64(x.distinct())
	case schemas.AggMode:
		if x.m == nil {
			if x.n == 0 {
				return nil
			}
			return x.value(t)
		}
		var best any
		var bestN int64
		for v, n := range x.m {
			if n > bestN || (n == bestN && schemas.Compare(v, best) < 0) {
				best, bestN = v, n
			}
		}
		return best
	}
	if x.n == 0 {
		return nil
	}
	switch tag.Agg {
	case schemas.AggSum:
		if tag.Type == schemas.TypeInt64 {
			return x.i
		}
		return x.f
	case schemas.AggAvg:
		return (x.f + float64(x.i)) / float64(x.n)
	}
	return x.value(t) // min, max, first, last
}

// empty reports whether the partial has seen no event.
func (x *partial) empty() bool { return x.n == 0 && len(x.m) == 0 }
