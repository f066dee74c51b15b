package clickhouse_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/internal/clickhouse"
)

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{
		"events":    "`events`",
		"":          "``",
		"a b":       "`a b`",
		"we`ird":    "`we\\`ird`",
		`back\`:     "`back\\\\`",
		"select":    "`select`",
		"ünïcode_1": "`ünïcode_1`",
	} {
		assert.Equal(t, want, clickhouse.QuoteIdent(in), "QuoteIdent(%q)", in)
	}
}

func TestQuoteString(t *testing.T) {
	for in, want := range map[string]string{
		"":        `''`,
		"plain":   `'plain'`,
		"it's":    `'it\'s'`,
		`a\b`:     `'a\\b'`,
		`\'`:      `'\\\''`,
		"l1\nl2":  `'l1\nl2'`,
		"t\tr\r":  `'t\tr\r'`,
		"nul\x00": `'nul\0'`,
	} {
		assert.Equal(t, want, clickhouse.QuoteString(in), "QuoteString(%q)", in)
	}
}

func TestLikePattern(t *testing.T) {
	assert.Equal(t, `100\% a\_b c\\d`, clickhouse.LikePattern(`100% a_b c\d`))
}

func TestInsertColumns(t *testing.T) {
	assert.Equal(t, "INSERT INTO `events` (`user_id`, `ts`)",
		clickhouse.InsertColumns("events", []string{"user_id", "ts"}))
	assert.Equal(t, "INSERT INTO `t` (`we\\`ird`)", clickhouse.InsertColumns("t", []string{"we`ird"}))
}

func TestAbbrev(t *testing.T) {
	assert.Equal(t, "short", clickhouse.Abbrev("short", 200))
	assert.Equal(t, "abc…", clickhouse.Abbrev("abcdef", 3))
	assert.Equal(t, "a…", clickhouse.Abbrev("aé", 2), "never cuts inside a rune")
}

// quotingCases are strings that must survive quoting on a real server.
var quotingCases = []string{
	"", "plain", "it's", `a\b`, `\'`, `\\'`, "'; DROP TABLE x; --", "l1\nl2\r\n",
	"tab\there", "nul\x00byte", "ünïcode ✓", "\xff\xfe not utf-8", "`back`quote`",
	"%_like_%", "$1 ? :x {x:String}", `\N`, "\x01\x1f\x7f",
}

func TestQuoteStringRoundTrip(t *testing.T) {
	c := chtest.Open(t)
	ctx := t.Context()
	for i, s := range quotingCases {
		var got string
		require.NoError(t, c.Conn().QueryRow(ctx, "SELECT "+clickhouse.QuoteString(s)).Scan(&got), "case %d %q", i, s)
		assert.Equal(t, s, got, "case %d", i)
	}
}

func TestQuoteIdentRoundTrip(t *testing.T) {
	c := chtest.Open(t)
	ctx := t.Context()
	names := []string{"plain", "select", "a b", "we`ird", `back\slash`, "ünï", "x.y", "1st"}
	cols := ""
	for i, n := range names {
		if i > 0 {
			cols += ", "
		}
		cols += clickhouse.QuoteIdent(n) + " Int64"
	}
	table := "t`able"
	require.NoError(t, c.Exec(ctx, "CREATE TABLE "+clickhouse.QuoteIdent(table)+" ("+cols+") ENGINE = Memory"))

	var got []string
	rows, err := c.Conn().Query(ctx, "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = ?", table)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		got = append(got, n)
	}
	require.NoError(t, rows.Err())
	assert.ElementsMatch(t, names, got)
}

func TestLikePatternOnServer(t *testing.T) {
	c := chtest.Open(t)
	ctx := t.Context()
	for _, tc := range []struct {
		value, literal string
		want           bool
	}{
		{"100%", "100%", true},
		{"1000", "100%", false}, // % is literal, not a wildcard
		{"a_b", "a_b", true},
		{"axb", "a_b", false},
		{`c\d`, `c\d`, true},
		{`cd`, `c\d`, false},
		{"x it's y", "it's", true},
	} {
		t.Run(fmt.Sprintf("%s contains %s", tc.value, tc.literal), func(t *testing.T) {
			var got uint8
			q := fmt.Sprintf("SELECT %s LIKE %s", clickhouse.QuoteString(tc.value),
				clickhouse.QuoteString("%"+clickhouse.LikePattern(tc.literal)+"%"))
			require.NoError(t, c.Conn().QueryRow(ctx, q).Scan(&got))
			assert.Equal(t, tc.want, got == 1, q)
		})
	}
}
