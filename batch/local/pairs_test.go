package local

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPairSet checks the runs against a map after interleaved pushes,
// weighted pushes and compactions (which merge runs).
func TestPairSet(t *testing.T) {
	for _, tc := range []struct {
		name             string
		users, vals, per int
		counted          bool
	}{
		{"few users counted", 3, 5, 40, true},
		{"many users counted", 5000, 50, 3000, true},
		{"many users distinct", 5000, 1 << 40, 3000, false},
		{"one user", 1, 7, 100, true},
		// A buffer that grows several times, several radix passes.
		{"large buffer counted", 1 << 20, 50, 20000, true},
		{"large buffer distinct", 5000, 1 << 40, 20000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.users), 3))
			s := pairSet{counted: tc.counted}
			type key struct {
				u uint32
				x uint64
			}
			want := map[key]int64{}
			for round := range 5 {
				for range tc.per {
					u, x := uint32(rng.IntN(tc.users)), uint64(rng.IntN(tc.vals))
					if tc.counted && rng.IntN(10) == 0 {
						n := int64(rng.IntN(5) + 1)
						s.pushN(u, x, n)
						want[key{u, x}] += n
						continue
					}
					s.push(u, x)
					want[key{u, x}]++
				}
				if round != 2 { // leave one round in the buffer
					s.compact()
				}
			}
			off := s.offsets(tc.users)
			require.Len(t, s.ru, len(want))
			for u := range tc.users {
				for i := off[u]; i < off[u+1]; i++ {
					require.Equal(t, uint32(u), s.ru[i])
					if i > off[u] {
						require.Less(t, s.rx[i-1], s.rx[i])
					}
					n, ok := want[key{uint32(u), s.rx[i]}]
					require.True(t, ok)
					if tc.counted {
						require.Equal(t, n, s.rc[i])
					}
				}
			}
		})
	}
}
