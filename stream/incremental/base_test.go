package incremental

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
)

// basePartials turns an evicted user's base into the form a snapshot
// state stores.
func basePartials(x *Executor, u *User) []schemas.Partial {
	if !u.hasBase() {
		return nil
	}
	out := make([]schemas.Partial, len(x.life))
	base := x.base(u)
	for j, slot := range x.life {
		s := x.slots[slot].cell
		p := &base.num[s]
		typ := x.slots[slot].typ
		b := schemas.Partial{N: p.n, Int: p.i}
		if typ == schemas.TypeFloat64 {
			b.Int, b.Float = 0, floatOf(p.i)
		}
		switch agg := x.slots[slot].agg; agg {
		case schemas.AggMin, schemas.AggMax, schemas.AggFirst, schemas.AggLast:
			b.Int, b.Float = 0, 0
			if p.n > 0 {
				b.Value = base.value(s, typ)
			}
			if agg == schemas.AggFirst || agg == schemas.AggLast {
				t, part, o := base.order(s)
				b.Time, b.Partition, b.Offset = schemas.Timestamp(t), part, o
			}
		case schemas.AggCountDistinct, schemas.AggMode:
			b = schemas.Partial{}
			base.counts(s, typ, func(v any, n int64) { b.Values, b.Counts = append(b.Values, v), append(b.Counts, n) })
		}
		out[j] = b
	}
	return out
}

// flushDecode writes every changed part of u into st (nil deletes) and
// reads the stored parts back into a new user.
func flushDecode(t *testing.T, x *Executor, u *User, st map[string][]byte) *User {
	t.Helper()
	var arena []byte
	var emitted []string
	x.Flush(u, &arena, func(name, value []byte) {
		emitted = append(emitted, string(name))
		if value == nil {
			delete(st, string(name))
		} else {
			st[string(name)] = append([]byte(nil), value...)
		}
	})
	require.True(t, sort.StringsAreSorted(emitted), "Flush emits parts in name order: %q", emitted)
	names := make([]string, 0, len(st))
	for n := range st {
		names = append(names, n)
	}
	sort.Strings(names)
	dec := x.NewUser(u.Key())
	for _, n := range names {
		require.NoError(t, x.DecodePart(dec, []byte(n), st[n]), "part %x", n)
	}
	return dec
}

// TestRebaseAgreesWithReference: a user rebased on the lifetime partials
// of the events before C, holding every bucket, has the reference's values
// as of every boundary from C on, also after a flush and decode, after
// eviction, and after Replace.
func TestRebaseAgreesWithReference(t *testing.T) {
	for _, name := range []string{"taobao", "ecommerce"} {
		t.Run(name, func(t *testing.T) {
			c := schemas.MustLoad("../../schemas/catalogs/" + name + ".yaml")
			x, err := New(c, 0)
			require.NoError(t, err)
			o := gen.Defaults(9)
			o.Users, o.Events, o.Disorder, o.DupRate = 1, 400, 0, 0
			events := gen.Events(c, o)
			key := events[0].Values[c.Key]
			cut := c.BucketStart(events[len(events)/2].Time)

			// The snapshot's base: the events before cut, folded.
			snap := x.NewUser(key)
			for i := range events {
				if events[i].Time < cut {
					require.Equal(t, Applied, x.Apply(snap, &events[i], -1<<62))
				}
			}
			x.Evict(snap, cut)
			base := basePartials(x, snap)

			// A speed user that holds every bucket, with a base of its own
			// that the rebase replaces (it must not count twice).
			u := x.NewUser(key)
			for i := range events {
				require.Equal(t, Applied, x.Apply(u, &events[i], -1<<62))
			}
			first := c.BucketStart(events[0].Time) + schemas.Timestamp(c.Bucket)
			x.Evict(u, first)
			st := map[string][]byte{}
			flushDecode(t, x, u, st)
			x.Rebase(u, cut, base)
			require.Equal(t, cut, u.BaseFrom())

			end := c.BucketStart(events[len(events)-1].Time) + schemas.Timestamp(c.Bucket)
			// check compares the values as of boundaries from `from` on
			// that the buckets kept from keepFrom cover.
			check := func(stage string, u *User, from, keepFrom schemas.Timestamp) {
				t.Helper()
				n := 0
				for asOf := from; asOf <= max(end, from)+schemas.Timestamp(c.LongestWindow()); asOf += 7 * schemas.Timestamp(c.Bucket) {
					if !x.Covers(keepFrom, asOf) {
						continue
					}
					n++
					want := reference.Evaluate(c, events, asOf)
					got, ok := x.Profile(u, asOf)
					require.True(t, ok)
					require.Empty(t, reference.Diff(c, want, []schemas.Profile{got}, 5), "%s as of %s", stage, asOf)
				}
				require.Positive(t, n, stage)
			}
			check("rebased", u, cut, first)
			dec := flushDecode(t, x, u, st)
			require.Equal(t, cut, dec.BaseFrom(), "the base's end is stored")
			check("decoded", dec, cut, first)

			// Evicting past the cut folds only the buckets from it on.
			keep := cut + 6*schemas.Timestamp(c.Bucket)
			x.Evict(dec, keep)
			check("evicted", dec, cut, keep)
			check("evicted and decoded", flushDecode(t, x, dec, st), cut, keep)

			// Replace by a user rebuilt from the events from cut on: the
			// stored parts are the rebuilt user's, no more.
			rebuilt := x.NewUser(key)
			x.Rebase(rebuilt, cut, base)
			for i := range events {
				if events[i].Time >= cut {
					x.Apply(rebuilt, &events[i], cut)
				}
			}
			x.Replace(dec, rebuilt)
			again := flushDecode(t, x, dec, st)
			check("replaced", again, cut, cut)
			require.Equal(t, cut, x.header(again, 0).start(), "the buckets before cut are deleted")
		})
	}
}

func TestRebaseEmptyUserStoresNothing(t *testing.T) {
	c := schemas.MustLoad("../../schemas/catalogs/taobao.yaml")
	x, err := New(c, 0)
	require.NoError(t, err)
	u := x.NewUser(int64(7))
	x.Rebase(u, 3_600_000, nil)
	st := map[string][]byte{"a": {1}}
	flushDecode(t, x, u, st)
	require.Empty(t, st, "an empty rebased user deletes its base and stores no base end")
}
