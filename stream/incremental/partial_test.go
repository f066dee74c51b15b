package incremental

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// typedValues are, per type, values in ascending order.
var typedValues = []struct {
	typ    schemas.Type
	values []any
}{
	{schemas.TypeInt64, []any{int64(math.MinInt64), int64(-1), int64(0), int64(1), int64(300), int64(math.MaxInt64)}},
	{schemas.TypeTimestamp, []any{schemas.Timestamp(-5), schemas.Timestamp(0), schemas.Timestamp(1511568000000)}},
	{schemas.TypeFloat64, []any{math.Inf(-1), -2.5, math.Copysign(0, -1), 0.0, 1e-300, 3.5, math.Inf(1)}},
	{schemas.TypeBool, []any{false, true}},
	{schemas.TypeString, []any{"", "a", "b"}},
}

// TestValuesInPartials checks that values come back unchanged from a
// partial and order the way schemas.Compare orders the boxed values.
func TestValuesInPartials(t *testing.T) {
	for _, c := range typedValues {
		t.Run(c.typ.String(), func(t *testing.T) {
			for _, a := range c.values {
				x := newPartials(1)
				x.set(0, c.typ, a)
				require.Equal(t, a, x.value(0, c.typ))
				for _, b := range c.values {
					require.Equal(t, schemas.Compare(b, a), x.compare(0, c.typ, b), "%v vs %v", b, a)
					y := newPartials(1)
					y.set(0, c.typ, b)
					require.Equal(t, schemas.Compare(b, a), x.compareWith(0, c.typ, &y), "%v vs %v", b, a)
				}
			}
		})
	}
}

// TestNumericPartHasNoPointers: the arrays of partials must stay free of
// pointers, or the garbage collector scans them again.
func TestNumericPartHasNoPointers(t *testing.T) {
	typ := reflect.TypeFor[partial]()
	for i := range typ.NumField() {
		switch f := typ.Field(i); f.Type.Kind() {
		case reflect.Int32, reflect.Int64, reflect.Float64:
		default:
			t.Errorf("partial.%s is a %s", f.Name, f.Type)
		}
	}
}

// TestCountsAgreeWithBoxedMap feeds count_distinct and mode slots of
// every type with repeated values, directly and merged from other
// partials (inline values and maps alike), and compares the distinct
// count, the counts and the mode with a map of boxed values (the
// reference evaluator's way).
func TestCountsAgreeWithBoxedMap(t *testing.T) {
	for _, c := range typedValues {
		for _, agg := range []schemas.Agg{schemas.AggCountDistinct, schemas.AggMode} {
			t.Run(fmt.Sprint(c.typ, "/", agg), func(t *testing.T) {
				s := &slot{agg: agg, typ: c.typ, tag: &schemas.Tag{Agg: agg, Type: c.typ}}
				for _, seq := range [][]int{{0}, {0, 0}, {0, 1}, {1, 0, 1}, {2, 2, 0, 1, 1, 2}} {
					want := map[any]int64{}
					direct := newPartials(1)
					merged := newPartials(1)
					for j, k := range seq {
						v := c.values[k%len(c.values)]
						want[v]++
						direct.addCount(0, agg, c.typ, v, 1)
						// merge a partial holding v once, or v twice
						// next to another value (a map)
						y := newPartials(1)
						y.addCount(0, agg, c.typ, v, 1)
						if j%2 == 1 {
							w := c.values[(k+1)%len(c.values)]
							y.addCount(0, agg, c.typ, w, 1)
							y.addCount(0, agg, c.typ, v, 1)
							want[w]++
							want[v]++
						}
						merged.merge(0, s, &y)
						direct.mergeCounts(0, agg, c.typ, &y)
					}
					require.Equal(t, len(want), merged.distinct(0), "seq %v", seq)
					got := map[any]int64{}
					merged.counts(0, c.typ, func(v any, n int64) { got[v] = n })
					if agg == schemas.AggMode {
						require.Equal(t, want, got, "seq %v", seq)
						require.Equal(t, boxedMode(want), merged.result(0, s), "seq %v", seq)
					} else {
						require.Len(t, got, len(want))
						require.Equal(t, int64(len(want)), merged.result(0, s))
					}
					// direct holds the same values (more often).
					require.Equal(t, len(want), direct.distinct(0), "seq %v", seq)
				}
			})
		}
	}
}

