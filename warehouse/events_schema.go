package warehouse

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"

	"github.com/portrait-dev/portrait/schemas"
)

// Names of the columns every events file carries after the catalog's
// fields: the source partition (Kafka partition, or file ordinal for
// imports), the offset in it (Kafka offset, or line number) and when the
// event was written to the warehouse.
const (
	ColPartition  = "_partition"
	ColOffset     = "_offset"
	ColIngestTime = "_ingest_time"
)

// NumEventColumns is the number of columns of an events file: one per
// catalog field, then _partition, _offset and _ingest_time.
func NumEventColumns(cat *schemas.Catalog) int { return len(cat.Fields) + 3 }

// ParquetSchema is the Parquet schema of the events table of a catalog:
// one required column per field in catalog order (int64 → INT64, float64 →
// DOUBLE, string → dictionary-encoded BYTE_ARRAY UTF8, bool → BOOLEAN,
// timestamp → INT64 TIMESTAMP(MILLIS, UTC)), then _partition INT32,
// _offset INT64 and _ingest_time INT64 TIMESTAMP(MILLIS, UTC).
func ParquetSchema(cat *schemas.Catalog) *parquet.Schema {
	g := make([]parquet.Field, 0, NumEventColumns(cat))
	for _, f := range cat.Fields {
		g = append(g, OrderedField(f.Name, parquetNode(f.Type)))
	}
	g = append(g,
		OrderedField(ColPartition, parquet.Encoded(parquet.Leaf(parquet.Int32Type), &parquet.RLEDictionary)),
		OrderedField(ColOffset, parquet.Encoded(parquet.Leaf(parquet.Int64Type), &parquet.DeltaBinaryPacked)),
		OrderedField(ColIngestTime, parquet.Encoded(parquet.Timestamp(parquet.Millisecond), &parquet.DeltaBinaryPacked)),
	)
	return OrderedSchema(cat.Name+"_events", g)
}

func parquetNode(t schemas.Type) parquet.Node {
	switch t {
	case schemas.TypeInt64:
		return parquet.Encoded(parquet.Leaf(parquet.Int64Type), &parquet.DeltaBinaryPacked)
	case schemas.TypeFloat64:
		return parquet.Leaf(parquet.DoubleType)
	case schemas.TypeString:
		return parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
	case schemas.TypeBool:
		return parquet.Leaf(parquet.BooleanType)
	case schemas.TypeTimestamp:
		return parquet.Encoded(parquet.Timestamp(parquet.Millisecond), &parquet.DeltaBinaryPacked)
	}
	panic(fmt.Sprintf("warehouse: no parquet column for field type %v", t))
}

// EventsSchema is the Arrow schema of the record batches ReadEvents
// produces: the catalog's fields in order (Int64, Float64, String,
// Boolean, Timestamp(ms, "UTC")), then _partition Int32, _offset Int64 and
// _ingest_time Timestamp(ms, "UTC"). No column is nullable.
func EventsSchema(cat *schemas.Catalog) *arrow.Schema {
	fs := make([]arrow.Field, 0, NumEventColumns(cat))
	for _, f := range cat.Fields {
		fs = append(fs, arrow.Field{Name: f.Name, Type: arrowType(f.Type)})
	}
	fs = append(fs,
		arrow.Field{Name: ColPartition, Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: ColOffset, Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: ColIngestTime, Type: arrow.FixedWidthTypes.Timestamp_ms},
	)
	return arrow.NewSchema(fs, nil)
}

func arrowType(t schemas.Type) arrow.DataType {
	switch t {
	case schemas.TypeInt64:
		return arrow.PrimitiveTypes.Int64
	case schemas.TypeFloat64:
		return arrow.PrimitiveTypes.Float64
	case schemas.TypeString:
		return arrow.BinaryTypes.String
	case schemas.TypeBool:
		return arrow.FixedWidthTypes.Boolean
	case schemas.TypeTimestamp:
		return arrow.FixedWidthTypes.Timestamp_ms
	}
	panic(fmt.Sprintf("warehouse: no arrow type for field type %v", t))
}

// columnKind is the physical shape of an events column, shared by the
// writer and the reader.
type columnKind int

const (
	kindInt64 columnKind = iota // int64, timestamp, _offset, _ingest_time
	kindDouble
	kindString
	kindBool
	kindInt32 // _partition
)

// columnKinds lists the physical kind of every events column.
func columnKinds(cat *schemas.Catalog) []columnKind {
	out := make([]columnKind, 0, NumEventColumns(cat))
	for _, f := range cat.Fields {
		switch f.Type {
		case schemas.TypeInt64, schemas.TypeTimestamp:
			out = append(out, kindInt64)
		case schemas.TypeFloat64:
			out = append(out, kindDouble)
		case schemas.TypeString:
			out = append(out, kindString)
		case schemas.TypeBool:
			out = append(out, kindBool)
		default:
			panic(fmt.Sprintf("warehouse: field %s has invalid type", f.Name))
		}
	}
	return append(out, kindInt32, kindInt64, kindInt64)
}

func (k columnKind) parquetKind() parquet.Kind {
	switch k {
	case kindInt64:
		return parquet.Int64
	case kindDouble:
		return parquet.Double
	case kindString:
		return parquet.ByteArray
	case kindBool:
		return parquet.Boolean
	default:
		return parquet.Int32
	}
}
