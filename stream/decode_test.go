package stream

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// decodeCases are records for the fast and slow decoding paths (taobao
// catalog); err is the reject message, "" when the record decodes.
var decodeCases = []struct {
	name, value, err string
}{
	{"plain", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, ""},
	{"spaces and order", " {\n\t\"ts\" : 1511544070 , \"behavior\":\"buy\",\"category_id\":3,\"item_id\":2,\"user_id\":1 } \n", ""},
	{"unknown fields", `{"x":{"a":[1,"}",{"b":null}]},"user_id":1,"y":"\"","item_id":2,"category_id":3,"behavior":"pv","ts":1511544070,"z":[]}`, ""},
	{"escaped key and value", `{"user_\u0069d":1,"item_id":2,"category_id":3,"behavior":"\u0070v","ts":1511544070}`, ""},
	{"duplicate key last wins", `{"user_id":1,"item_id":9,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, ""},
	{"duplicate key bad first", `{"user_id":1,"item_id":"x","item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, ""},
	{"rfc3339 time", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":"2017-11-24T17:21:10Z"}`, ""},
	{"big int", `{"user_id":1,"item_id":9223372036854775807,"category_id":-3,"behavior":"pv","ts":1511544070}`, ""},
	{"missing field", `{"user_id":1,"item_id":2,"behavior":"pv","ts":1511544070}`, "schema: field category_id: missing"},
	{"null field", `{"user_id":1,"item_id":2,"category_id":null,"behavior":"pv","ts":1511544070}`, "schema: field category_id: null value"},
	{"float for int", `{"user_id":1,"item_id":2.5,"category_id":3,"behavior":"pv","ts":1511544070}`, `schema: field item_id: "2.5" is not an int64`},
	{"bad enum", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"click","ts":1511544070}`, `schema: field behavior: "click" is not one of pv, buy, cart, fav`},
	{"object value", `{"user_id":1,"item_id":{},"category_id":3,"behavior":"pv","ts":1511544070}`, "schema: field item_id: unsupported JSON value map[string]interface {}"},
	{"not json", `{"user_id":1,`, "decode: not a JSON object: unexpected EOF"},
	{"array", `[1]`, "decode: not a JSON object: json: cannot unmarshal array into Go value of type map[string]interface {}"},
	{"trailing data", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070} {}`, "decode: data after the JSON object"},
}

func TestDecode(t *testing.T) {
	c := loadCatalog(t, "taobao")
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder(c)
			var e schemas.Event
			err := d.decode(&e, []byte("1"), []byte(tc.value))
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			want := schemas.Event{Values: make([]any, len(c.Fields))}
			require.NoError(t, d.decodeSlow(&want, []byte(tc.value)))
			require.Equal(t, want.Values, e.Values)
		})
	}
}

// FuzzDecode checks that the fast path accepts only what the
// encoding/json path accepts, with the same values.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.value))
	}
	c := loadCatalog(f, "taobao")
	d := newDecoder(c)
	f.Fuzz(func(t *testing.T, value []byte) {
		fast := schemas.Event{Values: make([]any, len(c.Fields))}
		slow := schemas.Event{Values: make([]any, len(c.Fields))}
		ok := d.decodeFast(&fast, value)
		err := d.decodeSlow(&slow, value)
		if ok {
			require.NoError(t, err, "fast path accepted %q", value)
			require.Equal(t, slow.Values, fast.Values)
		}
	})
}

// BenchmarkDecode measures decoding one taobao record.
func BenchmarkDecode(b *testing.B) {
	c := loadCatalog(b, "taobao")
	d := newDecoder(c)
	value := []byte(`{"user_id":1000123,"item_id":2333346,"category_id":2520771,"behavior":"pv","ts":1511544070}`)
	var e schemas.Event
	b.ReportAllocs()
	for b.Loop() {
		if err := d.decode(&e, []byte("1000123"), value); err != nil {
			b.Fatal(err)
		}
	}
}
