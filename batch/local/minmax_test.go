package local

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// TestFuseRanges checks which min and max tags share an accumulator: the
// same field, window start and where filter, numeric (strings are not
// fused). The values themselves are checked against the reference by
// TestComputeMatchesReference (kindsCatalog has fused pairs).
func TestFuseRanges(t *testing.T) {
	cat, err := schemas.Parse([]byte(kindsCatalog))
	require.NoError(t, err)
	e, err := newEngine(cat, schemas.Timestamp(1709251200000), nil, 1)
	require.NoError(t, err)
	accs := e.shards[0].accs
	for _, tc := range []struct {
		min, max string
		fused    bool
	}{
		{"min_n", "max_n", true},
		{"min_x", "max_x", true},
		{"min_at_life", "max_at_life", true},
		{"min_at_life", "max_at_2h", false},
		{"min_s_life", "max_s_24h", false},
	} {
		t.Run(tc.min+"/"+tc.max, func(t *testing.T) {
			lo, hi := accs[tagIndex(t, cat, tc.min)], accs[tagIndex(t, cat, tc.max)]
			if !tc.fused {
				x, ok1 := lo.(*rangeView[int64])
				y, ok2 := hi.(*rangeView[int64])
				require.False(t, ok1 && ok2 && x.r == y.r, "%s and %s share an accumulator", tc.min, tc.max)
				return
			}
			switch x := lo.(type) {
			case *rangeView[int64]:
				y, ok := hi.(*rangeView[int64])
				require.True(t, ok)
				require.Same(t, x.r, y.r)
				require.False(t, x.max)
				require.True(t, y.max)
			case *rangeView[float64]:
				y, ok := hi.(*rangeView[float64])
				require.True(t, ok)
				require.Same(t, x.r, y.r)
			default:
				t.Fatalf("%s is %T, want a range view", tc.min, lo)
			}
		})
	}
}

func tagIndex(t *testing.T, cat *schemas.Catalog, name string) int {
	for i := range cat.Tags {
		if cat.Tags[i].Name == name {
			return i
		}
	}
	t.Fatalf("no tag %s", name)
	return -1
}
