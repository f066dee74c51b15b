package source

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/portrait-dev/portrait/schemas"
)

// header looks at the first non-blank CSV line: when every cell is a
// catalog field name it is a header, which must name every field exactly
// once, and maps columns to fields. A line in which only some cells name
// fields is data; the reason it is not a header is kept for its error.
func (r *Reader) header(line []byte) (bool, error) {
	cells, err := r.splitCSV(line)
	if err != nil {
		return false, nil
	}
	cols := make([]int, len(cells))
	named, stranger := 0, -1 // stranger: the first cell not naming a field
	for i, cell := range cells {
		f, ok := r.c.Field(strings.TrimSpace(cell))
		if !ok {
			if stranger < 0 {
				stranger = i
			}
			continue
		}
		cols[i] = f.Index
		named++
	}
	if stranger >= 0 {
		if named > 0 {
			r.notHeader = fmt.Sprintf("column %d %q is not a field", stranger+1, cells[stranger])
		}
		return false, nil
	}
	seen := make([]bool, len(r.c.Fields))
	for _, fi := range cols {
		if seen[fi] {
			return true, fmt.Errorf("header names field %s twice", r.c.Fields[fi].Name)
		}
		seen[fi] = true
	}
	var missing []string
	for i, s := range seen {
		if !s {
			missing = append(missing, r.c.Fields[i].Name)
		}
	}
	switch {
	case len(missing) == 1:
		return true, fmt.Errorf("header has no column for field %s", missing[0])
	case len(missing) > 1:
		return true, fmt.Errorf("header has no column for fields %s", strings.Join(missing, ", "))
	}
	r.cols = cols
	for i, fi := range cols {
		if fi == r.c.Key {
			r.keyCol = i
		}
	}
	return true, nil
}

func (r *Reader) csvRow(line []byte) Row {
	row := Row{Line: r.line, Raw: line}
	notHeader := r.notHeader
	r.notHeader = ""
	cells, err := r.splitCSV(line)
	if err != nil {
		row.Err = r.rowErr(err)
		return row
	}
	if r.keyCol < len(cells) {
		row.Key = strings.TrimSpace(cells[r.keyCol])
	}
	if len(cells) != len(r.cols) {
		err = fmt.Errorf("has %d columns, want %d", len(cells), len(r.cols))
	} else {
		row.Values = make([]any, len(r.c.Fields))
		for i, cell := range cells {
			fi := r.cols[i]
			if row.Values[fi], err = schemas.ParseValue(&r.c.Fields[fi], cell); err != nil {
				break
			}
		}
	}
	if err != nil {
		if notHeader != "" {
			err = fmt.Errorf("%w (not a header: %s)", err, notHeader)
		}
		row.Values, row.Err = nil, r.rowErr(err)
	}
	return row
}

// splitCSV splits one CSV line into cells, which share one string. Lines
// without quotes are split on commas directly; quoted lines go through
// encoding/csv. The cells are valid until the next call.
func (r *Reader) splitCSV(line []byte) ([]string, error) {
	if bytes.IndexByte(line, '"') < 0 {
		s := string(line)
		r.cells = r.cells[:0]
		for {
			i := strings.IndexByte(s, ',')
			if i < 0 {
				break
			}
			r.cells = append(r.cells, s[:i])
			s = s[i+1:]
		}
		r.cells = append(r.cells, s)
		return r.cells, nil
	}
	cr := csv.NewReader(bytes.NewReader(line))
	cr.FieldsPerRecord = -1
	cells, err := cr.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("bad CSV: %w", err)
	}
	if _, err := cr.Read(); err != io.EOF {
		return nil, errors.New("bad CSV: more than one record on the line")
	}
	return cells, nil
}

// jsonRow reads a JSON object keyed by field name. Keys that are not
// fields are ignored; a missing or null field rejects the row.
func (r *Reader) jsonRow(line []byte) Row {
	row := Row{Line: r.line, Raw: line}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		row.Err = r.rowErr(fmt.Errorf("bad JSON: %w", err))
		return row
	}
	obj, ok := v.(map[string]any)
	if !ok {
		row.Err = r.rowErr(fmt.Errorf("bad JSON: want an object, got %s", jsonKind(v)))
		return row
	}
	if _, err := dec.Token(); err != io.EOF {
		row.Err = r.rowErr(errors.New("bad JSON: data after the object"))
		return row
	}
	switch k := obj[r.c.KeyField().Name].(type) {
	case string:
		row.Key = k
	case json.Number:
		row.Key = k.String()
	}
	values := make([]any, len(r.c.Fields))
	for i := range r.c.Fields {
		f := &r.c.Fields[i]
		v, ok := obj[f.Name]
		if !ok {
			row.Err = r.rowErr(fmt.Errorf("missing field %s", f.Name))
			return row
		}
		x, err := schemas.ConvertJSON(f, v)
		if err != nil {
			row.Err = r.rowErr(err)
			return row
		}
		values[i] = x
	}
	row.Values = values
	return row
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
