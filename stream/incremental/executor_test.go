package incremental

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
)

const hour = int64(time.Hour / time.Millisecond)

// harness drives an Executor the way the speed layer does: per-partition
// watermarks decide lateness, and every few events a "checkpoint" evicts
// old buckets and round-trips every user through the codec.
type harness struct {
	x       *Executor
	users   map[any]*User
	wm      map[int32]schemas.Timestamp
	applied []schemas.Event // not late (duplicates included: reference drops them)
	late    int
	// stored is what checkpoints wrote: per user, part name → value.
	stored map[any]map[string][]byte
}

func newHarness(t *testing.T, c *schemas.Catalog, grace time.Duration) *harness {
	x, err := New(c, grace)
	require.NoError(t, err)
	return &harness{x: x, users: map[any]*User{}, wm: map[int32]schemas.Timestamp{}, stored: map[any]map[string][]byte{}}
}

func (h *harness) apply(e *schemas.Event) Outcome {
	if e.Time > h.wm[e.Partition] {
		h.wm[e.Partition] = e.Time
	}
	key := e.Values[h.x.cat.Key]
	u := h.users[key]
	if u == nil {
		u = h.x.NewUser(key)
	}
	o := h.x.Apply(u, e, h.x.KeepFrom(h.wm[e.Partition]))
	if o == Late {
		h.late++
		return o
	}
	h.users[key] = u
	h.applied = append(h.applied, *e)
	return o
}

// checkpoint evicts every user, flushes its changed parts into h.stored
// and replaces it by the user decoded from all its stored parts (in name
// order, as the store returns them): so a part not rewritten when it
// changed shows up as a difference from the reference.
func (h *harness) checkpoint(t *testing.T) {
	var arena []byte
	for key, u := range h.users {
		h.x.Evict(u, h.x.KeepFrom(h.partitionWM(key)))
		st := h.stored[key]
		if st == nil {
			st = map[string][]byte{}
			h.stored[key] = st
		}
		h.x.Flush(u, &arena, func(name, value []byte) {
			if value == nil {
				delete(st, string(name))
			} else {
				st[string(name)] = value
			}
		})
		names := make([]string, 0, len(st))
		for n := range st {
			names = append(names, n)
		}
		sort.Strings(names)
		dec := h.x.NewUser(key)
		for _, n := range names {
			require.NoError(t, h.x.DecodePart(dec, []byte(n), st[n]), "user %v part %x", key, n)
		}
		require.Equal(t, h.x.buckets(u), h.x.buckets(dec), "user %v buckets", key)
		require.Equal(t, u.num, dec.num, "user %v cells", key)
		require.Equal(t, len(u.ids), len(dec.ids), "user %v ids", key)
		require.Equal(t, u.hasBase(), dec.hasBase(), "user %v base", key)
		h.users[key] = dec
	}
}

// partitionWM finds the watermark of the partition a key lives on (gen
// spreads keys over partitions; the harness remembers via applied events).
func (h *harness) partitionWM(key any) schemas.Timestamp {
	for i := len(h.applied) - 1; i >= 0; i-- {
		if h.applied[i].Values[h.x.cat.Key] == key {
			return h.wm[h.applied[i].Partition]
		}
	}
	return 0
}

func (h *harness) globalWM() schemas.Timestamp {
	var w schemas.Timestamp
	for _, v := range h.wm {
		w = max(w, v)
	}
	return w
}

func (h *harness) profiles(asOf schemas.Timestamp) []schemas.Profile {
	var out []schemas.Profile
	for _, u := range h.users {
		if p, ok := h.x.Profile(u, asOf); ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return schemas.Compare(out[i].Key, out[j].Key) < 0 })
	return out
}

