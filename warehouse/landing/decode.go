package landing

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/portrait-dev/portrait/internal/eventjson"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// decoder turns records into rows of warehouse.EventColumns. Its fast
// path walks the JSON object once and converts each catalog field's value
// as it meets it, straight into a typed row (no token list, no value
// boxed, nothing allocated): integers are accumulated digit by digit,
// strings are referenced in place, and the field name expected next and
// enum values are matched by their text with its closing quote, without
// scanning them first. It accepts only plain records — a flat object,
// every field of its type, no escapes, integers without fraction or
// exponent — that eventjson.Decoder accepts with the same values; every
// other record (anything unusual, and every record to be rejected) goes
// through eventjson.Decoder, which stays the one definition of what is
// valid and why not. The differential test and fuzz target hold the two
// together.
type decoder struct {
	cat *schemas.Catalog
	lim eventjson.Limits
	ref *eventjson.Decoder
	idx map[string]int // field index by name
	// quoted is a field's name followed by its closing quote, or "" when
	// the name is not plain: a key whose text starts with it is that
	// field's name, found without scanning the key.
	quoted []string
	// enums are an enum field's values, each followed by its closing
	// quote (nil unless every value is plain), matched the same way.
	enums [][]string
	seen  []bool // by field: met in the record being decoded
	// keyRaw is the JSON text of the key field's value when it is an
	// integer (the message key must be exactly that text).
	keyRaw []byte
	row    *warehouse.EventRow
	ev     schemas.Event
	fast   bool // the last record went the fast path
	// now and latest cache the last record's read time and the latest
	// event time it accepts (records come in batches read at one time).
	now    time.Time
	latest schemas.Timestamp
}

func newDecoder(cat *schemas.Catalog, lim eventjson.Limits) *decoder {
	d := &decoder{cat: cat, lim: lim, ref: eventjson.NewDecoder(cat, lim),
		idx:  make(map[string]int, len(cat.Fields)),
		seen: make([]bool, len(cat.Fields)), row: warehouse.NewEventColumns(cat).NewRow(),
		quoted: make([]string, len(cat.Fields)), enums: make([][]string, len(cat.Fields))}
	for i := range cat.Fields {
		f := &cat.Fields[i]
		d.idx[f.Name] = i
		if eventjson.Plain(f.Name) {
			d.quoted[i] = f.Name + `"`
		}
		if len(f.Enum) > 0 && all(f.Enum, eventjson.Plain) {
			for _, e := range f.Enum {
				d.enums[i] = append(d.enums[i], e+`"`)
			}
		}
	}
	return d
}

func all(ss []string, ok func(string) bool) bool {
	for _, s := range ss {
		if !ok(s) {
			return false
		}
	}
	return true
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
func (d *decoder) decodeFast(key, v []byte, now time.Time) bool {
	if n := len(key) + len(v); d.lim.MaxRecordBytes > 0 && n > d.lim.MaxRecordBytes {
		return false
	}
	clear(d.seen)
	i := eventjson.SkipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return false
	}
	i = eventjson.SkipSpace(v, i+1)
	if i < len(v) && v[i] == '}' {
		i++
	} else {
		next := 0 // fields usually come in catalog order: try this one first
		for {
			if i >= len(v) || v[i] != '"' {
				return false
			}
			f, ke := -1, 0
			if q := d.expected(next); q != "" && hasPrefix(v[i+1:], q) {
				f, ke = next, i+len(q)
			} else {
				ks, e, ok := eventjson.ScanString(v, i+1)
				if !ok {
					return false
				}
				ke = e
				if fi, ok := d.idx[view(v[ks:ke])]; ok {
					f = fi
				}
			}
			i = eventjson.SkipSpace(v, ke+1)
			if i >= len(v) || v[i] != ':' {
				return false
			}
			i = eventjson.SkipSpace(v, i+1)
			var ok bool
			if f >= 0 {
				i, ok = d.field(f, v, i)
				next = f + 1
			} else {
				i, ok = skipValue(v, i)
			}
			if !ok {
				return false
			}
			i = eventjson.SkipSpace(v, i)
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
			i = eventjson.SkipSpace(v, i+1)
		}
	}
	if eventjson.SkipSpace(v, i) != len(v) {
		return false
	}
	for _, ok := range d.seen {
		if !ok {
			return false // missing: the reference names it
		}
	}
	r := d.row
	r.Time = schemas.Timestamp(r.Ints[d.cat.Time])
	if !d.keyMatches(key) {
		return false
	}
	if now != d.now {
		d.now, d.latest = now, schemas.TimestampOf(now.Add(d.lim.ClockSkew))
	}
	return r.Time <= d.latest
}

// expected is the quoted name of field f, the one expected next, or ""
// (past the last field, or a name that is not plain).
func (d *decoder) expected(f int) string {
	if f < len(d.quoted) {
		return d.quoted[f]
	}
	return ""
}

// hasPrefix is bytes.HasPrefix for a string prefix.
func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && view(b[:len(p)]) == p }

