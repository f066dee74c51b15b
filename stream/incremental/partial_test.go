package incremental

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// TestValuesInBits checks that values kept as bits come back unchanged
// and order, and count as one key, the way schemas.Compare and Go's map
// keys treat the boxed values.
func TestValuesInBits(t *testing.T) {
	cases := []struct {
		typ    schemas.Type
		values []any
	}{
		{schemas.TypeInt64, []any{int64(math.MinInt64), int64(-1), int64(0), int64(1), int64(300), int64(math.MaxInt64)}},
		{schemas.TypeTimestamp, []any{schemas.Timestamp(-5), schemas.Timestamp(0), schemas.Timestamp(1511568000000)}},
		{schemas.TypeFloat64, []any{math.Inf(-1), -2.5, math.Copysign(0, -1), 0.0, 1e-300, 3.5, math.Inf(1)}},
		{schemas.TypeBool, []any{false, true}},
		{schemas.TypeString, []any{"", "a", "b"}},
	}
	for _, c := range cases {
		t.Run(c.typ.String(), func(t *testing.T) {
			for _, a := range c.values {
				var p partial
				p.set(c.typ, a)
				require.Equal(t, a, p.value(c.typ))
				for _, b := range c.values {
					require.Equal(t, schemas.Compare(b, a), p.compare(c.typ, b), "%v vs %v", b, a)
					require.Equal(t, a == b, p.holds(c.typ, b), "%v holds %v", a, b)
				}
			}
		})
	}
}

// TestCountDistinctNegativeZero: 0 and -0 are one value, inline and in
// the map alike.
func TestCountDistinctNegativeZero(t *testing.T) {
	for _, agg := range []schemas.Agg{schemas.AggCountDistinct, schemas.AggMode} {
		var p partial
		p.addCount(agg, schemas.TypeFloat64, 0.0, 1)
		p.addCount(agg, schemas.TypeFloat64, math.Copysign(0, -1), 1)
		require.Equal(t, 1, p.distinct(), agg)
		p.addCount(agg, schemas.TypeFloat64, 1.5, 1)
		p.addCount(agg, schemas.TypeFloat64, math.Copysign(0, -1), 1)
		require.Equal(t, 2, p.distinct(), agg)
	}
}