func TestDifferentialAgainstReference(t *testing.T) {
	catalogs := []string{"taobao", "ecommerce"}
	cases := []struct {
		name  string
		grace time.Duration
		every int // checkpoint every n events
		opts  func(o *gen.Options)
	}{
		{name: "default grace", grace: DefaultGrace, every: 500, opts: func(*gen.Options) {}},
		{name: "short grace evicts", grace: 2 * time.Hour, every: 97, opts: func(o *gen.Options) {
			o.Span = 40 * 24 * hour
			o.Disorder = 0.2
		}},
		{name: "no grace single partition", grace: 0, every: 50, opts: func(o *gen.Options) {
			o.Partitions = 1
			o.Users = 7
		}},
		{name: "string ties", grace: 6 * time.Hour, every: 1000, opts: func(o *gen.Options) {
			o.TieRate = 0.5
			o.Cardinality = 3
		}},
	}
	for _, name := range catalogs {
		c := schemas.MustLoad("../../schemas/catalogs/" + name + ".yaml")
		for ci, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				o := gen.Defaults(uint64(11 + ci))
				tc.opts(&o)
				// Put events exactly on the window edges of the final
				// live cutoff (approximately: the end of the span).
				end := c.BucketStart(o.Start + schemas.Timestamp(o.Span))
				for i := range c.Tags {
					if w := c.Tags[i].Window; w > 0 {
						o.Edges = append(o.Edges, end-schemas.Timestamp(w), end-schemas.Timestamp(w)-1, end-1)
					}
				}
				o.EdgeRate = 0.05
				events := gen.Events(c, o)
				h := newHarness(t, c, tc.grace)
				dups := 0
				for i := range events {
					if h.apply(&events[i]) == Duplicate {
						dups++
					}
					if (i+1)%tc.every == 0 {
						h.checkpoint(t)
						if (i+1)%(len(events)/4/tc.every*tc.every+tc.every) == 0 {
							// Live values in mid-stream.
							live := h.x.LiveAsOf(h.globalWM())
							want := reference.Evaluate(c, h.applied, live)
							if d := reference.Diff(c, want, h.profiles(live), 10); len(d) > 0 {
								t.Fatalf("after %d events, live as of %s: %v", i+1, live, d)
							}
						}
					}
				}
				h.checkpoint(t)
				if c.ID >= 0 {
					require.Positive(t, dups, "the generator should send duplicates")
				}
				if tc.grace < 6*time.Hour {
					require.Positive(t, h.late, "short grace should make some events late")
				}

				live := h.x.LiveAsOf(h.globalWM())
				// Cutoffs the kept buckets of every partition cover: from
				// the live as-of back by the grace, plus two in the future
				// (decay of quiet users).
				var cutoffs []schemas.Timestamp
				minKeep := live
				for _, w := range h.wm {
					minKeep = min(minKeep, h.x.KeepFrom(w))
				}
				for T := live + 2*schemas.Timestamp(hour); T >= minKeep+schemas.Timestamp(c.LongestWindow()); T -= 3 * schemas.Timestamp(hour) {
					cutoffs = append(cutoffs, T)
				}
				require.NotEmpty(t, cutoffs)
				t.Logf("%d events, %d late, %d duplicates, %d users, %d cutoffs from %s to %s (live %s)",
					len(events), h.late, dups, len(h.users), len(cutoffs), cutoffs[len(cutoffs)-1], cutoffs[0], live)
				for _, T := range cutoffs {
					// Every partition's keepFrom must cover T for an exact
					// comparison.
					for _, w := range h.wm {
						require.True(t, h.x.Covers(h.x.KeepFrom(w), T) || T >= live)
					}
					want := reference.Evaluate(c, h.applied, T)
					got := h.profiles(T)
					if d := reference.Diff(c, want, got, 10); len(d) > 0 {
						t.Fatalf("as of %s (live %s): %d profiles want, %d got:\n%v", T, live, len(want), len(got), d)
					}
					if T == live {
						require.NotEmpty(t, want)
					}
				}
			})
		}
	}
}

func TestPartialEdgeCases(t *testing.T) {
	c, err := schemas.Parse([]byte(`
name: edges
events:
  key: k
  time: ts
  fields: {k: string, ts: timestamp, v: int64, s: string, f: float64}
bucket: 1h
tags:
  n_2h:     {agg: count, window: 2h}
  first_s:  {agg: first, of: s}
  last_s:   {agg: last, of: s, window: 2h}
  mode_v:   {agg: mode, of: v, window: 2h}
  sum_f:    {agg: sum, of: f, window: 1h}
  avg_v:    {agg: avg, of: v}
  min_s:    {agg: min, of: s, window: 2h}
  any:      {rule: 'n_2h > 1'}
`))
	require.NoError(t, err)
	x, err := New(c, 0)
	require.NoError(t, err)
	ev := func(ts int64, p int32, off int64, v int64, s string, f float64) schemas.Event {
		return schemas.Event{Values: []any{"u", schemas.Timestamp(ts), v, s, f}, Time: schemas.Timestamp(ts), Partition: p, Offset: off}
	}
	events := []schemas.Event{
		ev(hour, 0, 5, 3, "b", 0.5),
		ev(hour, 0, 4, 2, "c", 0.25), // same time, earlier offset: applied later
		ev(hour+10, 1, 0, 2, "a", 1),
		ev(2*hour-1, 0, 9, 3, "d", 2), // last ms of the bucket
		ev(2*hour, 0, 10, 7, "e", 4),  // first ms of the next one
	}
	for _, want := range []struct {
		name string
		asOf int64
	}{{"mid", 2 * hour}, {"end", 3 * hour}, {"decayed", 4 * hour}, {"gone", 5 * hour}} {
		t.Run(want.name, func(t *testing.T) {
			u := x.NewUser("u")
			for i := range events {
				require.Equal(t, Applied, x.Apply(u, &events[i], 0))
			}
			ref := reference.Evaluate(c, events, schemas.Timestamp(want.asOf))
			got, ok := x.Profile(u, schemas.Timestamp(want.asOf))
			require.True(t, ok)
			require.Empty(t, reference.Diff(c, ref, []schemas.Profile{got}, 0), fmt.Sprint(got.Values))
		})
	}
	t.Run("late", func(t *testing.T) {
		u := x.NewUser("u")
		require.Equal(t, Late, x.Apply(u, &events[0], schemas.Timestamp(2*hour)))
		require.True(t, u.Empty())
	})
}

