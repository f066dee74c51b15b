package source

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/portrait-dev/portrait/schemas"
)

// autoMillis is the smallest magnitude TimeAuto reads as milliseconds.
const autoMillis = 100_000_000_000

// AppendJSON appends the event values as one JSON object keyed by field
// name, in catalog field order: the form `portrait produce` writes to
// Kafka. Every value reads back exactly with schemas.ConvertJSON:
// timestamps are unix milliseconds for fields in auto or unix_ms format
// (an auto field's instants before 1973-03-03, which auto would read as
// seconds, are RFC 3339 strings instead), unix seconds for unix_s fields,
// and RFC 3339 strings for rfc3339 fields. A nil value is written as null.
func AppendJSON(b []byte, c *schemas.Catalog, values []any) []byte {
	b = append(b, '{')
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		f := &c.Fields[i]
		b = strconv.AppendQuote(b, f.Name)
		b = append(b, ':')
		b = appendValue(b, f, v)
	}
	return append(b, '}')
}

func appendValue(b []byte, f *schemas.Field, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, x)
	case string:
		s, _ := json.Marshal(x) // json.Marshal of a string cannot fail
		return append(b, s...)
	case schemas.Timestamp:
		return appendTimestamp(b, f.Format, x)
	}
	panic(fmt.Sprintf("source.AppendJSON: field %s: unsupported value %T", f.Name, v))
}

func appendTimestamp(b []byte, f schemas.TimeFormat, ts schemas.Timestamp) []byte {
	ms := int64(ts)
	switch f {
	case schemas.TimeUnixMillis:
		return strconv.AppendInt(b, ms, 10)
	case schemas.TimeUnixSeconds:
		if ms%1000 == 0 {
			return strconv.AppendInt(b, ms/1000, 10)
		}
		return strconv.AppendFloat(b, float64(ms)/1000, 'f', 3, 64)
	case schemas.TimeAuto:
		if ms >= autoMillis || ms <= -autoMillis {
			return strconv.AppendInt(b, ms, 10)
		}
	}
	return strconv.AppendQuote(b, ts.Time().Format("2006-01-02T15:04:05.000Z07:00"))
}

// Key is the Kafka message key of an entity key value: the decimal form of
// an int64, the string itself, or the value's JSON form for other types.
func Key(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case string:
		return x
	case schemas.Timestamp:
		return strconv.FormatInt(int64(x), 10)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}
