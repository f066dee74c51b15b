package serving

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/portrait-dev/portrait/schemas"
)

// appendProfile writes one profile as JSON, tags in catalog order:
//
//	{"key":…,"tags":{"<tag>":value,…},"as_of":"…","watermark":"…","snapshot":"…"|null,"catalog":"…"}
func appendProfile(b []byte, c *schemas.Catalog, p *schemas.Profile, prov provenance) []byte {
	b = append(b, `{"key":`...)
	b = appendValue(b, p.Key)
	b = append(b, `,"tags":{`...)
	for i := range c.Tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, c.Tags[i].Name)
		b = append(b, ':')
		var v any
		if i < len(p.Values) {
			v = p.Values[i]
		}
		b = appendValue(b, v)
	}
	b = append(b, `},"as_of":`...)
	b = appendTime(b, prov.asOf)
	b = append(b, `,"watermark":`...)
	b = appendTime(b, prov.watermark)
	b = append(b, `,"snapshot":`...)
	if prov.hasSnapshot {
		b = appendTime(b, prov.snapshot)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"catalog":`...)
	b = appendString(b, prov.catalog)
	return append(b, '}')
}

// appendValue writes a tag or key value as typed JSON: numbers, strings,
// bools, timestamps as RFC 3339 UTC strings and null for empty.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, x)
	case schemas.Timestamp:
		return appendTime(b, x)
	case string:
		return appendString(b, x)
	}
	s, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, s...)
}

// appendString writes s as a JSON string: as it is between quotes when
// it is printable ASCII without quote or backslash (tag names, hashes and
// most values; strconv.AppendQuote took a twentieth of a lookup's CPU
// decoding them rune by rune), else through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // cannot fail for a string
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendTime(b []byte, ts schemas.Timestamp) []byte {
	b = append(b, '"')
	b = append(b, ts.String()...)
	return append(b, '"')
}
