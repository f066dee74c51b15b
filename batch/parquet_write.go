package batch

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// Write tuning: a row group holds about rowsPerGroup rows; values go to
// the column writers writeChunk at a time (the page size check runs per
// call). Variables for the tests.
var (
	rowsPerGroup = 64 * 1024
	writeChunk   = 4096
)

// filler gives the values of a table row group by row group, column by
// column, so that the table is written column by column: no row is
// assembled and the writer does not split rows into columns again.
type filler interface {
	// group starts row group g and returns its number of rows.
	group(g int) (int, error)
	// column appends the values of column c for rows lo..hi-1 of the
	// group to dst, levelled: a null is the zero Value, the definition
	// level of a value is 1 in a nullable column, else 0. A Value
	// is best built in its slot: one passed or returned by value is
	// spilled field by field and copied back whole, which stalls on store
	// forwarding.
	column(dst []parquet.Value, c, lo, hi int) ([]parquet.Value, error)
}

// setValue sets *dst to v (not nil) of type t, levels 0; false when v is
// not of type t. Strings are not copied: the writer copies the bytes.
func setValue(dst *parquet.Value, t schemas.Type, v any) bool {
	switch t {
	case schemas.TypeInt64:
		x, ok := v.(int64)
		*dst = parquet.Int64Value(x)
		return ok
	case schemas.TypeTimestamp:
		x, ok := v.(schemas.Timestamp)
		*dst = parquet.Int64Value(int64(x))
		return ok
	case schemas.TypeFloat64:
		x, ok := v.(float64)
		*dst = parquet.DoubleValue(x)
		return ok
	case schemas.TypeString:
		x, ok := v.(string)
		*dst = parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(x), len(x)))
		return ok
	case schemas.TypeBool:
		x, ok := v.(bool)
		*dst = parquet.BooleanValue(x)
		return ok
	}
	return false
}

// writeTable writes a Parquet table of groups row groups as one file at
// path (atomically), its pages compressed with codec (extra: more writer
// options), and returns its marker entry. Row groups are filled,
// encoded and compressed on every core, by one filler per worker (made by
// newFiller, so that it can keep the group it works on), and written in
// order.
func writeTable(path, name string, codec compress.Codec, cols []column, groups int, newFiller func() filler, extra ...parquet.WriterOption) (warehouse.MarkerFile, error) {
	mf := warehouse.MarkerFile{Name: pathBase(path)}
	err := warehouse.WriteFileAtomic(path, func(w io.Writer) error {
		cw := &warehouse.CountingWriter{W: w}
		opts := []parquet.WriterOption{tableSchema(name, cols), parquet.Compression(codec), parquet.CreatedBy("portrait", "", "")}
		for _, c := range cols {
			if c.Type == schemas.TypeString {
				// Page min/max of strings serve no reader of ours and
				// cost a scan of the dictionary per page.
				opts = append(opts, parquet.SkipPageBounds(c.Name))
			}
		}
		opts = append(opts, extra...)
		pw := parquet.NewWriter(cw, opts...)
		rows, err := writeGroups(pw, cols, groups, newFiller)
		if err != nil {
			return err
		}
		if err := pw.Close(); err != nil {
			return fmt.Errorf("closing parquet writer: %w", err)
		}
		mf.Rows, mf.Bytes = rows, cw.N
		return nil
	})
	return mf, err
}

// encoded is a row group encoded by a worker, waiting to be written.
type encoded struct {
	rg   *parquet.ConcurrentRowGroupWriter
	rows int
	err  error
}

// writeGroups fills and encodes the row groups with one worker per core
// and commits them to pw in order; at most 2 groups per worker wait to
// be committed. Committed row group writers are reused (their buffers
// with them).
func writeGroups(pw *parquet.Writer, cols []column, groups int, newFiller func() filler) (int64, error) {
	workers := min(runtime.GOMAXPROCS(0), groups)
	window := 2 * workers
	todo := make(chan int, window)
	free := make(chan *parquet.ConcurrentRowGroupWriter, window+workers)
	out := make([]chan encoded, groups)
	for g := range out {
		out[g] = make(chan encoded, 1)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var buf []parquet.Value
			fill := newFiller()
			for g := range todo {
				if stop.Load() {
					out[g] <- encoded{err: errStopped}
					continue
				}
				var rg *parquet.ConcurrentRowGroupWriter
				select {
				case rg = <-free:
				default:
					rg = pw.BeginRowGroup()
				}
				var e encoded
				e, buf = encodeGroup(rg, cols, buf, g, fill)
				out[g] <- e
			}
		})
	}
	next := 0
	for next < min(window, groups) {
		todo <- next
		next++
	}
	var rows int64
	var err error
	for g := range groups {
		e := <-out[g]
		if err == nil && e.err != nil {
			err = e.err
		}
		if err == nil {
			if _, cerr := e.rg.Commit(); cerr != nil {
				err = fmt.Errorf("writing row group: %w", cerr)
			}
			free <- e.rg
			rows += int64(e.rows)
		}
		if err != nil {
			stop.Store(true)
		}
		if next < groups {
			todo <- next
			next++
		}
	}
	close(todo)
	wg.Wait()
	return rows, err
}

// errStopped marks the row groups skipped after an error.
var errStopped = errors.New("stopped after an error")

// encodeGroup fills row group g and encodes it into rg (pages encoded
// and compressed, ready to be committed), writeChunk rows at a time and
// column by column within, so that the values go to the column writer
// while in cache. buf is scratch space (returned for reuse).
func encodeGroup(rg *parquet.ConcurrentRowGroupWriter, cols []column, buf []parquet.Value, g int, fill filler) (encoded, []parquet.Value) {
	n, err := fill.group(g)
	if err != nil {
		return encoded{err: err}, buf
	}
	cws := rg.ColumnWriters()
	for lo := 0; lo < n; lo += writeChunk {
		hi := min(lo+writeChunk, n)
		for c := range cols {
			if buf, err = fill.column(buf[:0], c, lo, hi); err != nil {
				return encoded{err: err}, buf
			}
			if err := checkColumn(&cols[c], buf, hi-lo); err != nil {
				return encoded{err: fmt.Errorf("row group %d rows %d-%d: %w", g, lo, hi-1, err)}, buf
			}
			if _, err := cws[c].WriteRowValues(buf); err != nil {
				return encoded{err: fmt.Errorf("writing column %s: %w", cols[c].Name, err)}, buf
			}
		}
	}
	if err := rg.Flush(); err != nil {
		return encoded{err: fmt.Errorf("writing row group: %w", err)}, buf
	}
	return encoded{rg: rg, rows: n}, buf
}

// checkColumn verifies that a filler gave n values for col, none null if
// col is required.
func checkColumn(col *column, vals []parquet.Value, n int) error {
	if len(vals) != n {
		return fmt.Errorf("column %s: %d values for %d rows", col.Name, len(vals), n)
	}
	if !col.Nullable {
		for i := range vals {
			if vals[i].IsNull() {
				return fmt.Errorf("column %s: null in a required column", col.Name)
			}
		}
	}
	return nil
}
