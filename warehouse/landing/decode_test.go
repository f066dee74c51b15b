package landing

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// decodeBoth decodes with the fast path (when it applies) and with
// encoding/json, and requires the same values or the same reason.
func decodeBoth(t testing.TB, d *decoder, key, value []byte) {
	var fast, slow schemas.Event
	errFast := d.decode(&fast, key, value)
	slow.Values = make([]any, len(d.cat.Fields))
	errSlow := d.decodeSlow(&slow, value)
	if errSlow == nil {
		slow.Time = slow.Values[d.cat.Time].(schemas.Timestamp)
		if !keyMatches(key, slow.Values[d.cat.Key]) {
			errSlow = reject("key_mismatch", "key")
		}
	}
	var rf, rs *rejectError
	if errFast != nil || errSlow != nil {
		require.True(t, errors.As(errFast, &rf), "fast: %v, slow: %v, input %q", errFast, errSlow, value)
		require.True(t, errors.As(errSlow, &rs), "fast: %v, slow: %v, input %q", errFast, errSlow, value)
		require.Equal(t, rs.reason, rf.reason, "input %q: fast %v, slow %v", value, errFast, errSlow)
		return
	}
	require.Equal(t, slow.Values, fast.Values, "input %q", value)
	require.Equal(t, slow.Time, fast.Time)
}

func TestDecodeFastMatchesEncodingJSON(t *testing.T) {
	c := loadCatalog(t, "taobao")
	d := newDecoder(c)
	for _, v := range []string{
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`,
		` { "user_id" : 1 , "item_id":2,"category_id":3,"behavior":"buy","ts":"2017-11-25T00:00:00Z" } `,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,"extra":{"a":[1,2]}}`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"p\u0076","ts":1511568000}`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,"user_id":1}`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000} x`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000`,
		`{"user_id":1.0,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`,
		`{"user_id":1e0,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`,
		`{"user_id":01,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`,
		`{"user_id":1,"item_id":null,"category_id":3,"behavior":"pv","ts":1511568000}`,
		`{"user_id":1,"item_id":true,"category_id":3,"behavior":"pv","ts":1511568000}`,
		`{"user_id":"1","item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"zz","ts":1511568000}`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":7,"ts":1511568000}`,
		`{"user_id":1,"item_id":2,"category_id":3,"ts":1511568000}`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":-}`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000.5}`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,}`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,"名":"値"}`,
		`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000,"x":"` + "\xff" + `"}`,
		`[]`, ``, `{}`, `null`, `"x"`,
	} {
		t.Run(v, func(t *testing.T) { decodeBoth(t, d, []byte("1"), []byte(v)) })
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("1"), []byte(`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`))
	f.Add([]byte("1"), []byte(`{"user_id":1,"item_id":2e3,"category_id":-0.5,"behavior":"cart","ts":"2017-11-25T00:00:00Z","z":[{}]}`))
	c := loadCatalog(f, "taobao")
	f.Fuzz(func(t *testing.T, key, value []byte) {
		decodeBoth(t, newDecoder(c), key, value)
	})
}
