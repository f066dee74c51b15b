package landing

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/eventjson"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// decodeCases are taobao records with key "1"; fast tells whether the
// typed fast path must take them (the others go through eventjson).
var decodeCases = []struct {
	name, value string
	fast        bool
}{
	{"plain", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, true},
	{"spaces and order", " {\n\t\"ts\" : 1511544070 , \"behavior\":\"buy\",\"category_id\":3,\"item_id\":2,\"user_id\":1 } \n", true},
	{"unknown fields", `{"x":{"a":[1,"}",{"b":null}]},"user_id":1,"y":"\"","item_id":2,"category_id":3,"behavior":"pv","ts":1511544070,"z":[]}`, false},
	{"unknown flat fields", `{"x":1,"user_id":1,"y":"s","item_id":2,"category_id":3,"behavior":"pv","ts":1511544070,"z":null}`, true},
	{"unknown unicode field", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,"名":"値"}`, true},
	{"escaped key and value", `{"user_\u0069d":1,"item_id":2,"category_id":3,"behavior":"\u0070v","ts":1511544070}`, false},
	{"duplicate key last wins", `{"user_id":1,"item_id":9,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, true},
	{"duplicate key bad first", `{"user_id":1,"item_id":"x","item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, true},
	{"duplicate key bad last", `{"user_id":1,"item_id":2,"item_id":"x","category_id":3,"behavior":"pv","ts":1511544070}`, false},
	{"rfc3339 time", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":"2017-11-24T17:21:10Z"}`, true},
	{"millis time", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070123}`, true},
	{"big int", `{"user_id":1,"item_id":9223372036854775807,"category_id":-3,"behavior":"pv","ts":1511544070}`, true},
	{"too big int", `{"user_id":1,"item_id":9223372036854775808,"category_id":-3,"behavior":"pv","ts":1511544070}`, false},
	{"exponent int", `{"user_id":1e0,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`, false},
	{"missing field", `{"user_id":1,"item_id":2,"behavior":"pv","ts":1511544070}`, false},
	{"null field", `{"user_id":1,"item_id":2,"category_id":null,"behavior":"pv","ts":1511544070}`, false},
	{"float for int", `{"user_id":1,"item_id":2.5,"category_id":3,"behavior":"pv","ts":1511544070}`, false},
	{"bad enum", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"click","ts":1511544070}`, false},
	{"bool for int", `{"user_id":1,"item_id":true,"category_id":3,"behavior":"pv","ts":1511544070}`, false},
	{"wrong key", `{"user_id":2,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, false},
	{"string key", `{"user_id":"1","item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`, false},
	{"future", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":4102444800}`, false},
	{"not json", `{"user_id":1,`, false},
	{"array", `[1]`, false},
	{"trailing data", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070} {}`, false},
	{"leading zero", `{"user_id":01,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`, false},
	{"trailing comma", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,}`, false},
	{"invalid utf-8", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,"x":"` + "\xff" + `"}`, false},
	{"empty", ``, false},
	{"empty object", `{}`, false},
	{"null", `null`, false},
}

var decodeNow = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func TestDecodeMatchesEventJSON(t *testing.T) {
	c := loadCatalog(t, "taobao")
	lim := eventjson.Limits{MaxRecordBytes: 1 << 10, ClockSkew: time.Hour}
	d := newDecoder(c, lim)
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			decodeBoth(t, c, d, lim, []byte("1"), []byte(tc.value))
			require.Equal(t, tc.fast, d.fast, "fast path")
		})
	}
}

func TestDecodeGeneratedRecordsFast(t *testing.T) {
	for _, name := range []string{"taobao", "ecommerce"} {
		t.Run(name, func(t *testing.T) {
			c := loadCatalog(t, name)
			o := gen.Defaults(3)
			o.Users, o.Events = 50, 500
			recs := kafkatest.EncodeEvents(t, c, gen.Events(c, o), -1)
			lim := eventjson.Limits{ClockSkew: 100 * 365 * 24 * time.Hour}
			d := newDecoder(c, lim)
			for _, r := range recs {
				decodeBoth(t, c, d, lim, r.Key, r.Value)
				require.True(t, d.fast, "generated record %s took the slow path", r.Value)
			}
		})
	}
}

// decodeBoth decodes a record with the landing decoder and with
// eventjson and requires the same rejection or the same row.
func decodeBoth(t testing.TB, c *schemas.Catalog, d *decoder, lim eventjson.Limits, key, value []byte) {
	t.Helper()
	var want schemas.Event
	wr := eventjson.NewDecoder(c, lim).Decode(&want, key, value, decodeNow)
	ts, r := d.decode(key, value, decodeNow)
	if wr != nil {
		require.NotNil(t, r, "the reference rejects: %v", wr)
		require.Equal(t, wr.Reason, r.Reason)
		require.Equal(t, wr.Error(), r.Error())
		return
	}
	require.Nil(t, r)
	require.Equal(t, want.Time, ts)
	got, ref := warehouse.NewEventColumns(c), warehouse.NewEventColumns(c)
	require.NoError(t, d.appendTo(got, 3, 9))
	want.Partition, want.Offset = 3, 9
	require.NoError(t, ref.Append(&want))
	var gb, wb bytes.Buffer
	require.NoError(t, warehouse.WriteEventColumns(&gb, got, 1))
	require.NoError(t, warehouse.WriteEventColumns(&wb, ref, 1))
	require.True(t, bytes.Equal(wb.Bytes(), gb.Bytes()), "row differs from the reference's %v", want.Values)
}

func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte("1"), []byte(tc.value))
	}
	c := loadCatalog(f, "taobao")
	lim := eventjson.Limits{MaxRecordBytes: 1 << 10, ClockSkew: time.Hour}
	d := newDecoder(c, lim)
	f.Fuzz(func(t *testing.T, key, value []byte) {
		decodeBoth(t, c, d, lim, key, value)
	})
}

// BenchmarkDecode measures the fast path on one taobao record, decode and
// append (no allocation is expected once the buffers have grown).
func BenchmarkDecode(b *testing.B) {
	c := loadCatalog(b, "taobao")
	d := newDecoder(c, eventjson.Limits{MaxRecordBytes: 1 << 16, ClockSkew: time.Minute})
	key := []byte("1000123")
	value := []byte(`{"user_id":1000123,"item_id":2333346,"category_id":2520771,"behavior":"pv","ts":1511544070}`)
	cols := warehouse.NewEventColumns(c)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, r := d.decode(key, value, decodeNow); r != nil {
			b.Fatal(r)
		}
		if !d.fast {
			b.Fatal("slow path")
		}
		if i%4096 == 0 {
			cols.Reset()
		}
		if err := d.appendTo(cols, 0, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}
