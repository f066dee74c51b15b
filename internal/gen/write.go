package gen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/portrait-dev/portrait/schemas"
)

// Writer writes events as CSV (no header, catalog field order) or JSON
// Lines, the two formats `portrait import` and `portrait produce` read.
// Timestamps are written as unix milliseconds.
type Writer struct {
	c     *schemas.Catalog
	w     *bufio.Writer
	jsonl bool
	buf   []byte
}

// NewWriter writes to w in format "csv" or "jsonl".
func NewWriter(w io.Writer, c *schemas.Catalog, format string) (*Writer, error) {
	switch format {
	case "csv", "jsonl":
	default:
		return nil, fmt.Errorf("unknown format %q (want csv or jsonl)", format)
	}
	return &Writer{c: c, w: bufio.NewWriterSize(w, 1<<20), jsonl: format == "jsonl"}, nil
}

// Write writes one event.
func (w *Writer) Write(e *schemas.Event) error {
	b := w.buf[:0]
	if w.jsonl {
		b = append(b, '{')
	}
	for i, v := range e.Values {
		if i > 0 {
			b = append(b, ',')
		}
		if w.jsonl {
			b = strconv.AppendQuote(b, w.c.Fields[i].Name)
			b = append(b, ':')
		}
		b = appendValue(b, v, w.jsonl)
	}
	if w.jsonl {
		b = append(b, '}')
	}
	b = append(b, '\n')
	w.buf = b
	_, err := w.w.Write(b)
	return err
}

// Flush writes buffered data.
func (w *Writer) Flush() error { return w.w.Flush() }

func appendValue(b []byte, v any, quoteStrings bool) []byte {
	switch x := v.(type) {
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, x)
	case schemas.Timestamp:
		return strconv.AppendInt(b, int64(x), 10)
	case string:
		if quoteStrings {
			s, _ := json.Marshal(x)
			return append(b, s...)
		}
		return append(b, x...) // generated strings never hold commas or quotes
	}
	return b
}
