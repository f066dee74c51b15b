// Package eventrec turns []schemas.Event into Arrow record batches laid out
// as the warehouse reader yields them (one column per catalog field in
// catalog order, then _partition, _offset and _ingest_time), for the batch
// engines' tests and benchmarks.
package eventrec

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/portrait-dev/portrait/schemas"
)

// Schema is the Arrow schema of a catalog's event batches.
func Schema(cat *schemas.Catalog) *arrow.Schema {
	ts := &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	fields := make([]arrow.Field, 0, len(cat.Fields)+3)
	for _, f := range cat.Fields {
		var dt arrow.DataType
		switch f.Type {
		case schemas.TypeInt64:
			dt = arrow.PrimitiveTypes.Int64
		case schemas.TypeFloat64:
			dt = arrow.PrimitiveTypes.Float64
		case schemas.TypeString:
			dt = arrow.BinaryTypes.String
		case schemas.TypeBool:
			dt = arrow.FixedWidthTypes.Boolean
		case schemas.TypeTimestamp:
			dt = ts
		}
		fields = append(fields, arrow.Field{Name: f.Name, Type: dt})
	}
	fields = append(fields,
		arrow.Field{Name: "_partition", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "_offset", Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: "_ingest_time", Type: ts})
	return arrow.NewSchema(fields, nil)
}

// Records converts events into record batches of at most size rows.
func Records(cat *schemas.Catalog, events []schemas.Event, size int) ([]arrow.RecordBatch, error) {
	sch := Schema(cat)
	var out []arrow.RecordBatch
	for start := 0; start < len(events); start += size {
		end := min(start+size, len(events))
		rec, err := record(cat, sch, events[start:end])
		if err != nil {
			for _, r := range out {
				r.Release()
			}
			return nil, fmt.Errorf("events %d-%d: %w", start, end, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func record(cat *schemas.Catalog, sch *arrow.Schema, events []schemas.Event) (arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	for i := range events {
		e := &events[i]
		for f, field := range cat.Fields {
			v := e.Values[f]
			ok := true
			switch field.Type {
			case schemas.TypeInt64:
				var x int64
				x, ok = v.(int64)
				b.Field(f).(*array.Int64Builder).Append(x)
			case schemas.TypeFloat64:
				var x float64
				x, ok = v.(float64)
				b.Field(f).(*array.Float64Builder).Append(x)
			case schemas.TypeString:
				var x string
				x, ok = v.(string)
				b.Field(f).(*array.StringBuilder).Append(x)
			case schemas.TypeBool:
				var x bool
				x, ok = v.(bool)
				b.Field(f).(*array.BooleanBuilder).Append(x)
			case schemas.TypeTimestamp:
				var x schemas.Timestamp
				x, ok = v.(schemas.Timestamp)
				b.Field(f).(*array.TimestampBuilder).Append(arrow.Timestamp(x))
			}
			if !ok {
				return nil, fmt.Errorf("event %d field %s: %v is %T, want %s", i, field.Name, v, v, field.Type)
			}
		}
		n := len(cat.Fields)
		b.Field(n).(*array.Int32Builder).Append(e.Partition)
		b.Field(n + 1).(*array.Int64Builder).Append(e.Offset)
		b.Field(n + 2).(*array.TimestampBuilder).Append(arrow.Timestamp(e.Time))
	}
	return b.NewRecordBatch(), nil
}
