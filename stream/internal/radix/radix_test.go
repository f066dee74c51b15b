package radix

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

type item struct {
	k   uint64
	seq int
}

// TestSort compares Sort with a stable comparison sort.
func TestSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(n int, mask uint64) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = rng.Uint64() & mask
		}
		return out
	}
	for _, tc := range []struct {
		name string
		keys []uint64
	}{
		{"empty", nil},
		{"one", []uint64{7}},
		{"equal", []uint64{5, 5, 5, 5}},
		{"sorted", []uint64{1, 2, 3, 1 << 40}},
		{"reversed", []uint64{math.MaxUint64, 1 << 63, 1 << 8, 255, 0}},
		{"small ids with repeats", random(10000, 0xfff)},
		{"full range", random(10000, math.MaxUint64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := make([]item, len(tc.keys))
			for i, k := range tc.keys {
				a[i] = item{k: k, seq: i}
			}
			want := slices.Clone(a)
			slices.SortStableFunc(want, func(x, y item) int { return cmp.Compare(x.k, y.k) })
			got := Sort(a, make([]item, len(a)), func(x *item) uint64 { return x.k })
			if len(want) == 0 {
				require.Empty(t, got)
				return
			}
			require.Equal(t, want, got)
		})
	}
}
