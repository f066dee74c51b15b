package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/portrait-dev/portrait/schemas"
)

// Format is an input file format.
type Format string

// The formats Reader reads.
const (
	CSV   Format = "csv"
	JSONL Format = "jsonl"
)

// maxLine bounds one line (one row); a longer line is a bad row and only
// its first rawLimit bytes are kept as its Raw text.
const (
	maxLine  = 16 << 20
	rawLimit = 1 << 10
)

// ErrTruncated is the reason a final line without a trailing newline is
// rejected: such a line is a record cut short (a copy or a writer
// interrupted), even when what is left still parses, as the Taobao
// sample's last line "…,pv,15" (a cut unix time) does.
var ErrTruncated = errors.New("truncated record (no trailing newline)")

// FormatOf infers the format from a file name: .csv, or .jsonl, .ndjson
// and .json for JSON Lines, each optionally followed by .gz.
func FormatOf(path string) (Format, error) {
	ext := strings.ToLower(filepath.Ext(strings.TrimSuffix(path, ".gz")))
	switch ext {
	case ".csv":
		return CSV, nil
	case ".jsonl", ".ndjson", ".json":
		return JSONL, nil
	}
	return "", fmt.Errorf("%s: cannot tell the format from the name (want .csv, .jsonl, .ndjson or .json, optionally .gz)", path)
}

// ParseFormat reads a format name ("csv" or "jsonl"; "" is no format).
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", CSV, JSONL:
		return Format(s), nil
	case "json", "ndjson":
		return JSONL, nil
	}
	return "", fmt.Errorf("unknown format %q (want csv or jsonl)", s)
}

// RowError is a row that could not be read or validated, or a bad header
// (returned by Next itself).
type RowError struct {
	File string
	Line int
	Err  error
}

