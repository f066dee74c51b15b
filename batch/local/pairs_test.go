package local

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/portrait-dev/portrait/internal/cputime"

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
		// lazy: no compaction but at the end (and where a buffer fills),
		// so that finish without keep folds each user's codes on its own.
		lazy bool
	}{
		{"few users counted", 3, 5, 40, true, false},
		{"many users counted", 5000, 50, 3000, true, false},
		// Codes of 40 bits are sorted user by user, of up to 33 bits by
		// radix passes (here three).
		{"many users distinct", 5000, 1 << 40, 3000, false, false},
		{"many users distinct radix", 5000, 1 << 30, 3000, false, false},
		{"one user", 1, 7, 100, true, false},
		// Users over many blocks, most with one pair.
		{"sparse users counted", 1 << 18, 50, 20000, true, false},
		{"large buffer distinct", 5000, 1 << 40, 20000, false, false},
		// One block whose buffer is compacted as it fills (minCompact),
		// merging runs, with long code lists per user.
		{"full block distinct", 100, 1 << 40, 60000, false, false},
		{"full block counted", 100, 3000, 60000, true, false},
		// Weighted and unit occurrences of many values of one user.
		{"weighted many values", 2, 300, 3000, true, false},
		// Codes too wide to pack with the user (float bits, large ints)
		// mixed with narrow ones.
		{"wide codes distinct", 5000, 0, 20000, false, false},
		{"wide codes counted", 300, 0, 20000, true, false},
		// Narrow codes of both signs (radix passes over their span).
		{"negative codes distinct", 5000, -1, 20000, false, false},
		{"negative codes counted", 300, -1, 20000, true, false},
		{"negative codes one block", 100, -1, 60000, true, false},
		{"lazy counted ties", 5000, 5, 3000, true, true},
		{"lazy distinct", 5000, 5000, 20000, false, true},
		{"lazy counted", 1 << 18, 5000, 20000, true, true},
		// Codes of a wide span, and few values spread wide (repeats in
		// the hash tables).
		{"lazy distinct wide span", 5000, 1 << 40, 20000, false, true},
		{"lazy counted wide span", 5000, 1 << 16, 20000, true, true},
		{"lazy distinct few values spread", 5000, -2, 20000, false, true},
		// Short words, then long ones in the same blocks.
		{"short then long distinct", 5000, -3, 20000, false, false},
		{"short then long counted", 5000, -3, 20000, true, false},
		{"lazy short then long distinct", 5000, -3, 20000, false, true},
		{"lazy short then long counted", 5000, -3, 20000, true, true},
		{"lazy counted few values spread", 5000, -2, 20000, true, true},
		{"lazy negative codes counted", 3000, -1, 20000, true, true},
		{"lazy negative codes distinct", 3000, -1, 20000, false, true},
		// Wide codes and weighted pushes go through the runs even when
		// lazy, in the blocks that have them.
		{"lazy wide codes distinct", 1 << 14, 0, 2000, false, true},
		{"lazy wide codes counted", 1 << 14, 0, 2000, true, true},
		// Many codes per user (a large hash table); a block's buffer
		// that fills is compacted while pushing, then merged.
		{"lazy one user", 1, 1 << 40, 3000, true, true},
		{"lazy full block", 100, 3000, 60000, true, true},
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
						case tc.vals == -2:
							x = x % 20 << 30 // few values, spread wide
						case tc.vals == -3 && round >= 2:
							x += 1 << 40 // out of the short words' window from now on
						case tc.vals < 0:
							x = uint64(int64(x) - 50) // narrow, of both signs
						}
						// Lazy, weighted pushes only in the first block, so
						// that the others have only unit occurrences.
						if tc.counted && rng.IntN(10) == 0 && (!tc.lazy || u < blockUsers) {
							n := int64(rng.IntN(5) + 1)
							s.pushN(u, x, n)
							want[key{u, x}] += n
							continue
						}
						if rng.IntN(2) == 0 {
							s.push(u, x)
						} else {
							s.add([]int32{1}, []uint32{0, u}, []uint64{0, x})
						}
						want[key{u, x}]++
					}
					if round != 2 && !tc.lazy { // leave one round in the buffer
						for i := range s.blocks {
							s.compactBlock(i, true)
						}
					}
				}
				// check checks one user's codes and counts against the map:
				// distinct, ascending if sorted.
				check := func(u uint32, xs []uint64, cs []int64, sorted bool) {
					t.Helper()
					if !tc.counted && cs != nil {
						t.Fatalf("user %d: counts %v, want none", u, cs)
					}
					dup := map[uint64]bool{}
					for i, x := range xs {
						n, ok := want[key{u, x}]
						if !ok || dup[x] || sorted && i > 0 && int64(xs[i-1]) >= int64(x) || tc.counted && cs[i] != n {
							t.Fatalf("user %d: codes %v counts %v; want distinct, ascending (%v), present, counts matching", u, xs, cs, sorted)
						}
						dup[x] = true
					}
				}
				// What finish shows, and with keep what runs shows after it,
				// must match the map.
				seen := map[uint32]int{}
				s.finish(keep, func(u uint32, xs []uint64, cs []int64) {
					check(u, xs, cs, keep)
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
						check(uint32(u), xs, cs, true)
						require.Len(t, xs, seen[uint32(u)])
					}
				}
			})
		}
	}
}

