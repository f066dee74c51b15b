package local

import (
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/portrait-dev/portrait/schemas"
)

// Names of the source columns every events record batch carries after the
// catalog's fields.
const (
	PartitionColumn  = "_partition"
	OffsetColumn     = "_offset"
	IngestTimeColumn = "_ingest_time"
)

// vec is one typed column (or literal) of a batch, seen without boxing:
// int64 and timestamp values as []int64, float64 as []float64, bool as
// []bool and string as []string (headers pointing into the arrow buffer;
// clone before keeping one past the batch).
type vec struct {
	typ schemas.Type // TypeInt64 stands for timestamps too
	lit bool

	i []int64
	f []float64
	b []bool
	s []string

	li int64
	lf float64
	lb bool
	ls string
}

// batch is one record batch being aggregated, with its columns resolved.
type batch struct {
	rec  arrow.RecordBatch
	n    int
	ts   []int64
	part []int32
	off  []int64
	// cols caches the materialized catalog fields by field index.
	cols []*vec
	cat  *schemas.Catalog
	// fieldCol maps a field index to its column in rec.
	fieldCol []int
	// codes caches the value codes of fields by field index (see codec).
	codes_ [][]uint64
	strs   *interner
	bufs   *colBufs
}

// colBufs are the buffers of materialized columns, reused batch after
// batch (a batch need not outlive the call that aggregates it).
type colBufs struct {
	s [][]string
	b [][]bool
	c [][]uint64
}

func newColBufs(n int) *colBufs {
	return &colBufs{s: make([][]string, n), b: make([][]bool, n), c: make([][]uint64, n)}
}

func newBatch(cat *schemas.Catalog, rec arrow.RecordBatch, fieldCol []int, strs *interner, bufs *colBufs) (*batch, error) {
	b := &batch{rec: rec, n: int(rec.NumRows()), cat: cat, cols: make([]*vec, len(cat.Fields)), fieldCol: fieldCol, strs: strs, bufs: bufs}
	tv, err := b.col(cat.Time)
	if err != nil {
		return nil, err
	}
	b.ts = tv.i
	sch := rec.Schema()
	pi := sch.FieldIndices(PartitionColumn)
	oi := sch.FieldIndices(OffsetColumn)
	if len(pi) != 1 || len(oi) != 1 {
		return nil, fmt.Errorf("record batch lacks the %s and %s columns", PartitionColumn, OffsetColumn)
	}
	pa, ok := rec.Column(pi[0]).(*array.Int32)
	if !ok {
		return nil, fmt.Errorf("column %s is %s, want int32", PartitionColumn, rec.Column(pi[0]).DataType())
	}
	oa, ok := rec.Column(oi[0]).(*array.Int64)
	if !ok {
		return nil, fmt.Errorf("column %s is %s, want int64", OffsetColumn, rec.Column(oi[0]).DataType())
	}
	b.part = pa.Int32Values()
	b.off = oa.Int64Values()
	return b, nil
}

// fieldColumns resolves the column of every catalog field in a schema.
func fieldColumns(cat *schemas.Catalog, sch *arrow.Schema) ([]int, error) {
	out := make([]int, len(cat.Fields))
	for i, f := range cat.Fields {
		idx := sch.FieldIndices(f.Name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("record batch has no column %q", f.Name)
		}
		out[i] = idx[0]
	}
	return out, nil
}

