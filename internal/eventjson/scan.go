package eventjson

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	"github.com/portrait-dev/portrait/schemas"
)

// kind is the kind of JSON value a token holds.
type kind uint8

// The kinds of token.
const (
	kindMissing kind = iota // the object has no such field
	kindString              // a string without escapes
	kindNumber              // a number, checked against the JSON grammar
	kindTrue
	kindFalse
	kindNull
)

// token is the raw value of one catalog field in a scanned object.
type token struct {
	Kind kind
	// Start and End delimit the bytes of a string (without the quotes)
	// or of a number in the scanned value; both are 0 for other kinds.
	Start, End int
}

// Raw is the token's bytes in v, the value it was scanned from.
func (t token) Raw(v []byte) []byte { return v[t.Start:t.End] }

// scanner is the single-pass scanner of flat JSON objects behind the
// [Decoder]'s fast path, which converts its tokens to a [schemas.Event].
// A scanner is not safe for concurrent use.
type scanner struct {
	names []string
	index map[string]int
	toks  []token
}

// newScanner scans objects for the fields of c.
func newScanner(c *schemas.Catalog) *scanner {
	s := &scanner{names: make([]string, len(c.Fields)), index: make(map[string]int, len(c.Fields)),
		toks: make([]token, len(c.Fields))}
	for i := range c.Fields {
		s.names[i] = c.Fields[i].Name
		s.index[c.Fields[i].Name] = i
	}
	return s
}

// Scan walks the JSON object v once and returns the token of each
// catalog field, by field index (KindMissing where v lacks the field;
// the last of duplicate names wins, as in encoding/json); the slice is
// reused by the next Scan. Other fields are checked and skipped. ok is
// false for anything the scanner does not handle the way encoding/json
// would without help — escapes, nested values, invalid UTF-8 and every
// syntax error — which the caller leaves to [Decoder]'s full decode, the
// one judge of what is valid and why not.
func (s *scanner) Scan(v []byte) (toks []token, ok bool) {
	clear(s.toks)
	i := skipWS(v, 0)
	if i >= len(v) || v[i] != '{' {
		return nil, false
	}
	i = skipWS(v, i+1)
	if i < len(v) && v[i] == '}' {
		i++
	} else {
		hint := 0
		for {
			if i >= len(v) || v[i] != '"' {
				return nil, false
			}
			ks, ke, ok := scanString(v, i+1)
			if !ok {
				return nil, false
			}
			i = skipWS(v, ke+1)
			if i >= len(v) || v[i] != ':' {
				return nil, false
			}
			i = skipWS(v, i+1)
			if i >= len(v) {
				return nil, false
			}
			var t token
			switch c := v[i]; {
			case c == '"':
				vs, ve, ok := scanString(v, i+1)
				if !ok {
					return nil, false
				}
				t, i = token{Kind: kindString, Start: vs, End: ve}, ve+1
			case c == '-' || (c >= '0' && c <= '9'):
				e, ok := scanNumber(v, i)
				if !ok {
					return nil, false
				}
				t, i = token{Kind: kindNumber, Start: i, End: e}, e
			case c == 't' && bytes.HasPrefix(v[i:], []byte("true")):
				t, i = token{Kind: kindTrue}, i+4
			case c == 'f' && bytes.HasPrefix(v[i:], []byte("false")):
				t, i = token{Kind: kindFalse}, i+5
			case c == 'n' && bytes.HasPrefix(v[i:], []byte("null")):
				t, i = token{Kind: kindNull}, i+4
			default:
				return nil, false // nested object or array, or a syntax error
			}
			// Fields usually come in catalog order: try the next one first.
			name := view(v[ks:ke])
			if hint < len(s.names) && s.names[hint] == name {
				s.toks[hint] = t
				hint++
			} else if fi, ok := s.index[name]; ok {
				s.toks[fi] = t
				hint = fi + 1
			}
			i = skipWS(v, i)
			if i >= len(v) {
				return nil, false
			}
			if v[i] == '}' {
				i++
				break
			}
			if v[i] != ',' {
				return nil, false
			}
			i = skipWS(v, i+1)
		}
	}
	if skipWS(v, i) != len(v) {
		return nil, false
	}
	return s.toks, true
}

// view is b as a string without copying; it must not outlive b.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func skipWS(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// scanString finds the closing quote of a string starting at i; ok is
// false for escapes, control characters and invalid UTF-8.
func scanString(v []byte, i int) (start, end int, ok bool) {
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

// scanNumber checks the JSON number grammar from i and returns its end.
func scanNumber(v []byte, i int) (int, bool) {
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
	var ok bool
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
	// A number must end at a delimiter (encoding/json rejects "1x").
	if i < len(v) {
		switch v[i] {
		case ' ', '\t', '\n', '\r', ',', '}':
		default:
			return 0, false
		}
	}
	return i, true
}

// digits skips the digits from i; ok is false when there are none.
func digits(v []byte, i int) (end int, ok bool) {
	s := i
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	return i, i > s
}
