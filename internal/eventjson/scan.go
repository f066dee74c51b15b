package eventjson

import (
	"bytes"
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
			ks, ke, ok := ScanString(v, i+1)
			if !ok {
				return nil, false
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
			// Fields usually come in catalog order: try the next one first.
			name := view(v[ks:ke])
			if hint < len(s.names) && s.names[hint] == name {
				s.toks[hint] = t
				hint++
			} else if fi, ok := s.index[name]; ok {
				s.toks[fi] = t
				hint = fi + 1
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

// view is b as a string without copying; it must not outlive b.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
