// Package eventjson decodes and validates the JSON events read from the
// events topic, for every consumer of it (the speed layer and the
// landing): one [Decoder] per claimed partition turns a record's key and
// value into a [schemas.Event], or into a [Rejection] that names the
// dead-letter reason (the internal/dlq Reason* constants) and the detail.
//
// A record is accepted when key plus value fit in Limits.MaxRecordBytes,
// the value is a single JSON object (unknown fields ignored), every catalog
// field is present and non-null and converts by [schemas.ConvertJSON], the
// message key equals the key field in text form (keys decide the
// partition, and partitions own users), and the event time is at most
// Limits.ClockSkew ahead of the clock.
//
// Decoding has a fast path for flat objects without escapes — one pass of
// the scanner over the bytes (the field expected next is recognised by
// its quoted name, without scanning the key), no map, plain integers
// converted without strconv, and enum values taken from boxed copies
// made once per Decoder, so that only the other values are boxed —
// and falls back to encoding/json for everything else; the fallback's
// results and errors are the reference the fast path is tested (and
// fuzzed) against. Typed decoders of their own (the landing's, which writes
// straight into column buffers) hand every record they do not take to the
// Decoder, so that the DLQ reasons stay the same everywhere.
package eventjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/portrait-dev/portrait/internal/dlq"
	"github.com/portrait-dev/portrait/schemas"
)

// Rejection is a record a consumer cannot use.
type Rejection struct {
	// Reason is one of the dlq.Reason* constants.
	Reason string
	// Err is the detail.
	Err error
}

func (r *Rejection) Error() string { return r.Reason + ": " + r.Err.Error() }
func (r *Rejection) Unwrap() error { return r.Err }

// Record is the dead-letter record of the rejected Kafka record.
func (r *Rejection) Record(topic string, partition int32, offset int64, key, value []byte) dlq.Record {
	return dlq.Record{Reason: r.Reason, Detail: r.Err.Error(),
		Topic: topic, Partition: partition, Offset: offset, Key: key, Value: value}
}

