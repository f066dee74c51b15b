package schemas

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Type is the type of an event field or of a tag value.
type Type int

// The types a field or a tag can have.
const (
	TypeInvalid Type = iota
	TypeInt64
	TypeFloat64
	TypeString
	TypeBool
	TypeTimestamp
)

var typeNames = map[Type]string{
	TypeInt64:     "int64",
	TypeFloat64:   "float64",
	TypeString:    "string",
	TypeBool:      "bool",
	TypeTimestamp: "timestamp",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "invalid"
}

// ParseType reads a type name as written in a catalog.
func ParseType(s string) (Type, bool) {
	for t, n := range typeNames {
		if n == s {
			return t, true
		}
	}
	return TypeInvalid, false
}

// Numeric reports whether values of t take part in arithmetic and in
// sum/avg. Timestamps are not numeric for aggregates but compare as their
// millisecond count in expressions.
func (t Type) Numeric() bool { return t == TypeInt64 || t == TypeFloat64 }

// Timestamp is an instant as unix milliseconds, UTC. It is the in-memory
// form of every timestamp field and timestamp-typed tag.
type Timestamp int64

// TimestampOf converts a time.Time, truncating below the millisecond.
func TimestampOf(t time.Time) Timestamp { return Timestamp(t.UnixMilli()) }

// Time returns the instant as a UTC time.Time.
func (ts Timestamp) Time() time.Time { return time.UnixMilli(int64(ts)).UTC() }

// String formats the instant as RFC 3339 in UTC, with milliseconds only
// when they are not zero.
func (ts Timestamp) String() string {
	t := ts.Time()
	if t.Nanosecond() == 0 {
		return t.Format(time.RFC3339)
	}
	return t.Format("2006-01-02T15:04:05.000Z07:00")
}

// MarshalJSON writes the instant as an RFC 3339 string.
func (ts Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(ts.String())), nil
}

// TimeFormat says how a timestamp field is written in the input.
type TimeFormat int

// Accepted timestamp encodings. Auto takes RFC 3339 strings, and numbers
// below 1e11 as unix seconds (that is before the year 5138) and others as
// unix milliseconds.
const (
	TimeAuto TimeFormat = iota
	TimeUnixSeconds
	TimeUnixMillis
	TimeRFC3339
)

var timeFormatNames = map[string]TimeFormat{
	"":         TimeAuto,
	"auto":     TimeAuto,
	"unix_s":   TimeUnixSeconds,
	"unix_ms":  TimeUnixMillis,
	"rfc3339":  TimeRFC3339,
	"unix":     TimeUnixSeconds,
	"unix_sec": TimeUnixSeconds,
}

const autoMillisThreshold = 100_000_000_000

// ParseTimestamp reads a timestamp written as unix seconds, unix millis or
// RFC 3339, as the format allows.
func ParseTimestamp(s string, f TimeFormat) (Timestamp, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty timestamp")
	}
	if f != TimeRFC3339 {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return numberTimestamp(n, f)
		}
		if f != TimeAuto {
			if x, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(x) && !math.IsInf(x, 0) {
				return floatTimestamp(x, f)
			}
			return 0, fmt.Errorf("timestamp %q is not a number", s)
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q is neither a unix time nor RFC 3339", s)
	}
	return TimestampOf(t), nil
}

// TimestampFromNumber reads a numeric timestamp (from JSON) as the format
// says.
func TimestampFromNumber(x float64, f TimeFormat) (Timestamp, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("timestamp %v is not finite", x)
	}
	if f == TimeRFC3339 {
		return 0, fmt.Errorf("timestamp %v: expected an RFC 3339 string", x)
	}
	if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
		return numberTimestamp(int64(x), f)
	}
	return floatTimestamp(x, f)
}

func numberTimestamp(n int64, f TimeFormat) (Timestamp, error) {
	switch {
	case f == TimeUnixMillis || (f == TimeAuto && (n >= autoMillisThreshold || n <= -autoMillisThreshold)):
		return Timestamp(n), nil
	default:
		if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
			return 0, fmt.Errorf("timestamp %d out of range", n)
		}
		return Timestamp(n * 1000), nil
	}
}

