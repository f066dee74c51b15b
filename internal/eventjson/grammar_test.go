package eventjson

import (
	"encoding/json"
	"testing"
)

// TestScanNumber checks the number grammar against encoding/json on
// numbers followed by each delimiter and by junk.
func TestScanNumber(t *testing.T) {
	for _, num := range []string{"0", "-0", "7", "-12", "1.5", "1e9", "1E+2", "2.5e-3", "01", "-", "1.", ".5", "1e", "+1", "1x", "0x1", "1.e3", "--1"} {
		for _, after := range []string{"", ",", "}", " ", "x"} {
			v := []byte(num + after)
			end, ok := ScanNumber(v, 0)
			var x float64
			want := json.Unmarshal([]byte(num), &x) == nil && after != "x"
			if ok != want || (ok && end != len(num)) {
				t.Errorf("ScanNumber(%q) = %d, %v; want end %d, %v", v, end, ok, len(num), want)
			}
		}
	}
}

func TestScanString(t *testing.T) {
	for _, tc := range []struct {
		in   string // the text after the opening quote
		end  int
		want bool
	}{
		{`abc"`, 3, true},
		{`"`, 0, true},
		{`héllo"`, 6, true},
		{`a\"b"`, 0, false},    // escapes take the fallback
		{"a\x01b\"", 0, false}, // control character
		{"a\xffb\"", 0, false}, // invalid UTF-8
		{`unterminated`, 0, false},
	} {
		_, end, ok := ScanString([]byte(tc.in), 0)
		if ok != tc.want || (ok && end != tc.end) {
			t.Errorf("ScanString(%q) = %d, %v; want %d, %v", tc.in, end, ok, tc.end, tc.want)
		}
	}
	if got := SkipSpace([]byte(" \t\r\n x"), 0); got != 5 {
		t.Errorf("SkipSpace = %d, want 5", got)
	}
}
