package gen

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/portrait-dev/portrait/schemas"
)

func TestStreamIsDeterministicAndShaped(t *testing.T) {
	c := schemas.MustLoad("../../schemas/catalogs/ecommerce.yaml")
	o := Defaults(7)
	o.Edges = []schemas.Timestamp{o.Start + 3*86400000}
	a, b := Events(c, o), Events(c, o)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same options gave different events")
	}
	if len(a) <= o.Events {
		t.Fatalf("want duplicates beyond %d events, got %d", o.Events, len(a))
	}
	ids := map[any]int{}
	onEdge, ties := 0, 0
	seen := map[[2]int64]bool{}
	offsets := map[int32]int64{}
	for _, e := range a {
		ids[e.Values[c.ID]]++
		if e.Time == o.Edges[0] {
			onEdge++
		}
		k := [2]int64{e.Values[c.Key].(int64), int64(e.Time)}
		if seen[k] {
			ties++
		}
		seen[k] = true
		if e.Offset != offsets[e.Partition] {
			t.Fatalf("partition %d: offset %d, want %d", e.Partition, e.Offset, offsets[e.Partition])
		}
		offsets[e.Partition]++
		if e.Time < o.Start-1 || e.Time >= o.Start+schemas.Timestamp(o.Span) {
			t.Fatalf("time %v outside the span", e.Time)
		}
	}
	dups := 0
	for _, n := range ids {
		if n > 1 {
			dups++
		}
	}
	if dups == 0 || onEdge == 0 || ties == 0 || len(offsets) != o.Partitions {
		t.Fatalf("want duplicates, edge events, ties and %d partitions; got %d, %d, %d, %d", o.Partitions, dups, onEdge, ties, len(offsets))
	}
	if Events(c, Defaults(8))[0].Values[c.ID] == a[0].Values[c.ID] && reflect.DeepEqual(Events(c, Defaults(8)), a) {
		t.Fatal("a different seed gave the same events")
	}
}

func TestWriterFormats(t *testing.T) {
	c := schemas.MustLoad("../../schemas/catalogs/taobao.yaml")
	e := schemas.Event{Values: []any{int64(1), int64(2), int64(3), "pv", schemas.Timestamp(1511658000000)}}
	for _, tc := range []struct{ format, want string }{
		{"csv", "1,2,3,pv,1511658000000\n"},
		{"jsonl", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511658000000}` + "\n"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, c, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(&e); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Fatalf("got %q, want %q", buf.String(), tc.want)
			}
		})
	}
}
