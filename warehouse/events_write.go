package warehouse

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"

	"github.com/portrait-dev/portrait/schemas"
)

// Write tuning. A row group of 128Ki rows keeps the reader's record
// batches (one per row group) cache-friendly; values are handed to the
// column writers in chunks of writeChunk. A page holds up to pageBytes of
// values before encoding: every column chunk of a row group is then one
// data page (plus a dictionary page for strings), which the reader hands
// to Arrow in place once decoded, with no copy and one page header.
const (
	rowGroupRows = 1 << 17
	writeChunk   = 4096
	pageBytes    = rowGroupRows * 8
)

// codec compresses every page: snappy decodes several times faster than
// zstd, which the reader's speed needs more than the last bytes of size.
var codec compress.Codec = &fastSnappy{}

// fastSnappy writes standard snappy blocks (any snappy decoder reads them)
// with s2's fast snappy encoder. parquet-go's snappy codec encodes with
// s2's "better" one, which on events pages costs about twice the CPU for
// a few percent of size.
type fastSnappy struct{ snappy.Codec }

func (*fastSnappy) Encode(dst, src []byte) ([]byte, error) { return s2.EncodeSnappy(dst, src), nil }

// PartName is the name of an events data file holding the events of one
// source partition with offsets first..last (for imports: the import's
// partition and line numbers).
func PartName(partition int32, first, last int64) string {
	return fmt.Sprintf("part-%d-%d-%d.parquet", partition, first, last)
}

// ParsePartName reads the partition and offset range from a data file name
// written by PartName; ok is false for other names.
func ParsePartName(name string) (partition int32, first, last int64, ok bool) {
	s, ok1 := strings.CutPrefix(filepath.Base(name), "part-")
	s, ok2 := strings.CutSuffix(s, ".parquet")
	parts := strings.Split(s, "-")
	if !ok1 || !ok2 || len(parts) != 3 {
		return 0, 0, 0, false
	}
	p, err1 := strconv.ParseInt(parts[0], 10, 32)
	f, err2 := strconv.ParseInt(parts[1], 10, 64)
	l, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return int32(p), f, l, true
}

// WriteEventsFile writes events to one Parquet file at path, atomically
// (WriteFileAtomic), in the order given, and returns its marker entry.
// Every event must have a non-null value of its field's type for every
// field; ingest is stored as _ingest_time of every row.
func WriteEventsFile(path string, cat *schemas.Catalog, events []schemas.Event, ingest schemas.Timestamp) (MarkerFile, error) {
	var size int64
	err := WriteFileAtomic(path, func(w io.Writer) error {
		cw := &CountingWriter{W: w}
		if err := WriteEvents(cw, cat, events, ingest); err != nil {
			return err
		}
		size = cw.N
		return nil
	})
	if err != nil {
		return MarkerFile{}, err
	}
	return MarkerFile{Name: filepath.Base(path), Rows: int64(len(events)), Bytes: size}, nil
}

// WriteEvents writes events as one Parquet file to w (see WriteEventsFile).
func WriteEvents(w io.Writer, cat *schemas.Catalog, events []schemas.Event, ingest schemas.Timestamp) error {
	return writeEvents(w, cat, events, ingest, rowGroupRows)
}

func writeEvents(w io.Writer, cat *schemas.Catalog, events []schemas.Event, ingest schemas.Timestamp, groupRows int) error {
	if err := checkEvents(cat, events); err != nil {
		return err
	}
	kinds := columnKinds(cat)
	nf := len(cat.Fields)
	return writeParquetEvents(w, cat, len(events), groupRows, func(vals []parquet.Value, s, e, c int) {
		fillColumn(vals, events[s:e], c, nf, kinds[c], ingest)
	})
}

