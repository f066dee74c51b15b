package reference

import (
	"testing"

	"github.com/portrait-dev/portrait/schemas"
)

const hour = 3600_000

func ev(user, item, cat int64, behavior string, ts schemas.Timestamp, part int32, off int64) schemas.Event {
	return schemas.Event{Values: []any{user, item, cat, behavior, ts}, Time: ts, Partition: part, Offset: off}
}

// A hand-computed case on the taobao catalog: window edges, ties on time,
// mode ties and the profile-set rule.
func TestEvaluateTaobaoByHand(t *testing.T) {
	c := schemas.MustLoad("../catalogs/taobao.yaml")
	T := schemas.Timestamp(1511654400000) // 2017-11-26T00:00:00Z
	events := []schemas.Event{
		ev(1, 10, 100, "pv", T-24*hour, 0, 1),     // exactly on T-24h: in pv_24h
		ev(1, 11, 100, "pv", T-24*hour-1, 0, 2),   // 1 ms earlier: only 7d windows
		ev(1, 12, 200, "buy", T-2*hour, 1, 5),     // tie on time with the next buy...
		ev(1, 13, 300, "buy", T-2*hour, 0, 9),     // ...partition 0 orders first
		ev(1, 12, 200, "pv", T-hour, 0, 3),        // category 200 and 100 tie twice: 200 > 100
		ev(1, 14, 999, "pv", T, 0, 4),             // at T: excluded everywhere
		ev(2, 20, 500, "cart", T-8*24*hour, 0, 6), // only lifetime
		ev(3, 30, 600, "pv", T+hour, 0, 7),        // only after T: no profile
	}
	got := Evaluate(c, events, T)
	if len(got) != 2 {
		t.Fatalf("want profiles for users 1 and 2, got %d: %v", len(got), got)
	}
	want := map[string][2]any{
		"pv_24h":          {int64(2), int64(0)},
		"buys_7d":         {int64(2), int64(0)},
		"items_seen_7d":   {int64(4), int64(0)},
		"top_category_7d": {int64(100), nil}, // 100: 2 (pv 10, pv 11), 200: 2 (buy, pv), 300: 1
		"last_buy_cat":    {int64(200), nil}, // (T-2h, p1, o5) is after (T-2h, p0, o9)
		"first_seen":      {T - 24*hour - 1, T - 8*24*hour},
		"buyer_7d":        {true, false},
		"window_shopper":  {false, false},
		"carts_24h":       {int64(0), int64(0)},
		"last_seen":       {T - hour, T - 8*24*hour},
	}
	for i, tag := range c.Tags {
		w, ok := want[tag.Name]
		if !ok {
			t.Fatalf("no expectation for tag %s", tag.Name)
		}
		for u := 0; u < 2; u++ {
			if !ValuesEqual(got[u].Values[i], w[u]) {
				t.Errorf("user %v %s = %v (%T), want %v (%T)", got[u].Key, tag.Name, got[u].Values[i], got[u].Values[i], w[u], w[u])
			}
		}
	}
}

func TestDedupKeepsFirstByTimePartitionOffset(t *testing.T) {
	c := schemas.MustLoad("../catalogs/ecommerce.yaml")
	mk := func(id string, ts schemas.Timestamp, part int32, off int64, ch string) schemas.Event {
		vals := make([]any, len(c.Fields))
		for i, f := range c.Fields {
			switch f.Type {
			case schemas.TypeInt64:
				vals[i] = int64(1)
			case schemas.TypeFloat64:
				vals[i] = 1.0
			case schemas.TypeString:
				vals[i] = "x"
			case schemas.TypeBool:
				vals[i] = false
			case schemas.TypeTimestamp:
				vals[i] = ts
			}
		}
		f, _ := c.Field("event_id")
		vals[f.Index] = id
		f, _ = c.Field("channel")
		vals[f.Index] = ch
		f, _ = c.Field("event_type")
		vals[f.Index] = "view"
		return schemas.Event{Values: vals, Time: ts, Partition: part, Offset: off}
	}
	evs := []schemas.Event{mk("a", 5, 1, 1, "app"), mk("a", 5, 0, 7, "web"), mk("b", 6, 0, 8, "mini")}
	got := Dedup(c, evs)
	if len(got) != 2 || got[0].Offset != 7 || got[1].Offset != 8 {
		t.Fatalf("dedup kept %+v", got)
	}
	p := Evaluate(c, evs, 3600_000)
	first, _ := c.Tag("first_channel")
	events, _ := c.Tag("events_24h")
	if p[0].Values[first.Index] != "web" || p[0].Values[events.Index] != int64(2) {
		t.Fatalf("first_channel=%v events_24h=%v", p[0].Values[first.Index], p[0].Values[events.Index])
	}
}
