package local

import (
	"fmt"
	"slices"
	"sort"
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

// StateView is a lifetime state as a snapshot's writer reads it, a range
// of users at a time: a *State, or the *Lifetime of a Result, whose
// partials are never all held at once.
type StateView interface {
	// Check verifies that the state fits the catalog's lifetime tags.
	Check(cat *schemas.Catalog) error
	// StateTags are the indexes (in the catalog) of the lifetime tags, in
	// catalog order.
	StateTags() []int
	// Len is the number of users; Key(i) the key of user i, which the
	// caller must not keep once the view is gone.
	Len() int
	Key(i int) any
	// PartialsOf returns dst (resized, its previous content dropped) holding
	// the partials of users lo..hi-1: dst[k*len(StateTags())+j] is user
	// lo+k's partial of tag j. The partials may point into the view and
	// into dst. Safe for concurrent use.
	PartialsOf(dst []schemas.Partial, lo, hi int) []schemas.Partial
}

// StateTags returns s.Tags.
func (s *State) StateTags() []int { return s.Tags }

// Len is the number of users.
func (s *State) Len() int { return len(s.Keys) }

// Key is the key of user i.
func (s *State) Key(i int) any { return s.Keys[i] }

// PartialsOf copies the partials of users lo..hi-1 into dst (see
// StateView).
func (s *State) PartialsOf(dst []schemas.Partial, lo, hi int) []schemas.Partial {
	dst = dst[:0]
	for _, row := range s.Partials[lo:hi] {
		dst = append(dst, row...)
	}
	return dst
}

// Lifetime is the lifetime state of a Result's users, in the same order:
// it reads the partials from the engine's accumulators when asked for (see
// StateView), so that those of every user are never held at once (the
// snapshot writer asks for a row group's users at a time).
type Lifetime struct {
	cutoff schemas.Timestamp
	tags   []int
	ps     *Profiles
	// For every shard: its accumulators, its users in result order and
	// their rows.
	accs  [][]acc
	lists [][]uint32
	pos   [][]int
}

// Cutoff is the cutoff the state is as of.
func (l *Lifetime) Cutoff() schemas.Timestamp { return l.cutoff }

// StateTags are the indexes of the lifetime tags.
func (l *Lifetime) StateTags() []int { return l.tags }

// Check verifies that the state fits the catalog's lifetime tags.
func (l *Lifetime) Check(cat *schemas.Catalog) error {
	if !slices.Equal(l.tags, LifetimeTags(cat)) {
		return fmt.Errorf("state tags %v are not the lifetime tags of catalog %s", l.tags, cat.Name)
	}
	return nil
}

// Len is the number of users.
func (l *Lifetime) Len() int { return l.ps.Len() }

// Key is the key of user i: it points into the profiles.
func (l *Lifetime) Key(i int) any { return l.ps.boxKey(i) }

// PartialsOf returns the partials of users lo..hi-1 (see StateView).
func (l *Lifetime) PartialsOf(dst []schemas.Partial, lo, hi int) []schemas.Partial {
	nl := len(l.tags)
	dst = grow(dst[:0], (hi-lo)*nl)[:(hi-lo)*nl]
	clear(dst)
	bx := &boxer{}
	for si, pos := range l.pos {
		a, b := sort.SearchInts(pos, lo), sort.SearchInts(pos, hi)
		if a == b {
			continue
		}
		users := l.lists[si][a:b]
		for j, t := range l.tags {
			fillPartials(l.accs[si][t], users, pos[a:b], &l.ps.Tags[t], dst, lo, nl, j, bx)
		}
	}
	return dst
}

// State returns every partial at once, as a State whose keys and values
// point into the profiles.
func (l *Lifetime) State() *State {
	n, nl := l.Len(), len(l.tags)
	s := &State{Cutoff: l.cutoff, Tags: l.tags, Keys: make([]any, n), Partials: make([][]schemas.Partial, n)}
	parts := l.PartialsOf(nil, 0, n)
	for i := range n {
		s.Keys[i] = l.Key(i)
		s.Partials[i] = parts[i*nl : (i+1)*nl : (i+1)*nl]
	}
	return s
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
