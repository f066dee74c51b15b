// Package reference is the deliberately simple evaluator that defines what
// a catalog's tags mean. It holds every event in memory and recomputes each
// tag from scratch with plain loops; it is slow on purpose and exists so
// that the real executors (stream, batch local, batch ClickHouse) can be
// tested against it, value for value.
package reference

import (
	"fmt"
	"sort"

	"github.com/portrait-dev/portrait/schemas"
)

// Evaluate computes the profiles as of asOf: every aggregate sees the
// events with asOf−window ≤ time < asOf (lifetime tags: time < asOf), rules
// see the aggregated values.
//
// The profiles returned are those of the entities with at least one event
// that some aggregate's window covers (any event before asOf when the
// catalog has a lifetime tag), sorted by key. When the catalog has an id
// field, events with the same key and id count once: the first by (time,
// partition, offset).
func Evaluate(c *schemas.Catalog, events []schemas.Event, asOf schemas.Timestamp) []schemas.Profile {
	events = Dedup(c, events)
	byKey := map[any][]*schemas.Event{}
	var keys []any
	longest := schemas.Timestamp(c.LongestWindow())
	for i := range events {
		e := &events[i]
		if e.Time >= asOf {
			continue
		}
		k := e.Values[c.Key]
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], e)
	}
	sort.Slice(keys, func(i, j int) bool { return schemas.Compare(keys[i], keys[j]) < 0 })
	var out []schemas.Profile
	for _, k := range keys {
		evs := byKey[k]
		if !c.HasLifetime() && !anyAtOrAfter(evs, asOf-longest) {
			continue
		}
		sort.Slice(evs, func(i, j int) bool { return evs[i].Before(evs[j]) })
		out = append(out, Profile(c, k, evs, asOf))
	}
	return out
}

func anyAtOrAfter(evs []*schemas.Event, t schemas.Timestamp) bool {
	for _, e := range evs {
		if e.Time >= t {
			return true
		}
	}
	return false
}

// Dedup drops repeated (key, id) events, keeping the first by (time,
// partition, offset). It returns events unchanged when the catalog has no
// id field.
func Dedup(c *schemas.Catalog, events []schemas.Event) []schemas.Event {
	if c.ID < 0 {
		return events
	}
	type ident struct{ key, id any }
	first := map[ident]int{}
	for i := range events {
		id := ident{events[i].Values[c.Key], events[i].Values[c.ID]}
		if j, ok := first[id]; !ok || events[i].Before(&events[j]) {
			first[id] = i
		}
	}
	out := make([]schemas.Event, 0, len(first))
	for i := range events {
		id := ident{events[i].Values[c.Key], events[i].Values[c.ID]}
		if first[id] == i {
			out = append(out, events[i])
		}
	}
	return out
}

// Profile computes one entity's tags from its events, which must be
// sorted by (time, partition, offset) and all before asOf.
func Profile(c *schemas.Catalog, key any, evs []*schemas.Event, asOf schemas.Timestamp) schemas.Profile {
	p := schemas.Profile{Key: key, Values: make([]any, len(c.Tags))}
	for i := range c.Tags {
		t := &c.Tags[i]
		if t.IsRule() {
			continue
		}
		var in []*schemas.Event
		for _, e := range evs {
			if e.Time >= asOf || (t.Window > 0 && e.Time < asOf-schemas.Timestamp(t.Window)) {
				continue
			}
			if t.Where != nil && !t.Where.Eval(e.Values) {
				continue
			}
			in = append(in, e)
		}
		p.Values[i] = aggregate(t, in)
	}
	for _, i := range c.RuleOrder {
		p.Values[i] = c.Tags[i].Rule.Eval(p.Values)
	}
	return p
}

func aggregate(t *schemas.Tag, evs []*schemas.Event) any {
	switch t.Agg {
	case schemas.AggCount:
		return int64(len(evs))
	case schemas.AggCountDistinct:
		seen := map[any]bool{}
		for _, e := range evs {
			seen[e.Values[t.Of]] = true
		}
		return int64(len(seen))
	}
	if len(evs) == 0 {
		return nil
	}
	switch t.Agg {
	case schemas.AggSum:
		if t.Type == schemas.TypeInt64 {
			var s int64
			for _, e := range evs {
				s += e.Values[t.Of].(int64)
			}
			return s
		}
		var s float64
		for _, e := range evs {
			s += e.Values[t.Of].(float64)
		}
		return s
	case schemas.AggAvg:
		var s float64
		var si int64
		for _, e := range evs {
			switch v := e.Values[t.Of].(type) {
			case int64:
				si += v
			case float64:
				s += v
			}
		}
		return (s + float64(si)) / float64(len(evs))
	case schemas.AggMin, schemas.AggMax:
		best := evs[0].Values[t.Of]
		for _, e := range evs[1:] {
			c := schemas.Compare(e.Values[t.Of], best)
			if (t.Agg == schemas.AggMin && c < 0) || (t.Agg == schemas.AggMax && c > 0) {
				best = e.Values[t.Of]
			}
		}
		return best
	case schemas.AggFirst:
		return evs[0].Values[t.Of]
	case schemas.AggLast:
		return evs[len(evs)-1].Values[t.Of]
	case schemas.AggMode:
		counts := map[any]int{}
		for _, e := range evs {
			counts[e.Values[t.Of]]++
		}
		var best any
		bestN := 0
		for v, n := range counts {
			if n > bestN || (n == bestN && schemas.Compare(v, best) < 0) {
				best, bestN = v, n
			}
		}
		return best
	}
	panic(fmt.Sprintf("reference: unknown aggregate %q", t.Agg))
}
