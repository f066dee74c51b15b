package batch

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// rowsPerGroup bounds a Parquet row group of a snapshot file.
const rowsPerGroup = 64 * 1024

// column is one column of a snapshot table.
type column struct {
	Name     string       `json:"name"`
	Type     schemas.Type `json:"-"`
	TypeName string       `json:"type"`
	Nullable bool         `json:"nullable"`
}

func newColumn(name string, t schemas.Type, nullable bool) column {
	return column{Name: name, Type: t, TypeName: t.String(), Nullable: nullable}
}

func leafNode(t schemas.Type) parquet.Node {
	switch t {
	case schemas.TypeInt64:
		return parquet.Leaf(parquet.Int64Type)
	case schemas.TypeFloat64:
		return parquet.Leaf(parquet.DoubleType)
	case schemas.TypeString:
		return parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
	case schemas.TypeBool:
		return parquet.Leaf(parquet.BooleanType)
	case schemas.TypeTimestamp:
		return parquet.Timestamp(parquet.Millisecond)
	}
	panic(fmt.Sprintf("batch: no parquet column for type %s", t))
}

// typeOfNode reads the value type of a leaf column written by this
// package (or any INT64/DOUBLE/UTF8/BOOLEAN/TIMESTAMP column).
func typeOfNode(n parquet.Node) (schemas.Type, error) {
	t := n.Type()
	lt := t.LogicalType()
	switch t.Kind() {
	case parquet.Int64:
		if timestampType(lt) != nil {
			return schemas.TypeTimestamp, nil
		}
		return schemas.TypeInt64, nil
	case parquet.Int32:
		return schemas.TypeInt64, nil
	case parquet.Double:
		return schemas.TypeFloat64, nil
	case parquet.ByteArray:
		return schemas.TypeString, nil
	case parquet.Boolean:
		return schemas.TypeBool, nil
	}
	return schemas.TypeInvalid, fmt.Errorf("unsupported column type %s", t)
}

func tableSchema(name string, cols []column) *parquet.Schema {
	g := make([]parquet.Field, len(cols))
	for i, c := range cols {
		n := leafNode(c.Type)
		if c.Nullable {
			n = parquet.Optional(n)
		}
		g[i] = warehouse.OrderedField(c.Name, n)
	}
	return warehouse.OrderedSchema(name, g)
}

// writeTable writes n rows, filled one by one by fill, as one Parquet file
// at path (atomically), and returns its marker entry.
func writeTable(path, name string, cols []column, n int, fill func(i int, row []any) error) (warehouse.MarkerFile, error) {
	vals := make([]any, len(cols))
	return writeTableValues(path, name, cols, n, func(i int, row parquet.Row) error {
		clear(vals)
		if err := fill(i, vals); err != nil {
			return err
		}
		for c, v := range vals {
			if v == nil {
				continue // row is null already
			}
			if err := setCell(row, cols, c, v); err != nil {
				return fmt.Errorf("row %d: %w", i, err)
			}
		}
		return nil
	})
}

// setCell sets column c of row to v (not nil), levelled.
func setCell(row parquet.Row, cols []column, c int, v any) error {
	pv, err := parquetValue(cols[c], v)
	if err != nil {
		return fmt.Errorf("column %s: %w", cols[c].Name, err)
	}
	row[c] = levelled(cols, c, pv)
	return nil
}

// levelled sets a non-null value's levels for column c.
func levelled(cols []column, c int, v parquet.Value) parquet.Value {
	def := 0
	if cols[c].Nullable {
		def = 1
	}
	return v.Level(0, def, c)
}

