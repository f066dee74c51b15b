package eventjson

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

func loadCatalog(t testing.TB, name string) *schemas.Catalog {
	t.Helper()
	return schemas.MustLoad("../../schemas/catalogs/" + name + ".yaml")
}

// decodeCases are taobao records with key "1"; err is the rejection
// message, "" when the record decodes.
var decodeCases = []struct {
	name, value, err string
}{
	{"plain", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, ""},
	{"spaces and order", " {\n\t\"ts\" : 1511544070 , \"behavior\":\"buy\",\"category_id\":3,\"item_id\":2,\"user_id\":1 } \n", ""},
	{"unknown fields", `{"x":{"a":[1,"}",{"b":null}]},"user_id":1,"y":"\"","item_id":2,"category_id":3,"behavior":"pv","ts":1511544070,"z":[]}`, ""},
	{"unknown nested field", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,"extra":{"a":[1,2]}}`, ""},
	{"unknown unicode field", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,"名":"値"}`, ""},
	{"escaped key and value", `{"user_\u0069d":1,"item_id":2,"category_id":3,"behavior":"\u0070v","ts":1511544070}`, ""},
	{"duplicate key last wins", `{"user_id":1,"item_id":9,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, ""},
	{"duplicate key bad first", `{"user_id":1,"item_id":"x","item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, ""},
	{"rfc3339 time", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":"2017-11-24T17:21:10Z"}`, ""},
	{"big int", `{"user_id":1,"item_id":9223372036854775807,"category_id":-3,"behavior":"pv","ts":1511544070}`, ""},
	{"exponent int", `{"user_id":1e0,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`, ""},
	{"missing field", `{"user_id":1,"item_id":2,"behavior":"pv","ts":1511544070}`, "schema: field category_id: missing"},
	{"null field", `{"user_id":1,"item_id":2,"category_id":null,"behavior":"pv","ts":1511544070}`, "schema: field category_id: null value"},
	{"float for int", `{"user_id":1,"item_id":2.5,"category_id":3,"behavior":"pv","ts":1511544070}`, `schema: field item_id: "2.5" is not an int64`},
	{"bad enum", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"click","ts":1511544070}`, `schema: field behavior: "click" is not one of pv, buy, cart, fav`},
	{"object value", `{"user_id":1,"item_id":{},"category_id":3,"behavior":"pv","ts":1511544070}`, "schema: field item_id: unsupported JSON value map[string]interface {}"},
	{"wrong key", `{"user_id":2,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070}`, `key_mismatch: message key "1" differs from field user_id = 2`},
	{"string key", `{"user_id":"1","item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`, ""},
	{"not json", `{"user_id":1,`, "decode: not a JSON object: unexpected EOF"},
	{"array", `[1]`, "decode: not a JSON object: json: cannot unmarshal array into Go value of type map[string]interface {}"},
	{"trailing data", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511544070} {}`, "decode: data after the JSON object"},
	{"leading zero", `{"user_id":01,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`, ""},
	{"trailing comma", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,}`, ""},
	{"invalid utf-8", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,"x":"` + "\xff" + `"}`, ""},
	{"bad number", `{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":-}`, ""},
	{"empty", ``, ""},
	{"empty object", `{}`, "schema: field user_id: missing"},
	{"null", `null`, ""},
}

func TestDecode(t *testing.T) {
	c := loadCatalog(t, "taobao")
	d := NewDecoder(c, Limits{})
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			decodeBoth(t, d, []byte("1"), []byte(tc.value))
			var e schemas.Event
			r := d.decode(&e, []byte("1"), []byte(tc.value))
			if tc.err != "" {
				require.EqualError(t, r, tc.err)
			}
		})
	}
}

// decodeBoth decodes with the fast path (where it applies) and with
// encoding/json, and requires the same values or the same reason.
func decodeBoth(t testing.TB, d *Decoder, key, value []byte) {
	var fast, slow schemas.Event
	rFast := d.decode(&fast, key, value)
	slow.Values = make([]any, len(d.cat.Fields))
	rSlow := d.decodeSlow(&slow, value)
	if rSlow == nil {
		slow.Time = slow.Values[d.cat.Time].(schemas.Timestamp)
		if !keyMatches(key, slow.Values[d.cat.Key]) {
			rSlow = reject("key_mismatch", "key")
		}
	}
	if rFast != nil || rSlow != nil {
		require.NotNil(t, rFast, "fast accepted, slow: %v, input %q", rSlow, value)
		require.NotNil(t, rSlow, "slow accepted, fast: %v, input %q", rFast, value)
		require.Equal(t, rSlow.Reason, rFast.Reason, "input %q: fast %v, slow %v", value, rFast, rSlow)
		return
	}
	require.Equal(t, slow.Values, fast.Values, "input %q", value)
	require.Equal(t, slow.Time, fast.Time)
}

func TestDecodeLimits(t *testing.T) {
	c := loadCatalog(t, "taobao")
	now := time.Date(2017, 11, 25, 0, 0, 0, 0, time.UTC)
	d := NewDecoder(c, Limits{MaxRecordBytes: 100, ClockSkew: time.Minute})
	rec := func(ts int64) []byte {
		return []byte(`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":` + time.Unix(ts, 0).UTC().Format(`"2006-01-02T15:04:05Z"`) + `}`)
	}
	pad := func(v []byte, n int) []byte { return append(v, bytes.Repeat([]byte(" "), n-len(v))...) }
	for _, tc := range []struct {
		name       string
		value      []byte
		err        string
		wantReason string
	}{
		{"at the horizon", rec(now.Unix() + 60), "", ""},
		{"past the horizon", rec(now.Unix() + 61), "future: event time 2017-11-25T00:01:01Z is more than 1m0s ahead of the clock (2017-11-25T00:00:00Z)", "future"},
		{"at the size limit", pad(rec(now.Unix()), 99), "", ""},
		{"too large", pad(rec(now.Unix()), 100), "too_large: 101 bytes exceed max_record_bytes 100", "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e schemas.Event
			r := d.Decode(&e, []byte("1"), tc.value, now)
			if tc.err == "" {
				require.Nil(t, r)
				require.Equal(t, int64(1), e.Values[c.Key])
				return
			}
			require.EqualError(t, r, tc.err)
			require.Equal(t, tc.wantReason, r.Reason)
			dr := r.Record("events", 3, 7, []byte("1"), tc.value)
			require.Equal(t, tc.wantReason, dr.Reason)
			require.Equal(t, r.Err.Error(), dr.Detail)
			require.Equal(t, int32(3), dr.Partition)
			require.Equal(t, int64(7), dr.Offset)
		})
	}
}

