package batch

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/portrait-dev/portrait/schemas"
)

// TableFromCatalog names a profile set's columns by a catalog.
func TableFromCatalog(cat *schemas.Catalog, profiles []schemas.Profile) *Table {
	t := &Table{Key: cat.KeyField().Name, Profiles: profiles}
	for _, tag := range cat.Tags {
		t.Tags = append(t.Tags, tag.Name)
	}
	return t
}

// Find returns the profile with the key written as id (parsed by the key
// column's type).
func (t *Table) Find(id string) (schemas.Profile, bool) {
	var key any = id
	if len(t.Profiles) > 0 {
		if _, ok := t.Profiles[0].Key.(int64); ok {
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return schemas.Profile{}, false
			}
			key = n
		}
	}
	for _, p := range t.Profiles {
		if p.Key == key {
			return p, true
		}
	}
	return schemas.Profile{}, false
}

// AppendJSON appends one profile as a JSON object: the key, then every tag
// in order; null for empty, timestamps as RFC 3339 UTC strings, floats as
// numbers.
func (t *Table) AppendJSON(b []byte, p schemas.Profile) ([]byte, error) {
	b = append(b, '{')
	b = strconv.AppendQuote(b, t.Key)
	b = append(b, ':')
	b, err := appendJSONValue(b, p.Key)
	if err != nil {
		return nil, err
	}
	for i, name := range t.Tags {
		b = append(b, ',')
		b = strconv.AppendQuote(b, name)
		b = append(b, ':')
		if b, err = appendJSONValue(b, p.Values[i]); err != nil {
			return nil, fmt.Errorf("key %v tag %s: %w", p.Key, name, err)
		}
	}
	return append(b, '}'), nil
}

func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case schemas.Timestamp:
		return strconv.AppendQuote(b, x.String()), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, js...), nil
}

// WriteJSONL writes one JSON object per profile and line.
func (t *Table) WriteJSONL(w io.Writer) error {
	bw := bufio.NewWriter(w)
	var b []byte
	for _, p := range t.Profiles {
		var err error
		if b, err = t.AppendJSON(b[:0], p); err != nil {
			return err
		}
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteCSV writes a header (key and tag names) and one row per profile;
// empty values are empty cells.
func (t *Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rec := append([]string{t.Key}, t.Tags...)
	if err := cw.Write(rec); err != nil {
		return err
	}
	for _, p := range t.Profiles {
		rec[0] = csvValue(p.Key)
		for i := range t.Tags {
			rec[i+1] = csvValue(p.Values[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case schemas.Timestamp:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