// col returns field f of the batch as a vec, materializing it once.
func (b *batch) col(f int) (*vec, error) {
	if v := b.cols[f]; v != nil {
		return v, nil
	}
	field := &b.cat.Fields[f]
	arr := b.rec.Column(b.fieldCol[f])
	if arr.NullN() > 0 {
		return nil, fmt.Errorf("column %s has %d nulls; event fields are never null", field.Name, arr.NullN())
	}
	v := &vec{typ: field.Type}
	switch field.Type {
	case schemas.TypeInt64:
		a, ok := arr.(*array.Int64)
		if !ok {
			return nil, fmt.Errorf("column %s is %s, want int64", field.Name, arr.DataType())
		}
		v.i = a.Int64Values()
	case schemas.TypeTimestamp:
		a, ok := arr.(*array.Timestamp)
		if !ok {
			return nil, fmt.Errorf("column %s is %s, want timestamp", field.Name, arr.DataType())
		}
		if u := a.DataType().(*arrow.TimestampType).Unit; u != arrow.Millisecond {
			return nil, fmt.Errorf("column %s is a timestamp in %s, want ms", field.Name, u)
		}
		vals := a.TimestampValues()
		if len(vals) > 0 {
			v.i = unsafe.Slice((*int64)(unsafe.Pointer(&vals[0])), len(vals))
		}
		v.typ = schemas.TypeInt64
	case schemas.TypeFloat64:
		a, ok := arr.(*array.Float64)
		if !ok {
			return nil, fmt.Errorf("column %s is %s, want float64", field.Name, arr.DataType())
		}
		v.f = a.Float64Values()
	case schemas.TypeBool:
		a, ok := arr.(*array.Boolean)
		if !ok {
			return nil, fmt.Errorf("column %s is %s, want bool", field.Name, arr.DataType())
		}
		v.b = grow(b.bufs.b[f][:0], b.n)
		b.bufs.b[f] = v.b
		for i := range v.b {
			v.b[i] = a.Value(i)
		}
	case schemas.TypeString:
		v.s = grow(b.bufs.s[f][:0], b.n)
		b.bufs.s[f] = v.s
		switch a := arr.(type) {
		case *array.String:
			for i := range v.s {
				v.s[i] = a.Value(i)
			}
		case *array.LargeString:
			for i := range v.s {
				v.s[i] = a.Value(i)
			}
		case *array.Dictionary:
			d, ok := a.Dictionary().(*array.String)
			if !ok {
				return nil, fmt.Errorf("column %s is %s, want string", field.Name, arr.DataType())
			}
			if idx, ok := a.Indices().(*array.Int32); ok {
				vals := make([]string, d.Len())
				for j := range vals {
					vals[j] = d.Value(j)
				}
				for i, k := range idx.Int32Values() {
					v.s[i] = vals[k]
				}
				break
			}
			for i := range v.s {
				v.s[i] = d.Value(a.GetValueIndex(i))
			}
		default:
			return nil, fmt.Errorf("column %s is %s, want string", field.Name, arr.DataType())
		}
	default:
		return nil, fmt.Errorf("column %s has unsupported type %s", field.Name, field.Type)
	}
	b.cols[f] = v
	return v, nil
}

// codes returns the value code of every row of field f (see codec):
// int64 and timestamps as their bits, floats as their bits with -0 folded,
// bools as 0/1 and strings as interned ids, computed once per batch.
func (b *batch) codes(f int) ([]uint64, error) {
	if b.codes_ == nil {
		b.codes_ = make([][]uint64, len(b.cat.Fields))
	}
	if xs := b.codes_[f]; xs != nil {
		return xs, nil
	}
	if idx, dict, ok := b.dictionary(f); ok {
		// A dictionary column: every distinct value is interned once.
		ids := make([]uint64, dict.Len())
		for j := range ids {
			ids[j] = uint64(b.strs.id(dict.Value(j)))
		}
		out := grow(b.bufs.c[f][:0], b.n)
		b.bufs.c[f] = out
		for i, k := range idx {
			out[i] = ids[k]
		}
		b.codes_[f] = out
		return out, nil
	}
	v, err := b.col(f)
	if err != nil {
		return nil, err
	}
	var out []uint64
	switch b.cat.Fields[f].Type {
	case schemas.TypeInt64, schemas.TypeTimestamp:
		if len(v.i) > 0 {
			out = unsafe.Slice((*uint64)(unsafe.Pointer(&v.i[0])), len(v.i))
		} else {
			out = []uint64{}
		}
	case schemas.TypeFloat64:
		out = grow(b.bufs.c[f][:0], b.n)
		b.bufs.c[f] = out
		for i, x := range v.f {
			out[i] = floatCode(x)
		}
	case schemas.TypeBool:
		out = grow(b.bufs.c[f][:0], b.n)
		b.bufs.c[f] = out
		for i, x := range v.b {
			out[i] = 0
			if x {
				out[i] = 1
			}
		}
	case schemas.TypeString:
		out = grow(b.bufs.c[f][:0], b.n)
		b.bufs.c[f] = out
		b.strs.codes(v.s, b.cat.Fields[f].Enum, out)
	}
	b.codes_[f] = out
	return out, nil
}

// dictionary returns the indexes and values of string field f when its
// column is a dictionary array of Int32 indexes and String values
// without nulls.
func (b *batch) dictionary(f int) ([]int32, *array.String, bool) {
	if b.cat.Fields[f].Type != schemas.TypeString {
		return nil, nil, false
	}
	a, ok := b.rec.Column(b.fieldCol[f]).(*array.Dictionary)
	if !ok || a.NullN() > 0 {
		return nil, nil, false
	}
	idx, ok := a.Indices().(*array.Int32)
	if !ok {
		return nil, nil, false
	}
	d, ok := a.Dictionary().(*array.String)
	if !ok || d.NullN() > 0 {
		return nil, nil, false
	}
	return idx.Int32Values(), d, true
}
