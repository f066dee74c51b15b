package warehouse

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/portrait-dev/portrait/schemas"
)

// Import formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// FormatOf picks the import format from a file name: .jsonl, .ndjson and
// .json are JSON Lines, everything else CSV.
func FormatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson", ".json":
		return FormatJSONL
	}
	return FormatCSV
}

// errTruncated is the reason a final line without a newline is rejected:
// such a line is a record cut short (a copy or a writer interrupted), even
// when what is left still parses, as the Taobao sample's last line
// "…,pv,15" (a cut unix time) does.
var errTruncated = errors.New("truncated record (no trailing newline)")

// lineReader reads a file line by line, counting lines from 1 and bytes.
type lineReader struct {
	r     *bufio.Reader
	line  int64
	bytes int64
	buf   []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 1<<20)}
}

// next returns the next line without its line ending, and whether it was
// terminated by a newline. It returns io.EOF after the last line. The
// returned slice is valid until the next call.
func (l *lineReader) next() (line []byte, terminated bool, err error) {
	l.buf = l.buf[:0]
	for {
		chunk, err := l.r.ReadSlice('\n')
		l.bytes += int64(len(chunk))
		if err == bufio.ErrBufferFull {
			l.buf = append(l.buf, chunk...)
			continue
		}
		if len(l.buf) > 0 {
			l.buf = append(l.buf, chunk...)
			chunk = l.buf
		}
		if err == io.EOF {
			if len(chunk) == 0 {
				return nil, false, io.EOF
			}
			l.line++
			return bytes.TrimSuffix(chunk, []byte{'\r'}), false, nil
		}
		if err != nil {
			return nil, false, err
		}
		l.line++
		chunk = chunk[:len(chunk)-1]
		return bytes.TrimSuffix(chunk, []byte{'\r'}), true, nil
	}
}

// rowDecoder turns one line into field values in catalog order.
type rowDecoder interface {
	decode(line []byte) ([]any, error)
}

// csvDecoder reads a CSV line whose column i holds field cols[i].
type csvDecoder struct {
	cat  *schemas.Catalog
	cols []int
}

// newCSVDecoder looks at the first line of a CSV file: when its cells are
// the catalog's field names it is a header that maps columns to fields
// (header is true and the line is not data); otherwise the columns are the
// fields in catalog order.
func newCSVDecoder(cat *schemas.Catalog, first []byte) (d *csvDecoder, header bool, err error) {
	d = &csvDecoder{cat: cat}
	cells, err := splitCSV(first)
	if err == nil && isHeader(cat, cells) {
		seen := make(map[int]bool, len(cells))
		for _, c := range cells {
			f, _ := cat.Field(strings.TrimSpace(c))
			if seen[f.Index] {
				return nil, true, fmt.Errorf("header names field %s twice", f.Name)
			}
			seen[f.Index] = true
			d.cols = append(d.cols, f.Index)
		}
		for _, f := range cat.Fields {
			if !seen[f.Index] {
				return nil, true, fmt.Errorf("header has no column for field %s", f.Name)
			}
		}
		return d, true, nil
	}
	for i := range cat.Fields {
		d.cols = append(d.cols, i)
	}
	return d, false, nil
}

func isHeader(cat *schemas.Catalog, cells []string) bool {
	if len(cells) == 0 {
		return false
	}
	for _, c := range cells {
		if _, ok := cat.Field(strings.TrimSpace(c)); !ok {
			return false
		}
	}
	return true
}

func (d *csvDecoder) decode(line []byte) ([]any, error) {
	cells, err := splitCSV(line)
	if err != nil {
		return nil, err
	}
	if len(cells) != len(d.cols) {
		return nil, fmt.Errorf("has %d columns, want %d", len(cells), len(d.cols))
	}
	values := make([]any, len(d.cat.Fields))
	for i, c := range cells {
		f := &d.cat.Fields[d.cols[i]]
		v, err := schemas.ParseValue(f, c)
		if err != nil {
			return nil, err
		}
		values[f.Index] = v
	}
	return values, nil
}

// splitCSV splits one CSV line into cells. Lines without quotes are split
// on commas directly; quoted lines go through encoding/csv. A quoted cell
// cannot span lines.
func splitCSV(line []byte) ([]string, error) {
	if bytes.IndexByte(line, '"') < 0 {
		s := string(line)
		return strings.Split(s, ","), nil
	}
	r := csv.NewReader(bytes.NewReader(line))
	r.FieldsPerRecord = -1
	cells, err := r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("bad CSV: %w", err)
	}
	if _, err := r.Read(); err != io.EOF {
		return nil, errors.New("bad CSV: quoted field spans lines")
	}
	return cells, nil
}

// jsonDecoder reads a JSON object keyed by field name. Keys that are not
// fields are ignored; a missing or null field rejects the line.
type jsonDecoder struct {
	cat *schemas.Catalog
}

func (d *jsonDecoder) decode(line []byte) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("bad JSON: want an object, got %s", jsonKind(v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("bad JSON: data after the object")
	}
	values := make([]any, len(d.cat.Fields))
	for i := range d.cat.Fields {
		f := &d.cat.Fields[i]
		v, ok := obj[f.Name]
		if !ok {
			return nil, fmt.Errorf("missing field %s", f.Name)
		}
		x, err := schemas.ConvertJSON(f, v)
		if err != nil {
			return nil, err
		}
		values[i] = x
	}
	return values, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a bool"
	default:
		return "a number"
	}
}
