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
	// TagPartials returns dst (resized, its previous content dropped)
	// holding the partials of tag j (the j-th of StateTags) of users
	// lo..hi-1: dst[k] is user lo+k's. The partials may point into the
	// view and into dst. Safe for concurrent use.
	TagPartials(dst []schemas.Partial, j, lo, hi int) []schemas.Partial
	// ScalarPartials sets dst[j] to the partials of lifetime tag j of users
	// lo..hi-1, unboxed, for every scalar tag j (all but count_distinct and
	// mode; dst[j] of the others is left alone): dst[j]'s columns get a
	// row per user, dst[j].Value may point into the view. It fails on a
	// partial value not of its tag's type. Safe for concurrent use.
	ScalarPartials(cat *schemas.Catalog, lo, hi int, dst []ScalarPartials) error
}

// ScalarPartials are the partials of a scalar lifetime tag of a range of
// users as typed columns, a row per user: the fields of schemas.Partial
// the tag's aggregate sets, for the snapshot writer.
type ScalarPartials struct {
	// N is the count (count), or the number of values summed (sum, avg).
	N []int64
	// Int or Float is the sum of an int64 or a float64 field (sum, avg).
	Int   []int64
	Float []float64
	// Value holds the value (min, max, first, last), typed as the tag,
	// valid when the partial has one (its N is then 1).
	Value Column
	// Time, Partition and Offset place a first/last value (rows where
	// Value is valid).
	Time      []int64
	Partition []int32
	Offset    []int64
	// own holds Value's slices when they are not the view's.
	own Column
}

// size sizes the columns of tag t to n rows, their slices sp's own (set
// tags: none).
func (sp *ScalarPartials) size(cat *schemas.Catalog, t *schemas.Tag, n int) {
	switch t.Agg {
	case schemas.AggCount:
		sp.N = grow(sp.N[:0], n)
	case schemas.AggSum, schemas.AggAvg:
		sp.N = grow(sp.N[:0], n)
		if cat.Fields[t.Of].Type == schemas.TypeFloat64 {
			sp.Float, sp.Int = grow(sp.Float[:0], n), nil
		} else {
			sp.Int, sp.Float = grow(sp.Int[:0], n), nil
		}
	case schemas.AggMin, schemas.AggMax:
		sp.sizeValue(t.Type, n)
	case schemas.AggFirst, schemas.AggLast:
		sp.sizeValue(t.Type, n)
		sp.sizePlace(n)
	}
}

// sizePlace sizes Time, Partition and Offset to n rows.
func (sp *ScalarPartials) sizePlace(n int) {
	sp.Time, sp.Partition, sp.Offset = grow(sp.Time[:0], n), grow(sp.Partition[:0], n), grow(sp.Offset[:0], n)
}

// sizeValue makes sp.Value a column of type t, n rows long, its slices
// sp's own.
func (sp *ScalarPartials) sizeValue(t schemas.Type, n int) {
	c := &sp.own
	c.Type = t
	c.Valid = grow(c.Valid[:0], n)
	switch t {
	case schemas.TypeInt64, schemas.TypeTimestamp:
		c.Int = grow(c.Int[:0], n)
	case schemas.TypeFloat64:
		c.Float = grow(c.Float[:0], n)
	case schemas.TypeString:
		c.Str = grow(c.Str[:0], n)
	case schemas.TypeBool:
		c.Bool = grow(c.Bool[:0], n)
	}
	sp.Value = *c
}

// StateTags returns s.Tags.
func (s *State) StateTags() []int { return s.Tags }

// Len is the number of users.
func (s *State) Len() int { return len(s.Keys) }

// Key is the key of user i.
func (s *State) Key(i int) any { return s.Keys[i] }

// TagPartials copies the partials of tag j of users lo..hi-1 into dst
// (see StateView).
func (s *State) TagPartials(dst []schemas.Partial, j, lo, hi int) []schemas.Partial {
	dst = dst[:0]
	for _, row := range s.Partials[lo:hi] {
		dst = append(dst, row[j])
	}
	return dst
}

// ScalarPartials unboxes the partials of the scalar tags of users
// lo..hi-1 (see StateView), unboxChunk users at a time, every tag of a
// chunk in turn: a user's partials are next to one another, so that the
// chunk's stay in cache.
func (s *State) ScalarPartials(cat *schemas.Catalog, lo, hi int, dst []ScalarPartials) error {
	for j, ti := range s.Tags {
		dst[j].size(cat, &cat.Tags[ti], hi-lo)
	}
	for c0 := lo; c0 < hi; c0 += unboxChunk {
		c1 := min(c0+unboxChunk, hi)
		for j, ti := range s.Tags {
			if err := s.unbox(cat, &cat.Tags[ti], j, c0, c1, &dst[j], c0-lo); err != nil {
				return err
			}
		}
	}
	return nil
}

