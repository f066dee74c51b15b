// Package gen generates deterministic synthetic events for any catalog:
// the same options give the same events on every machine. It feeds the
// differential tests (with ties, duplicate ids and events placed exactly
// on window edges) and the large benchmark data sets of `portrait gen`.
package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/portrait-dev/portrait/schemas"
)

// Options shape the generated stream.
type Options struct {
	Seed   uint64
	Users  int // distinct entity keys (1..Users, or "u1".."uN" for string keys)
	Events int // events before duplicates are added
	// Start and Span bound the event times: Start ≤ time < Start+Span (ms).
	Start schemas.Timestamp
	Span  int64
	// Partitions spreads events over Kafka-like partitions by key; offsets
	// count up per partition in stream order. 0 means 1.
	Partitions int
	// TieRate is the share of events that reuse the previous event's time
	// for the same user, to exercise (time, partition, offset) tie-breaks.
	TieRate float64
	// DupRate is the share of events sent twice (same id, same time, a
	// later offset); it needs a catalog id field.
	DupRate float64
	// Edges are instants (such as cutoff−window and cutoff) that some
	// events are placed on exactly; EdgeRate is their share.
	Edges    []schemas.Timestamp
	EdgeRate float64
	// Disorder is the share of events moved out of time order in the
	// stream (late arrivals); 0 keeps the stream sorted by time.
	Disorder float64
	// Cardinality bounds the distinct values of non-key int64 and string
	// fields without an enum (small values make mode ties likely).
	// 0 means 50.
	Cardinality int
}

// Defaults returns options for a small, tie-heavy stream over ten days
// starting 2017-11-25 (the Taobao sample's period).
func Defaults(seed uint64) Options {
	return Options{
		Seed: seed, Users: 50, Events: 3000,
		Start: 1511568000000, Span: 10 * 24 * 3600 * 1000,
		Partitions: 3, TieRate: 0.1, DupRate: 0.05, EdgeRate: 0.05, Disorder: 0.1,
		Cardinality: 8,
	}
}

// Events generates the whole stream in memory, in stream order.
func Events(c *schemas.Catalog, o Options) []schemas.Event {
	var out []schemas.Event
	err := Stream(c, o, func(e *schemas.Event) error {
		out = append(out, *e)
		return nil
	})
	if err != nil {
		panic(err) // only fn errors are returned, and this fn has none
	}
	return out
}

// Stream generates the events one by one, in stream order, without
// holding them all (apart from the Disorder and DupRate reordering, which
// works on windows of 1,000 events). The *Event passed to fn is reused;
// copy it to keep it (its Values slice is fresh for every event).
func Stream(c *schemas.Catalog, o Options, fn func(*schemas.Event) error) error {
	if o.Users <= 0 || o.Events < 0 || o.Span <= 0 {
		return fmt.Errorf("gen: users and span must be positive")
	}
	if o.Partitions <= 0 {
		o.Partitions = 1
	}
	if o.Cardinality <= 0 {
		o.Cardinality = 50
	}
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	offsets := make([]int64, o.Partitions)
	lastTime := map[int]schemas.Timestamp{}
	const window = 1000
	buf := make([]schemas.Event, 0, window+window/5)
	seq := 0
	flush := func() error {
		// Sort by time, then move a share out of order.
		sort.SliceStable(buf, func(i, j int) bool { return buf[i].Time < buf[j].Time })
		for i := range buf {
			if o.Disorder > 0 && r.Float64() < o.Disorder {
				j := r.IntN(len(buf))
				buf[i], buf[j] = buf[j], buf[i]
			}
		}
		for i := range buf {
			e := &buf[i]
			p := partitionOf(e.Values[c.Key], o.Partitions)
			e.Partition, e.Offset = int32(p), offsets[p]
			offsets[p]++
			if err := fn(e); err != nil {
				return err
			}
		}
		buf = buf[:0]
		return nil
	}
	// Times are drawn in increasing order across the span so that a long
	// stream moves forward like a real one.
	for n := 0; n < o.Events; n++ {
		user := r.IntN(o.Users)
		base := o.Start + schemas.Timestamp(float64(o.Span)*(float64(n)+r.Float64())/float64(max(o.Events, 1)))
		t := base
		switch x := r.Float64(); {
		case x < o.TieRate && lastTime[user] != 0:
			t = lastTime[user]
		case x < o.TieRate+o.EdgeRate && len(o.Edges) > 0:
			t = o.Edges[r.IntN(len(o.Edges))] - schemas.Timestamp(r.IntN(2)) // on the edge or 1 ms before
		}
		lastTime[user] = t
		e := schemas.Event{Values: make([]any, len(c.Fields)), Time: t}
		for i := range c.Fields {
			e.Values[i] = value(r, c, &c.Fields[i], user, t, seq, o)
		}
		seq++
		buf = append(buf, e)
		if c.ID >= 0 && o.DupRate > 0 && r.Float64() < o.DupRate {
			dup := schemas.Event{Values: append([]any(nil), e.Values...), Time: t}
			buf = append(buf, dup)
		}
		if len(buf) >= window {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func value(r *rand.Rand, c *schemas.Catalog, f *schemas.Field, user int, t schemas.Timestamp, seq int, o Options) any {
	switch {
	case f.Index == c.Key:
		if f.Type == schemas.TypeString {
			return fmt.Sprintf("u%d", user+1)
		}
		return int64(user + 1)
	case f.Index == c.Time:
		return t
	case f.Index == c.ID:
		if f.Type == schemas.TypeString {
			return fmt.Sprintf("e%d", seq)
		}
		return int64(seq)
	}
	switch f.Type {
	case schemas.TypeInt64:
		return int64(r.IntN(o.Cardinality)) - int64(o.Cardinality/4)
	case schemas.TypeFloat64:
		return math.Round(r.Float64()*100000) / 100 // cents, up to 1000.00
	case schemas.TypeString:
		if len(f.Enum) > 0 {
			return f.Enum[r.IntN(len(f.Enum))]
		}
		return fmt.Sprintf("%s%d", f.Name[:1], r.IntN(o.Cardinality))
	case schemas.TypeBool:
		return r.IntN(2) == 0
	case schemas.TypeTimestamp:
		return o.Start + schemas.Timestamp(r.Int64N(o.Span))
	}
	return nil
}

// partitionOf spreads keys over partitions the way a keyed producer does
// (deterministically; not Kafka's murmur2, which only matters for real
// producers).
func partitionOf(key any, n int) int {
	var h uint64 = 1469598103934665603
	for _, b := range []byte(fmt.Sprint(key)) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return int(h % uint64(n))
}
