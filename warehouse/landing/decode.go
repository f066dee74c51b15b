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
// path runs eventjson's Scanner (the one scanner of flat JSON objects)
// and converts its tokens straight into a typed row (no value boxed,
// nothing allocated); it accepts only what
// eventjson.Decoder accepts with the same values; every other record
// (anything unusual, and every record to be rejected) goes through
// eventjson.Decoder, which stays the one definition of what is valid and
// why not. The differential test and fuzz target hold the two together.
type decoder struct {
	cat  *schemas.Catalog
	lim  eventjson.Limits
	ref  *eventjson.Decoder
	scan *eventjson.Scanner
	row  *warehouse.EventRow
	ev   schemas.Event
	fast bool // the last record went the fast path
}

func newDecoder(cat *schemas.Catalog, lim eventjson.Limits) *decoder {
	return &decoder{cat: cat, lim: lim, ref: eventjson.NewDecoder(cat, lim), scan: eventjson.NewScanner(cat),
		row: warehouse.NewEventColumns(cat).NewRow()}
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
	toks, ok := d.scan.Scan(value)
	if !ok {
		return false
	}
	r := d.row
	for i := range d.cat.Fields {
		f := &d.cat.Fields[i]
		t := toks[i]
		b := t.Raw(value)
		switch f.Type {
		case schemas.TypeInt64:
			if t.Kind != eventjson.KindNumber {
				return false
			}
			n, err := strconv.ParseInt(view(b), 10, 64)
			if err != nil {
				return false
			}
			r.Ints[i] = n
		case schemas.TypeFloat64:
			if t.Kind != eventjson.KindNumber {
				return false
			}
			x, err := strconv.ParseFloat(view(b), 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
			r.Floats[i] = x
		case schemas.TypeTimestamp:
			if t.Kind != eventjson.KindNumber && t.Kind != eventjson.KindString {
				return false
			}
			ts, err := schemas.ParseTimestamp(view(b), f.Format)
			if err != nil {
				return false
			}
			r.Ints[i] = int64(ts)
		case schemas.TypeBool:
			switch t.Kind {
			case eventjson.KindTrue:
				r.Bools[i] = true
			case eventjson.KindFalse:
				r.Bools[i] = false
			default:
				return false
			}
		case schemas.TypeString:
			if t.Kind != eventjson.KindString {
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
