// Package incremental is the speed layer's tag executor: it keeps, per
// user, mergeable partial aggregates in time buckets and applies one event
// at a time. It agrees exactly with schemas/reference (the definition of
// tag semantics) for every as-of boundary its kept buckets cover.
//
// State of one user ([User]):
//   - one bucket per catalog bucket that holds events, each with one
//     partial per aggregate tag (windowed and lifetime alike);
//   - a lifetime base: the partials of the lifetime tags over the buckets
//     already evicted;
//   - the event ids seen in the kept buckets (catalogs with an id field).
//
// Buckets are kept from KeepFrom(watermark) on: the window of the longest
// tag before the end of the watermark's bucket, plus a grace period so
// that values as of a past boundary (the reconciler's cutoff) can still
// be computed. Events older than that are late: they change nothing and
// are left to the batch layer.
package incremental

import (
	"fmt"
	"slices"
	"time"

	"github.com/portrait-dev/portrait/schemas"
)

// DefaultGrace is the grace period kept beyond the longest window: one
// day, so that the speed view can be compared with any batch snapshot cut
// in the last 24 hours.
const DefaultGrace = 24 * time.Hour

// Outcome says what Apply did with an event.
type Outcome int

// The outcomes of Apply.
const (
	// Applied: the event was folded into the user's partials.
	Applied Outcome = iota
	// Late: the event is older than the kept buckets; nothing changed.
	Late
	// Duplicate: an event with the same id was already applied.
	Duplicate
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Late:
		return "late"
	case Duplicate:
		return "duplicate"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Executor is a catalog compiled for incremental evaluation. It holds no
// user state and is safe for concurrent use.
type Executor struct {
	cat *schemas.Catalog
	// slots are the aggregate tags, in catalog order; cells is the
	// number of partial cells a bucket takes, slot after slot (see
	// slot.cell).
	slots []slot
	cells int
	// stride is the number of cells a bucket takes in User.num: its
	// header and its partials.
	stride int
	// sides lays out the sides of a bucket's cells.
	sides sideLayout
	// life are the slots of lifetime tags.
	life    []int
	bucket  int64
	longest int64
	grace   int64
}

type slot struct {
	tag *schemas.Tag
	agg schemas.Agg
	of  int
	// typ is the type of the field aggregated (TypeInvalid without one).
	typ   schemas.Type
	where *schemas.Expr
	// window in ms, 0 for lifetime.
	window int64
	// whereSlot is the first slot with the same where expression (for
	// evaluating each distinct filter once per event), or -1 without one.
	whereSlot int
	// cell is the slot's first cell in a bucket's (or the base's) cells:
	// first and last take orderCells, the other aggregates one.
	cell int
}

// New compiles c. grace is how far beyond the longest window buckets are
// kept; it is rounded up to whole buckets.
func New(c *schemas.Catalog, grace time.Duration) (*Executor, error) {
	if grace < 0 {
		return nil, fmt.Errorf("grace %s is negative", grace)
	}
	x := &Executor{cat: c, bucket: c.Bucket, longest: c.LongestWindow()}
	g := grace.Milliseconds()
	x.grace = (g + c.Bucket - 1) / c.Bucket * c.Bucket
	firstWhere := map[string]int{}
	for i := range c.Tags {
		t := &c.Tags[i]
		if t.IsRule() {
			continue
		}
		s := slot{tag: t, agg: t.Agg, of: t.Of, where: t.Where, window: t.Window, whereSlot: -1, cell: x.cells}
		x.cells++
		if t.Agg == schemas.AggFirst || t.Agg == schemas.AggLast {
			x.cells += orderCells - 1
		}
		if t.Of >= 0 {
			s.typ = c.Fields[t.Of].Type
		}
		if t.Where != nil {
			if j, ok := firstWhere[t.Where.Source]; ok {
				s.whereSlot = j
			} else {
				firstWhere[t.Where.Source] = len(x.slots)
				s.whereSlot = len(x.slots)
			}
		}
		if t.Window == 0 {
			x.life = append(x.life, len(x.slots))
		}
		x.slots = append(x.slots, s)
	}
	x.stride = 1 + x.cells
	x.sides.of = make([]int, x.cells)
	for i := range x.sides.of {
		x.sides.of[i] = -1
	}
	for _, s := range x.slots {
		if s.typ == schemas.TypeString || s.agg == schemas.AggCountDistinct || s.agg == schemas.AggMode {
			x.sides.of[s.cell] = x.sides.n
			x.sides.n++
		}
	}
	return x, nil
}

// Catalog is the compiled catalog.
func (x *Executor) Catalog() *schemas.Catalog { return x.cat }

// Grace is the grace period kept beyond the longest window.
func (x *Executor) Grace() time.Duration { return time.Duration(x.grace) * time.Millisecond }

// LiveAsOf is the as-of time of the live values for a watermark: the end
// of the bucket that holds it.
func (x *Executor) LiveAsOf(watermark schemas.Timestamp) schemas.Timestamp {
	return x.cat.BucketStart(watermark) + schemas.Timestamp(x.bucket)
}

// KeepFrom is the start of the oldest bucket kept at a watermark: events
// before it are late.
func (x *Executor) KeepFrom(watermark schemas.Timestamp) schemas.Timestamp {
	return x.LiveAsOf(watermark) - schemas.Timestamp(x.longest+x.grace)
}

// Covers reports whether values as of the boundary asOf can be computed
// from the buckets kept from keepFrom on.
func (x *Executor) Covers(keepFrom, asOf schemas.Timestamp) bool {
	return x.cat.IsBoundary(asOf) && asOf-schemas.Timestamp(x.longest) >= keepFrom
}

// User is one entity's incremental state. It is not safe for concurrent
// use.
type User struct {
	// The entity key, an int64 (ikey) or a string (skey, with str), kept
	// unboxed: a boxed int64 is one more heap object per user.
	ikey int64
	skey string
	str  bool
	// num holds the buckets, in ascending start order, each in
	// Executor.stride cells: a header (see header) and its partials
	// (Executor.cells). One pointer-free allocation per user rather than
	// one or more per bucket: the garbage collector marks it without
	// scanning it, and it is the user's only object for most users.
	num []partial
	// sides holds the sides of every bucket's partials, Executor.sides.n
	// per bucket in the buckets' order (nil until one is needed, see
	// partials); bucketIDs the event ids applied to each bucket (id
	// catalogs only, else nil).
	sides     []side
	bucketIDs [][]any
	// baseNum and baseSide are the lifetime base: the lifetime slots'
	// cells over evicted buckets (baseNum nil when nothing was evicted
	// or the catalog has no lifetime tag), see base.
	baseNum  []partial
	baseSide []side
	// ids maps the event ids seen to their event time (id catalogs only).
	ids map[any]schemas.Timestamp
	// baseFrom is set when base came from a batch snapshot (Rebase): base
	// covers every event before baseFrom, and the lifetime slots skip the
	// kept buckets before it. 0 when base is only the evicted buckets.
	baseFrom schemas.Timestamp
	// rebased: Rebase replaced the base since the last Flush.
	rebased bool
	// baseDirty: base (or baseFrom) changed since the last Flush; dropped:
	// the starts of the buckets evicted since the last Flush.
	baseDirty bool
	dropped   []schemas.Timestamp
}

// header is the first cell of a bucket in User.num: n is the bucket's
// start, i its event count times two, plus one when the bucket changed
// since the last Flush.
type header partial

func (h *header) start() schemas.Timestamp { return schemas.Timestamp(h.n) }
func (h *header) events() int64            { return h.i >> 1 }
func (h *header) dirty() bool              { return h.i&1 != 0 }

// addEvent counts one event more and marks the bucket changed.
func (h *header) addEvent() { h.i = (h.i | 1) + 2 }

func (h *header) setDirty(on bool) {
	h.i &^= 1
	if on {
		h.i |= 1
	}
}

// buckets is the number of u's buckets.
func (x *Executor) buckets(u *User) int { return len(u.num) / x.stride }

// header is the header of u's bucket i.
func (x *Executor) header(u *User, i int) *header { return (*header)(&u.num[i*x.stride]) }

// NewUser returns an empty user with key, an int64 or a string (the
// key field's types).
func (x *Executor) NewUser(key any) *User {
	u := &User{}
	u.SetKey(key)
	return u
}

// SetKey sets the key of an empty user (one held by value), an int64 or
// a string.
func (u *User) SetKey(key any) {
	switch k := key.(type) {
	case int64:
		u.ikey = k
	case string:
		u.skey, u.str = k, true
	default:
		panic(fmt.Sprintf("incremental: user key of type %T", key))
	}
}

// Key is u's key (boxed anew by each call).
func (u *User) Key() any {
	if u.str {
		return u.skey
	}
	return u.ikey
}

// Warm reads the state Apply, Evict and Flush read first (the oldest and
// newest buckets' starts and cells), so that a caller going through many
// users can load them from memory in one loop whose cache misses
// overlap. The result is only there to keep the reads.
func (u *User) Warm() int64 {
	if len(u.num) == 0 {
		return 0
	}
	return u.num[0].n + u.num[len(u.num)-1].n
}

// IntKey is u's key when it is an int64 (false for a string key),
// without boxing it.
func (u *User) IntKey() (int64, bool) { return u.ikey, !u.str }

// StringKey is u's key when it is a string (false for an int64 key),
// without boxing it.
func (u *User) StringKey() (string, bool) { return u.skey, u.str }

// Empty reports whether the user holds no state at all.
func (u *User) Empty() bool { return len(u.num) == 0 && !u.hasBase() }

// hasBase reports whether u has a lifetime base.
func (u *User) hasBase() bool { return u.baseNum != nil }

// base is the view of u's lifetime base.
func (x *Executor) base(u *User) partials {
	return partials{num: u.baseNum, side: &u.baseSide, sides: &x.sides}
}

// newPartials is a fresh set of a bucket's cells with its own sides.
func (x *Executor) newPartials() partials {
	ps := newPartials(x.cells)
	ps.sides = &x.sides
	return ps
}

// parts is the view of the partials of u's bucket i, valid until a
// bucket is inserted or evicted.
func (x *Executor) parts(u *User, i int) partials {
	n, ns := x.stride, x.sides.n
	return partials{num: u.num[i*n+1 : (i+1)*n : (i+1)*n], side: &u.sides, off: i * ns, size: x.buckets(u) * ns, sides: &x.sides}
}

// Apply folds e into u unless it is older than keepFrom (Late) or repeats
// an id already applied (Duplicate). Values must be validated.
func (x *Executor) Apply(u *User, e *schemas.Event, keepFrom schemas.Timestamp) Outcome {
	if e.Time < keepFrom {
		return Late
	}
	if x.cat.ID >= 0 {
		id := e.Values[x.cat.ID]
		if _, dup := u.ids[id]; dup {
			return Duplicate
		}
		if u.ids == nil {
			u.ids = make(map[any]schemas.Timestamp, 8)
		}
		u.ids[id] = e.Time
	}
	bi := x.bucketFor(u, x.cat.BucketStart(e.Time))
	h, parts := x.header(u, bi), x.parts(u, bi)
	if x.cat.ID >= 0 {
		u.bucketIDs[bi] = append(u.bucketIDs[bi], e.Values[x.cat.ID])
	}
	h.addEvent()
	var where [64]int8 // 0 unknown, 1 true, 2 false; per slot of first use
	for i := range x.slots {
		s := &x.slots[i]
		if s.where != nil {
			ok := true
			if s.whereSlot < len(where) {
				w := &where[s.whereSlot]
				if *w == 0 {
					*w = 2
					if s.where.Eval(e.Values) {
						*w = 1
					}
				}
				ok = *w == 1
			} else {
				ok = s.where.Eval(e.Values)
			}
			if !ok {
				continue
			}
		}
		var v any
		if s.of >= 0 {
			v = e.Values[s.of]
		}
		parts.add(s.cell, s, v, e)
	}
	return Applied
}

// bucketFor finds or inserts the bucket starting at start and returns its
// index.
func (x *Executor) bucketFor(u *User, start schemas.Timestamp) int {
	n := x.buckets(u)
	i := n
	for i > 0 && x.header(u, i-1).start() >= start {
		if x.header(u, i-1).start() == start {
			return i - 1
		}
		i--
	}
	s := x.stride
	at := i * s
	u.num = slices.Grow(u.num, s)[:len(u.num)+s]
	copy(u.num[at+s:], u.num[at:])
	clear(u.num[at : at+s])
	x.header(u, i).n = int64(start)
	if u.sides != nil {
		ns := x.sides.n
		at := i * ns
		u.sides = slices.Grow(u.sides, ns)[:len(u.sides)+ns]
		copy(u.sides[at+ns:], u.sides[at:])
		clear(u.sides[at : at+ns])
	}
	if x.cat.ID >= 0 {
		u.bucketIDs = slices.Insert(u.bucketIDs, i, nil)
	}
	return i
}

// Evict folds the buckets before keepFrom into the lifetime base and
// drops them with their event ids (keepFrom is a bucket boundary, so
// those are exactly the ids seen before keepFrom). It reports whether
// anything changed.
func (x *Executor) Evict(u *User, keepFrom schemas.Timestamp) bool {
	k, nb := 0, x.buckets(u)
	for ; k < nb && x.header(u, k).start() < keepFrom; k++ {
		start := x.header(u, k).start()
		if len(x.life) > 0 && start >= u.baseFrom { // before baseFrom: in the base already
			if !u.hasBase() {
				u.baseNum = make([]partial, x.cells)
			}
			base, parts := x.base(u), x.parts(u, k)
			for _, s := range x.life {
				base.merge(x.slots[s].cell, &x.slots[s], &parts)
			}
			u.baseDirty = true
		}
		if u.bucketIDs != nil {
			for _, id := range u.bucketIDs[k] {
				delete(u.ids, id)
			}
		}
		u.dropped = append(u.dropped, start)
	}
	if k == 0 {
		return false
	}
	n := nb - k
	copy(u.num, u.num[k*x.stride:])
	u.num = u.num[:n*x.stride]
	if u.sides != nil {
		ns := x.sides.n
		m := copy(u.sides, u.sides[k*ns:])
		clear(u.sides[m:]) // let the dropped sides' strings and sets go
		u.sides = u.sides[:m]
	}
	if u.bucketIDs != nil {
		m := copy(u.bucketIDs, u.bucketIDs[k:])
		clear(u.bucketIDs[m:])
		u.bucketIDs = u.bucketIDs[:m]
	}
	if n == 0 { // a quiet user keeps no arrays
		u.num, u.sides, u.bucketIDs = nil, nil, nil
	}
	return true
}

// Present reports whether u belongs to the profile set as of asOf, the
// rule of reference.Evaluate: some event before asOf when the catalog has
// a lifetime tag, else some event within the longest window before asOf.
func (x *Executor) Present(u *User, asOf schemas.Timestamp) bool {
	if len(x.life) > 0 {
		return u.hasBase() || (len(u.num) > 0 && x.header(u, 0).start() < asOf)
	}
	from := asOf - schemas.Timestamp(x.longest)
	for i := range x.buckets(u) {
		if h := x.header(u, i); h.start() >= from && h.start() < asOf && h.events() > 0 {
			return true
		}
	}
	return false
}

// Values computes u's tag values (aggregates and rules, in catalog tag
// order) as of the bucket boundary asOf into dst, which is grown as
// needed. The caller checks Covers and Present.
func (x *Executor) Values(dst []any, u *User, asOf schemas.Timestamp) []any {
	n := len(x.cat.Tags)
	if cap(dst) < n {
		dst = make([]any, n)
	}
	dst = dst[:n]
	clear(dst)
	// Each slot folds into its own, fresh, cells of acc (on the stack
	// for most catalogs: a lookup allocates only its result).
	var accNum [32]partial
	var accSide []side
	acc := partials{side: &accSide, sides: &x.sides}
	if x.cells <= len(accNum) {
		acc.num = accNum[:x.cells]
	} else {
		acc.num = make([]partial, x.cells)
	}
	for i := range x.slots {
		s := &x.slots[i]
		from := schemas.Timestamp(-1 << 62)
		if s.window > 0 {
			from = asOf - schemas.Timestamp(s.window)
		} else {
			if u.hasBase() {
				base := x.base(u)
				acc.merge(s.cell, s, &base)
			}
			from = max(from, u.baseFrom) // the base covers what is before
		}
		for j := range x.buckets(u) {
			start := x.header(u, j).start()
			if start < from {
				continue
			}
			if start >= asOf {
				break
			}
			parts := x.parts(u, j)
			acc.merge(s.cell, s, &parts)
		}
		dst[s.tag.Index] = acc.result(s.cell, s)
	}
	for _, i := range x.cat.RuleOrder {
		dst[i] = x.cat.Tags[i].Rule.Eval(dst)
	}
	return dst
}

// Profile is Values wrapped as a profile, or false when u is not in the
// profile set as of asOf.
func (x *Executor) Profile(u *User, asOf schemas.Timestamp) (schemas.Profile, bool) {
	if !x.Present(u, asOf) {
		return schemas.Profile{}, false
	}
	return schemas.Profile{Key: u.Key(), Values: x.Values(nil, u, asOf)}, true
}
