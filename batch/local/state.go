package local

import (
	"fmt"
	"slices"
	"strings"

	"github.com/portrait-dev/portrait/schemas"
)

// State is the partial state of every lifetime tag as of Cutoff, for the
// users of a snapshot.
type State struct {
	Cutoff schemas.Timestamp
	// Tags are the indexes (in the catalog) of the lifetime tags, in
	// catalog order; Partials[i][j] is user Keys[i]'s partial of Tags[j].
	Tags     []int
	Keys     []any
	Partials [][]schemas.Partial
}

// LifetimeTags lists the indexes of a catalog's lifetime tags.
func LifetimeTags(cat *schemas.Catalog) []int {
	var out []int
	for i := range cat.Tags {
		if cat.Tags[i].Lifetime() {
			out = append(out, i)
		}
	}
	return out
}

// Check verifies that the state fits the catalog's lifetime tags.
func (s *State) Check(cat *schemas.Catalog) error {
	want := LifetimeTags(cat)
	if len(want) != len(s.Tags) {
		return fmt.Errorf("state has %d lifetime tags, catalog %s has %d", len(s.Tags), cat.Name, len(want))
	}
	for i := range want {
		if want[i] != s.Tags[i] {
			return fmt.Errorf("state tag %d is tag #%d, catalog has #%d", i, s.Tags[i], want[i])
		}
	}
	if len(s.Keys) != len(s.Partials) {
		return fmt.Errorf("state has %d keys and %d partial rows", len(s.Keys), len(s.Partials))
	}
	for i, row := range s.Partials {
		if len(row) != len(s.Tags) {
			return fmt.Errorf("state row %d has %d partials, want %d", i, len(row), len(s.Tags))
		}
	}
	return nil
}

// interner maps strings to dense ids so accumulators keep strings once,
// copied out of the arrow buffers.
type interner struct {
	ids  map[string]uint32
	vals []string
	// ranks[id] is the place of vals[id] in ascending order, for the ids
	// there were when rank was last called.
	ranks []uint32
}

// rank computes the ranks of the interned strings, so that comparing two
// ids needs no string comparison.
func (in *interner) rank() {
	if len(in.ranks) == len(in.vals) {
		return
	}
	ids := make([]uint32, len(in.vals))
	for i := range ids {
		ids[i] = uint32(i)
	}
	slices.SortFunc(ids, func(a, b uint32) int { return strings.Compare(in.vals[a], in.vals[b]) })
	in.ranks = make([]uint32, len(in.vals))
	for r, id := range ids {
		in.ranks[id] = uint32(r)
	}
}

func newInterner() *interner { return &interner{ids: map[string]uint32{}} }

func (in *interner) id(s string) uint32 {
	if id, ok := in.ids[s]; ok {
		return id
	}
	s = strings.Clone(s)
	id := uint32(len(in.vals))
	in.ids[s] = id
	in.vals = append(in.vals, s)
	return id
}

// codes sets out[i] to the id of s[i]. Values of an enum are matched by
// comparison, others looked up; a run of equal strings is looked up once.
func (in *interner) codes(s []string, enum []string, out []uint64) {
	var ids []uint64
	for _, x := range enum {
		ids = append(ids, uint64(in.id(x)))
	}
	prev, prevID := "", uint64(0)
	havePrev := false
rows:
	for i, x := range s {
		for j, y := range enum {
			if x == y {
				out[i] = ids[j]
				continue rows
			}
		}
		if !havePrev || x != prev {
			prev, prevID, havePrev = x, uint64(in.id(x)), true
		}
		out[i] = prevID
	}
}
