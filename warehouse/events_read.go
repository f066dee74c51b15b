package warehouse

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/portrait-dev/portrait/schemas"
)

// CorruptFileError reports a data file that is not a readable events file
// of the catalog: empty, truncated, not Parquet, failing a page checksum,
// or with the wrong columns. Find it with errors.As to quarantine the file.
type CorruptFileError struct {
	Path string
	Err  error
}

func (e *CorruptFileError) Error() string {
	return fmt.Sprintf("corrupt events file %s: %v", e.Path, e.Err)
}

func (e *CorruptFileError) Unwrap() error { return e.Err }

// ReadEvents reads events files in the order given and calls fn with one
// record batch per Parquet row group (at most 128Ki rows for files this
// package writes), with the columns of EventsSchema(cat). The batch is
// released when fn returns: call Retain to keep it. A file that cannot be
// read gives a *CorruptFileError naming it; an error from fn is returned
// as is.
//
// A goroutine reads ahead (up to readAhead row groups) while fn works on
// the current batch, so that reading and decoding overlap fn's work; fn
// is called from the caller's goroutine, in order.
func ReadEvents(ctx context.Context, cat *schemas.Catalog, files []string, fn func(arrow.RecordBatch) error) error {
	return ReadEventsWith(ctx, cat, files, ReadOptions{}, fn)
}

// ReadOptions tune ReadEventsWith.
type ReadOptions struct {
	// Dictionaries: a string column whose pages in a row group all use
	// the same dictionary comes as an Arrow dictionary array (Int32
	// indexes into the distinct values of the column chunk) instead of a
	// String array, without copying a string per row; its field in the
	// batch's schema then has that dictionary type. Other string columns
	// come as String arrays, as without the option.
	Dictionaries bool
	// ReuseBuffers recycles the buffers of the fixed-width columns (and
	// of dictionary indexes) of a batch for later batches once the batch
	// is released (when fn returns, unless it called Retain): fn must not
	// keep a slice of a column's values past that. A fixed-width column
	// whose column chunk is a single plain page then holds the page's
	// decoded values in place, without a copy, and gives the page back to
	// parquet-go's pools on release.
	ReuseBuffers bool
}

