package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
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

// maxLine bounds one JSON Lines row.
const maxLine = 16 << 20

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

// RowError is a row that could not be read or validated.
type RowError struct {
	File string
	Line int
	Err  error
}

func (e *RowError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

func (e *RowError) Unwrap() error { return e.Err }

// Row is one input row.
type Row struct {
	// Line is the 1-based line the row starts on.
	Line int
	// Values by catalog field index, validated; nil when Err is set.
	Values []any
	// Raw is the row's source text: the JSON line, or the CSV cells joined
	// by commas. It is only valid until the next call to Next.
	Raw []byte
	// Key is the entity key's source text when it could be found (also for
	// rows that failed validation), else "".
	Key string
	// Err is a *RowError when the row is malformed or fails validation.
	Err error
}

// Event turns a valid row into an event placed at (ordinal, line), the
// source position that breaks ties between events with the same time.
func (r *Row) Event(c *schemas.Catalog, ordinal int32) schemas.Event {
	return schemas.Event{Values: r.Values, Time: r.Values[c.Time].(schemas.Timestamp), Partition: ordinal, Offset: int64(r.Line)}
}

// Reader reads the rows of one file.
type Reader struct {
	c      *schemas.Catalog
	name   string
	format Format
	closer io.Closer

	// CSV
	csv     *csv.Reader
	cols    []int // catalog field index by column; -1 ignored
	started bool

	// JSONL
	lines  *bufio.Scanner
	lineNo int
	raw    []byte
}

// Open opens path for reading in format ("" infers it from the name).
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
	var r io.Reader = f
	var closer io.Closer = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<16))
		if err != nil {
			f.Close() //nolint:errcheck // read-only
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		r = gz
		closer = multiCloser{gz, f}
	}
	rd := NewReader(c, r, path, format)
	rd.closer = closer
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

// NewReader reads rows of format from r; name is used in errors.
func NewReader(c *schemas.Catalog, r io.Reader, name string, format Format) *Reader {
	rd := &Reader{c: c, name: name, format: format}
	if format == CSV {
		rd.csv = csv.NewReader(bufio.NewReaderSize(r, 1<<20))
		rd.csv.FieldsPerRecord = -1
		rd.csv.ReuseRecord = true
	} else {
		rd.lines = bufio.NewScanner(r)
		rd.lines.Buffer(make([]byte, 0, 1<<20), maxLine)
	}
	return rd
}

// Name is the file name the reader reports in errors.
func (r *Reader) Name() string { return r.name }

// Next returns the next row, or io.EOF after the last. A row that cannot be
// parsed or validated comes back with Row.Err set and reading can go on;
// an error from Next itself (I/O, a header without some field) ends it.
func (r *Reader) Next() (Row, error) {
	if r.format == CSV {
		return r.nextCSV()
	}
	return r.nextJSON()
}

// Close closes the file Open opened.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

func (r *Reader) rowErr(line int, err error) *RowError {
	return &RowError{File: r.name, Line: line, Err: err}
}

func (r *Reader) nextCSV() (Row, error) {
	for {
		rec, err := r.csv.Read()
		if err == io.EOF {
			return Row{}, io.EOF
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return Row{}, fmt.Errorf("reading %s: %w", r.name, err)
		}
		if pe != nil {
			return Row{Line: pe.StartLine, Err: r.rowErr(pe.StartLine, pe.Err)}, nil
		}
		line, _ := r.csv.FieldPos(0)
		if !r.started {
			r.started = true
			if cols, ok, err := r.header(rec); ok || err != nil {
				if err != nil {
					return Row{}, r.rowErr(line, err)
				}
				r.cols = cols
				continue
			}
		}
		return r.csvRow(rec, line), nil
	}
}