// TestPairSetFarFirstCode checks codes whose first is near the greatest
// narrow one (no window of short words around it), then small ones, with
// counts and without keeping the runs.
func TestPairSetFarFirstCode(t *testing.T) {
	far := uint64(1<<(codeBits-1) - 3)
	s := pairSet{counted: true}
	s.add([]int32{0, 1, 2, 3}, []uint32{7, 7, 9, 7}, []uint64{far, 5, 5, far})
	require.True(t, s.long)
	got := map[uint32]map[uint64]int64{}
	s.finish(false, func(u uint32, xs []uint64, cs []int64) {
		got[u] = map[uint64]int64{}
		for i, x := range xs {
			got[u][x] = cs[i]
		}
	})
	require.Equal(t, map[uint32]map[uint64]int64{7: {far: 2, 5: 1}, 9: {5: 1}}, got)
}

// BenchmarkPairSet pushes ≈15 occurrences per user of 1M uniform users,
// with codes from a span of 5000 (non-negative or of both signs), into a
// set counted (mode) or not (count_distinct), then finishes it without
// keeping the runs, as a windowed tag does: ns/push and CPU-s per round.
func BenchmarkPairSet(b *testing.B) {
	const users, pushes, batch = 1 << 20, 15_000_000, 1 << 16
	for _, counted := range []bool{false, true} {
		for _, lo := range []int{0, -2500} {
			b.Run(fmt.Sprintf("counted=%v/lo=%d", counted, lo), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				us, xs := make([]uint32, pushes), make([]uint64, pushes)
				for i := range us {
					us[i], xs[i] = uint32(rng.IntN(users)), uint64(int64(lo+rng.IntN(5000)))
				}
				sel := make([]int32, batch)
				for i := range sel {
					sel[i] = int32(i)
				}
				b.ResetTimer()
				cpu0 := cputime.Self()
				var sum int
				for b.Loop() {
					s := pairSet{counted: counted}
					for i := 0; i < pushes; i += batch {
						j := min(i+batch, pushes)
						s.add(sel[:j-i], us[i:j], xs[i:j])
					}
					s.finish(false, func(u uint32, xs []uint64, _ []int64) { sum += len(xs) })
				}
				if sum == 0 {
					b.Fatal("no pairs")
				}
				cpu := (cputime.Self() - cpu0).Seconds() / float64(b.N)
				b.ReportMetric(cpu*1e9/pushes, "ns/push")
				b.ReportMetric(cpu, "cpu-s")
			})
		}
	}
}