// ReadEventsWith is ReadEvents with options.
func ReadEventsWith(ctx context.Context, cat *schemas.Catalog, files []string, opts ReadOptions, fn func(arrow.RecordBatch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	recs := make(chan arrow.RecordBatch, readAhead)
	// done gets the reader's error (or nil) once every batch before it
	// was sent.
	done := make(chan error, 1)
	go func() {
		defer close(recs)
		r := newEventsReader(cat)
		r.dicts = opts.Dictionaries
		if opts.ReuseBuffers {
			r.pool = &bufferPool{}
		}
		send := func(rec arrow.RecordBatch) error {
			rec.Retain() // readFile releases its reference when send returns
			select {
			case recs <- rec:
				return nil
			case <-ctx.Done():
				rec.Release()
				return ctx.Err()
			}
		}
		for _, path := range files {
			if err := r.readFile(ctx, path, send); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	defer func() {
		// Stop the reader and release what it read ahead.
		cancel()
		for rec := range recs {
			rec.Release()
		}
	}()
	for rec := range recs {
		err := fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return <-done
}

// readAhead is how many decoded row groups ReadEvents holds for fn: two
// keep the reader busy while fn works without holding much memory (a
// row group of 128Ki taobao rows is about 5 MB decoded).
const readAhead = 2

// ReadEventRows reads events files into events (the simple path for
// tests, loading and repair). Time repeats the event-time field, and
// Partition and Offset come from _partition and _offset.
func ReadEventRows(ctx context.Context, cat *schemas.Catalog, files []string) ([]schemas.Event, error) {
	var out []schemas.Event
	err := ReadEvents(ctx, cat, files, func(rec arrow.RecordBatch) error {
		out = AppendEventRows(out, cat, rec)
		return nil
	})
	return out, err
}

// AppendEventRows converts a record batch of EventsSchema(cat) to events
// and appends them to dst.
func AppendEventRows(dst []schemas.Event, cat *schemas.Catalog, rec arrow.RecordBatch) []schemas.Event {
	n := int(rec.NumRows())
	nf := len(cat.Fields)
	values := make([]any, n*nf)
	start := len(dst)
	parts := rec.Column(nf).(*array.Int32).Int32Values()
	offs := rec.Column(nf + 1).(*array.Int64).Int64Values()
	for i := range n {
		dst = append(dst, schemas.Event{Values: values[i*nf : (i+1)*nf : (i+1)*nf], Partition: parts[i], Offset: offs[i]})
	}
	for j, f := range cat.Fields {
		col := rec.Column(j)
		switch f.Type {
		case schemas.TypeInt64:
			vs := col.(*array.Int64).Int64Values()
			for i := range n {
				values[i*nf+j] = vs[i]
			}
		case schemas.TypeFloat64:
			vs := col.(*array.Float64).Float64Values()
			for i := range n {
				values[i*nf+j] = vs[i]
			}
		case schemas.TypeString:
			a := col.(*array.String)
			for i := range n {
				values[i*nf+j] = a.Value(i)
			}
		case schemas.TypeBool:
			a := col.(*array.Boolean)
			for i := range n {
				values[i*nf+j] = a.Value(i)
			}
		case schemas.TypeTimestamp:
			vs := col.(*array.Timestamp).TimestampValues()
			for i := range n {
				ts := schemas.Timestamp(vs[i])
				values[i*nf+j] = ts
				if j == cat.Time {
					dst[start+i].Time = ts
				}
			}
		}
	}
	return dst
}

// FileRows reads the number of rows of a Parquet file from its footer.
func FileRows(path string) (rows int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("opening events file: %w", err)
	}
	defer f.Close()
	pf, err := openParquet(f, path)
	if err != nil {
		return 0, err
	}
	return pf.NumRows(), nil
}

// HourFiles lists the data files of one events hour partition (the hour
// that holds ts), sorted by name. Files still being written (temp names)
// are never listed, nor files a compaction has superseded (LiveFiles).
func HourFiles(root string, ts schemas.Timestamp) ([]string, error) {
	files, err := DataFiles(HourDir(root, ts))
	return LiveFiles(files), err
}

// EventFilesFor lists the data files of every events hour that overlaps
// [from, to), oldest hour first and by name within an hour. It lists every
// committed file, also of hours not (or no longer) closed by _SUCCESS,
// except files a compaction has superseded (LiveFiles).
func EventFilesFor(root string, from, to schemas.Timestamp) ([]string, error) {
	hours, err := ListHours(root, from, to)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range hours {
		files, err := DataFiles(h.Dir)
		if err != nil {
			return nil, err
		}
		out = append(out, LiveFiles(files)...)
	}
	return out, nil
}

// AllEventFiles lists the data files of every events hour.
func AllEventFiles(root string) ([]string, error) {
	return EventFilesFor(root, math.MinInt64, math.MaxInt64)
}

// eventsReader holds what is shared between the files of one read.
type eventsReader struct {
	cat    *schemas.Catalog
	schema *arrow.Schema
	kinds  []columnKind
	mem    memory.Allocator
	// dicts: string columns may come as dictionary arrays (ReadOptions);
	// dictSchemas holds the schema of every combination met, by the set
	// of dictionary columns.
	dicts       bool
	dictSchemas map[string]*arrow.Schema
	// pool, when set, recycles column buffers (ReadOptions.ReuseBuffers).
	pool *bufferPool
}

// bufferPool is an Arrow allocator that keeps the buffers freed by
// released batches for the next ones, so that a read of many row groups
// does not allocate (and zero) every column anew. A buffer it gives is
// not zeroed.
type bufferPool struct {
	mu   sync.Mutex
	free [][]byte
}

// maxPooled bounds the buffers a pool keeps: those of a few row groups.
const maxPooled = 64

// Allocate gives a buffer of size bytes. A new buffer gets a capacity of
// size rounded up to a power of two, so that buffers freed by row groups
// of a few sizes fit the later ones (row groups vary in size from file to
// file, and a pool full of buffers just too short would allocate anew
// for every batch).
func (p *bufferPool) Allocate(size int) []byte {
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if b := p.free[i]; cap(b) >= size {
			p.free[i] = p.free[len(p.free)-1]
			p.free = p.free[:len(p.free)-1]
			p.mu.Unlock()
			return b[:size]
		}
	}
	p.mu.Unlock()
	if size <= 0 {
		return nil
	}
	return make([]byte, size, 1<<bits.Len(uint(size-1)))
}

func (p *bufferPool) Reallocate(size int, b []byte) []byte {
	out := p.Allocate(size)
	copy(out, b)
	p.Free(b)
	return out
}

// Free keeps b for later allocations; a full pool drops its smallest
// buffer for b if that is smaller.
func (p *bufferPool) Free(b []byte) {
	if cap(b) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < maxPooled {
		p.free = append(p.free, b[:0])
		return
	}
	least := 0
	for i, f := range p.free {
		if cap(f) < cap(p.free[least]) {
			least = i
		}
	}
	if cap(p.free[least]) < cap(b) {
		p.free[least] = b[:0]
	}
}

// fixed returns an empty slice of capacity n for values of T, from the
// pool when there is one.
func fixed[T int64 | int32 | float64](r *eventsReader, n int64) []T {
	if r.pool == nil {
		return make([]T, 0, n)
	}
	var z T
	b := r.pool.Allocate(int(n) * int(unsafe.Sizeof(z)))
	if len(b) == 0 {
		return nil
	}
	// The capacity of a pooled buffer may exceed n: keep it, so that
	// the buffer goes back to the pool whole.
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), cap(b)/int(unsafe.Sizeof(z)))[:0]
}