// field converts the value at v[i] into field f of the row and returns
// where it ends; ok is false for a value of another type or anything
// unusual (the last of duplicate fields wins, as in the reference).
func (d *decoder) field(f int, v []byte, i int) (end int, ok bool) {
	if i >= len(v) {
		return 0, false
	}
	r := d.row
	fd := &d.cat.Fields[f]
	switch fd.Type {
	case schemas.TypeInt64:
		n, e, ok := intAt(v, i)
		if !ok {
			return 0, false
		}
		r.Ints[f] = n
		if f == d.cat.Key {
			d.keyRaw = v[i:e]
		}
		end = e
	case schemas.TypeFloat64:
		e, ok := eventjson.ScanNumber(v, i)
		if !ok {
			return 0, false
		}
		x, err := strconv.ParseFloat(view(v[i:e]), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
		r.Floats[f], end = x, e
	case schemas.TypeTimestamp:
		ts, e, ok := timestampAt(v, i, fd.Format)
		if !ok {
			return 0, false
		}
		r.Ints[f], end = int64(ts), e
	case schemas.TypeBool:
		switch {
		case bytes.HasPrefix(v[i:], []byte("true")):
			r.Bools[f], end = true, i+4
		case bytes.HasPrefix(v[i:], []byte("false")):
			r.Bools[f], end = false, i+5
		default:
			return 0, false
		}
	case schemas.TypeString:
		if v[i] != '"' {
			return 0, false
		}
		if e, ok := enumAt(d.enums[f], v, i+1); ok {
			r.Strings[f], end = v[i+1:e], e+1
			break
		}
		s, e, ok := eventjson.ScanString(v, i+1)
		if !ok || (len(fd.Enum) > 0 && !inEnum(fd.Enum, v[s:e])) {
			return 0, false
		}
		r.Strings[f], end = v[s:e], e+1
	default:
		return 0, false
	}
	d.seen[f] = true
	return end, true
}

// timestampAt reads a timestamp written as a number or a string, as
// schemas.ParseTimestamp does. A plain integer below 2⁵³ is exact as a
// float64, and for those TimestampFromNumber is ParseTimestamp without
// reading the text again.
func timestampAt(v []byte, i int, f schemas.TimeFormat) (schemas.Timestamp, int, bool) {
	var raw []byte
	end := 0
	if v[i] == '"' {
		s, e, ok := eventjson.ScanString(v, i+1)
		if !ok {
			return 0, 0, false
		}
		raw, end = v[s:e], e+1
	} else {
		if n, e, ok := intAt(v, i); ok && n < 1<<53 && n > -1<<53 {
			ts, err := schemas.TimestampFromNumber(float64(n), f)
			return ts, e, err == nil
		}
		e, ok := eventjson.ScanNumber(v, i)
		if !ok {
			return 0, 0, false
		}
		raw, end = v[i:e], e
	}
	ts, err := schemas.ParseTimestamp(view(raw), f)
	if err != nil {
		return 0, 0, false
	}
	return ts, end, true
}

// enumAt finds which of the quoted enum values the string text at v[i]
// is and returns where the text ends (at its closing quote).
func enumAt(quoted []string, v []byte, i int) (end int, ok bool) {
	for _, q := range quoted {
		if hasPrefix(v[i:], q) {
			return i + len(q) - 1, true
		}
	}
	return 0, false
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
		// intAt took only plain integers, whose text is their decimal
		// form but for "-0" (the reference compares the key with "0").
		return bytes.Equal(key, d.keyRaw) && string(d.keyRaw) != "-0"
	}
	return false
}

// view is b as a string without copying; it must not outlive b.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// skipValue skips a string, number, true, false or null from i; ok is
// false for nested values and whatever eventjson.ScanString or
// ScanNumber refuse.
func skipValue(v []byte, i int) (end int, ok bool) {
	if i >= len(v) {
		return 0, false
	}
	switch c := v[i]; {
	case c == '"':
		_, e, ok := eventjson.ScanString(v, i+1)
		return e + 1, ok
	case c == '-' || (c >= '0' && c <= '9'):
		return eventjson.ScanNumber(v, i)
	case bytes.HasPrefix(v[i:], []byte("true")), bytes.HasPrefix(v[i:], []byte("null")):
		return i + 4, true
	case bytes.HasPrefix(v[i:], []byte("false")):
		return i + 5, true
	}
	return 0, false
}

// intAt reads the JSON number at i as an int64; ok is false unless it is
// a plain integer (no fraction or exponent, no leading zero) that fits,
// followed by a delimiter.
func intAt(v []byte, i int) (n int64, end int, ok bool) {
	neg := i < len(v) && v[i] == '-'
	if neg {
		i++
	}
	s := i
	var u uint64
	for lim := min(len(v), s+19); i < lim; i++ {
		c := v[i] - '0' // wraps for bytes below '0'
		if c > 9 {
			break
		}
		u = u*10 + uint64(c)
	}
	// 19 digits cannot overflow a uint64; a 20th digit is too many.
	if i == s || (v[s] == '0' && i-s > 1) || !eventjson.Delimited(v, i) {
		return 0, 0, false
	}
	switch {
	case neg && u <= 1<<63:
		return -int64(u), i, true // -1<<63 wraps to itself
	case !neg && u <= math.MaxInt64:
		return int64(u), i, true
	}
	return 0, 0, false
}
