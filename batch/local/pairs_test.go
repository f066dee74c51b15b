package local

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPairSet checks the runs against a map after interleaved pushes,
// weighted pushes and compactions (which merge runs), for users in one
// block or many.
func TestPairSet(t *testing.T) {
	for _, tc := range []struct {
		name             string
		users, vals, per int
		counted          bool
	}{
		{"few users counted", 3, 5, 40, true},
		{"many users counted", 5000, 50, 3000, true},
		// Codes of 40 bits are sorted user by user, of up to 33 bits by
		// radix passes (here three).
		{"many users distinct", 5000, 1 << 40, 3000, false},
		{"many users distinct radix", 5000, 1 << 30, 3000, false},
		{"one user", 1, 7, 100, true},
		// Users over many blocks, most with one pair.
		{"sparse users counted", 1 << 18, 50, 20000, true},
		{"large buffer distinct", 5000, 1 << 40, 20000, false},
		// One block whose buffer is compacted as it fills (minCompact),
		// merging runs, with long code lists per user.
		{"full block distinct", 100, 1 << 40, 60000, false},
		{"full block counted", 100, 3000, 60000, true},
		// Weighted and unit occurrences of many values of one user.
		{"weighted many values", 2, 300, 3000, true},
		// Codes too wide to pack with the user (float bits, large ints)
		// mixed with narrow ones.
		{"wide codes distinct", 5000, 0, 20000, false},
		{"wide codes counted", 300, 0, 20000, true},
		// Narrow codes of both signs (radix passes over their span).
		{"negative codes distinct", 5000, -1, 20000, false},
		{"negative codes counted", 300, -1, 20000, true},
		{"negative codes one block", 100, -1, 60000, true},
	} {
		for _, keep := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s keep=%v", tc.name, keep), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(tc.users), 3))
				s := pairSet{counted: tc.counted}
				type key struct {
					u uint32
					x uint64
				}
				want := map[key]int64{}
				for round := range 5 {
					for range tc.per {
						u, x := uint32(rng.IntN(tc.users)), uint64(rng.IntN(max(tc.vals, 100)))
						switch {
						case tc.vals == 0 && rng.IntN(2) == 0:
							x = 1<<62 + x // wide
						case tc.vals < 0:
							x = uint64(int64(x) - 50) // narrow, of both signs
						}
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
						for i := range s.blocks {
							s.compactBlock(i, true)
						}
					}
				}
				check := func(u uint32, xs []uint64, cs []int64) {
					t.Helper()
					if !tc.counted && cs != nil {
						t.Fatalf("user %d: counts %v, want none", u, cs)
					}
					for i, x := range xs {
						n, ok := want[key{u, x}]
						if !ok || i > 0 && int64(xs[i-1]) >= int64(x) || tc.counted && cs[i] != n {
							t.Fatalf("user %d: codes %v counts %v; want ascending, present, counts matching", u, xs, cs)
						}
					}
				}
				// What finish shows, and with keep what runs shows after it,
				// must match the map.
				seen := map[uint32]int{}
				s.finish(keep, func(u uint32, xs []uint64, cs []int64) {
					check(u, xs, cs)
					_, dup := seen[u]
					require.False(t, dup, "user %d visited twice", u)
					seen[u] = len(xs)
				})
				total := 0
				for u, n := range seen {
					total += n
					rx, _ := s.runs(u)
					if keep {
						require.Len(t, rx, n)
					} else {
						require.Empty(t, rx)
					}
				}
				require.Equal(t, len(want), total)
				if keep {
					for u := range tc.users {
						xs, cs := s.runs(uint32(u))
						check(uint32(u), xs, cs)
						require.Len(t, xs, seen[uint32(u)])
					}
				}
			})
		}
	}
}