// maxPrealloc bounds the values decodeColumn allocates for a row group
// before reading its pages (events files have 128Ki-row groups).
const maxPrealloc = 1 << 20

// dictType is the Arrow type of a string column read as a dictionary.
var dictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// schemaFor returns the schema of a batch whose columns are cols: the
// events schema with the dictionary columns' types changed.
func (r *eventsReader) schemaFor(cols []arrow.Array) *arrow.Schema {
	var set []byte
	for i, c := range cols {
		if c.DataType().ID() == arrow.DICTIONARY {
			set = binary.AppendUvarint(set, uint64(i))
		}
	}
	if set == nil {
		return r.schema
	}
	if sch, ok := r.dictSchemas[string(set)]; ok {
		return sch
	}
	fs := slices.Clone(r.schema.Fields())
	for i, c := range cols {
		if c.DataType().ID() == arrow.DICTIONARY {
			fs[i].Type = c.DataType()
		}
	}
	sch := arrow.NewSchema(fs, nil)
	if r.dictSchemas == nil {
		r.dictSchemas = map[string]*arrow.Schema{}
	}
	r.dictSchemas[string(set)] = sch
	return sch
}

func newEventsReader(cat *schemas.Catalog) *eventsReader {
	return &eventsReader{cat: cat, schema: EventsSchema(cat), kinds: columnKinds(cat), mem: memory.DefaultAllocator}
}

func (r *eventsReader) readFile(ctx context.Context, path string, fn func(arrow.RecordBatch) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening events file: %w", err)
	}
	defer f.Close()
	pf, err := openParquet(f, path)
	if err != nil {
		return err
	}
	if err := r.checkSchema(pf.Schema()); err != nil {
		return &CorruptFileError{Path: path, Err: err}
	}
	for i, rg := range pf.RowGroups() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := r.decodeRowGroup(rg)
		if err != nil {
			return &CorruptFileError{Path: path, Err: fmt.Errorf("row group %d: %w", i, err)}
		}
		err = fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// openParquet opens a Parquet file; a file that is not one is a
// *CorruptFileError. parquet-go may panic on corrupt input, so panics are
// turned into errors here and in decodeRowGroup.
func openParquet(f *os.File, path string) (pf *parquet.File, err error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening events file: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			pf, err = nil, &CorruptFileError{Path: path, Err: fmt.Errorf("parquet decoder panicked: %v", p)}
		}
	}()
	if err := checkFrame(f, st.Size()); err != nil {
		return nil, &CorruptFileError{Path: path, Err: err}
	}
	pf, err = parquet.OpenFile(f, st.Size(), parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return nil, &CorruptFileError{Path: path, Err: err}
	}
	return pf, nil
}