// header reports whether rec names every catalog field, and then maps
// columns to fields.
func (r *Reader) header(rec []string) ([]int, bool, error) {
	cols := make([]int, len(rec))
	seen := make([]bool, len(r.c.Fields))
	named := 0
	for i, name := range rec {
		cols[i] = -1
		if f, ok := r.c.Field(strings.TrimSpace(name)); ok {
			if seen[f.Index] {
				return nil, false, fmt.Errorf("header names column %s twice", f.Name)
			}
			seen[f.Index] = true
			cols[i] = f.Index
			named++
		}
	}
	if named == 0 {
		return nil, false, nil
	}
	if named < len(r.c.Fields) {
		var missing []string
		for i, s := range seen {
			if !s {
				missing = append(missing, r.c.Fields[i].Name)
			}
		}
		// A data row can hold a field name as a value (a string field);
		// only a row naming the key field is taken as a header.
		if !seen[r.c.Key] {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("header lacks column %s", strings.Join(missing, ", "))
	}
	return cols, true, nil
}

func (r *Reader) csvRow(rec []string, line int) Row {
	r.raw = r.raw[:0]
	for i, s := range rec {
		if i > 0 {
			r.raw = append(r.raw, ',')
		}
		r.raw = append(r.raw, s...)
	}
	row := Row{Line: line, Raw: r.raw}
	keyCol := r.c.Key
	if r.cols != nil {
		keyCol = indexOf(r.cols, r.c.Key)
	}
	if keyCol >= 0 && keyCol < len(rec) {
		row.Key = strings.TrimSpace(rec[keyCol])
	}
	values := make([]any, len(r.c.Fields))
	if r.cols == nil {
		if len(rec) != len(r.c.Fields) {
			row.Err = r.rowErr(line, fmt.Errorf("%d columns, want %d (%s)", len(rec), len(r.c.Fields), r.fieldNames()))
			return row
		}
		for i, s := range rec {
			v, err := schemas.ParseValue(&r.c.Fields[i], s)
			if err != nil {
				row.Err = r.rowErr(line, err)
				return row
			}
			values[i] = v
		}
	} else {
		if len(rec) != len(r.cols) {
			row.Err = r.rowErr(line, fmt.Errorf("%d columns, header has %d", len(rec), len(r.cols)))
			return row
		}
		for i, s := range rec {
			fi := r.cols[i]
			if fi < 0 {
				continue
			}
			v, err := schemas.ParseValue(&r.c.Fields[fi], s)
			if err != nil {
				row.Err = r.rowErr(line, err)
				return row
			}
			values[fi] = v
		}
	}
	row.Values = values
	return row
}

func (r *Reader) fieldNames() string {
	names := make([]string, len(r.c.Fields))
	for i, f := range r.c.Fields {
		names[i] = f.Name
	}
	return strings.Join(names, ",")
}

func indexOf(cols []int, fi int) int {
	for i, c := range cols {
		if c == fi {
			return i
		}
	}
	return -1
}

func (r *Reader) nextJSON() (Row, error) {
	for r.lines.Scan() {
		r.lineNo++
		b := r.lines.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		return r.jsonRow(b, r.lineNo), nil
	}
	if err := r.lines.Err(); err != nil {
		return Row{}, fmt.Errorf("reading %s after line %d: %w", r.name, r.lineNo, err)
	}
	return Row{}, io.EOF
}

func (r *Reader) jsonRow(b []byte, line int) Row {
	row := Row{Line: line, Raw: b}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		row.Err = r.rowErr(line, fmt.Errorf("not a JSON object: %w", err))
		return row
	}
	if dec.More() {
		row.Err = r.rowErr(line, errors.New("more than one JSON value on the line"))
		return row
	}
	if obj == nil {
		row.Err = r.rowErr(line, errors.New("not a JSON object: null"))
		return row
	}
	if k, ok := obj[r.c.KeyField().Name]; ok {
		switch k := k.(type) {
		case string:
			row.Key = k
		case json.Number:
			row.Key = k.String()
		}
	}
	values := make([]any, len(r.c.Fields))
	for i := range r.c.Fields {
		f := &r.c.Fields[i]
		v, ok := obj[f.Name]
		if !ok {
			row.Err = r.rowErr(line, fmt.Errorf("field %s: missing", f.Name))
			return row
		}
		x, err := schemas.ConvertJSON(f, v)
		if err != nil {
			row.Err = r.rowErr(line, err)
			return row
		}
		values[i] = x
	}
	row.Values = values
	return row
}
