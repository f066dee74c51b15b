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
}

func newDecoder(c *schemas.Catalog) *decoder {
	return &decoder{cat: c, obj: make(map[string]any, len(c.Fields)+4)}
}

// decode fills e.Values (reused when large enough) and e.Time from value;
// the message key must equal the event's key field in text form (keys
// decide the partition, and partitions own users).
func (d *decoder) decode(e *schemas.Event, key, value []byte) error {
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
	if cap(e.Values) < len(d.cat.Fields) {
		e.Values = make([]any, len(d.cat.Fields))
	}
	e.Values = e.Values[:len(d.cat.Fields)]
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
	e.Time = e.Values[d.cat.Time].(schemas.Timestamp)
	if !keyMatches(key, e.Values[d.cat.Key]) {
		return reject(dlq.ReasonKey, "message key %q differs from field %s = %v", key, d.cat.KeyField().Name, e.Values[d.cat.Key])
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
