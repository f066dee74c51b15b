package batch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// snapshotCodec compresses the pages of the profile files, which users
// and ClickHouse read. zstd's fastest level: for 1M taobao profiles and
// their state it cost ~0.7 CPU-s less than the default level for 30 %
// more bytes; for the profiles of 1M taobao users snappy would write
// 35.5 MB instead of 15.2 MB for 0.24 CPU-s instead of 0.45 (figures from
// before integers were delta-encoded, see leafNode).
var snapshotCodec compress.Codec = &zstd.Codec{Level: zstd.SpeedFastest}

// stateCodec compresses the pages of the _state files, which only a later
// recompute reads: snappy (s2's fast encoder) writes the state of 1M
// taobao users in 0.3 CPU-s less than zstd's fastest level (0.77 instead
// of 1.07 CPU-s) for 39 MB instead of 29 MB, and reads as fast (figures
// from before integers were delta-encoded, see leafNode).
var stateCodec compress.Codec = &fastSnappy{}

// fastSnappy writes standard snappy blocks (any snappy decoder reads them)
// with s2's fast snappy encoder (parquet-go's snappy codec uses s2's
// "better" one, about twice the CPU for a few percent of size).
type fastSnappy struct{ snappy.Codec }

func (*fastSnappy) Encode(dst, src []byte) ([]byte, error) { return s2.EncodeSnappy(dst, src), nil }

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

// leafNode is the Parquet column of a value type. Integers and timestamps
// are delta-encoded: profile and state columns hold small counts, close
// keys and times, so their pages shrink to a fraction of PLAIN's, which
// the codec then compresses at almost no cost (for 1M taobao profiles and
// their state, the pages' zstd and snappy went from 0.4 CPU-s to 0.01 and
// the files from 54 MB to 33 MB); reading them costs no more.
func leafNode(t schemas.Type) parquet.Node {
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

func pathBase(p string) string {
	if i := strings.LastIndexByte(p, os.PathSeparator); i >= 0 {
		return p[i+1:]
	}
	return p
}

// rowGroup is one row group of a flat table, read column by column
// (rebuilding rows value by value costs twice as much).
type rowGroup struct {
	n      int
	cols   []column
	fields []parquet.Field
	// vals[c][i] is column c of row i; a null IsNull.
	vals [][]parquet.Value
}

// openFlat opens a Parquet file of flat columns and returns them (name,
// type, nullability); the caller closes f.
func openFlat(path string) (f *os.File, pf *parquet.File, cols []column, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if pf, err = parquet.OpenFile(f, st.Size()); err != nil {
		return nil, nil, nil, fmt.Errorf("opening %s: %w", path, err)
	}
	fields := pf.Schema().Fields()
	cols = make([]column, len(fields))
	for i, fl := range fields {
		if !fl.Leaf() {
			return nil, nil, nil, fmt.Errorf("%s: column %s is not flat", path, fl.Name())
		}
		t, err := typeOfNode(fl)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: column %s: %w", path, fl.Name(), err)
		}
		cols[i] = newColumn(fl.Name(), t, fl.Optional())
	}
	return f, pf, cols, nil
}

// readGroups reads a Parquet file of flat columns: it calls header with
// the columns, then fn with every row group (reused between calls).
func readGroups(path string, header func([]column) error, fn func(*rowGroup) error) ([]column, error) {
	f, pf, cols, err := openFlat(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fields := pf.Schema().Fields()
	if err := header(cols); err != nil {
		return cols, err
	}
	g := &rowGroup{cols: cols, fields: fields, vals: make([][]parquet.Value, len(cols))}
	for i, rg := range pf.RowGroups() {
		g.n = int(rg.NumRows())
		for c, cc := range rg.ColumnChunks() {
			if g.vals[c], err = readColumn(g.vals[c][:0], cc); err != nil {
				return cols, fmt.Errorf("reading %s row group %d column %s: %w", path, i, cols[c].Name, err)
			}
			if len(g.vals[c]) != g.n {
				return cols, fmt.Errorf("reading %s row group %d: column %s has %d values for %d rows", path, i, cols[c].Name, len(g.vals[c]), g.n)
			}
		}
		if err := fn(g); err != nil {
			return cols, err
		}
	}
	return cols, nil
}

// readColumn appends the values of a column chunk (nulls included) to
// dst. Its pages are not released to parquet-go's pool: the values of
// byte array columns point into them.
func readColumn(dst []parquet.Value, cc parquet.ColumnChunk) ([]parquet.Value, error) {
	pages := cc.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
		if dst, err = readPageValues(dst, p); err != nil {
			return dst, err
		}
	}
}

// readPageValues appends the values of page p (nulls included) to dst.
func readPageValues(dst []parquet.Value, p parquet.Page) ([]parquet.Value, error) {
	n := int(p.NumValues())
	at := len(dst)
	dst = slices.Grow(dst, n)[:at+n]
	vr := p.Values()
	for got := 0; got < n; {
		k, err := vr.ReadValues(dst[at+got : at+n])
		got += k
		if err == io.EOF {
			if got != n {
				return dst, fmt.Errorf("page holds %d values, header says %d", got, n)
			}
			break
		}
		if err != nil {
			return dst, err
		}
		if k == 0 {
			return dst, errors.New("page reader made no progress")
		}
	}
	return dst, nil
}

// msDivisor is what a timestamp column's values are divided by to make
// milliseconds.
func msDivisor(n parquet.Node) int64 {
	if ts := timestampType(n.Type().LogicalType()); ts != nil {
		switch ts.Unit.Value.(type) {
		case *format.MicroSeconds:
			return 1000
		case *format.NanoSeconds:
			return 1_000_000
		}
	}
	return 1
}

func timestampType(lt *format.LogicalType) *format.TimestampType {
	if lt == nil {
		return nil
	}
	ts, _ := lt.Value.(*format.TimestampType)
	return ts
}