// writeTableValues is writeTable with rows filled as Parquet values: fill
// gets a row of nulls (levelled) and sets the cells that are not null,
// levelled (see levelled). A required column must be set.
func writeTableValues(path, name string, cols []column, n int, fill func(i int, row parquet.Row) error) (warehouse.MarkerFile, error) {
	mf := warehouse.MarkerFile{Name: pathBase(path), Rows: int64(n)}
	nulls := make(parquet.Row, len(cols))
	for c := range cols {
		nulls[c] = parquet.NullValue().Level(0, 0, c)
	}
	err := warehouse.WriteFileAtomic(path, func(w io.Writer) error {
		cw := &warehouse.CountingWriter{W: w}
		pw := parquet.NewWriter(cw, tableSchema(name, cols),
			parquet.Compression(&parquet.Zstd),
			parquet.CreatedBy("portrait", "", ""))
		// The writer copies what it is given, so the rows (and their
		// values) are reused from flush to flush.
		const batchRows = 1024
		rows := make([]parquet.Row, 0, batchRows)
		buf := make([]parquet.Value, batchRows*len(cols))
		flush := func() error {
			if _, err := pw.WriteRows(rows); err != nil {
				return fmt.Errorf("writing rows: %w", err)
			}
			rows = rows[:0]
			return nil
		}
		for i := range n {
			k := len(rows) * len(cols)
			row := parquet.Row(buf[k : k+len(cols) : k+len(cols)])
			copy(row, nulls)
			if err := fill(i, row); err != nil {
				return err
			}
			for c, col := range cols {
				if !col.Nullable && row[c].IsNull() {
					return fmt.Errorf("row %d column %s: null in a required column", i, col.Name)
				}
			}
			rows = append(rows, row)
			if len(rows) == cap(rows) {
				if err := flush(); err != nil {
					return err
				}
			}
			if (i+1)%rowsPerGroup == 0 {
				if err := flush(); err != nil {
					return err
				}
				if err := pw.Flush(); err != nil {
					return fmt.Errorf("writing row group: %w", err)
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if err := pw.Close(); err != nil {
			return fmt.Errorf("closing parquet writer: %w", err)
		}
		mf.Bytes = cw.N
		return nil
	})
	return mf, err
}

func pathBase(p string) string {
	if i := strings.LastIndexByte(p, os.PathSeparator); i >= 0 {
		return p[i+1:]
	}
	return p
}

func parquetValue(col column, v any) (parquet.Value, error) {
	if v == nil {
		if !col.Nullable {
			return parquet.Value{}, fmt.Errorf("null in a required column")
		}
		return parquet.NullValue(), nil
	}
	ok := false
	var out parquet.Value
	switch col.Type {
	case schemas.TypeInt64:
		var x int64
		x, ok = v.(int64)
		out = parquet.Int64Value(x)
	case schemas.TypeTimestamp:
		var x schemas.Timestamp
		x, ok = v.(schemas.Timestamp)
		out = parquet.Int64Value(int64(x))
	case schemas.TypeFloat64:
		var x float64
		x, ok = v.(float64)
		out = parquet.DoubleValue(x)
	case schemas.TypeString:
		var x string
		x, ok = v.(string)
		// No copy: the writer copies the bytes before the row is reused.
		out = parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(x), len(x)))
	case schemas.TypeBool:
		var x bool
		x, ok = v.(bool)
		out = parquet.BooleanValue(x)
	}
	if !ok {
		return parquet.Value{}, fmt.Errorf("value %v is %T, want %s", v, v, col.Type)
	}
	return out, nil
}

// readTable reads a Parquet file of flat columns: it calls header with
// the columns, then fn with every row as Go values (nil for null; the
// slice is reused between calls).
func readTable(path string, fn func(row []any) error, header func([]column) error) ([]column, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	r := parquet.NewReader(f)
	defer r.Close()
	fields := r.Schema().Fields()
	cols := make([]column, len(fields))
	for i, fl := range fields {
		if !fl.Leaf() {
			return nil, fmt.Errorf("%s: column %s is not flat", path, fl.Name())
		}
		t, err := typeOfNode(fl)
		if err != nil {
			return nil, fmt.Errorf("%s: column %s: %w", path, fl.Name(), err)
		}
		cols[i] = newColumn(fl.Name(), t, fl.Optional())
	}
	if err := header(cols); err != nil {
		return cols, err
	}
	buf := make([]parquet.Row, 256)
	vals := make([]any, len(cols))
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			clear(vals)
			for _, v := range row {
				c := v.Column()
				if c < 0 || c >= len(cols) || v.IsNull() {
					continue
				}
				vals[c] = goValue(cols[c].Type, v, fields[c])
			}
			if ferr := fn(vals); ferr != nil {
				return cols, ferr
			}
		}
		if err == io.EOF {
			return cols, nil
		}
		if err != nil {
			return cols, fmt.Errorf("reading %s: %w", path, err)
		}
	}
}

func goValue(t schemas.Type, v parquet.Value, n parquet.Node) any {
	switch t {
	case schemas.TypeInt64:
		if v.Kind() == parquet.Int32 {
			return int64(v.Int32())
		}
		return v.Int64()
	case schemas.TypeTimestamp:
		ms := v.Int64()
		if ts := timestampType(n.Type().LogicalType()); ts != nil {
			switch ts.Unit.Value.(type) {
			case *format.MicroSeconds:
				ms /= 1000
			case *format.NanoSeconds:
				ms /= 1_000_000
			}
		}
		return schemas.Timestamp(ms)
	case schemas.TypeFloat64:
		return v.Double()
	case schemas.TypeString:
		return string(v.ByteArray())
	case schemas.TypeBool:
		return v.Boolean()
	}
	return nil
}

func timestampType(lt *format.LogicalType) *format.TimestampType {
	if lt == nil {
		return nil
	}
	ts, _ := lt.Value.(*format.TimestampType)
	return ts
}