// writeParquetEvents writes n events of cat as one Parquet file to w, in
// row groups of groupRows, taking the values of column c for events s..e
// from fill. Both writers (WriteEvents and WriteEventColumns) go through
// it, so that they write the same bytes for the same events.
func writeParquetEvents(w io.Writer, cat *schemas.Catalog, n, groupRows int,
	fill func(vals []parquet.Value, s, e, c int)) error {
	opts := []parquet.WriterOption{ParquetSchema(cat), parquet.Compression(codec), parquet.PageBufferSize(pageBytes),
		parquet.CreatedBy("portrait", "", "")}
	for _, f := range cat.Fields {
		if f.Type == schemas.TypeString {
			// Page min/max of strings prune nothing (no reader of ours
			// uses them) and cost a fifth of the write time, a scan of
			// the page's dictionary indexes each for the column index
			// and for the page header's statistics.
			opts = append(opts, parquet.SkipPageBounds(f.Name), parquet.SkipPageStatistics(f.Name))
		}
	}
	pw := parquet.NewWriter(w, opts...)
	ncols := NumEventColumns(cat)
	buf := make([]parquet.Value, writeChunk)
	for start := 0; start < n; start += groupRows {
		end := min(start+groupRows, n)
		cols := pw.ColumnWriters()
		for c := range ncols {
			for s := start; s < end; s += writeChunk {
				e := min(s+writeChunk, end)
				vals := buf[:e-s]
				fill(vals, s, e, c)
				if _, err := cols[c].WriteRowValues(vals); err != nil {
					return fmt.Errorf("writing column %d: %w", c, err)
				}
			}
		}
		if err := pw.Flush(); err != nil {
			return fmt.Errorf("writing row group: %w", err)
		}
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("closing parquet writer: %w", err)
	}
	return nil
}

// fillColumn builds the values of column c for events (types checked by
// checkEvents). Values hold no boxed Go values: strings are referenced in
// place.
func fillColumn(vals []parquet.Value, events []schemas.Event, c, nf int, kind columnKind, ingest schemas.Timestamp) {
	switch {
	case c == nf: // _partition
		for i := range events {
			vals[i] = parquet.Int32Value(events[i].Partition)
		}
	case c == nf+1: // _offset
		for i := range events {
			vals[i] = parquet.Int64Value(events[i].Offset)
		}
	case c == nf+2: // _ingest_time
		v := parquet.Int64Value(int64(ingest))
		for i := range vals {
			vals[i] = v
		}
	default:
		switch kind {
		case kindInt64:
			for i := range events {
				switch x := events[i].Values[c].(type) {
				case int64:
					vals[i] = parquet.Int64Value(x)
				case schemas.Timestamp:
					vals[i] = parquet.Int64Value(int64(x))
				}
			}
		case kindDouble:
			for i := range events {
				vals[i] = parquet.DoubleValue(events[i].Values[c].(float64))
			}
		case kindBool:
			for i := range events {
				vals[i] = parquet.BooleanValue(events[i].Values[c].(bool))
			}
		case kindString:
			for i := range events {
				s := events[i].Values[c].(string)
				vals[i] = parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s)))
			}
		}
	}
}

// checkEvents verifies that every event has a value of its field's type
// for every field, so the column writers need no checks.
func checkEvents(cat *schemas.Catalog, events []schemas.Event) error {
	nf := len(cat.Fields)
	for i := range events {
		vs := events[i].Values
		if len(vs) != nf {
			return fmt.Errorf("event %d has %d values, catalog %s has %d fields", i, len(vs), cat.Name, nf)
		}
		for j := range cat.Fields {
			ok := false
			switch cat.Fields[j].Type {
			case schemas.TypeInt64:
				_, ok = vs[j].(int64)
			case schemas.TypeFloat64:
				_, ok = vs[j].(float64)
			case schemas.TypeString:
				_, ok = vs[j].(string)
			case schemas.TypeBool:
				_, ok = vs[j].(bool)
			case schemas.TypeTimestamp:
				_, ok = vs[j].(schemas.Timestamp)
			}
			if !ok {
				return fmt.Errorf("event %d: field %s: got %T, want %s", i, cat.Fields[j].Name, vs[j], cat.Fields[j].Type)
			}
		}
	}
	return nil
}

// HourStart is the start of the event-time hour that holds ts.
func HourStart(ts schemas.Timestamp) schemas.Timestamp {
	const h = int64(time.Hour / time.Millisecond)
	q := int64(ts) / h
	if int64(ts)%h < 0 {
		q--
	}
	return schemas.Timestamp(q * h)
}

// GroupByHour splits events by the event-time hour of their Time, keeping
// their order within an hour. The hours are returned oldest first.
func GroupByHour(events []schemas.Event) ([]schemas.Timestamp, map[schemas.Timestamp][]schemas.Event) {
	groups := map[schemas.Timestamp][]schemas.Event{}
	var hours []schemas.Timestamp
	for i := range events {
		h := HourStart(events[i].Time)
		if _, ok := groups[h]; !ok {
			hours = append(hours, h)
		}
		groups[h] = append(groups[h], events[i])
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i] < hours[j] })
	return hours, groups
}

