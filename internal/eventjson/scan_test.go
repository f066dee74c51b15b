package eventjson

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// TestScanner checks the tokens the scanner gives the taobao fields
// (user_id, item_id, category_id, behavior, ts), written as kind:raw.
func TestScanner(t *testing.T) {
	s := newScanner(loadCatalog(t, "taobao"))
	for _, tc := range []struct {
		name, value string
		ok          bool
		want        []string
	}{
		{"catalog order", `{"user_id":1,"item_id":-2.5e3,"category_id":true,"behavior":"pv","ts":null}`, true,
			[]string{"number:1", "number:-2.5e3", "true:", "string:pv", "null:"}},
		{"other order and spaces", " {\"ts\" : \"x y\" ,\n\"behavior\":false, \"user_id\":0} ", true,
			[]string{"number:0", "missing:", "missing:", "false:", "string:x y"}},
		{"unknown fields skipped", `{"a":1,"user_id":7,"名":"値","z":null}`, true,
			[]string{"number:7", "missing:", "missing:", "missing:", "missing:"}},
		{"last duplicate wins", `{"user_id":1,"item_id":"a","item_id":2,"user_id":3}`, true,
			[]string{"number:3", "number:2", "missing:", "missing:", "missing:"}},
		{"empty object", `{}`, true, []string{"missing:", "missing:", "missing:", "missing:", "missing:"}},
		{"escape", `{"user_id":"\u0031"}`, false, nil},
		{"key extending a name", `{"user_idx":1,"item_i":2,"user_id":3}`, true,
			[]string{"number:3", "missing:", "missing:", "missing:", "missing:"}},
		{"escaped name", `{"user_\u0069d":1}`, false, nil},
		{"name at the end", `{"user_id"`, false, nil},
		{"escaped name", `{"user_\u0069d":1}`, false, nil},
		{"nested", `{"user_id":1,"x":[]}`, false, nil},
		{"invalid utf-8", "{\"user_id\":\"\xff\"}", false, nil},
		{"control character", "{\"user_id\":\"\t\"}", false, nil},
		{"number forms", `{"user_id":-0.25E+10,"item_id":0,"category_id":12e-3}`, true,
			[]string{"number:-0.25E+10", "number:0", "number:12e-3", "missing:", "missing:"}},
		{"leading zero", `{"user_id":01}`, false, nil},
		{"no fraction digits", `{"user_id":1.}`, false, nil},
		{"no exponent digits", `{"user_id":1e+}`, false, nil},
		{"lone minus", `{"user_id":-}`, false, nil},
		{"number glued to a word", `{"user_id":1x}`, false, nil},
		{"trailing comma", `{"user_id":1,}`, false, nil},
		{"trailing data", `{"user_id":1} {}`, false, nil},
		{"not an object", `[1]`, false, nil},
		{"truncated", `{"user_id":1`, false, nil},
		{"empty", ``, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := []byte(tc.value)
			toks, ok := s.Scan(v)
			require.Equal(t, tc.ok, ok)
			if !ok {
				require.Nil(t, toks)
				return
			}
			got := make([]string, len(toks))
			for i, tk := range toks {
				got[i] = kindNames[tk.Kind] + ":" + string(tk.Raw(v))
			}
			require.Equal(t, tc.want, got)
		})
	}
}

var kindNames = map[kind]string{kindMissing: "missing", kindString: "string", kindNumber: "number",
	kindTrue: "true", kindFalse: "false", kindNull: "null"}

// TestDecodeEnumNotAllocated checks that an enum value costs no
// allocation on the fast path: of the taobao fields only the three ints
// and the time are boxed.
func TestDecodeEnumNotAllocated(t *testing.T) {
	c := loadCatalog(t, "taobao")
	d := NewDecoder(c, Limits{ClockSkew: time.Minute})
	value := []byte(`{"user_id":1000123,"item_id":2333346,"category_id":2520771,"behavior":"cart","ts":1511544070}`)
	key, now := []byte("1000123"), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var e schemas.Event
	allocs := testing.AllocsPerRun(100, func() {
		if r := d.Decode(&e, key, value, now); r != nil {
			t.Fatal(r)
		}
	})
	require.Equal(t, "cart", e.Values[3])
	require.LessOrEqual(t, allocs, 4.0)
}

func TestPlain(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"user_id", true}, {"", true}, {"名", true}, {`a"b`, false}, {`a\b`, false},
		{"a\nb", false}, {"\xff", false},
	} {
		require.Equal(t, tc.want, Plain(tc.s), "%q", tc.s)
	}
}