// TestManyCounts crosses bitCounts' switch from its list to a map: a
// count_distinct or mode slot fed n distinct int64 values (with repeats,
// directly and merged from another partial) agrees with a boxed map.
func TestManyCounts(t *testing.T) {
	for _, n := range []int{2, maxFewCounts - 1, maxFewCounts, maxFewCounts + 1, 3 * maxFewCounts} {
		for _, agg := range []schemas.Agg{schemas.AggCountDistinct, schemas.AggMode} {
			t.Run(fmt.Sprint(n, "/", agg), func(t *testing.T) {
				s := &slot{agg: agg, typ: schemas.TypeInt64, tag: &schemas.Tag{Agg: agg, Type: schemas.TypeInt64}}
				want := map[any]int64{}
				direct, other, merged := newPartials(1), newPartials(1), newPartials(1)
				for j := range 3 * n {
					v := int64(j*7%n - n/2) // every value, some more often, negative ones too
					if j%3 == 2 {
						v = int64(n / 3)
					}
					want[v]++
					direct.addCount(0, agg, schemas.TypeInt64, v, 1)
					if j%2 == 0 {
						other.addCount(0, agg, schemas.TypeInt64, v, 1)
					} else {
						merged.addCount(0, agg, schemas.TypeInt64, v, 1)
					}
				}
				merged.merge(0, s, &other)
				for _, x := range []*partials{&direct, &merged} {
					require.Equal(t, len(want), x.distinct(0))
					got := map[any]int64{}
					x.counts(0, schemas.TypeInt64, func(v any, n int64) { got[v] = n })
					if agg == schemas.AggMode {
						require.Equal(t, want, got)
						require.Equal(t, boxedMode(want), x.result(0, s))
					} else {
						require.Len(t, got, len(want))
						for v, c := range got {
							require.Equal(t, int64(1), c, "count_distinct counts %v once", v)
						}
						require.Equal(t, int64(len(want)), x.result(0, s))
					}
				}
			})
		}
	}
}

// boxedMode is reference.Evaluate's mode of counts.
func boxedMode(counts map[any]int64) any {
	var best any
	var bestN int64
	for v, n := range counts {
		if n > bestN || (n == bestN && schemas.Compare(v, best) < 0) {
			best, bestN = v, n
		}
	}
	return best
}

// TestCountDistinctNegativeZero: 0 and -0 are one value, inline and in
// the map alike.
func TestCountDistinctNegativeZero(t *testing.T) {
	for _, agg := range []schemas.Agg{schemas.AggCountDistinct, schemas.AggMode} {
		x := newPartials(1)
		x.addCount(0, agg, schemas.TypeFloat64, 0.0, 1)
		x.addCount(0, agg, schemas.TypeFloat64, math.Copysign(0, -1), 1)
		require.Equal(t, 1, x.distinct(0), agg)
		x.addCount(0, agg, schemas.TypeFloat64, 1.5, 1)
		x.addCount(0, agg, schemas.TypeFloat64, math.Copysign(0, -1), 1)
		require.Equal(t, 2, x.distinct(0), agg)
	}
}

// counts calls fn with every value (of type t) of count_distinct or mode
// slot i and its count, boxed (for comparing with boxed values).
func (x *partials) counts(i int, t schemas.Type, fn func(v any, n int64)) {
	if sd := x.peek(i); sd != nil {
		switch {
		case sd.bits.len() > 0:
			for b, n := range sd.bits.all {
				fn(fromBits(t, b), n)
			}
			return
		case sd.strs != nil:
			for s, n := range sd.strs {
				fn(s, n)
			}
			return
		}
	}
	if x.num[i].n > 0 {
		fn(x.value(i, t), x.num[i].n)
	}
}
