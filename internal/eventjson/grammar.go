package eventjson

import "unicode/utf8"

// The JSON grammar pieces of the fast paths: the Decoder's scanner and the
// landing's typed decoder. Each checks exactly what encoding/json would
// accept for a flat value and refuses the rest (escapes, nested values),
// which then takes the Decoder's encoding/json fallback.

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func SkipSpace(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// ScanString finds the closing quote of a string whose text starts at i
// (just after the opening quote); ok is false for escapes, control
// characters and invalid UTF-8.
func ScanString(v []byte, i int) (start, end int, ok bool) {
	start = i
	high := false
	for ; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			if high && !utf8.Valid(v[start:i]) {
				return 0, 0, false
			}
			return start, i, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		case c >= 0x80:
			high = true
		}
	}
	return 0, 0, false
}

// ScanNumber checks the JSON number grammar from i and returns its end,
// which must be followed by a delimiter (encoding/json rejects "1x").
func ScanNumber(v []byte, i int) (end int, ok bool) {
	if i < len(v) && v[i] == '-' {
		i++
	}
	switch {
	case i < len(v) && v[i] == '0':
		i++
	case i < len(v) && v[i] >= '1' && v[i] <= '9':
		i, _ = digits(v, i)
	default:
		return 0, false
	}
	if i < len(v) && v[i] == '.' {
		if i, ok = digits(v, i+1); !ok {
			return 0, false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if i, ok = digits(v, i); !ok {
			return 0, false
		}
	}
	return i, Delimited(v, i)
}

// Delimited tells whether a value ending at i is followed by what may
// follow a value in a flat object (or by the end of v).
func Delimited(v []byte, i int) bool {
	if i == len(v) {
		return true
	}
	switch v[i] {
	case ' ', '\t', '\n', '\r', ',', '}':
		return true
	}
	return false
}

// digits skips the digits from i; ok is false when there are none.
func digits(v []byte, i int) (end int, ok bool) {
	s := i
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	return i, i > s
}