// checkFrame checks the magic numbers at both ends of a Parquet file and
// that the footer length fits in the file, before parquet-go trusts it (a
// damaged length would make it allocate gigabytes).
func checkFrame(f io.ReaderAt, size int64) error {
	if size == 0 {
		return errors.New("empty file")
	}
	if size < 12 {
		return fmt.Errorf("%d bytes is too short for a parquet file", size)
	}
	var head, tail [8]byte
	if _, err := f.ReadAt(head[:4], 0); err != nil {
		return fmt.Errorf("reading header: %w", err)
	}
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("reading footer: %w", err)
	}
	if string(head[:4]) != "PAR1" {
		return fmt.Errorf("bad magic number %q at start of file (truncated or not parquet)", head[:4])
	}
	if string(tail[4:]) != "PAR1" {
		return fmt.Errorf("bad magic number %q at end of file (truncated or not parquet)", tail[4:])
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return fmt.Errorf("footer length %d exceeds the file size %d", n, size)
	}
	return nil
}

// checkSchema verifies that a file has exactly the events columns of the
// catalog, in order, required and of the right physical type.
func (r *eventsReader) checkSchema(s *parquet.Schema) (err error) {
	// A damaged footer can declare types (such as LIST) whose Kind
	// panics in parquet-go: that is a corrupt file, not a crash.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("unreadable schema: %v", p)
		}
	}()
	fields := s.Fields()
	want := r.schema.Fields()
	if len(fields) != len(want) {
		return fmt.Errorf("has %d columns, catalog %s wants %d", len(fields), r.cat.Name, len(want))
	}
	for i, f := range fields {
		switch {
		case f.Name() != want[i].Name:
			return fmt.Errorf("column %d is %q, want %q", i, f.Name(), want[i].Name)
		case !f.Leaf():
			return fmt.Errorf("column %s is a group", f.Name())
		case !f.Required():
			return fmt.Errorf("column %s is not required", f.Name())
		case f.Type().Kind() != r.kinds[i].parquetKind():
			return fmt.Errorf("column %s is %s, want %s", f.Name(), f.Type().Kind(), r.kinds[i].parquetKind())
		}
	}
	return nil
}

// decodeRowGroup decodes one row group into a record batch, page by page
// and without boxing values.
func (r *eventsReader) decodeRowGroup(rg parquet.RowGroup) (rec arrow.RecordBatch, err error) {
	n := rg.NumRows()
	cols := make([]arrow.Array, 0, len(r.kinds))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("parquet decoder panicked: %v", p)
		}
		for _, c := range cols {
			c.Release()
		}
	}()
	chunks := rg.ColumnChunks()
	if len(chunks) != len(r.kinds) {
		return nil, fmt.Errorf("has %d column chunks, want %d", len(chunks), len(r.kinds))
	}
	for i, cc := range chunks {
		a, err := r.decodeColumn(cc, r.kinds[i], r.schema.Field(i).Type, n)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", r.schema.Field(i).Name, err)
		}
		cols = append(cols, a)
	}
	return array.NewRecordBatch(r.schemaFor(cols), cols, n), nil
}