// unboxChunk is how many users' partials State.ScalarPartials unboxes at
// a time.
const unboxChunk = 256

// unbox sets rows at.. of sp, sized, to the partials of tag t (the j-th)
// of users lo..hi-1.
func (s *State) unbox(cat *schemas.Catalog, t *schemas.Tag, j, lo, hi int, sp *ScalarPartials, at int) error {
	rows := s.Partials[lo:hi]
	switch t.Agg {
	case schemas.AggCount:
		n := sp.N[at:]
		for i, row := range rows {
			n[i] = row[j].N
		}
	case schemas.AggSum, schemas.AggAvg:
		n, ints, floats := sp.N[at:], sp.Int, sp.Float
		if floats != nil {
			floats = floats[at:]
		} else {
			ints = ints[at:]
		}
		for i, row := range rows {
			p := &row[j]
			n[i] = p.N
			if floats != nil {
				floats[i] = p.Float
			} else {
				ints[i] = p.Int
			}
		}
	case schemas.AggMin, schemas.AggMax, schemas.AggFirst, schemas.AggLast:
		if i, ok := unboxValues(&sp.Value, at, rows, j); !ok {
			v := rows[i][j].Value
			return fmt.Errorf("state key %v: tag %s: partial value %v is %T, want %s", s.Keys[lo+i], t.Name, v, v, t.Type)
		}
		if t.Agg == schemas.AggFirst || t.Agg == schemas.AggLast {
			valid, ts, parts, offs := sp.Value.Valid[at:], sp.Time[at:], sp.Partition[at:], sp.Offset[at:]
			for i, row := range rows {
				if p := &row[j]; valid[i] {
					ts[i], parts[i], offs[i] = int64(p.Time), p.Partition, p.Offset
				} else {
					ts[i], parts[i], offs[i] = 0, 0, 0
				}
			}
		}
	}
	return nil
}

// unboxValues sets row at+i of c (sized, of the tag's type) to the value
// of partial rows[i][j], valid when it has one (N > 0 and Value not nil);
// false and the i of the first value not of c's type otherwise. One loop
// per type.
func unboxValues(c *Column, at int, rows [][]schemas.Partial, j int) (int, bool) {
	valid := c.Valid[at:]
	switch c.Type {
	case schemas.TypeInt64:
		return unboxInto(c.Int[at:], valid, rows, j, func(v any) (int64, bool) { x, ok := v.(int64); return x, ok })
	case schemas.TypeTimestamp:
		return unboxInto(c.Int[at:], valid, rows, j, func(v any) (int64, bool) { x, ok := v.(schemas.Timestamp); return int64(x), ok })
	case schemas.TypeFloat64:
		return unboxInto(c.Float[at:], valid, rows, j, func(v any) (float64, bool) { x, ok := v.(float64); return x, ok })
	case schemas.TypeString:
		return unboxInto(c.Str[at:], valid, rows, j, func(v any) (string, bool) { x, ok := v.(string); return x, ok })
	case schemas.TypeBool:
		return unboxInto(c.Bool[at:], valid, rows, j, func(v any) (bool, bool) { x, ok := v.(bool); return x, ok })
	}
	return 0, len(rows) == 0
}

