package warehouse

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/portrait-dev/portrait/schemas"
)

// Rows within an events file written by import or compaction are
// clustered: ordered by the entity key, then by source place (partition,
// offset). A recompute then touches each user's state in ascending order
// (its per-user records and value sets stay in the cache and the
// processor's prefetchers follow), and the key column of a file packs
// into few bits. The landing writes its files in arrival order;
// compaction clusters them. No reader depends on the order of rows: ties
// are broken by the (partition, offset) columns, never by position.

// SortByKey orders the buffered events by the catalog's key, then by
// (partition, offset).
func (c *EventColumns) SortByKey() {
	order := make([]int32, c.Len())
	for i := range order {
		order[i] = int32(i)
	}
	place := func(a, b int32) int {
		return cmp.Or(cmp.Compare(c.part[a], c.part[b]), cmp.Compare(c.offset[a], c.offset[b]))
	}
	k := c.cat.Key
	if c.kinds[k] == kindString {
		keys := c.strs[c.slot[k]]
		str := func(r strRef) []byte { return c.arena[r.off : r.off+r.n] }
		slices.SortFunc(order, func(a, b int32) int {
			return cmp.Or(bytes.Compare(str(keys[a]), str(keys[b])), place(a, b))
		})
	} else {
		keys := c.ints[c.slot[k]]
		slices.SortFunc(order, func(a, b int32) int { return cmp.Or(cmp.Compare(keys[a], keys[b]), place(a, b)) })
	}
	for i := range c.ints {
		permute(c.ints[i], order)
	}
	for i := range c.floats {
		permute(c.floats[i], order)
	}
	for i := range c.bools {
		permute(c.bools[i], order)
	}
	for i := range c.strs {
		permute(c.strs[i], order) // the arena stays as it is
	}
	permute(c.part, order)
	permute(c.offset, order)
	permute(c.times, order)
}

// permute reorders s so that s[j] is the old s[order[j]].
func permute[T any](s []T, order []int32) {
	old := slices.Clone(s)
	for j, i := range order {
		s[j] = old[i]
	}
}

// AppendRecord adds the events of a record batch as ReadEvents gives them
// (EventsSchema: string columns plain, not dictionaries) and returns the
// newest _ingest_time among them (math.MinInt64 for none). Nothing is
// added on error.
func (c *EventColumns) AppendRecord(rec arrow.RecordBatch) (newest schemas.Timestamp, err error) {
	nf := len(c.kinds)
	if int(rec.NumCols()) != nf+3 {
		return 0, fmt.Errorf("event columns: record has %d columns, want %d", rec.NumCols(), nf+3)
	}
	n := int(rec.NumRows())
	var strBytes int64
	for f, k := range c.kinds {
		ok := false
		switch a := rec.Column(f).(type) {
		case *array.Int64, *array.Timestamp:
			ok = k == kindInt64
		case *array.Float64:
			ok = k == kindDouble
		case *array.Boolean:
			ok = k == kindBool
		case *array.String:
			ok = k == kindString
			if n > 0 {
				strBytes += int64(a.ValueOffset(n-1)) + int64(a.ValueLen(n-1)) - int64(a.ValueOffset(0))
			}
		}
		if !ok {
			return 0, fmt.Errorf("event columns: field %s is a %s column", c.cat.Fields[f].Name, rec.Column(f).DataType())
		}
	}
	parts, ok1 := rec.Column(nf).(*array.Int32)
	offs, ok2 := rec.Column(nf + 1).(*array.Int64)
	ingest, ok3 := rec.Column(nf + 2).(*array.Timestamp)
	times, ok4 := rec.Column(c.cat.Time).(*array.Timestamp)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, fmt.Errorf("event columns: record is not of the events schema: %s", rec.Schema())
	}
	if int64(len(c.arena))+strBytes > math.MaxUint32 {
		return 0, fmt.Errorf("event columns: string arena full at %d events", c.Len())
	}
	for f := range c.kinds {
		s := c.slot[f]
		switch a := rec.Column(f).(type) {
		case *array.Int64:
			c.ints[s] = append(c.ints[s], a.Int64Values()...)
		case *array.Timestamp:
			for _, v := range a.TimestampValues() {
				c.ints[s] = append(c.ints[s], int64(v))
			}
		case *array.Float64:
			c.floats[s] = append(c.floats[s], a.Float64Values()...)
		case *array.Boolean:
			for i := range n {
				c.bools[s] = append(c.bools[s], a.Value(i))
			}
		case *array.String:
			for i := range n {
				appendString(c, s, a.Value(i))
			}
		}
	}
	c.part = append(c.part, parts.Int32Values()...)
	c.offset = append(c.offset, offs.Int64Values()...)
	for _, t := range times.TimestampValues() {
		c.times = append(c.times, schemas.Timestamp(t))
	}
	newest = math.MinInt64
	for _, t := range ingest.TimestampValues() {
		newest = max(newest, schemas.Timestamp(t))
	}
	return newest, nil
}