// FuzzDecode checks that the fast path accepts only what the
// encoding/json path accepts, with the same values, and rejects with the
// same reasons.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte("1"), []byte(tc.value))
	}
	f.Add([]byte("1"), []byte(`{"user_id":1,"item_id":2e3,"category_id":-0.5,"behavior":"cart","ts":"2017-11-25T00:00:00Z","z":[{}]}`))
	c := loadCatalog(f, "taobao")
	d := NewDecoder(c, Limits{})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		decodeBoth(t, d, key, value)
	})
}

// BenchmarkDecode measures decoding one taobao record.
func BenchmarkDecode(b *testing.B) {
	c := loadCatalog(b, "taobao")
	d := NewDecoder(c, Limits{MaxRecordBytes: 1 << 16, ClockSkew: time.Minute})
	value := []byte(`{"user_id":1000123,"item_id":2333346,"category_id":2520771,"behavior":"pv","ts":1511544070}`)
	now := time.Now()
	var e schemas.Event
	b.ReportAllocs()
	for b.Loop() {
		if r := d.Decode(&e, []byte("1000123"), value, now); r != nil {
			b.Fatal(r)
		}
	}
}

// plainNumberFields are an int64 field and a timestamp field of every
// format.
func plainNumberFields() []schemas.Field {
	fs := []schemas.Field{{Name: "n", Type: schemas.TypeInt64}}
	for _, f := range []schemas.TimeFormat{schemas.TimeAuto, schemas.TimeUnixSeconds, schemas.TimeUnixMillis, schemas.TimeRFC3339} {
		fs = append(fs, schemas.Field{Name: "t", Type: schemas.TypeTimestamp, Format: f})
	}
	return fs
}

// checkPlainNumber requires that plainNumber, where it takes a number,
// gives what ParseValue gives.
func checkPlainNumber(t *testing.T, f *schemas.Field, text string) (taken bool) {
	t.Helper()
	got, ok := plainNumber(f, []byte(text))
	if !ok {
		return false
	}
	want, err := schemas.ParseValue(f, text)
	require.NoError(t, err, "plainNumber took %q for %s/%v", text, f.Type, f.Format)
	require.Equal(t, want, got, "%q for %s/%v", text, f.Type, f.Format)
	return true
}

// TestPlainNumber converts number tokens of int64 and timestamp fields
// both ways: plainNumber takes plain integers of up to 15 digits, for
// every format but rfc3339, and agrees with ParseValue; the rest is left
// to ParseValue.
func TestPlainNumber(t *testing.T) {
	fields := plainNumberFields()
	for _, tc := range []struct {
		text  string
		taken bool // by plainNumber for int64 and the numeric formats
	}{
		{"0", true}, {"-0", true}, {"7", true}, {"-7", true},
		{"1511544070", true}, {"1511544070123", true}, {"-1511544070123", true},
		{"999999999999999", true}, {"-999999999999999", true},
		{"1000000000000000", false}, {"9007199254740993", false},
		{"9223372036854775807", false}, {"-9223372036854775808", false}, {"9223372036854775808", false},
		{"1.5", false}, {"1e3", false}, {"-1.5E-3", false}, {"-", false}, {"", false},
	} {
		t.Run(tc.text, func(t *testing.T) {
			for i := range fields {
				f := &fields[i]
				want := tc.taken && f.Format != schemas.TimeRFC3339
				require.Equal(t, want, checkPlainNumber(t, f, tc.text), "taken, %s/%v", f.Type, f.Format)
			}
		})
	}
}

func FuzzPlainNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "1511544070", "-999999999999999", "1.5", "1e3"} {
		f.Add(s)
	}
	fields := plainNumberFields()
	f.Fuzz(func(t *testing.T, text string) {
		if end, ok := ScanNumber([]byte(text), 0); !ok || end != len(text) {
			return // tokens are JSON numbers
		}
		for i := range fields {
			checkPlainNumber(t, &fields[i], text)
		}
	})
}