func reject(reason string, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Limits are the checks beyond the catalog's.
type Limits struct {
	// MaxRecordBytes is the largest key plus value accepted (0: no limit).
	MaxRecordBytes int
	// ClockSkew is how far an event time may be ahead of the clock.
	ClockSkew time.Duration
}

// Decoder decodes the records of one partition; it is not safe for
// concurrent use.
type Decoder struct {
	cat  *schemas.Catalog
	lim  Limits
	scan *scanner
	// enums are the values of each enum field, boxed once: an event's
	// value is a copy of the interface, not a new allocation.
	enums [][]any
	rd    bytes.Reader
	obj   map[string]any
}

// NewDecoder decodes events of catalog c.
func NewDecoder(c *schemas.Catalog, lim Limits) *Decoder {
	d := &Decoder{cat: c, lim: lim, scan: newScanner(c), enums: make([][]any, len(c.Fields)),
		obj: make(map[string]any, len(c.Fields)+4)}
	for i := range c.Fields {
		if f := &c.Fields[i]; f.Type == schemas.TypeString {
			for _, en := range f.Enum {
				d.enums[i] = append(d.enums[i], en)
			}
		}
	}
	return d
}

// Horizon is the newest event time accepted at now.
func (d *Decoder) Horizon(now time.Time) schemas.Timestamp {
	return schemas.TimestampOf(now.Add(d.lim.ClockSkew))
}

// Decode fills e.Values (reused when large enough) and e.Time from a
// record read at now, or tells why the record is rejected. e.Partition and
// e.Offset are the caller's.
func (d *Decoder) Decode(e *schemas.Event, key, value []byte, now time.Time) *Rejection {
	if n := len(key) + len(value); d.lim.MaxRecordBytes > 0 && n > d.lim.MaxRecordBytes {
		return reject(dlq.ReasonTooLarge, "%d bytes exceed max_record_bytes %d", n, d.lim.MaxRecordBytes)
	}
	if r := d.decode(e, key, value); r != nil {
		return r
	}
	if e.Time > d.Horizon(now) {
		return reject(dlq.ReasonFuture, "event time %s is more than %s ahead of the clock (%s)", e.Time, d.lim.ClockSkew, schemas.TimestampOf(now))
	}
	return nil
}

// decode is Decode without the size and clock checks.
func (d *Decoder) decode(e *schemas.Event, key, value []byte) *Rejection {
	if cap(e.Values) < len(d.cat.Fields) {
		e.Values = make([]any, len(d.cat.Fields))
	}
	e.Values = e.Values[:len(d.cat.Fields)]
	var r *Rejection
	if toks, ok := d.scan.Scan(value); ok {
		r = d.convertTokens(e, toks, value)
	} else {
		r = d.decodeSlow(e, value)
	}
	if r != nil {
		return r
	}
	e.Time = e.Values[d.cat.Time].(schemas.Timestamp)
	if !keyMatches(key, e.Values[d.cat.Key]) {
		return reject(dlq.ReasonKey, "message key %q differs from field %s = %v", key, d.cat.KeyField().Name, e.Values[d.cat.Key])
	}
	return nil
}

// convertTokens converts the scanned tokens with ConvertJSON's semantics.
func (d *Decoder) convertTokens(e *schemas.Event, toks []token, value []byte) *Rejection {
	for i := range d.cat.Fields {
		f := &d.cat.Fields[i]
		t := toks[i]
		var (
			v   any
			err error
		)
		switch t.Kind {
		case kindMissing:
			return reject(dlq.ReasonSchema, "field %s: missing", f.Name)
		case kindNull:
			v, err = schemas.ConvertJSON(f, nil)
		case kindTrue:
			v, err = schemas.ConvertJSON(f, true)
		case kindFalse:
			v, err = schemas.ConvertJSON(f, false)
		case kindNumber:
			b := t.Raw(value)
			switch f.Type {
			case schemas.TypeInt64, schemas.TypeFloat64, schemas.TypeTimestamp:
				if x, ok := plainNumber(f, b); ok {
					v = x
					break
				}
				v, err = schemas.ParseValue(f, view(b)) // what ConvertJSON does with a json.Number
			default:
				v, err = schemas.ConvertJSON(f, json.Number(string(b)))
			}
		case kindString:
			b := t.Raw(value)
			switch {
			case f.Type == schemas.TypeString && len(f.Enum) > 0:
				for j, en := range f.Enum {
					if en == view(b) {
						v = d.enums[i][j]
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

// plainNumber converts the number token b of an int64 or timestamp field
// when it is a plain integer — no fraction or exponent, at most 15 digits
// — without going through its text again: for those, ParseValue's
// strconv.ParseInt gives the same int64, and ParseTimestamp the same
// timestamp as TimestampFromNumber (the integer is exact as a float64).
// ok is false for everything else, which ParseValue converts or refuses.
func plainNumber(f *schemas.Field, b []byte) (any, bool) {
	if f.Type != schemas.TypeInt64 && (f.Type != schemas.TypeTimestamp || f.Format == schemas.TimeRFC3339) {
		return nil, false
	}
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 {
		return nil, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, false
		}
		n = n*10 + int64(c-'0')
	}
	if len(digits) < len(b) {
		n = -n
	}
	if f.Type == schemas.TypeInt64 {
		return n, true
	}
	ts, err := schemas.TimestampFromNumber(float64(n), f.Format)
	return ts, err == nil
}

// decodeSlow decodes value with encoding/json into a map and converts the
// catalog's fields in catalog order; its results are the reference for
// the fast path.
func (d *Decoder) decodeSlow(e *schemas.Event, value []byte) *Rejection {
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
			return &Rejection{Reason: dlq.ReasonSchema, Err: err}
		}
		e.Values[i] = v
	}
	return nil
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