func (e *RowError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

func (e *RowError) Unwrap() error { return e.Err }

// Row is one input row.
type Row struct {
	// Line is the 1-based line the row is on.
	Line int
	// Values by catalog field index, validated; nil when Err is set.
	Values []any
	// Raw is the row's source text: the line without its line ending (the
	// first KiB of an over-long line). It is only valid until the next call
	// to Next.
	Raw []byte
	// Key is the entity key's source text when it could be found (also for
	// rows that failed validation), else "".
	Key string
	// Err is a *RowError when the row is malformed, fails validation or is
	// truncated (ErrTruncated).
	Err error
}

// Event turns a valid row into an event placed at (ordinal, line), the
// source position that breaks ties between events with the same time.
func (r *Row) Event(c *schemas.Catalog, ordinal int32) schemas.Event {
	return schemas.Event{Values: r.Values, Time: r.Values[c.Time].(schemas.Timestamp), Partition: ordinal, Offset: int64(r.Line)}
}

// Reader reads the rows of one file, one row per line. Blank lines
// (whitespace only) are skipped; a final line without a newline is
// rejected with ErrTruncated. A CSV cell cannot span lines.
type Reader struct {
	c      *schemas.Catalog
	name   string
	format Format
	closer io.Closer
	in     *countingReader
	br     *bufio.Reader
	line   int
	buf    []byte

	// CSV
	started   bool  // the first non-blank line was seen
	cols      []int // catalog field index by column (a header's order)
	keyCol    int   // column of the key field
	cells     []string
	notHeader string // why a first line naming some fields is not a header
}

// Open opens path for reading in format ("" infers it from the name).
// Files ending in .gz are decompressed.
func Open(c *schemas.Catalog, path string, format Format) (*Reader, error) {
	if format == "" {
		var err error
		if format, err = FormatOf(path); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening input: %w", err)
	}
	in := &countingReader{r: f}
	var r io.Reader = in
	var closer io.Closer = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(bufio.NewReaderSize(in, 1<<16))
		if err != nil {
			f.Close() //nolint:errcheck // read-only
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		r = gz
		closer = multiCloser{gz, f}
	}
	rd := NewReader(c, r, path, format)
	rd.in, rd.closer = in, closer
	return rd, nil
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var errs []error
	for _, c := range m {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// NewReader reads rows of format from r; name is used in errors.
func NewReader(c *schemas.Catalog, r io.Reader, name string, format Format) *Reader {
	in := &countingReader{r: r}
	rd := &Reader{c: c, name: name, format: format, in: in, keyCol: c.Key}
	rd.br = bufio.NewReaderSize(in, 1<<20)
	for i := range c.Fields {
		rd.cols = append(rd.cols, i)
	}
	return rd
}

// BytesRead is how many bytes were read from the file so far (compressed
// bytes for a .gz file; read ahead of the rows returned), for progress.
func (r *Reader) BytesRead() int64 { return r.in.n }

// Next returns the next row, or io.EOF after the last. A row that cannot be
// parsed or validated comes back with Row.Err set and reading can go on;
// an error from Next itself (I/O, a bad CSV header: a *RowError) ends it.
//
// The first non-blank line of a CSV file is a header when every cell is a
// catalog field name; it must then name every field exactly once, and
// columns are matched by name. Otherwise the line is data with the
// fields in catalog order.
func (r *Reader) Next() (Row, error) {
	for {
		b, terminated, long, err := r.readLine()
		if err == io.EOF {
			return Row{}, io.EOF
		}
		if err != nil {
			return Row{}, fmt.Errorf("reading %s after line %d: %w", r.name, r.line, err)
		}
		if !long && len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if long {
			return Row{Line: r.line, Raw: b[:min(len(b), rawLimit)], Err: r.rowErr(fmt.Errorf("line longer than %d MiB", maxLine>>20))}, nil
		}
		if r.format == CSV && !r.started {
			r.started = true
			header, err := r.header(b)
			if err != nil {
				return Row{}, r.rowErr(err)
			}
			if header {
				continue
			}
		}
		var row Row
		if r.format == CSV {
			row = r.csvRow(b)
		} else {
			row = r.jsonRow(b)
		}
		if !terminated {
			row.Values, row.Err = nil, r.rowErr(ErrTruncated)
		}
		return row, nil
	}
}

// Close closes the file Open opened.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

func (r *Reader) rowErr(err error) *RowError {
	return &RowError{File: r.name, Line: r.line, Err: err}
}

// readLine returns the next line without its line ending, whether a
// newline ended it, and whether it was longer than maxLine (then only its
// start is returned). It returns io.EOF after the last line. The slice is
// valid until the next call.
func (r *Reader) readLine() (line []byte, terminated, long bool, err error) {
	r.buf = r.buf[:0]
	n := 0
	for {
		chunk, err := r.br.ReadSlice('\n')
		n += len(chunk)
		if err == bufio.ErrBufferFull {
			if len(r.buf) < maxLine {
				r.buf = append(r.buf, chunk...)
			}
			continue
		}
		if len(r.buf) > 0 {
			if len(r.buf) < maxLine {
				r.buf = append(r.buf, chunk...)
			}
			chunk = r.buf
		}
		if err != nil && err != io.EOF {
			return nil, false, false, err
		}
		if err == io.EOF {
			if n == 0 {
				return nil, false, false, io.EOF
			}
		} else {
			terminated = true
			chunk = chunk[:len(chunk)-1]
			n--
		}
		r.line++
		return bytes.TrimSuffix(chunk, []byte{'\r'}), terminated, n > maxLine, nil
	}
}

// ReadEvents reads every row of a file as events (partition ordinal,
// offset the line number), at most limit of them when limit > 0. A row
// that does not parse or validate is an error naming its file and line.
func ReadEvents(c *schemas.Catalog, path string, ordinal int32, limit int) ([]schemas.Event, error) {
	r, err := Open(c, path, "")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []schemas.Event
	for limit <= 0 || len(out) < limit {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if row.Err != nil {
			return nil, row.Err
		}
		out = append(out, row.Event(c, ordinal))
	}
	return out, nil
}
