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
	// slots are the aggregate tags, in catalog order; a User's partials
	// are indexed by slot.
	slots []slot
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
		s := slot{tag: t, agg: t.Agg, of: t.Of, where: t.Where, window: t.Window, whereSlot: -1}
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
	Key any
	// buckets in ascending start order (values: one allocation less per
	// new bucket; a *bucket is valid until the next insert).
	buckets []bucket
	// base holds the lifetime slots' partials over evicted buckets (nil
	// when nothing was evicted or the catalog has no lifetime tag).
	base []partial
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

type bucket struct {
	start  schemas.Timestamp
	events int64
	parts  []partial
	// ids are the event ids applied to the bucket (id catalogs only).
	ids []any
	// dirty: changed since the last Flush.
	dirty bool
}

// NewUser returns an empty user.
func (x *Executor) NewUser(key any) *User { return &User{Key: key} }

// Empty reports whether the user holds no state at all.
func (u *User) Empty() bool { return len(u.buckets) == 0 && u.base == nil }

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
	b := x.bucketFor(u, x.cat.BucketStart(e.Time))
	if x.cat.ID >= 0 {
		b.ids = append(b.ids, e.Values[x.cat.ID])
	}
	b.events++
	b.dirty = true
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
		b.parts[i].add(s.agg, s.typ, v, e)
	}
	return Applied
}

// bucketFor finds or inserts the bucket starting at start.
func (x *Executor) bucketFor(u *User, start schemas.Timestamp) *bucket {
	n := len(u.buckets)
	i := n
	for i > 0 && u.buckets[i-1].start >= start {
		if u.buckets[i-1].start == start {
			return &u.buckets[i-1]
		}
		i--
	}
	u.buckets = append(u.buckets, bucket{})
	copy(u.buckets[i+1:], u.buckets[i:n])
	u.buckets[i] = bucket{start: start, parts: make([]partial, len(x.slots))}
	return &u.buckets[i]
}

// Evict folds the buckets before keepFrom into the lifetime base and
// drops them with their event ids (keepFrom is a bucket boundary, so
// those are exactly the ids seen before keepFrom). It reports whether
// anything changed.
func (x *Executor) Evict(u *User, keepFrom schemas.Timestamp) bool {
	k := 0
	for k < len(u.buckets) && u.buckets[k].start < keepFrom {
		b := &u.buckets[k]
		if len(x.life) > 0 && b.start >= u.baseFrom { // before baseFrom: in the base already
			if u.base == nil {
				u.base = make([]partial, len(x.slots))
			}
			for _, s := range x.life {
				u.base[s].merge(x.slots[s].agg, x.slots[s].typ, &b.parts[s])
			}
			u.baseDirty = true
		}
		for _, id := range b.ids {
			delete(u.ids, id)
		}
		u.dropped = append(u.dropped, b.start)
		k++
	}
	if k == 0 {
		return false
	}
	n := copy(u.buckets, u.buckets[k:])
	clear(u.buckets[n:]) // let the dropped buckets go
	u.buckets = u.buckets[:n]
	return true
}

// Present reports whether u belongs to the profile set as of asOf, the
// rule of reference.Evaluate: some event before asOf when the catalog has
// a lifetime tag, else some event within the longest window before asOf.
func (x *Executor) Present(u *User, asOf schemas.Timestamp) bool {
	if len(x.life) > 0 {
		return u.base != nil || (len(u.buckets) > 0 && u.buckets[0].start < asOf)
	}
	from := asOf - schemas.Timestamp(x.longest)
	for i := range u.buckets {
		if b := &u.buckets[i]; b.start >= from && b.start < asOf && b.events > 0 {
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
	var acc partial
	for i := range x.slots {
		s := &x.slots[i]
		acc = partial{}
		from := schemas.Timestamp(-1 << 62)
		if s.window > 0 {
			from = asOf - schemas.Timestamp(s.window)
		} else {
			if u.base != nil {
				acc.merge(s.agg, s.typ, &u.base[i])
			}
			from = max(from, u.baseFrom) // the base covers what is before
		}
		for j := range u.buckets {
			b := &u.buckets[j]
			if b.start < from {
				continue
			}
			if b.start >= asOf {
				break
			}
			acc.merge(s.agg, s.typ, &b.parts[i])
		}
		dst[s.tag.Index] = acc.result(s.tag, s.typ)
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
	return schemas.Profile{Key: u.Key, Values: x.Values(nil, u, asOf)}, true
}
