package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/portrait-dev/portrait/internal/dlq"
	"github.com/portrait-dev/portrait/schemas"
)

// rejectError is a record the speed layer cannot use; reason is one of
// the dlq.Reason* constants.
type rejectError struct {
	reason string
	err    error
}

func (e *rejectError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *rejectError) Unwrap() error { return e.err }

func reject(reason string, format string, args ...any) *rejectError {
	return &rejectError{reason: reason, err: fmt.Errorf(format, args...)}
}

// decoder turns a record's JSON value into an event. Unknown fields are
// ignored; a missing or null field is an error.
type decoder struct {
	cat *schemas.Catalog
	rd  bytes.Reader
	obj map[string]any
	// index maps field names to field indexes; seen[i] == gen marks the
	// fields found in the current record (decodeFast).
	index map[string]int
	seen  []uint32
	gen   uint32
}

func newDecoder(c *schemas.Catalog) *decoder {
	d := &decoder{cat: c, obj: make(map[string]any, len(c.Fields)+4),
		index: make(map[string]int, len(c.Fields)), seen: make([]uint32, len(c.Fields))}
	for i := range c.Fields {
		d.index[c.Fields[i].Name] = i
	}
	return d
}

// decode fills e.Values (reused when large enough) and e.Time from value;
// the message key must equal the event's key field in text form (keys
// decide the partition, and partitions own users).
func (d *decoder) decode(e *schemas.Event, key, value []byte) error {
	if cap(e.Values) < len(d.cat.Fields) {
		e.Values = make([]any, len(d.cat.Fields))
	}
	e.Values = e.Values[:len(d.cat.Fields)]
	if !d.decodeFast(e, value) {
		if err := d.decodeSlow(e, value); err != nil {
			return err
		}
	}
	e.Time = e.Values[d.cat.Time].(schemas.Timestamp)
	if !keyMatches(key, e.Values[d.cat.Key]) {
		return reject(dlq.ReasonKey, "message key %q differs from field %s = %v", key, d.cat.KeyField().Name, e.Values[d.cat.Key])
	}
	return nil
}

// decodeSlow decodes value with encoding/json into a map and converts
// the catalog's fields in catalog order; its errors are the reference
// for decodeFast.
func (d *decoder) decodeSlow(e *schemas.Event, value []byte) error {
	d.rd.Reset(value)
	dec := json.NewDecoder(&d.rd)
	dec.UseNumber()
	clear(d.obj)
	if err := dec.Decode(&d.obj); err != nil {
		return reject(dlq.ReasonDecode, "not a JSON object: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return reject(dlq.ReasonDecode, "data after the JSON object")
	}
	for i := range d.cat.Fields {
		f := &d.cat.Fields[i]
		raw, ok := d.obj[f.Name]
		if !ok {
			return reject(dlq.ReasonSchema, "field %s: missing", f.Name)
		}
		v, err := schemas.ConvertJSON(f, raw)
		if err != nil {
			return &rejectError{reason: dlq.ReasonSchema, err: err}
		}
		e.Values[i] = v
	}
	return nil
}

// decodeFast is decode's allocation-light path: it handles a record that
// json.Valid accepts and whose value is an object, scanning the object
// once and converting the catalog's fields straight into e.Values with
// ConvertJSON's semantics. It reports false, with e in any state, for
// everything else (invalid JSON, another top-level value, a field that
// is missing or does not convert, an unusual value): decode then takes
// the encoding/json path, which produces the exact error.
func (d *decoder) decodeFast(e *schemas.Event, value []byte) bool {
	if !json.Valid(value) {
		return false
	}
	i := skipSpace(value, 0)
	if i >= len(value) || value[i] != '{' {
		return false
	}
	d.gen++
	if d.gen == 0 { // wrapped: forget every mark
		clear(d.seen)
		d.gen = 1
	}
	found := 0
	i = skipSpace(value, i+1)
	for i < len(value) && value[i] != '}' {
		// Valid JSON: a key string, a colon, a value, then ',' or '}'.
		ks := i + 1
		ke, esc := stringEnd(value, ks)
		var fi int
		var ok bool
		if esc {
			var name string
			if json.Unmarshal(value[i:ke+1], &name) != nil {
				return false
			}
			fi, ok = d.index[name]
		} else {
			fi, ok = d.index[string(value[ks:ke])]
		}
		i = skipSpace(value, ke+1) // at ':'
		i = skipSpace(value, i+1)  // at the value
		var end int
		if ok {
			v, n, good := d.fastValue(&d.cat.Fields[fi], value, i)
			if !good {
				return false
			}
			if d.seen[fi] != d.gen {
				d.seen[fi] = d.gen
				found++
			}
			e.Values[fi] = v
			end = n
		} else {
			end = skipValue(value, i)
		}
		i = skipSpace(value, end)
		if i < len(value) && value[i] == ',' {
			i = skipSpace(value, i+1)
		}
	}
	return found == len(d.cat.Fields)
}

// fastValue converts the JSON value at value[i:] for field f and returns
// it with the offset just past it; false when decode must take the slow
// path (the value is of the wrong kind or does not convert).
func (d *decoder) fastValue(f *schemas.Field, value []byte, i int) (any, int, bool) {
	switch c := value[i]; {
	case c == '"':
		end, esc := stringEnd(value, i+1)
		raw := value[i+1 : end]
		var s string
		switch {
		case esc:
			if json.Unmarshal(value[i:end+1], &s) != nil {
				return nil, 0, false
			}
		case f.Type == schemas.TypeString && len(f.Enum) > 0:
			for _, e := range f.Enum { // the enum's own string: no copy
				if string(raw) == e {
					return e, end + 1, true
				}
			}
			return nil, 0, false
		default:
			s = string(raw)
		}
		v, err := schemas.ConvertJSON(f, s)
		return v, end + 1, err == nil
	case c == 't' || c == 'f':
		if f.Type != schemas.TypeBool {
			return nil, 0, false
		}
		if c == 't' {
			return true, i + 4, true
		}
		return false, i + 5, true
	case c == '-' || (c >= '0' && c <= '9'):
		end := i + 1
		for end < len(value) && isNumberByte(value[end]) {
			end++
		}
		num := value[i:end]
		if f.Type == schemas.TypeInt64 {
			if n, ok := parseSmallInt(num); ok {
				return n, end, true
			}
		}
		switch f.Type {
		case schemas.TypeInt64, schemas.TypeFloat64, schemas.TypeTimestamp:
			v, err := schemas.ParseValue(f, string(num)) // ConvertJSON's json.Number path
			return v, end, err == nil
		}
		return nil, 0, false
	}
	return nil, 0, false // null, object or array
}

// parseSmallInt parses a JSON integer of at most 18 digits.
func parseSmallInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the quote closing the string whose
// contents start at i, and whether the string holds escapes. b is valid
// JSON.
func stringEnd(b []byte, i int) (int, bool) {
	esc := false
	for i < len(b) {
		switch b[i] {
		case '"':
			return i, esc
		case '\\':
			esc = true
			i++
		}
		i++
	}
	return len(b), esc
}

// skipValue returns the offset just past the (valid) JSON value at i.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			end, _ := stringEnd(b, i+1)
			i = end + 1
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the enclosing object's end
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// keyMatches compares a message key with the event's key field.
func keyMatches(key []byte, v any) bool {
	switch k := v.(type) {
	case string:
		return string(key) == k
	case int64:
		var buf [20]byte
		return bytes.Equal(key, strconv.AppendInt(buf[:0], k, 10))
	}
	return false
}
