package landing

import (
	"bytes"
	"math"
	"strings"
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
	{"duplicate key bad first", `{"user_id":1,"item_id":"x","item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, false},
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
	{"enum value prefix", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pvx","ts":1511544070}`, false},
	{"enum value truncated", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"p","ts":1511544070}`, false},
	{"enum value escaped quote", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv\"","ts":1511544070}`, false},
	{"longer name first", `{"user_idx":5,"user_id":1,"item_id":2,"category_idx":"s","category_id":3,"behavior":"pv","ts":1511544070}`, true},
	{"shorter name first", `{"user_i":5,"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, true},
	{"name with escaped quote", `{"user_id\"":5,"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, false},
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

// typedCatalog has a field of every type, a string key and timestamps in
// unix milliseconds.
const typedCatalog = `
name: typed
events:
  key: user
  time: at
  fields:
    user: string
    at: {type: timestamp, format: unix_ms}
    n: int64
    x: float64
    ok: bool
    kind: {type: string, enum: [a, b]}
bucket: 1h
tags:
  events_1h: {agg: count, window: 1h}
`

// TestDecodeFieldTypes decodes records of every field type with key "u"
// through the fast path and the reference: the same row or the same DLQ
// reason ("" = accepted), and whether the fast path took it.
func TestDecodeFieldTypes(t *testing.T) {
	c, err := schemas.Parse([]byte(typedCatalog))
	require.NoError(t, err)
	lim := eventjson.Limits{MaxRecordBytes: 200, ClockSkew: time.Hour}
	d := newDecoder(c, lim)
	const ok = `{"user":"u","at":1577836800000,"n":-42,"x":2.5,"ok":true,"kind":"a"}`
	for _, tc := range []struct {
		name, value, reason string
		fast                bool
	}{
		{"all types", ok, "", true},
		{"false, zero, exponent float", `{"user":"u","at":0,"n":0,"x":-1.5e-3,"ok":false,"kind":"b"}`, "", true},
		{"int float", `{"user":"u","at":1,"n":9223372036854775807,"x":3,"ok":true,"kind":"a"}`, "", true},
		{"min int", `{"user":"u","at":-9223372036854775808,"n":-9223372036854775808,"x":0,"ok":true,"kind":"a"}`, "", true},
		{"time as numeric string", `{"user":"u","at":"1000","n":1,"x":0,"ok":true,"kind":"a"}`, "", true},
		{"rfc 3339 time for unix_ms", `{"user":"u","at":"2019-12-31T23:00:00Z","n":1,"x":0,"ok":true,"kind":"a"}`, "schema", false},
		{"time as float", `{"user":"u","at":1.5e3,"n":1,"x":0,"ok":true,"kind":"a"}`, "", true},
		{"time past 2^53", `{"user":"u","at":9007199254740993,"n":1,"x":0,"ok":true,"kind":"a"}`, "future", false},
		{"unicode string key", `{"user":"ü","at":1,"n":1,"x":0,"ok":true,"kind":"a"}`, "key_mismatch", false},
		{"null int", `{"user":"u","at":1,"n":null,"x":0,"ok":true,"kind":"a"}`, "schema", false},
		{"null float", `{"user":"u","at":1,"n":1,"x":null,"ok":true,"kind":"a"}`, "schema", false},
		{"null bool", `{"user":"u","at":1,"n":1,"x":0,"ok":null,"kind":"a"}`, "schema", false},
		{"null string", `{"user":null,"at":1,"n":1,"x":0,"ok":true,"kind":"a"}`, "schema", false},
		{"null time", `{"user":"u","at":null,"n":1,"x":0,"ok":true,"kind":"a"}`, "schema", false},
		{"string for bool", `{"user":"u","at":1,"n":1,"x":0,"ok":"true","kind":"a"}`, "schema", false},
		{"number for bool", `{"user":"u","at":1,"n":1,"x":0,"ok":1,"kind":"a"}`, "schema", false},
		{"string for float", `{"user":"u","at":1,"n":1,"x":"2.5","ok":true,"kind":"a"}`, "schema", false},
		{"number for string", `{"user":"u","at":1,"n":1,"x":0,"ok":true,"kind":1}`, "schema", false},
		{"int overflow", `{"user":"u","at":1,"n":9223372036854775808,"x":0,"ok":true,"kind":"a"}`, "schema", false},
		{"int fraction", `{"user":"u","at":1,"n":1.5,"x":0,"ok":true,"kind":"a"}`, "schema", false},
		{"float overflow", `{"user":"u","at":1,"n":1,"x":1e999,"ok":true,"kind":"a"}`, "schema", false},
		{"bad enum", `{"user":"u","at":1,"n":1,"x":0,"ok":true,"kind":"c"}`, "schema", false},
		{"bad time string", `{"user":"u","at":"yesterday","n":1,"x":0,"ok":true,"kind":"a"}`, "schema", false},
		{"missing bool", `{"user":"u","at":1,"n":1,"x":0,"kind":"a"}`, "schema", false},
		{"wrong key", `{"user":"v","at":1,"n":1,"x":0,"ok":true,"kind":"a"}`, "key_mismatch", false},
		{"future", `{"user":"u","at":1577844000001,"n":1,"x":0,"ok":true,"kind":"a"}`, "future", false},
		{"too large", ok[:len(ok)-1] + `,"pad":"` + strings.Repeat("p", 200) + `"}`, "too_large", false},
		{"truncated", ok[:len(ok)-1], "decode", false},
		{"bool prefix", `{"user":"u","at":1,"n":1,"x":0,"ok":truex,"kind":"a"}`, "decode", false},
		{"number then letter", `{"user":"u","at":1,"n":1x,"x":0,"ok":true,"kind":"a"}`, "decode", false},
		{"nested unknown", `{"user":"u","at":1,"n":1,"x":0,"ok":true,"kind":"a","o":{}}`, "", false},
		{"unknown scalars", `{"a":"s","b":-0.5e+7,"c":true,"d":false,"e":null,"user":"u","at":1,"n":1,"x":0,"ok":true,"kind":"a"}`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := d.decode([]byte("u"), []byte(tc.value), decodeNow)
			if tc.reason == "" {
				require.Nil(t, r)
			} else {
				require.NotNil(t, r)
				require.Equal(t, tc.reason, r.Reason)
			}
			require.Equal(t, tc.fast, d.fast, "fast path")
			decodeBoth(t, c, d, lim, []byte("u"), []byte(tc.value))
		})
	}
}

// TestDecodeNowChanges decodes one record read at several times: the
// latest event time accepted follows each record's read time.
func TestDecodeNowChanges(t *testing.T) {
	c := loadCatalog(t, "taobao")
	lim := eventjson.Limits{ClockSkew: time.Minute}
	d := newDecoder(c, lim)
	value := []byte(`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`)
	at := time.Unix(1511544070, 0)
	for _, tc := range []struct {
		now    time.Time
		reason string
	}{
		{at, ""}, {at.Add(-2 * time.Minute), "future"}, {at.Add(-2 * time.Minute), "future"},
		{at.Add(-time.Minute), ""}, {at.Add(-time.Minute - time.Millisecond), "future"}, {at, ""},
	} {
		_, r := d.decode([]byte("1"), value, tc.now)
		if tc.reason == "" {
			require.Nil(t, r, "read at %v", tc.now)
			require.True(t, d.fast)
		} else {
			require.NotNil(t, r, "read at %v", tc.now)
			require.Equal(t, tc.reason, r.Reason)
		}
	}
}

func TestIntAt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"7,", 7, true}, {"-12}", -12, true}, {"123 ", 123, true},
		{"9223372036854775807", math.MaxInt64, true}, {"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"99999999999999999999", 0, false}, {"01", 0, false}, {"-", 0, false}, {"", 0, false},
		{"1.0", 0, false}, {"1e3", 0, false}, {"1x", 0, false}, {"+1", 0, false},
	} {
		n, end, ok := intAt([]byte(tc.in), 0)
		require.Equal(t, tc.ok, ok, tc.in)
		if ok {
			require.Equal(t, tc.want, n, tc.in)
			require.Equal(t, len(strings.TrimRight(tc.in, ",} ")), end, tc.in)
		}
	}
}

// FuzzDecodeTyped is FuzzDecode over typedCatalog (every field type, a
// string key).
func FuzzDecodeTyped(f *testing.F) {
	f.Add([]byte("u"), []byte(`{"user":"u","at":1577836800000,"n":-42,"x":2.5,"ok":true,"kind":"a"}`))
	f.Add([]byte("u"), []byte(`{"kind":"b","ok":false,"x":-1e-3,"n":0,"at":"12","user":"u","z":[1]}`))
	c, err := schemas.Parse([]byte(typedCatalog))
	require.NoError(f, err)
	lim := eventjson.Limits{MaxRecordBytes: 1 << 10, ClockSkew: time.Hour}
	d := newDecoder(c, lim)
	f.Fuzz(func(t *testing.T, key, value []byte) {
		decodeBoth(t, c, d, lim, key, value)
	})
}
