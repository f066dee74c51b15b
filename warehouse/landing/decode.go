package landing

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/portrait-dev/portrait/internal/eventjson"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// decoder turns records into rows of warehouse.EventColumns. Its fast
// path decodes a flat JSON object without escapes straight into a typed
// row (no value boxed, nothing allocated) and accepts only what
// eventjson.Decoder accepts with the same values; every other record
// (anything unusual, and every record to be rejected) goes through
// eventjson.Decoder, which stays the one definition of what is valid and
// why not. The differential test and fuzz target hold the two together.
type decoder struct {
	cat   *schemas.Catalog
	lim   eventjson.Limits
	ref   *eventjson.Decoder
	index map[string]int
	toks  []fastToken
	row   *warehouse.EventRow
	ev    schemas.Event
	fast  bool // the last record went the fast path
}

type fastToken struct {
	kind       uint8
	start, end int
}

const (
	ftMissing = iota
	ftString
	ftNumber
	ftTrue
	ftFalse
	ftOther // null: left to the reference decoder
)

func newDecoder(cat *schemas.Catalog, lim eventjson.Limits) *decoder {
	d := &decoder{cat: cat, lim: lim, ref: eventjson.NewDecoder(cat, lim), index: make(map[string]int, len(cat.Fields)),
		toks: make([]fastToken, len(cat.Fields)), row: warehouse.NewEventColumns(cat).NewRow()}
	for i := range cat.Fields {
		d.index[cat.Fields[i].Name] = i
	}
	return d
}

// decode decodes a record read at now; on success appendTo adds it.
func (d *decoder) decode(key, value []byte, now time.Time) (schemas.Timestamp, *eventjson.Rejection) {
	if d.decodeFast(key, value, now) {
		d.fast = true
		return d.row.Time, nil
	}
	d.fast = false
	if r := d.ref.Decode(&d.ev, key, value, now); r != nil {
		return 0, r
	}
	return d.ev.Time, nil
}

// appendTo adds the event decoded last to cols.
func (d *decoder) appendTo(cols *warehouse.EventColumns, partition int32, offset int64) error {
	if d.fast {
		d.row.Partition, d.row.Offset = partition, offset
		return cols.AppendRow(d.row)
	}
	d.ev.Partition, d.ev.Offset = partition, offset
	return cols.Append(&d.ev)
}

// decodeFast fills d.row; false means "ask the reference decoder".
func (d *decoder) decodeFast(key, value []byte, now time.Time) bool {
	if n := len(key) + len(value); d.lim.MaxRecordBytes > 0 && n > d.lim.MaxRecordBytes {
		return false
	}
	if !d.scan(value) {
		return false
	}
	r := d.row
	for i := range d.cat.Fields {
		f := &d.cat.Fields[i]
		t := d.toks[i]
		b := value[t.start:t.end]
		switch f.Type {
		case schemas.TypeInt64:
			if t.kind != ftNumber {
				return false
			}
			n, err := strconv.ParseInt(view(b), 10, 64)
			if err != nil {
				return false
			}
			r.Ints[i] = n
		case schemas.TypeFloat64:
			if t.kind != ftNumber {
				return false
			}
			x, err := strconv.ParseFloat(view(b), 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
			r.Floats[i] = x
		case schemas.TypeTimestamp:
			if t.kind != ftNumber && t.kind != ftString {
				return false
			}
			ts, err := schemas.ParseTimestamp(view(b), f.Format)
			if err != nil {
				return false
			}
			r.Ints[i] = int64(ts)
		case schemas.TypeBool:
			switch t.kind {
			case ftTrue:
				r.Bools[i] = true
			case ftFalse:
				r.Bools[i] = false
			default:
				return false
			}
		case schemas.TypeString:
			if t.kind != ftString {
				return false
			}
			if len(f.Enum) > 0 && !inEnum(f.Enum, b) {
				return false
			}
			r.Strings[i] = b
		default:
			return false
		}
	}
	r.Time = schemas.Timestamp(r.Ints[d.cat.Time])
	if !d.keyMatches(key) {
		return false
	}
	return r.Time <= schemas.TimestampOf(now.Add(d.lim.ClockSkew))
}

func inEnum(enum []string, b []byte) bool {
	for _, e := range enum {
		if e == view(b) {
			return true
		}
	}
	return false
}

func (d *decoder) keyMatches(key []byte) bool {
	k := d.cat.Key
	switch d.cat.Fields[k].Type {
	case schemas.TypeString:
		return bytes.Equal(key, d.row.Strings[k])
	case schemas.TypeInt64:
		var buf [20]byte
		return bytes.Equal(key, strconv.AppendInt(buf[:0], d.row.Ints[k], 10))
	}
	return false
}

// view is b as a string without copying; it must not outlive b.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// scan tokenises a flat JSON object into d.toks by field; false for
// anything but a flat object of strings without escapes, numbers and
// literals (the reference decoder then decides).
func (d *decoder) scan(v []byte) bool {
	for i := range d.toks {
		d.toks[i] = fastToken{}
	}
	i := skipWS(v, 0)
	if i >= len(v) || v[i] != '{' {
		return false
	}
	i = skipWS(v, i+1)
	if i < len(v) && v[i] == '}' {
		return false // no fields: the reference names the missing one
	}
	hint := 0
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
		var t fastToken
		switch c := v[i]; {
		case c == '"':
			s, e, ok := scanString(v, i+1)
			if !ok {
				return false
			}
			t, i = fastToken{kind: ftString, start: s, end: e}, e+1
		case c == '-' || (c >= '0' && c <= '9'):
			e, ok := scanNumber(v, i)
			if !ok {
				return false
			}
			t, i = fastToken{kind: ftNumber, start: i, end: e}, e
		case c == 't' && bytes.HasPrefix(v[i:], []byte("true")):
			t, i = fastToken{kind: ftTrue}, i+4
		case c == 'f' && bytes.HasPrefix(v[i:], []byte("false")):
			t, i = fastToken{kind: ftFalse}, i+5
		case c == 'n' && bytes.HasPrefix(v[i:], []byte("null")):
			t, i = fastToken{kind: ftOther}, i+4
		default:
			return false
		}
		// Fields usually come in catalog order: try the next one first.
		name := view(v[ks:ke])
		if hint < len(d.cat.Fields) && d.cat.Fields[hint].Name == name {
			d.toks[hint] = t // the last of duplicate names wins, as in encoding/json
			hint++
		} else if fi, ok := d.index[name]; ok {
			d.toks[fi] = t
			hint = fi + 1
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
	if skipWS(v, i) != len(v) {
		return false
	}
	for i := range d.toks {
		if d.toks[i].kind == ftMissing || d.toks[i].kind == ftOther {
			return false
		}
	}
	return true
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
	if i < len(v) {
		switch v[i] {
		case ' ', '\t', '\n', '\r', ',', '}':
		default:
			return 0, false
		}
	}
	return i, true
}