func floatTimestamp(x float64, f TimeFormat) (Timestamp, error) {
	if f == TimeUnixMillis || (f == TimeAuto && math.Abs(x) >= autoMillisThreshold) {
		return Timestamp(math.Floor(x)), nil
	}
	// Round to the microsecond first so that 1.001 s is 1001 ms and not
	// 1000.9999 floored to 1000.
	ms := math.Floor(math.Round(x*1e6) / 1000)
	if math.Abs(ms) > 1<<62 {
		return 0, fmt.Errorf("timestamp %v out of range", x)
	}
	return Timestamp(ms), nil
}

// ParseValue reads one field value from its text form (CSV).
func ParseValue(f *Field, s string) (any, error) {
	switch f.Type {
	case TypeInt64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("field %s: %q is not an int64", f.Name, s)
		}
		return n, nil
	case TypeFloat64:
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("field %s: %q is not a finite float64", f.Name, s)
		}
		return x, nil
	case TypeBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("field %s: %q is not a bool", f.Name, s)
		}
		return b, nil
	case TypeTimestamp:
		ts, err := ParseTimestamp(s, f.Format)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		return ts, nil
	case TypeString:
		return s, f.checkEnum(s)
	}
	return nil, fmt.Errorf("field %s: invalid type", f.Name)
}

// ConvertJSON turns a value decoded by encoding/json (with UseNumber or
// plain float64) into the field's Go type.
func ConvertJSON(f *Field, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, fmt.Errorf("field %s: null value", f.Name)
	case string:
		if f.Type == TypeString {
			return x, f.checkEnum(x)
		}
		if f.Type == TypeTimestamp {
			return ParseValue(f, x)
		}
		return nil, fmt.Errorf("field %s: got string %q, want %s", f.Name, x, f.Type)
	case bool:
		if f.Type == TypeBool {
			return x, nil
		}
		return nil, fmt.Errorf("field %s: got bool, want %s", f.Name, f.Type)
	case interface{ String() string }: // json.Number
		s := x.String()
		switch f.Type {
		case TypeInt64, TypeFloat64, TypeTimestamp:
			return ParseValue(f, s)
		}
		return nil, fmt.Errorf("field %s: got number %s, want %s", f.Name, s, f.Type)
	case float64:
		switch f.Type {
		case TypeInt64:
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return nil, fmt.Errorf("field %s: %v is not an int64", f.Name, x)
			}
			return int64(x), nil
		case TypeFloat64:
			return x, nil
		case TypeTimestamp:
			ts, err := TimestampFromNumber(x, f.Format)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			return ts, nil
		}
		return nil, fmt.Errorf("field %s: got number %v, want %s", f.Name, x, f.Type)
	}
	return nil, fmt.Errorf("field %s: unsupported JSON value %T", f.Name, v)
}

func (f *Field) checkEnum(s string) error {
	if len(f.Enum) == 0 {
		return nil
	}
	for _, e := range f.Enum {
		if e == s {
			return nil
		}
	}
	return fmt.Errorf("field %s: %q is not one of %s", f.Name, s, strings.Join(f.Enum, ", "))
}

// Compare orders two non-null values of the same type: -1, 0 or +1.
// int64 and float64 compare numerically with each other.
func Compare(a, b any) int {
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return cmpOrdered(x, y)
		case float64:
			return cmpOrdered(float64(x), y)
		case Timestamp:
			return cmpOrdered(x, int64(y))
		}
	case float64:
		switch y := b.(type) {
		case float64:
			return cmpOrdered(x, y)
		case int64:
			return cmpOrdered(x, float64(y))
		}
	case Timestamp:
		switch y := b.(type) {
		case Timestamp:
			return cmpOrdered(x, y)
		case int64:
			return cmpOrdered(int64(x), y)
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			default:
				return 1
			}
		}
	}
	panic(fmt.Sprintf("schemas.Compare: incomparable %T and %T", a, b))
}

func cmpOrdered[T int64 | float64 | Timestamp](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
