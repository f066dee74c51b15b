package clickhouse

import "strings"

// QuoteIdent quotes a database, table or column name for generated SQL:
// `name`, with backslashes and backquotes escaped.
func QuoteIdent(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 2)
	b.WriteByte('`')
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '\\', '`':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('`')
	return b.String()
}

// QuoteString quotes s as a ClickHouse string literal: 'text', with
// backslashes and single quotes escaped, and control bytes that would make the
// statement hard to read (NUL, tab, newline, carriage return) written as escapes.
// Any byte sequence, valid UTF-8 or not, reads back unchanged.
func QuoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case 0:
			b.WriteString(`\0`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// LikePattern returns a LIKE pattern, not yet quoted, that matches s
// literally: % and _ and the escape character \ are escaped. Pass the result
// through QuoteString and add wildcards around it as needed, e.g.
// "x LIKE " + QuoteString("%"+LikePattern(s)+"%").
func LikePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// InsertColumns returns the statement prefix for a batch insert that names its
// columns, INSERT INTO `table` (`a`, `b`). ClickHouse 18.16 needs the column
// list for batch inserts through the native protocol; newer servers accept it too.
func InsertColumns(table string, cols []string) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(QuoteIdent(table))
	b.WriteString(" (")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(QuoteIdent(c))
	}
	b.WriteByte(')')
	return b.String()
}
