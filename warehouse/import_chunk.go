package warehouse

import (
	"cmp"
	"slices"
	"sort"
	"strings"

	"github.com/portrait-dev/portrait/schemas"
)

// chunk buffers imported rows column by column: an int64 or a timestamp
// costs 8 bytes instead of a boxed value behind a 16-byte interface, enum
// strings share the catalog's copy, and other strings are copied out of
// their line so the line itself is not kept. It turns back into events a
// few hours at a time when written (chunkBatchRows).
type chunk struct {
	cat     *schemas.Catalog
	ints    [][]int64 // int64 and timestamp fields, by field index
	floats  [][]float64
	bools   [][]bool
	strs    [][]string
	offsets []int64
	hours   []schemas.Timestamp
	// batchRows is chunkBatchRows but for tests.
	batchRows int
}

// chunkBatchRows bounds the events materialized at once when a chunk is
// written: whole hours are taken until they reach it (an hour is never
// split, so files per hour do not depend on it).
const chunkBatchRows = 1 << 16

func newChunk(cat *schemas.Catalog) *chunk {
	nf := len(cat.Fields)
	return &chunk{cat: cat, ints: make([][]int64, nf), floats: make([][]float64, nf),
		bools: make([][]bool, nf), strs: make([][]string, nf), batchRows: chunkBatchRows}
}

func (c *chunk) len() int { return len(c.offsets) }

// add appends one validated row.
func (c *chunk) add(values []any, offset int64) {
	for i := range c.cat.Fields {
		f := &c.cat.Fields[i]
		switch f.Type {
		case schemas.TypeInt64:
			c.ints[i] = append(c.ints[i], values[i].(int64))
		case schemas.TypeTimestamp:
			c.ints[i] = append(c.ints[i], int64(values[i].(schemas.Timestamp)))
		case schemas.TypeFloat64:
			c.floats[i] = append(c.floats[i], values[i].(float64))
		case schemas.TypeBool:
			c.bools[i] = append(c.bools[i], values[i].(bool))
		case schemas.TypeString:
			c.strs[i] = append(c.strs[i], ownString(f, values[i].(string)))
		}
	}
	c.offsets = append(c.offsets, offset)
	c.hours = append(c.hours, HourStart(values[c.cat.Time].(schemas.Timestamp)))
}

// ownString returns the catalog's copy of an enum value, or a copy of s.
func ownString(f *schemas.Field, s string) string {
	for _, e := range f.Enum {
		if e == s {
			return e
		}
	}
	return strings.Clone(s)
}

// batches calls fn with the rows of whole hours, oldest hours first, in
// key order within an hour (rows of one key in row order: see
// ClusterByKey), as events of partition, about chunkBatchRows at a time.
func (c *chunk) batches(partition int32, fn func([]schemas.Event) error) error {
	byHour := map[schemas.Timestamp][]int32{}
	for i, h := range c.hours {
		byHour[h] = append(byHour[h], int32(i))
	}
	hours := make([]schemas.Timestamp, 0, len(byHour))
	for h := range byHour {
		hours = append(hours, h)
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i] < hours[j] })
	var rows []int32
	for k, h := range hours {
		rows = append(rows, c.byKey(byHour[h])...)
		delete(byHour, h)
		if len(rows) >= c.batchRows || k == len(hours)-1 {
			if err := fn(c.events(rows, partition)); err != nil {
				return err
			}
			rows = rows[:0]
		}
	}
	return nil
}

// byKey sorts rows (ascending) by the catalog's key, keeping row order
// among rows of one key.
func (c *chunk) byKey(rows []int32) []int32 {
	k := c.cat.Key
	switch c.cat.Fields[k].Type {
	case schemas.TypeString:
		keys := c.strs[k]
		slices.SortFunc(rows, func(a, b int32) int {
			return cmp.Or(strings.Compare(keys[a], keys[b]), cmp.Compare(a, b))
		})
	default: // int64 (a catalog's key is an int64 or a string)
		keys := c.ints[k]
		slices.SortFunc(rows, func(a, b int32) int {
			return cmp.Or(cmp.Compare(keys[a], keys[b]), cmp.Compare(a, b))
		})
	}
	return rows
}

// events materializes rows as events.
func (c *chunk) events(rows []int32, partition int32) []schemas.Event {
	nf := len(c.cat.Fields)
	slab := make([]any, len(rows)*nf)
	out := make([]schemas.Event, len(rows))
	for j, r := range rows {
		vs := slab[j*nf : (j+1)*nf : (j+1)*nf]
		for i := range c.cat.Fields {
			switch c.cat.Fields[i].Type {
			case schemas.TypeInt64:
				vs[i] = c.ints[i][r]
			case schemas.TypeTimestamp:
				vs[i] = schemas.Timestamp(c.ints[i][r])
			case schemas.TypeFloat64:
				vs[i] = c.floats[i][r]
			case schemas.TypeBool:
				vs[i] = c.bools[i][r]
			case schemas.TypeString:
				vs[i] = c.strs[i][r]
			}
		}
		out[j] = schemas.Event{Values: vs, Time: vs[c.cat.Time].(schemas.Timestamp), Partition: partition, Offset: c.offsets[r]}
	}
	return out
}

// reset empties the chunk, dropping its values so the GC can free them
// (strings) and keeping the column capacity for the next chunk.
func (c *chunk) reset() {
	for i := range c.cat.Fields {
		c.ints[i] = c.ints[i][:0]
		c.floats[i] = c.floats[i][:0]
		c.bools[i] = c.bools[i][:0]
		clear(c.strs[i])
		c.strs[i] = c.strs[i][:0]
	}
	c.offsets = c.offsets[:0]
	c.hours = c.hours[:0]
}
