package warehouse

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// writeEventsWith writes events as one Parquet file of the events
// columns with the given schema and writer options.
func writeEventsWith(t *testing.T, path string, cat *schemas.Catalog, sch *parquet.Schema, events []schemas.Event, opts ...parquet.WriterOption) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	ncols, nf, kinds := NumEventColumns(cat), len(cat.Fields), columnKinds(cat)
	rows := make([]parquet.Row, len(events))
	vals := make([]parquet.Value, len(events))
	for c := range ncols {
		fillColumn(vals, events, c, nf, kinds[c], 7)
		for i := range rows {
			rows[i] = append(rows[i], vals[i].Level(0, 0, c))
		}
	}
	pw := parquet.NewWriter(f, append([]parquet.WriterOption{sch}, opts...)...)
	_, err = pw.WriteRows(rows)
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	require.NoError(t, f.Close())
}

// plainStringsSchema is ParquetSchema with the string columns PLAIN
// encoded (no dictionary).
func plainStringsSchema(cat *schemas.Catalog) *parquet.Schema {
	var g []parquet.Field
	for _, f := range ParquetSchema(cat).Fields() {
		node := parquet.Node(f)
		if f.Type().Kind() == parquet.ByteArray {
			node = parquet.Encoded(parquet.String(), &parquet.Plain)
		}
		g = append(g, OrderedField(f.Name(), node))
	}
	return OrderedSchema(cat.Name+"_events", g)
}

