package warehouse

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/portrait-dev/portrait/schemas"
)

// EventColumns buffers events column by column, in typed slices that hold
// no Go pointers (strings are copied into one byte arena), so that a
// consumer can keep millions of events buffered without boxing a value per
// field or giving the garbage collector anything to scan. WriteEventColumns
// writes them as the same Parquet file WriteEvents writes for the same
// events, byte for byte.
type EventColumns struct {
	cat   *schemas.Catalog
	kinds []columnKind // by field
	// slot is the index of a field's column in the slice of its kind.
	slot   []int
	ints   [][]int64
	floats [][]float64
	bools  [][]bool
	strs   [][]strRef
	arena  []byte
	part   []int32
	offset []int64
	times  []schemas.Timestamp
	// intField, floatField, boolField and strField map a slot back to
	// its field.
	intField, floatField, boolField, strField []int
}

// strRef is a string of the arena.
type strRef struct{ off, n uint32 }

// NewEventColumns returns an empty buffer for events of cat.
func NewEventColumns(cat *schemas.Catalog) *EventColumns {
	c := &EventColumns{cat: cat, kinds: columnKinds(cat)[:len(cat.Fields)], slot: make([]int, len(cat.Fields))}
	for i, k := range c.kinds {
		switch k {
		case kindInt64:
			c.slot[i] = len(c.ints)
			c.ints, c.intField = append(c.ints, nil), append(c.intField, i)
		case kindDouble:
			c.slot[i] = len(c.floats)
			c.floats, c.floatField = append(c.floats, nil), append(c.floatField, i)
		case kindBool:
			c.slot[i] = len(c.bools)
			c.bools, c.boolField = append(c.bools, nil), append(c.boolField, i)
		case kindString:
			c.slot[i] = len(c.strs)
			c.strs, c.strField = append(c.strs, nil), append(c.strField, i)
		}
	}
	return c
}

// Len is the number of events buffered.
func (c *EventColumns) Len() int { return len(c.offset) }

// Offset is the _offset of event i.
func (c *EventColumns) Offset(i int) int64 { return c.offset[i] }

// Partition is the _partition of event i.
func (c *EventColumns) Partition(i int) int32 { return c.part[i] }

// Time is the event time of event i.
func (c *EventColumns) Time(i int) schemas.Timestamp { return c.times[i] }

// Reset empties the buffer and keeps its memory.
func (c *EventColumns) Reset() { c.Truncate(0) }

// Truncate drops every event from the n-th on (n ≤ Len).
func (c *EventColumns) Truncate(n int) {
	for i := range c.ints {
		c.ints[i] = c.ints[i][:n]
	}
	for i := range c.floats {
		c.floats[i] = c.floats[i][:n]
	}
	for i := range c.bools {
		c.bools[i] = c.bools[i][:n]
	}
	arena := 0
	for i := range c.strs {
		c.strs[i] = c.strs[i][:n]
		if n > 0 {
			r := c.strs[i][n-1]
			arena = max(arena, int(r.off+r.n))
		}
	}
	c.arena = c.arena[:arena]
	c.part, c.offset, c.times = c.part[:n], c.offset[:n], c.times[:n]
}

// Append adds an event. Every field must have a non-null value of its
// type (as WriteEvents requires); otherwise nothing is added.
func (c *EventColumns) Append(e *schemas.Event) error {
	vs := e.Values
	if len(vs) != len(c.kinds) {
		return fmt.Errorf("event has %d values, catalog %s has %d fields", len(vs), c.cat.Name, len(c.kinds))
	}
	strBytes, err := c.check(vs)
	if err != nil {
		return err
	}
	if err := c.roomFor(strBytes); err != nil {
		return err
	}
	for i, v := range vs {
		s := c.slot[i]
		switch x := v.(type) {
		case int64:
			c.ints[s] = append(c.ints[s], x)
		case schemas.Timestamp:
			c.ints[s] = append(c.ints[s], int64(x))
		case float64:
			c.floats[s] = append(c.floats[s], x)
		case bool:
			c.bools[s] = append(c.bools[s], x)
		case string:
			appendString(c, s, x)
		}
	}
	c.appendMeta(e.Partition, e.Offset, e.Time)
	return nil
}

// EventRow is one event in typed form, for AppendRow: the value of field
// i is Ints[i] (int64 and timestamp fields), Floats[i], Bools[i] or
// Strings[i], by the field's type; the other slices' entry i is unused.
type EventRow struct {
	Ints      []int64
	Floats    []float64
	Bools     []bool
	Strings   [][]byte
	Time      schemas.Timestamp
	Partition int32
	Offset    int64
}

// NewRow returns a row sized for the buffer's catalog.
func (c *EventColumns) NewRow() *EventRow {
	n := len(c.kinds)
	return &EventRow{Ints: make([]int64, n), Floats: make([]float64, n), Bools: make([]bool, n), Strings: make([][]byte, n)}
}

// AppendRow adds an event given in typed form (the strings are copied).
// Unlike Append it cannot check the types: the caller decoded the row by
// them.
func (c *EventColumns) AppendRow(r *EventRow) error {
	var strBytes int64
	for _, f := range c.strField {
		strBytes += int64(len(r.Strings[f]))
	}
	if err := c.roomFor(strBytes); err != nil {
		return err
	}
	for s, f := range c.intField {
		c.ints[s] = append(c.ints[s], r.Ints[f])
	}
	for s, f := range c.floatField {
		c.floats[s] = append(c.floats[s], r.Floats[f])
	}
	for s, f := range c.boolField {
		c.bools[s] = append(c.bools[s], r.Bools[f])
	}
	for s, f := range c.strField {
		appendString(c, s, r.Strings[f])
	}
	c.appendMeta(r.Partition, r.Offset, r.Time)
	return nil
}

