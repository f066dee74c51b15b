package eventjson

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
	"unsafe"

	"github.com/portrait-dev/portrait/internal/dlq"
	"github.com/portrait-dev/portrait/schemas"
)

// The fast path: scan tokenises a flat object into one token per catalog
// field, and convertTokens converts them with ConvertJSON's semantics.

// token kinds of the fast path.
const (
	tokMissing = iota
	tokString
	tokNumber
	tokTrue
	tokFalse
	tokNull
)

type token struct {
	kind       uint8
	start, end int // the bytes of a string (without quotes) or number
}

func (d *Decoder) convertTokens(e *schemas.Event, value []byte) *Rejection {
	for i := range d.cat.Fields {
		f := &d.cat.Fields[i]
		t := d.toks[i]
		var (
			v   any
			err error
		)
		switch t.kind {
		case tokMissing:
			return reject(dlq.ReasonSchema, "field %s: missing", f.Name)
		case tokNull:
			v, err = schemas.ConvertJSON(f, nil)
		case tokTrue:
			v, err = schemas.ConvertJSON(f, true)
		case tokFalse:
			v, err = schemas.ConvertJSON(f, false)
		case tokNumber:
			s := view(value[t.start:t.end])
			switch f.Type {
			case schemas.TypeInt64, schemas.TypeFloat64, schemas.TypeTimestamp:
				v, err = schemas.ParseValue(f, s) // what ConvertJSON does with a json.Number
			default:
				v, err = schemas.ConvertJSON(f, json.Number(string(value[t.start:t.end])))
			}
		case tokString:
			b := value[t.start:t.end]
			switch {
			case f.Type == schemas.TypeString && len(f.Enum) > 0:
				v, err = nil, nil
				for _, en := range f.Enum {
					if en == view(b) {
						v = en // the catalog's copy: no allocation
						break
					}
				}
				if v == nil {
					v, err = schemas.ConvertJSON(f, string(b))
				}
			case f.Type == schemas.TypeString:
				v = string(b)
			default:
				v, err = schemas.ConvertJSON(f, view(b))
			}
		}
		if err != nil {
			return &Rejection{Reason: dlq.ReasonSchema, Err: err}
		}
		e.Values[i] = v
	}
	return nil
}

// view is b as a string without copying; it must not outlive b.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// scan tokenises a flat JSON object into d.toks by field. It returns false
// (use the slow path) for anything it does not handle the way
// encoding/json would without help: escapes, nested values, invalid UTF-8
// and every syntax error, which the slow path then reports.
func (d *Decoder) scan(v []byte) bool {
	for i := range d.toks {
		d.toks[i].kind = tokMissing
	}
	i := skipWS(v, 0)
	if i >= len(v) || v[i] != '{' {
		return false
	}
	i = skipWS(v, i+1)
	if i < len(v) && v[i] == '}' {
		i++
	} else {
		for {
			if i >= len(v) || v[i] != '"' {
				return false
			}
			ks, ke, ok := scanString(v, i+1)
			if !ok {
				return false
			}
			i = skipWS(v, ke+1)
			if i >= len(v) || v[i] != ':' {
				return false
			}
			i = skipWS(v, i+1)
			if i >= len(v) {
				return false
			}
			var t token
			switch c := v[i]; {
			case c == '"':
				s, e, ok := scanString(v, i+1)
				if !ok {
					return false
				}
				t, i = token{kind: tokString, start: s, end: e}, e+1
			case c == '-' || (c >= '0' && c <= '9'):
				e, ok := scanNumber(v, i)
				if !ok {
					return false
				}
				t, i = token{kind: tokNumber, start: i, end: e}, e
			case c == 't' && bytes.HasPrefix(v[i:], []byte("true")):
				t, i = token{kind: tokTrue}, i+4
			case c == 'f' && bytes.HasPrefix(v[i:], []byte("false")):
				t, i = token{kind: tokFalse}, i+5
			case c == 'n' && bytes.HasPrefix(v[i:], []byte("null")):
				t, i = token{kind: tokNull}, i+4
			default:
				return false // nested object or array, or a syntax error
			}
			if fi, ok := d.index[view(v[ks:ke])]; ok {
				d.toks[fi] = t // the last of duplicate names wins, as in encoding/json
			}
			i = skipWS(v, i)
			if i >= len(v) {
				return false
			}
			if v[i] == '}' {
				i++
				break
			}
			if v[i] != ',' {
				return false
			}
			i = skipWS(v, i+1)
		}
	}
	return skipWS(v, i) == len(v)
}

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
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(v) && v[i] == '.' {
		i++
		s := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i == s {
			return 0, false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		s := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i == s {
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