// TestReadEventsDictionaries checks ReadOptions.Dictionaries: string
// columns of dictionary pages (one page or several sharing the chunk's
// dictionary) come as dictionary arrays, PLAIN ones as String arrays, and
// the events read are those written either way.
func TestReadEventsDictionaries(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	events := synthEvents(cat, 1000, 3)
	for _, tc := range []struct {
		name   string
		schema *parquet.Schema
		opts   []parquet.WriterOption
		dict   bool
	}{
		{"one dictionary page", ParquetSchema(cat), nil, true},
		{"dictionary pages", ParquetSchema(cat), []parquet.WriterOption{parquet.PageBufferSize(256)}, true},
		{"plain pages", plainStringsSchema(cat), []parquet.WriterOption{parquet.PageBufferSize(256)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "part-0-0-999.parquet")
			writeEventsWith(t, path, cat, tc.schema, events, tc.opts...)
			want, err := ReadEventRows(context.Background(), cat, []string{path})
			require.NoError(t, err)
			require.Len(t, want, len(events))

			var got []schemas.Event
			plain := EventsSchema(cat)
			err = ReadEventsWith(context.Background(), cat, []string{path}, ReadOptions{Dictionaries: true}, func(rec arrow.RecordBatch) error {
				cols := make([]arrow.Array, rec.NumCols())
				for i := range cols {
					cols[i] = rec.Column(i)
					require.Equal(t, plain.Field(i).Name, rec.Schema().Field(i).Name)
					d, isDict := cols[i].(*array.Dictionary)
					if !isDict {
						require.True(t, arrow.TypeEqual(plain.Field(i).Type, cols[i].DataType()), "column %d", i)
						continue
					}
					require.True(t, arrow.TypeEqual(d.DataType(), rec.Schema().Field(i).Type))
					cols[i] = plainStrings(d)
					defer cols[i].Release()
				}
				for i, f := range cat.Fields {
					if f.Type == schemas.TypeString {
						_, isDict := rec.Column(i).(*array.Dictionary)
						require.Equal(t, tc.dict, isDict, "column %s", f.Name)
					}
				}
				p := array.NewRecordBatch(plain, cols, rec.NumRows())
				defer p.Release()
				got = AppendEventRows(got, cat, p)
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

// TestReadEventsReuseBuffers checks ReadOptions.ReuseBuffers: the events
// read batch by batch are those written, and a batch that fn retains
// keeps its values while later batches are read into recycled buffers.
func TestReadEventsReuseBuffers(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	files, want := readAheadFiles(t, cat, 5)
	for _, opts := range []ReadOptions{{ReuseBuffers: true}, {ReuseBuffers: true, Dictionaries: true}} {
		got, again := readKeeping(t, cat, files, opts, 3)
		require.Equal(t, want, got)
		require.Equal(t, want[:len(again)], again)
		require.Equal(t, 500, len(again)) // row groups of 200, 200 and 100 rows
	}
}

// plainEvents returns a batch with its dictionary columns as String
// arrays (released with the test).
func plainEvents(t *testing.T, cat *schemas.Catalog, rec arrow.RecordBatch) arrow.RecordBatch {
	cols := make([]arrow.Array, rec.NumCols())
	for i := range cols {
		cols[i] = rec.Column(i)
		if d, ok := cols[i].(*array.Dictionary); ok {
			cols[i] = plainStrings(d)
			t.Cleanup(cols[i].Release)
		}
	}
	out := array.NewRecordBatch(EventsSchema(cat), cols, rec.NumRows())
	t.Cleanup(out.Release)
	return out
}

// FuzzReadEventsWithOptions reads mutated bytes of a small valid events
// file with dictionary columns and recycled buffers: the reader must
// never panic, must give a *CorruptFileError for a file it cannot read,
// and must read exactly what the plain ReadEventRows reads.
func FuzzReadEventsWithOptions(f *testing.F) {
	cat := loadCatalog(f, "taobao")
	events := synthEvents(cat, 4, 3)
	var good bytes.Buffer
	require.NoError(f, writeEvents(&good, cat, events, 0, 2))
	f.Add(good.Bytes())
	f.Add(good.Bytes()[:good.Len()/2])
	path := filepath.Join(f.TempDir(), "fuzz.parquet")
	file, err := os.Create(path)
	require.NoError(f, err)
	f.Cleanup(func() { file.Close() })
	opts := ReadOptions{Dictionaries: true, ReuseBuffers: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := file.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if _, err := file.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		var got []schemas.Event
		err := ReadEventsWith(context.Background(), cat, []string{path}, opts, func(rec arrow.RecordBatch) error {
			got = AppendEventRows(got, cat, plainEvents(t, cat, rec))
			return nil
		})
		want, wantErr := ReadEventRows(context.Background(), cat, []string{path})
		if err != nil {
			var ce *CorruptFileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *CorruptFileError: %v", err, err)
			}
			if wantErr == nil {
				t.Fatalf("read with options failed (%v), without did not", err)
			}
			return
		}
		if wantErr != nil {
			t.Fatalf("read without options failed (%v), with did not", wantErr)
		}
		require.Equal(t, want, got)
		if bytes.Equal(data, good.Bytes()) {
			require.Equal(t, events, got)
		}
	})
}

// plainStrings decodes a string dictionary array into a String array
// (the caller releases it).
func plainStrings(d *array.Dictionary) arrow.Array {
	vals := d.Dictionary().(*array.String)
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	defer sb.Release()
	for j := range d.Len() {
		sb.Append(vals.Value(d.GetValueIndex(j)))
	}
	return sb.NewArray()
}

// TestReadEventsReuseBuffersPages checks ReadOptions.ReuseBuffers on
// column chunks of one page (whose values become the batch's buffers in
// place; our writers make one page per chunk) and of several pages (as
// other writers or older versions may have written; copied into pooled
// buffers): the events are those written, also from batches retained
// while the later ones were read.
func TestReadEventsReuseBuffersPages(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	dir := t.TempDir()
	var files []string
	var want []schemas.Event
	for i, n := range []int{rowGroupRows + 30_000, 700, 3} {
		events := synthEvents(cat, n, uint64(100+i))
		path := filepath.Join(dir, PartName(0, int64(i), int64(i)))
		_, err := WriteEventsFile(path, cat, events, 9)
		require.NoError(t, err)
		files = append(files, path)
		want = append(want, events...)
	}
	multi := synthEvents(cat, 5000, 99)
	path := filepath.Join(dir, PartName(0, 9, 9))
	writeEventsWith(t, path, cat, ParquetSchema(cat), multi, parquet.PageBufferSize(4096))
	files = append(files, path)
	want = append(want, multi...)
	// Both paths must be taken: an int64 chunk of several pages and one
	// of a single page.
	pages := int64ChunkPages(t, cat, files)
	require.Greater(t, slices.Max(pages), 1, "pages per int64 chunk: %v", pages)
	require.Equal(t, 1, slices.Min(pages), "pages per int64 chunk: %v", pages)

	for _, opts := range []ReadOptions{{ReuseBuffers: true}, {ReuseBuffers: true, Dictionaries: true}} {
		got, again := readKeeping(t, cat, files, opts, -1)
		require.Equal(t, want, got)
		require.Equal(t, want, again)
	}
}

// int64ChunkPages counts the data pages of every int64 column chunk of
// files.
func int64ChunkPages(t *testing.T, cat *schemas.Catalog, files []string) []int {
	t.Helper()
	kinds := columnKinds(cat)
	var out []int
	for _, path := range files {
		f, err := os.Open(path)
		require.NoError(t, err)
		pf, err := openParquet(f, path)
		require.NoError(t, err)
		for _, rg := range pf.RowGroups() {
			for i, cc := range rg.ColumnChunks() {
				if kinds[i] != kindInt64 {
					continue
				}
				ps := cc.Pages()
				n := 0
				for {
					p, err := ps.ReadPage()
					if err == io.EOF {
						break
					}
					require.NoError(t, err)
					parquet.Release(p)
					n++
				}
				require.NoError(t, ps.Close())
				out = append(out, n)
			}
		}
		require.NoError(t, f.Close())
	}
	return out
}

// readKeeping reads files with opts and returns their rows, and the rows
// of the first keep batches (all with keep < 0) read again after the
// read ended, from batches retained meanwhile.
func readKeeping(t *testing.T, cat *schemas.Catalog, files []string, opts ReadOptions, keep int) (got, again []schemas.Event) {
	t.Helper()
	var kept []arrow.RecordBatch
	err := ReadEventsWith(context.Background(), cat, files, opts, func(rec arrow.RecordBatch) error {
		got = AppendEventRows(got, cat, plainEvents(t, cat, rec))
		if keep < 0 || len(kept) < keep {
			rec.Retain()
			kept = append(kept, rec)
		}
		return nil
	})
	require.NoError(t, err)
	for _, rec := range kept {
		again = AppendEventRows(again, cat, plainEvents(t, cat, rec))
		rec.Release()
	}
	return got, again
}