// roomFor makes room for one more event with strBytes bytes of strings;
// it fails when the arena cannot take them. The columns double when full
// (append grows large slices by a quarter, which copies a buffer of
// millions of events about five times over on its way up).
func (c *EventColumns) roomFor(strBytes int64) error {
	if int64(len(c.arena))+strBytes > math.MaxUint32 {
		return fmt.Errorf("event columns: string arena full at %d events", c.Len())
	}
	if n := len(c.offset); n == cap(c.offset) {
		more := max(n, 1024)
		for i := range c.ints {
			c.ints[i] = slices.Grow(c.ints[i], more)
		}
		for i := range c.floats {
			c.floats[i] = slices.Grow(c.floats[i], more)
		}
		for i := range c.bools {
			c.bools[i] = slices.Grow(c.bools[i], more)
		}
		for i := range c.strs {
			c.strs[i] = slices.Grow(c.strs[i], more)
		}
		c.part, c.offset, c.times = slices.Grow(c.part, more), slices.Grow(c.offset, more), slices.Grow(c.times, more)
	}
	if free := int64(cap(c.arena) - len(c.arena)); strBytes > free {
		c.arena = slices.Grow(c.arena, int(max(strBytes, int64(cap(c.arena)), 16<<10)))
	}
	return nil
}

// appendString adds x to string column s (the slot), copied into the arena.
func appendString[T string | []byte](c *EventColumns, s int, x T) {
	c.strs[s] = append(c.strs[s], strRef{off: uint32(len(c.arena)), n: uint32(len(x))})
	c.arena = append(c.arena, x...)
}

// appendMeta adds an event's partition, offset and time.
func (c *EventColumns) appendMeta(partition int32, offset int64, t schemas.Timestamp) {
	c.part = append(c.part, partition)
	c.offset = append(c.offset, offset)
	c.times = append(c.times, t)
}

// check verifies the types and returns the bytes of the strings.
func (c *EventColumns) check(vs []any) (strBytes int64, err error) {
	for j, v := range vs {
		ok := false
		switch c.cat.Fields[j].Type {
		case schemas.TypeInt64:
			_, ok = v.(int64)
		case schemas.TypeFloat64:
			_, ok = v.(float64)
		case schemas.TypeString:
			var s string
			s, ok = v.(string)
			strBytes += int64(len(s))
		case schemas.TypeBool:
			_, ok = v.(bool)
		case schemas.TypeTimestamp:
			_, ok = v.(schemas.Timestamp)
		}
		if !ok {
			return 0, fmt.Errorf("field %s: got %T, want %s", c.cat.Fields[j].Name, v, c.cat.Fields[j].Type)
		}
	}
	return strBytes, nil
}

// WriteEventColumnsFile writes the buffered events to one Parquet file at
// path, atomically (WriteFileAtomic), and returns its marker entry; the
// file is the one WriteEventsFile writes for the same events.
func WriteEventColumnsFile(path string, cols *EventColumns, ingest schemas.Timestamp) (MarkerFile, error) {
	var size int64
	err := WriteFileAtomic(path, func(w io.Writer) error {
		cw := &CountingWriter{W: w}
		if err := WriteEventColumns(cw, cols, ingest); err != nil {
			return err
		}
		size = cw.N
		return nil
	})
	if err != nil {
		return MarkerFile{}, err
	}
	return MarkerFile{Name: filepath.Base(path), Rows: int64(cols.Len()), Bytes: size}, nil
}

// WriteEventColumns writes the buffered events as one Parquet file to w:
// the bytes WriteEvents writes for the same events.
func WriteEventColumns(w io.Writer, cols *EventColumns, ingest schemas.Timestamp) error {
	return writeEventColumns(w, cols, ingest, rowGroupRows)
}

func writeEventColumns(w io.Writer, cols *EventColumns, ingest schemas.Timestamp, groupRows int) error {
	return writeParquetEvents(w, cols.cat, cols.Len(), groupRows, func(vals []parquet.Value, s, e, c int) {
		cols.fill(vals, s, e, c, ingest)
	})
}

// fill builds the values of column c for events s..e; strings reference
// the arena in place.
func (c *EventColumns) fill(vals []parquet.Value, s, e, col int, ingest schemas.Timestamp) {
	nf := len(c.kinds)
	switch {
	case col == nf:
		for i, p := range c.part[s:e] {
			vals[i] = parquet.Int32Value(p)
		}
	case col == nf+1:
		for i, o := range c.offset[s:e] {
			vals[i] = parquet.Int64Value(o)
		}
	case col == nf+2:
		v := parquet.Int64Value(int64(ingest))
		for i := range vals {
			vals[i] = v
		}
	default:
		slot := c.slot[col]
		switch c.kinds[col] {
		case kindInt64:
			for i, x := range c.ints[slot][s:e] {
				vals[i] = parquet.Int64Value(x)
			}
		case kindDouble:
			for i, x := range c.floats[slot][s:e] {
				vals[i] = parquet.DoubleValue(x)
			}
		case kindBool:
			for i, x := range c.bools[slot][s:e] {
				vals[i] = parquet.BooleanValue(x)
			}
		case kindString:
			for i, r := range c.strs[slot][s:e] {
				vals[i] = parquet.ByteArrayValue(c.arena[r.off : r.off+r.n : r.off+r.n])
			}
		}
	}
}