func (r *eventsReader) decodeColumn(cc parquet.ColumnChunk, kind columnKind, typ arrow.DataType, n int64) (arrow.Array, error) {
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("row group of %d rows is too big", n)
	}
	pages := cc.Pages()
	defer pages.Close()
	// A row group's values are preallocated up to maxPrealloc (the
	// footer's row count is not trusted with more before the pages are
	// read; more rows grow the slices as pages come).
	c := min(n, maxPrealloc)
	var (
		i64  []int64
		i32  []int32
		f64  []float64
		bits []bool
		str  stringColumn
	)
	// The fixed-width values are allocated at the first page they are
	// copied from (a column chunk of one page may need none: see whole).
	allocated := false
	switch kind {
	case kindBool:
		bits = make([]bool, 0, c)
	case kindString:
		if r.dicts {
			str.offsets, str.rows = []int32{0}, int(c)
		} else {
			str.offsets = make([]int32, 1, c+1)
		}
	}
	// whole is a page that holds the whole column chunk of a fixed-width
	// column, kept (with a pool only) to become the column's buffer
	// without a copy; it is released here unless handed to the array.
	var whole parquet.Page
	defer func() {
		if whole != nil {
			parquet.Release(whole)
		}
	}()
	zeroCopy := r.pool != nil && (kind == kindInt64 || kind == kindInt32 || kind == kindDouble)
	got := int64(0)
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if p.NumNulls() != 0 {
			parquet.Release(p)
			return nil, errors.New("page holds nulls")
		}
		got += p.NumValues()
		if got > n {
			parquet.Release(p)
			return nil, fmt.Errorf("holds more than the row group's %d rows", n)
		}
		if zeroCopy && got == n && got == p.NumValues() && p.Dictionary() == nil {
			whole = p // released by the deferred call or by the array
			continue
		}
		if !allocated {
			allocated = true
			switch kind {
			case kindInt64:
				i64 = fixed[int64](r, c)
			case kindInt32:
				i32 = fixed[int32](r, c)
			case kindDouble:
				f64 = fixed[float64](r, c)
			}
		}
		switch kind {
		case kindInt64:
			i64, err = appendPage(i64, p, valuesInt64)
		case kindInt32:
			i32, err = appendPage(i32, p, valuesInt32)
		case kindDouble:
			f64, err = appendPage(f64, p, valuesDouble)
		case kindBool:
			bits, err = appendBools(bits, p)
		case kindString:
			if r.dicts {
				err = str.appendPageDict(r, p)
			} else {
				err = str.appendPage(p)
			}
		}
		parquet.Release(p)
		if err != nil {
			return nil, err
		}
	}
	if got != n {
		return nil, fmt.Errorf("holds %d values, the row group has %d rows", got, n)
	}
	if whole != nil {
		data, err := fixedPageBytes(whole, kind)
		if err != nil {
			return nil, err
		}
		buf := memory.NewBufferWithAllocator(data, pageRelease{whole})
		whole = nil
		defer buf.Release()
		d := array.NewData(typ, int(n), []*memory.Buffer{nil, buf}, nil, 0, 0)
		defer d.Release()
		return array.MakeFromData(d), nil
	}
	switch kind {
	case kindInt64:
		return r.fixedArray(typ, len(i64), arrow.Int64Traits.CastToBytes(i64)), nil
	case kindInt32:
		return r.fixedArray(typ, len(i32), arrow.Int32Traits.CastToBytes(i32)), nil
	case kindDouble:
		return r.fixedArray(typ, len(f64), arrow.Float64Traits.CastToBytes(f64)), nil
	case kindBool:
		b := array.NewBooleanBuilder(r.mem)
		defer b.Release()
		b.AppendValues(bits, nil)
		return b.NewArray(), nil
	default:
		return str.array(r), nil
	}
}

