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
	// quoted is each field's name followed by its closing quote, or ""
	// when the name is not written in JSON as itself: a key whose text
	// starts with it is that field's name, found without scanning the key.
	quoted []string
	index  map[string]int
	toks   []token
}

// newScanner scans objects for the fields of c.
func newScanner(c *schemas.Catalog) *scanner {
	s := &scanner{quoted: make([]string, len(c.Fields)), index: make(map[string]int, len(c.Fields)),
		toks: make([]token, len(c.Fields))}
	for i := range c.Fields {
		name := c.Fields[i].Name
		if Plain(name) {
			s.quoted[i] = name + `"`
		}
		s.index[name] = i
	}
	return s
}

// Plain reports whether s is written in JSON as itself: valid UTF-8
// without quotes, backslashes or control characters. The text of a JSON
// string that starts with s followed by a quote is then exactly s.
func Plain(s string) bool {
	for _, c := range []byte(s) {
		if c == '"' || c == '\\' || c < 0x20 {
			return false
		}
	}
	return utf8.ValidString(s)
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
	i := SkipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return nil, false
	}
	i = SkipSpace(v, i+1)
	if i < len(v) && v[i] == '}' {
		i++
	} else {
		hint := 0
		for {
			if i >= len(v) || v[i] != '"' {
				return nil, false
			}
			// Fields usually come in catalog order: try the next one
			// first, by its quoted name.
			f, ke := -1, 0
			if q := s.expected(hint); q != "" && len(v)-i-1 >= len(q) && view(v[i+1:i+1+len(q)]) == q {
				f, ke = hint, i+len(q)
			} else {
				ks, e, ok := ScanString(v, i+1)
				if !ok {
					return nil, false
				}
				ke = e
				if fi, ok := s.index[view(v[ks:ke])]; ok {
					f = fi
				}
			}
			i = SkipSpace(v, ke+1)
			if i >= len(v) || v[i] != ':' {
				return nil, false
			}
			i = SkipSpace(v, i+1)
			if i >= len(v) {
				return nil, false
			}
			var t token
			switch c := v[i]; {
			case c == '"':
				vs, ve, ok := ScanString(v, i+1)
				if !ok {
					return nil, false
				}
				t, i = token{Kind: kindString, Start: vs, End: ve}, ve+1
			case c == '-' || (c >= '0' && c <= '9'):
				e, ok := ScanNumber(v, i)
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
			if f >= 0 {
				s.toks[f] = t
				hint = f + 1
			}
			i = SkipSpace(v, i)
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
			i = SkipSpace(v, i+1)
		}
	}
	if SkipSpace(v, i) != len(v) {
		return nil, false
	}
	return s.toks, true
}

// expected is the quoted name of field f, the one expected next, or ""
// (past the last field, or a name that is not plain).
func (s *scanner) expected(f int) string {
	if f < len(s.quoted) {
		return s.quoted[f]
	}
	return ""
}

// view is b as a string without copying; it must not outlive b.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
