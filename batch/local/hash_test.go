package local

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIntIndex checks the index against a map for keys that are small
// (direct), large, negative and mixed, arriving in random order.
func TestIntIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  func(r *rand.Rand) int64
	}{
		{"dense", func(r *rand.Rand) int64 { return r.Int64N(50_000) }},
		{"sparse", func(r *rand.Rand) int64 { return r.Int64() }},
		{"negative", func(r *rand.Rand) int64 { return -r.Int64N(1000) }},
		{"mixed", func(r *rand.Rand) int64 {
			switch r.IntN(4) {
			case 0:
				return r.Int64N(1 << 22)
			case 1:
				return math.MaxInt64 - r.Int64N(10)
			case 2:
				return -r.Int64N(100)
			}
			return r.Int64N(300_000)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, 9))
			idx := newIntIndex()
			want := map[int64]uint32{}
			for range 200_000 {
				k := tc.key(rng)
				got, isNew := idx.lookup(k, uint32(len(want)))
				w, ok := want[k]
				require.Equal(t, !ok, isNew, "key %d", k)
				if !ok {
					w = uint32(len(want))
					want[k] = w
				}
				require.Equal(t, w, got, "key %d", k)
			}
		})
	}
}