func TestDecodeRejectsCorruptState(t *testing.T) {
	c := schemas.MustLoad("../../schemas/catalogs/ecommerce.yaml")
	x, err := New(c, DefaultGrace)
	require.NoError(t, err)
	o := gen.Defaults(3)
	o.Users = 1
	o.Events = 50
	u := x.NewUser(int64(1))
	for _, e := range gen.Events(c, o) {
		x.Apply(u, &e, 0)
	}
	var arena []byte
	var name, enc []byte
	x.Flush(u, &arena, func(n, v []byte) {
		if n[0] == partBucket {
			name, enc = n, v
		}
	})
	require.NotNil(t, enc)
	for _, tc := range []struct {
		name string
		part []byte
		data []byte
	}{
		{"empty", name, nil},
		{"bad version", name, append([]byte{9}, enc[1:]...)},
		{"truncated", name, enc[:len(enc)/2]},
		{"trailing", name, append(append([]byte{}, enc...), 0)},
		{"unknown part", []byte("z"), enc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := x.DecodePart(x.NewUser(int64(1)), tc.part, tc.data)
			require.ErrorIs(t, err, errCorrupt)
		})
	}
	t.Run("out of order", func(t *testing.T) {
		dec := x.NewUser(int64(1))
		require.NoError(t, x.DecodePart(dec, name, enc))
		require.ErrorIs(t, x.DecodePart(dec, name, enc), errCorrupt)
	})
}

func TestFlushWritesOnlyChangedParts(t *testing.T) {
	c := schemas.MustLoad("../../schemas/catalogs/taobao.yaml")
	x, err := New(c, 0)
	require.NoError(t, err)
	o := gen.Defaults(5)
	o.Users, o.Events, o.Disorder, o.DupRate = 1, 200, 0, 0
	events := gen.Events(c, o)
	u := x.NewUser(events[0].Values[c.Key])
	buckets := map[schemas.Timestamp]bool{}
	for i := range events {
		require.Equal(t, Applied, x.Apply(u, &events[i], 0))
		buckets[c.BucketStart(events[i].Time)] = true
	}
	type op struct {
		kind byte
		del  bool
	}
	flush := func() []op {
		var arena []byte
		var ops []op
		x.Flush(u, &arena, func(name, value []byte) { ops = append(ops, op{name[0], value == nil}) })
		return ops
	}
	require.Len(t, flush(), len(buckets), "first flush writes every bucket")
	require.Empty(t, flush(), "nothing changed")

	e := events[len(events)-1]
	e.Offset++
	if c.ID >= 0 {
		e.Values = append([]any(nil), e.Values...)
		e.Values[c.ID] = "new-id"
	}
	require.Equal(t, Applied, x.Apply(u, &e, 0))
	require.Equal(t, []op{{partBucket, false}}, flush(), "one event rewrites its bucket only")

	oldest := x.header(u, 0).start()
	require.True(t, x.Evict(u, oldest+schemas.Timestamp(c.Bucket)))
	want := []op{{partBucket, true}}
	if len(x.life) > 0 {
		want = append([]op{{partBase, false}}, want...) // in name order
	}
	require.Equal(t, want, flush(), "eviction deletes the bucket and rewrites the base")
}

// TestUserKey: keys are kept unboxed and come back with their type.
func TestUserKey(t *testing.T) {
	x, err := New(schemas.MustLoad("../../schemas/catalogs/taobao.yaml"), 0)
	require.NoError(t, err)
	for _, key := range []any{int64(0), int64(-7), int64(1) << 40, "", "user-1"} {
		u := x.NewUser(key)
		require.Equal(t, key, u.Key())
		var v User
		v.SetKey(key)
		require.Equal(t, key, v.Key())
	}
	require.Panics(t, func() { x.NewUser(3.5) })
}