func unboxInto[T any](out []T, valid []bool, rows [][]schemas.Partial, j int, as func(any) (T, bool)) (int, bool) {
	var zero T
	for i, row := range rows {
		p := &row[j]
		if p.N == 0 || p.Value == nil {
			out[i], valid[i] = zero, false
			continue
		}
		x, ok := as(p.Value)
		if !ok {
			return i, false
		}
		out[i], valid[i] = x, true
	}
	return 0, true
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

// PartialsOf returns dst (resized, its previous content dropped) holding
// the partials of users lo..hi-1: dst[k*len(l.StateTags())+j] is user
// lo+k's partial of tag j. The partials may point into l and into dst.
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

// TagPartials returns the partials of tag j of users lo..hi-1 (see
// StateView).
func (l *Lifetime) TagPartials(dst []schemas.Partial, j, lo, hi int) []schemas.Partial {
	dst = grow(dst[:0], hi-lo)[:hi-lo]
	clear(dst)
	bx := &boxer{}
	t := l.tags[j]
	for si, pos := range l.pos {
		a, b := sort.SearchInts(pos, lo), sort.SearchInts(pos, hi)
		if a < b {
			fillPartials(l.accs[si][t], l.lists[si][a:b], pos[a:b], &l.ps.Tags[t], dst, lo, 1, 0, bx)
		}
	}
	return dst
}

// ScalarPartials reads the partials of the scalar tags of users lo..hi-1
// (see StateView): the count and the value from the tag's column, the
// rest from the accumulators.
func (l *Lifetime) ScalarPartials(cat *schemas.Catalog, lo, hi int, dst []ScalarPartials) error {
	for j, ti := range l.tags {
		t, c, sp := &cat.Tags[ti], &l.ps.Tags[ti], &dst[j]
		switch t.Agg {
		case schemas.AggCount:
			sp.size(cat, t, hi-lo)
			copy(sp.N, c.Int[lo:hi])
			continue
		case schemas.AggMin, schemas.AggMax, schemas.AggFirst, schemas.AggLast:
			sp.Value = Column{Type: c.Type, Int: sub(c.Int, lo, hi), Float: sub(c.Float, lo, hi),
				Str: sub(c.Str, lo, hi), Bool: sub(c.Bool, lo, hi), Valid: sub(c.Valid, lo, hi)}
			if t.Agg == schemas.AggMin || t.Agg == schemas.AggMax {
				continue
			}
			sp.sizePlace(hi - lo)
		case schemas.AggSum, schemas.AggAvg:
			sp.size(cat, t, hi-lo)
		default:
			continue
		}
		for si, pos := range l.pos {
			a, b := sort.SearchInts(pos, lo), sort.SearchInts(pos, hi)
			if a == b {
				continue
			}
			f, ok := l.accs[si][ti].(scalarFiller)
			if !ok {
				return fmt.Errorf("state tag %s: %T fills no scalar partials", t.Name, l.accs[si][ti])
			}
			f.fillScalar(l.lists[si][a:b], pos[a:b], sp, lo)
		}
	}
	return nil
}

// sub is s[lo:hi], or nil for a nil s.
func sub[T any](s []T, lo, hi int) []T {
	if s == nil {
		return nil
	}
	return s[lo:hi:hi]
}

// scalarFiller is an accumulator whose partials hold more than its tag's
// column: sum and avg (the count and the sum), first and last (the place
// of the value).
type scalarFiller interface {
	// fillScalar fills row pos[k]-base of dst with the partial of
	// users[k], for every k; dst.Value is filled.
	fillScalar(users []uint32, pos []int, dst *ScalarPartials, base int)
}

func (a *sumAcc[T]) fillScalar(users []uint32, pos []int, dst *ScalarPartials, base int) {
	for k, u := range users {
		st, i := a.s.at(u), pos[k]-base
		dst.N[i] = st.n
		switch s := any(st.s).(type) {
		case int64:
			dst.Int[i] = s
		case float64:
			dst.Float[i] = s
		}
	}
}

func (a *edgeAcc[T]) fillScalar(users []uint32, pos []int, dst *ScalarPartials, base int) {
	for k, u := range users {
		i := pos[k] - base
		if !dst.Value.Has(i) {
			dst.Time[i], dst.Partition[i], dst.Offset[i] = 0, 0, 0
			continue
		}
		st := a.e.at(u)
		dst.Time[i], dst.Partition[i], dst.Offset[i] = st.t, st.p, st.o
	}
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

// Boxer boxes values into interfaces without a heap allocation each, for
// the keys and partials of a State read from storage: values are copied
// into chunks that the interfaces point into (see boxer). The zero Boxer
// is ready for use; it is not safe for concurrent use.
type Boxer struct {
	bx   boxer
	strs []string
}

// Int64 boxes v.
func (b *Boxer) Int64(v int64) any { return b.bx.int64(v) }

// Timestamp boxes v.
func (b *Boxer) Timestamp(v schemas.Timestamp) any { return b.bx.timestamp(int64(v)) }

// Float64 boxes v.
func (b *Boxer) Float64(v float64) any { return b.bx.float64(v) }

// String boxes s.
func (b *Boxer) String(s string) any {
	if len(b.strs) == cap(b.strs) {
		b.strs = make([]string, 0, boxChunk)
	}
	b.strs = append(b.strs, s)
	return b.bx.stringAt(&b.strs[len(b.strs)-1])
}
