package dashboards

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// promqlNames returns the metric (and recording rule) names a PromQL
// expression selects, sorted and without duplicates. It is a small lexer,
// not a parser: strings, label matchers, ranges, Grafana variables,
// numbers, function and aggregation names, keywords and the label lists of
// by/without/on/ignoring/group_left/group_right are skipped; whatever
// identifier remains is a metric name. promtool check rules parses the
// rules for real; this only has to find names.
func promqlNames(expr string) []string {
	s := stripQuoted(expr)
	s = stripBracketed(s, '{', '}')
	s = stripBracketed(s, '[', ']')
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '$': // Grafana variable
			i++
			for i < len(s) && isIdent(s[i]) {
				i++
			}
		case c >= '0' && c <= '9', c == '.': // number or duration
			for i < len(s) && (isIdent(s[i]) || s[i] == '.' || ((s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E'))) {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n') {
				k++
			}
			i = j
			switch {
			case labelListKeywords[word]:
				if k < len(s) && s[k] == '(' {
					i = closing(s, k) + 1
				}
			case keywords[word]:
			case k < len(s) && s[k] == '(': // function call
			default:
				out = append(out, word)
			}
		default:
			i++
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// closing returns the index of the parenthesis that closes the one at open
// (or the end of s).
func closing(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(s) - 1
}

var quoted = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")

func stripQuoted(s string) string { return quoted.ReplaceAllString(s, `""`) }

func stripBracketed(s string, open, close byte) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == open:
			depth++
			if depth == 1 {
				b.WriteByte(open)
			}
		case s[i] == close && depth > 0:
			depth--
			if depth == 0 {
				b.WriteByte(close)
			}
		case depth == 0:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func TestPromQLNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (reason) (rate(portrait_speed_events_dlq_total{reason!="x by y"}[$__rate_interval]))`, []string{"portrait_speed_events_dlq_total"}},
		{`a / on () group_left sum(rate(b[5m])) > 0.01 and c > 1e-3`, []string{"a", "b", "c"}},
		{`histogram_quantile(0.99, sum by (endpoint, le) (rate(x_bucket[5m]))) > 0.025 and on (endpoint) y offset 1h`, []string{"x_bucket", "y"}},
		{`time() - max(portrait:speed_freshness_seconds) <= bool 60`, []string{"portrait:speed_freshness_seconds"}},
		{`sum without (kind) (d{kind=~"a|b"}) / ignoring (kind) d{kind="compared"}`, []string{"d"}},
		{`avg_over_time((m > bool 60)[1h:1m]) < 0.99 or vector(0)`, []string{"m"}},
		{`count(ALERTS{alertstate="firing"}) or vector(0)`, []string{"ALERTS"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			require.Equal(t, tt.want, promqlNames(tt.expr))
		})
	}
}