// AppendEvents writes events into the events table under root: one new
// file per event-time hour they fall in, named by name(hour, the hour's
// events) (use PartFileName for part-<p>-<first>-<last>.parquet), and then
// rewrites the _SUCCESS marker of every hour it touched so that it lists
// every data file of the hour. A file of the same name is replaced, which
// makes re-running an interrupted write with the same input idempotent.
// It returns the marker entries of the files written, by hour.
func AppendEvents(root string, cat *schemas.Catalog, events []schemas.Event, ingest schemas.Timestamp,
	name func(hour schemas.Timestamp, events []schemas.Event) string) (map[schemas.Timestamp]MarkerFile, error) {
	written, err := WriteHourFiles(root, cat, events, ingest, name)
	if err != nil {
		return written, err
	}
	hours := make([]schemas.Timestamp, 0, len(written))
	for h := range written {
		hours = append(hours, h)
	}
	return written, CloseHours(root, hours)
}

// WriteHourFiles is AppendEvents without the markers: it writes one file
// per hour and leaves closing the hours to the caller. Hours are written
// concurrently (fsync latency dominates small files).
func WriteHourFiles(root string, cat *schemas.Catalog, events []schemas.Event, ingest schemas.Timestamp,
	name func(hour schemas.Timestamp, events []schemas.Event) string) (map[schemas.Timestamp]MarkerFile, error) {
	hours, groups := GroupByHour(events)
	names := make([]string, len(hours))
	for i, h := range hours {
		n := name(h, groups[h])
		if !IsDataName(n) || !strings.HasSuffix(n, ".parquet") || strings.ContainsRune(n, filepath.Separator) {
			return nil, fmt.Errorf("events file name %q is not a data file name", n)
		}
		names[i] = n
	}
	files := make([]MarkerFile, len(hours))
	err := forEachConcurrently(len(hours), func(i int) error {
		h := hours[i]
		mf, err := WriteEventsFile(filepath.Join(HourDir(root, h), names[i]), cat, groups[h], ingest)
		if err != nil {
			return fmt.Errorf("writing events of hour %s: %w", h, err)
		}
		files[i] = mf
		return nil
	})
	written := make(map[schemas.Timestamp]MarkerFile, len(hours))
	for i, h := range hours {
		if files[i].Name != "" {
			written[h] = files[i]
		}
	}
	return written, err
}

// CloseHours closes several hours (CloseHour) concurrently.
func CloseHours(root string, hours []schemas.Timestamp) error {
	return forEachConcurrently(len(hours), func(i int) error { return CloseHour(HourDir(root, hours[i])) })
}

// ioConcurrency bounds the files written at once.
const ioConcurrency = 8

// forEachConcurrently runs fn(0..n-1) on up to ioConcurrency goroutines
// and returns the first error (the others still finish).
func forEachConcurrently(n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, ioConcurrency)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// PartFileName names a file by PartName from the partition of its events
// and their smallest and largest offset. All events must come from one
// partition.
func PartFileName(_ schemas.Timestamp, events []schemas.Event) string {
	if len(events) == 0 {
		return PartName(0, 0, 0)
	}
	first, last := events[0].Offset, events[0].Offset
	for i := range events {
		first = min(first, events[i].Offset)
		last = max(last, events[i].Offset)
	}
	return PartName(events[0].Partition, first, last)
}

// CloseHour (re)writes the _SUCCESS marker of an events hour folder so
// that it lists every live data file in it (LiveFiles: never one a
// compaction superseded) with its rows and bytes. Entries of the previous
// marker are reused for files whose size is unchanged; other files' row
// counts are read from their Parquet footer. Call it holding
// LockWarehouse when a compaction may run at the same time.
func CloseHour(dir string) error {
	old, _, err := ReadMarker(dir)
	if err != nil {
		return err
	}
	known := make(map[string]MarkerFile, len(old.Files))
	for _, f := range old.Files {
		known[f.Name] = f
	}
	files, err := DataFiles(dir)
	if err != nil {
		return err
	}
	files = LiveFiles(files)
	m := Marker{Files: make([]MarkerFile, 0, len(files))}
	for _, path := range files {
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("closing hour %s: %w", dir, err)
		}
		mf, ok := known[filepath.Base(path)]
		if !ok || mf.Bytes != st.Size() {
			rows, err := FileRows(path)
			if err != nil {
				return fmt.Errorf("closing hour %s: %w", dir, err)
			}
			mf = MarkerFile{Name: filepath.Base(path), Rows: rows, Bytes: st.Size()}
		}
		m.Files = append(m.Files, mf)
		m.Rows += mf.Rows
	}
	return WriteMarker(dir, m)
}
