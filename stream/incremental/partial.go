package incremental

import (
	"github.com/portrait-dev/portrait/schemas"
)

// partial is the mergeable partial aggregate of one tag over one bucket
// (or over the lifetime base). Which fields are used depends on the
// aggregate:
//
//	count           n
//	sum, avg        n, i (int64 fields, exact) or f (float64 fields)
//	min, max        n, v
//	first, last     n, v and its order key (t, p, o)
//	count_distinct  m (value → 1)
//	mode            m (value → count)
//
// count_distinct and mode keep a single value inline, without a map: m
// nil and n > 0 means one value v, seen n times (n is 1 for
// count_distinct). The map is made when a second value arrives, and then
// holds every value (n and v unused). Most buckets of most users see one
// value, so this saves two allocations per new bucket.
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

// add folds one event's value into the partial.
func (x *partial) add(agg schemas.Agg, v any, e *schemas.Event) {
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
		if x.n == 0 || schemas.Compare(v, x.v) < 0 {
			x.v = v
		}
		x.n++
	case schemas.AggMax:
		if x.n == 0 || schemas.Compare(v, x.v) > 0 {
			x.v = v
		}
		x.n++
	case schemas.AggFirst:
		// first: keep the value whose order key is smallest.
		if x.n == 0 || !x.before(int64(e.Time), e.Partition, e.Offset) {
			x.v, x.t, x.p, x.o = v, int64(e.Time), e.Partition, e.Offset
		}
		x.n++
	case schemas.AggLast:
		if x.n == 0 || x.before(int64(e.Time), e.Partition, e.Offset) {
			x.v, x.t, x.p, x.o = v, int64(e.Time), e.Partition, e.Offset
		}
		x.n++
	case schemas.AggCountDistinct, schemas.AggMode:
		x.addCount(agg, v, 1)
	}
}

// addCount adds value v seen n times to a count_distinct or mode partial.
func (x *partial) addCount(agg schemas.Agg, v any, n int64) {
	if agg == schemas.AggCountDistinct {
		n = 1
	}
	if x.m == nil {
		switch {
		case x.n == 0:
			x.v, x.n = v, n
			return
		case x.v == v:
			if agg == schemas.AggMode {
				x.n += n
			}
			return
		}
		x.m = make(map[any]int64, 4)
		x.m[x.v] = x.n
		x.v, x.n = nil, 0
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

// counts calls fn with every value of a count_distinct or mode partial
// and its count.
func (x *partial) counts(fn func(v any, n int64)) {
	if x.m == nil {
		if x.n > 0 {
			fn(x.v, x.n)
		}
		return
	}
	for v, n := range x.m {
		fn(v, n)
	}
}

// merge folds y into x. Maps of y are not retained.
func (x *partial) merge(agg schemas.Agg, y *partial) {
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
			x.v = y.v
		} else if c := schemas.Compare(y.v, x.v); (agg == schemas.AggMin && c < 0) || (agg == schemas.AggMax && c > 0) {
			x.v = y.v
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
			x.v, x.t, x.p, x.o = y.v, y.t, y.p, y.o
		}
		x.n += y.n
	case schemas.AggCountDistinct, schemas.AggMode:
		if y.m == nil {
			if y.n > 0 {
				x.addCount(agg, y.v, y.n)
			}
			return
		}
		for v, n := range y.m {
			x.addCount(agg, v, n)
		}
	}
}

// value is the tag value of the partial; t is the tag (for its type).
func (x *partial) value(t *schemas.Tag) any {
	switch t.Agg {
	case schemas.AggCount:
		return x.n
	case schemas.AggCountDistinct:
		return int64(x.distinct())
	case schemas.AggMode:
		if x.m == nil {
			if x.n == 0 {
				return nil
			}
			return x.v
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
	switch t.Agg {
	case schemas.AggSum:
		if t.Type == schemas.TypeInt64 {
			return x.i
		}
		return x.f
	case schemas.AggAvg:
		return (x.f + float64(x.i)) / float64(x.n)
	}
	return x.v // min, max, first, last
}

// empty reports whether the partial has seen no event.
func (x *partial) empty() bool { return x.n == 0 && len(x.m) == 0 }
