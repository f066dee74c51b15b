package schemas

import (
	"strings"
	"testing"
)

func TestExprEval(t *testing.T) {
	// Names: i int64, f float64 (nullable), s string, b bool (nullable), ts timestamp.
	syms := map[string]Symbol{
		"i": {0, TypeInt64, false}, "f": {1, TypeFloat64, true}, "s": {2, TypeString, false},
		"b": {3, TypeBool, true}, "ts": {4, TypeTimestamp, false},
	}
	resolve := func(n string) (Symbol, bool) { s, ok := syms[n]; return s, ok }
	row := []any{int64(7), 2.5, "buy", true, Timestamp(1000)}
	nulls := []any{int64(-3), nil, "pv", nil, Timestamp(0)}
	for _, tc := range []struct {
		src        string
		row, nulls bool
	}{
		{`i == 7`, true, false},
		{`i > 5 && s == "buy"`, true, false},
		{`s in ["pv", "cart"]`, false, true},
		{`i in [7, 8]`, true, false},
		{`f > 1`, true, false},    // null compares false
		{`!(f > 1)`, false, true}, // ... so its negation is true
		{`f == nil`, false, true},
		{`f != nil && f * 2 == 5`, true, false},
		{`i / 2 == 3.5`, true, false}, // / is float division
		{`i * 2 - 1 == 13`, true, false},
		{`-i == -7 || -i == 3`, true, true},
		{`b`, true, false}, // null bool counts as false
		{`b || i < 0`, true, true},
		{`s startsWith "bu"`, true, false},
		{`s endsWith "v"`, false, true},
		{`s contains "u"`, true, false},
		{`ts >= 1000`, true, false}, // timestamps compare as ms
		{`f + 1 > 0 || true`, true, true},
		{`i + f > 9`, true, false},
		{`not (i == 7)`, false, true},
	} {
		t.Run(tc.src, func(t *testing.T) {
			e, err := CompileExpr(tc.src, resolve)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Eval(row); got != tc.row {
				t.Errorf("row: got %v, want %v", got, tc.row)
			}
			if got := e.Eval(nulls); got != tc.nulls {
				t.Errorf("nulls: got %v, want %v", got, tc.nulls)
			}
		})
	}
}

func TestExprRejects(t *testing.T) {
	resolve := func(n string) (Symbol, bool) {
		if n == "i" {
			return Symbol{0, TypeInt64, false}, true
		}
		return Symbol{}, false
	}
	for _, tc := range []struct{ src, want string }{
		{`i`, "expression yields int64, want bool"},
		{`i ==`, "parsing"},
		{`x > 1`, `unknown name "x"`},
		{`i % 2 == 0`, `unsupported operator "%"`},
		{`len(i) > 0`, "unsupported expression"},
		{`i in []`, "non-empty list"},
		{`i > "a"`, "cannot compare int64 with string"},
		{`nil == nil`, "nil may only be compared"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, err := CompileExpr(tc.src, resolve)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	for _, tc := range []struct {
		in   string
		f    TimeFormat
		want Timestamp
		bad  bool
	}{
		{"1511658000", TimeAuto, 1511658000000, false},
		{"1511658000123", TimeAuto, 1511658000123, false},
		{"2017-11-26T01:00:00Z", TimeAuto, 1511658000000, false},
		{"2017-11-26T09:00:00.5+08:00", TimeAuto, 1511658000500, false},
		{"15", TimeUnixMillis, 15, false},
		{"1511658000.25", TimeUnixSeconds, 1511658000250, false},
		{"yesterday", TimeAuto, 0, true},
		{"", TimeAuto, 0, true},
		{"1511658000", TimeRFC3339, 0, true},
	} {
		got, err := ParseTimestamp(tc.in, tc.f)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseTimestamp(%q, %d) = %d, %v; want %d, bad=%v", tc.in, tc.f, got, err, tc.want, tc.bad)
		}
	}
	if s := Timestamp(1511658000000).String(); s != "2017-11-26T01:00:00Z" {
		t.Errorf("String = %s", s)
	}
}