// fixedArray wraps a Go slice of fixed-width values as an Arrow array
// without copying it; with a pool, its buffer goes back to the pool when
// the array is released.
func (r *eventsReader) fixedArray(typ arrow.DataType, n int, data []byte) arrow.Array {
	buf := r.buffer(data)
	defer buf.Release()
	d := array.NewData(typ, n, []*memory.Buffer{nil, buf}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// buffer wraps data as an Arrow buffer, one that returns it to the pool
// on its last release when there is a pool. The caller releases it.
func (r *eventsReader) buffer(data []byte) *memory.Buffer {
	if r.pool == nil {
		return memory.NewBufferBytes(data) // unowned: Release does nothing
	}
	return memory.NewBufferWithAllocator(data, r.pool)
}

// fixedPageBytes is the values of a plain page of a fixed-width column as
// bytes, in place in the page's buffer.
func fixedPageBytes(p parquet.Page, kind columnKind) ([]byte, error) {
	v := p.Data()
	var (
		data []byte
		k    int
	)
	switch kind {
	case kindInt64:
		vs := v.Int64()
		data, k = arrow.Int64Traits.CastToBytes(vs), len(vs)
	case kindInt32:
		vs := v.Int32()
		data, k = arrow.Int32Traits.CastToBytes(vs), len(vs)
	case kindDouble:
		vs := v.Double()
		data, k = arrow.Float64Traits.CastToBytes(vs), len(vs)
	default:
		return nil, fmt.Errorf("column of kind %d is not fixed-width", kind)
	}
	if int64(k) != p.NumValues() {
		return nil, fmt.Errorf("page decodes to %d values, header says %d", k, p.NumValues())
	}
	return data, nil
}

// pageRelease is the allocator of an Arrow buffer that holds the values
// of a parquet-go page in place: freeing the buffer releases the page,
// whose memory goes back to parquet-go's pools.
type pageRelease struct{ p parquet.Page }

func (pageRelease) Allocate(int) []byte           { panic("warehouse: pageRelease cannot allocate") }
func (pageRelease) Reallocate(int, []byte) []byte { panic("warehouse: pageRelease cannot allocate") }
func (a pageRelease) Free([]byte)                 { parquet.Release(a.p) }

func valuesInt64(v *encoding.Values) []int64    { return v.Int64() }
func valuesInt32(v *encoding.Values) []int32    { return v.Int32() }
func valuesDouble(v *encoding.Values) []float64 { return v.Double() }

// appendPage appends the values of a plain or dictionary-encoded page.
func appendPage[T any](dst []T, p parquet.Page, typed func(*encoding.Values) []T) ([]T, error) {
	data := p.Data()
	if d := p.Dictionary(); d != nil {
		dv := d.Page().Data()
		dict := typed(&dv)
		for _, k := range data.Int32() {
			if uint(k) >= uint(len(dict)) {
				return dst, fmt.Errorf("dictionary index %d out of range [0,%d)", k, len(dict))
			}
			dst = append(dst, dict[k])
		}
		return dst, nil
	}
	vs := typed(&data)
	if int64(len(vs)) != p.NumValues() {
		return dst, fmt.Errorf("page decodes to %d values, header says %d", len(vs), p.NumValues())
	}
	return append(dst, vs...), nil
}

func appendBools(dst []bool, p parquet.Page) ([]bool, error) {
	br, ok := p.Values().(parquet.BooleanReader)
	if !ok {
		return dst, fmt.Errorf("page of type %s has no boolean reader", p.Type())
	}
	start := len(dst)
	want := start + int(p.NumValues())
	dst = append(dst, make([]bool, p.NumValues())...)
	for got := start; got < want; {
		k, err := br.ReadBooleans(dst[got:want])
		got += k
		if err == io.EOF {
			if got != want {
				return dst, fmt.Errorf("page holds %d values, header says %d", got-start, want-start)
			}
			break
		}
		if err != nil {
			return dst, err
		}
		if k == 0 {
			return dst, errors.New("boolean page reader made no progress")
		}
	}
	return dst, nil
}

// stringColumn accumulates a string column as Arrow offsets and data,
// or (appendPageDict) as dictionary indexes while every page uses the
// same dictionary.
type stringColumn struct {
	offsets []int32
	data    []byte

	// In dictionary mode (dictOffs != nil), dictData and dictOffs are a
	// copy of the dictionary's values (its offsets rebased to 0) and
	// indexes the rows' entries.
	dictData []byte
	dictOffs []int32
	indexes  []int32
	// rows is the capacity to give the indexes (the row count of the
	// column chunk, up to maxPrealloc).
	rows int
}

// appendPageDict appends a page, keeping dictionary indexes while every
// page so far used the same dictionary; a page that does not turns the
// indexes kept into strings and is appended as appendPage does.
func (s *stringColumn) appendPageDict(r *eventsReader, p parquet.Page) error {
	if d := p.Dictionary(); d != nil && len(s.offsets) == 1 {
		dv := d.Page().Data()
		dd, doffs := dv.ByteArray()
		if len(doffs) == 0 {
			return errors.New("empty string dictionary")
		}
		switch {
		case s.dictOffs == nil:
			s.indexes = fixed[int32](r, int64(s.rows))
			s.dictData = slices.Clone(dd[doffs[0]:doffs[len(doffs)-1]])
			s.dictOffs = make([]int32, len(doffs))
			for i, o := range doffs {
				s.dictOffs[i] = int32(o - doffs[0])
			}
		case !s.sameDict(dd, doffs):
			if err := s.flushDict(); err != nil {
				return err
			}
			return s.appendPage(p)
		}
		data := p.Data()
		indexes := data.Int32()
		nd := uint(len(s.dictOffs) - 1)
		for _, k := range indexes {
			if uint(k) >= nd {
				return fmt.Errorf("dictionary index %d out of range [0,%d)", k, nd)
			}
		}
		s.indexes = append(s.indexes, indexes...)
		return nil
	}
	if s.dictOffs != nil {
		if err := s.flushDict(); err != nil {
			return err
		}
	}
	return s.appendPage(p)
}

// sameDict reports whether a page's dictionary holds the values kept.
func (s *stringColumn) sameDict(dd []byte, doffs []uint32) bool {
	if len(doffs) != len(s.dictOffs) || int(doffs[len(doffs)-1]-doffs[0]) != len(s.dictData) {
		return false
	}
	for i, o := range doffs {
		if int32(o-doffs[0]) != s.dictOffs[i] {
			return false
		}
	}
	return string(dd[doffs[0]:doffs[len(doffs)-1]]) == string(s.dictData)
}

// flushDict leaves dictionary mode: the indexes kept become strings.
func (s *stringColumn) flushDict() error {
	doffs := make([]uint32, len(s.dictOffs))
	for i, o := range s.dictOffs {
		doffs[i] = uint32(o)
	}
	err := s.appendIndexes(s.dictData, doffs, s.indexes)
	s.dictData, s.dictOffs, s.indexes = nil, nil, nil
	return err
}

func (s *stringColumn) appendPage(p parquet.Page) error {
	if d := p.Dictionary(); d != nil {
		dv := d.Page().Data()
		dd, doffs := dv.ByteArray()
		if len(doffs) == 0 {
			return errors.New("empty string dictionary")
		}
		data := p.Data()
		return s.appendIndexes(dd, doffs, data.Int32())
	}
	pd := p.Data()
	data, offs := pd.ByteArray()
	if int64(len(offs)) != p.NumValues()+1 {
		return fmt.Errorf("page has %d offsets for %d values", len(offs), p.NumValues())
	}
	base := int64(len(s.data)) - int64(offs[0])
	for _, o := range offs[1:] {
		end := base + int64(o)
		if end > math.MaxInt32 {
			return errors.New("string data of the row group exceeds 2 GiB")
		}
		s.offsets = append(s.offsets, int32(end))
	}
	s.data = append(s.data, data[offs[0]:offs[len(offs)-1]]...)
	return nil
}

// appendIndexes appends the dictionary entries of indexes: the offsets
// first, then the bytes into the data grown once (dictionary entries are
// short, enum values mostly: an append per value costs more than the
// copy).
func (s *stringColumn) appendIndexes(dd []byte, doffs []uint32, indexes []int32) error {
	nd := uint(len(doffs) - 1)
	end := int64(len(s.data))
	for _, k := range indexes {
		if uint(k) >= nd {
			return fmt.Errorf("dictionary index %d out of range [0,%d)", k, nd)
		}
		end += int64(doffs[k+1] - doffs[k])
		if end > math.MaxInt32 {
			return errors.New("string data of the row group exceeds 2 GiB")
		}
		s.offsets = append(s.offsets, int32(end))
	}
	at := len(s.data)
	s.data = slices.Grow(s.data, int(end)-at)[:end]
	for _, k := range indexes {
		at += copy(s.data[at:], dd[doffs[k]:doffs[k+1]])
	}
	return nil
}

func (s *stringColumn) array(r *eventsReader) arrow.Array {
	if s.dictOffs != nil {
		return s.dictArray(r)
	}
	d := array.NewData(arrow.BinaryTypes.String, len(s.offsets)-1, []*memory.Buffer{
		nil,
		memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(s.offsets)),
		memory.NewBufferBytes(s.data),
	}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// dictArray is the column in dictionary mode as an Arrow dictionary array.
func (s *stringColumn) dictArray(r *eventsReader) arrow.Array {
	vd := array.NewData(arrow.BinaryTypes.String, len(s.dictOffs)-1, []*memory.Buffer{
		nil,
		memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(s.dictOffs)),
		memory.NewBufferBytes(s.dictData),
	}, nil, 0, 0)
	defer vd.Release()
	buf := r.buffer(arrow.Int32Traits.CastToBytes(s.indexes))
	defer buf.Release()
	d := array.NewData(dictType, len(s.indexes), []*memory.Buffer{nil, buf}, nil, 0, 0)
	defer d.Release()
	d.SetDictionary(vd)
	return array.MakeFromData(d)
}
