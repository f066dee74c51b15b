package clickhouse_test

// The compatibility probe: every SQL construct that portrait's generated SQL
// relies on, run against the real server (CI runs Debian's 18.16). A construct
// that stops working fails the test. docs/clickhouse-compat.md records the
// results and the portable forms; keep the two in step.

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/internal/clickhouse"
)

// compatFixtures are the tables most probes read.
//
// ev holds events of two users. For user 1 the "buy" rows ordered by
// (ts, part, off) are (90,2,9) cat 40, (100,0,5) cat 10, (100,1,3) cat 20:
// first buy is cat 40, last buy is cat 20, and the last buy has a NULL ns.
// User 2 has no buy at all, so every If-aggregate over buys is empty for it.
//
// m holds values for mode: user 1 has a tie on counts (3 and 5 twice each,
// smallest is 3; 'a' and 'b' twice each, smallest is 'a').
var compatFixtures = []string{
	`CREATE TABLE ev (u Int64, ts Int64, part Int32, off Int64, cat Int64, f Float64,
		ni Nullable(Int64), nf Nullable(Float64), ns Nullable(String), b String)
		ENGINE = MergeTree ORDER BY (u, ts)`,
	insertRows("ev", "u, ts, part, off, cat, f, ni, nf, ns, b",
		"1, 100, 0, 5, 10,  1.5, 1,    1.5,  'x',  'buy'",
		"1, 100, 1, 3, 20,  2.5, NULL, NULL, NULL, 'buy'",
		"1, 100, 1, 2, 30, -1.0, 3,    NULL, 'y',  'pv'",
		"1,  90, 2, 9, 40,  0.0, NULL, 2.0,  'y',  'buy'",
		"2,   5, 0, 1,  7,  1.0, NULL, NULL, NULL, 'pv'"),
	`CREATE TABLE m (u Int64, v Int64, s String) ENGINE = MergeTree ORDER BY u`,
	insertRows("m", "u, v, s",
		"1, 5, 'b'", "1, 5, 'b'", "1, 3, 'a'", "1, 3, 'a'", "1, 9, 'c'",
		"2, -1, 'zz'", "2, -2, 'z'", "2, 7, 'é'",
		"3, 7, 'x'"),
}

// insertRows builds INSERT INTO table (cols) SELECT row UNION ALL SELECT row...
// Rows go in as INSERT ... SELECT because 18.16 never reads INSERT ... VALUES
// data over the native protocol (see clickhouse.ErrInlineInsert).
func insertRows(table, cols string, rows ...string) string {
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s", table, cols, strings.Join(rows, " UNION ALL SELECT "))
}

// probe is one construct portrait relies on: setup statements, then a query
// whose rendered result (see render) must equal want.
type probe struct {
	name  string
	setup []string
	query string
	want  string
}

// partitionProbe builds a REPLACE PARTITION probe: target t holds two rows in
// partition A and one in partition B, staging holds one row for A; replacing
// partition A leaves the staged row and B's row.
func partitionProbe(name, keyType, keyA, keyB, partitionExpr, want string) probe {
	t, s := "rp_"+name, "rp_"+name+"_staging"
	return probe{
		name: "REPLACE PARTITION " + name,
		setup: []string{
			fmt.Sprintf("CREATE TABLE %s (k %s, id Int64, v Int64) ENGINE = MergeTree PARTITION BY k ORDER BY id", t, keyType),
			fmt.Sprintf("CREATE TABLE %s AS %s", s, t),
			insertRows(t, "k, id, v", keyA+", 1, 1", keyA+", 2, 2", keyB+", 3, 3"),
			insertRows(s, "k, id, v", keyA+", 1, 10"),
			fmt.Sprintf("ALTER TABLE %s REPLACE PARTITION %s FROM %s", t, partitionExpr, s),
		},
		query: fmt.Sprintf("SELECT id, v FROM %s ORDER BY id", t),
		want:  want,
	}
}

var compatProbes = []probe{
	// Column types.
	{
		name:  "DateTime('UTC') column",
		setup: []string{"CREATE TABLE dt (ts DateTime('UTC')) ENGINE = Memory", insertRows("dt", "ts", "1700000000")},
		query: "SELECT toUnixTimestamp(ts), toString(ts), toTypeName(ts), toStartOfHour(ts), toStartOfDay(ts), toYYYYMMDD(ts), toDateTime(1700000000, 'UTC') = ts FROM dt",
		want:  "1700000000|2023-11-14 22:13:20|DateTime('UTC')|2023-11-14 22:00:00|2023-11-14 00:00:00|20231114|1",
	},
	{
		name: "Nullable columns",
		setup: []string{
			`CREATE TABLE nl (i Nullable(Int64), f Nullable(Float64), s Nullable(String), b Nullable(UInt8),
				t Nullable(DateTime('UTC'))) ENGINE = Memory`,
			insertRows("nl", "i, f, s, b, t", "-1, 0.5, 'a', 1, 1700000000", "NULL, NULL, NULL, NULL, NULL"),
		},
		query: "SELECT i, f, s, b, t, toTypeName(t) FROM nl ORDER BY i NULLS LAST",
		want:  "-1|0.5|a|1|2023-11-14 22:13:20|Nullable(DateTime('UTC'));NULL|NULL|NULL|NULL|NULL|Nullable(DateTime('UTC'))",
	},

	// Partition replacement: every partition expression form works; the portable one is
	// PARTITION ID '<id>' (the id of a DateTime key is its unix seconds).
	partitionProbe("datetime_literal", "DateTime('UTC')", "1700000000", "1700003600", "1700000000", "1|10;3|3"),
	partitionProbe("datetime_id", "DateTime('UTC')", "1700000000", "1700003600", "ID '1700000000'", "1|10;3|3"),
	partitionProbe("datetime_typed", "DateTime('UTC')", "1700000000", "1700003600", "toDateTime(1700000000, 'UTC')", "1|10;3|3"),
	partitionProbe("int64_literal", "Int64", "1700000000", "1700003600", "1700000000", "1|10;3|3"),
	partitionProbe("int64_id", "Int64", "1700000000", "1700003600", "ID '1700000000'", "1|10;3|3"),
	partitionProbe("int64_negative_id", "Int64", "-5", "7", "ID '-5'", "1|10;3|3"),
	partitionProbe("uint32_literal", "UInt32", "1700000000", "1700003600", "1700000000", "1|10;3|3"),
	partitionProbe("uint32_id", "UInt32", "1700000000", "1700003600", "ID '1700000000'", "1|10;3|3"),
	// Staging without the partition: the target partition is emptied (a zero-row
	// snapshot still replaces the old one).
	partitionProbe("empty_staging", "DateTime('UTC')", "1700000000", "1700003600", "ID '1700003600'", "1|1;2|2"),
	{
		name: "REPLACE PARTITION toYYYYMMDD key",
		setup: []string{
			"CREATE TABLE rp_day (ts DateTime('UTC'), id Int64) ENGINE = MergeTree PARTITION BY toYYYYMMDD(ts) ORDER BY id",
			"CREATE TABLE rp_day_staging AS rp_day",
			insertRows("rp_day", "ts, id", "1700000000, 1", "1700100000, 2"),
			insertRows("rp_day_staging", "ts, id", "1700000001, 3"),
			"ALTER TABLE rp_day REPLACE PARTITION ID '20231114' FROM rp_day_staging",
		},
		query: "SELECT id FROM rp_day ORDER BY id",
		want:  "2;3",
	},
	{
		name: "system.parts columns",
		setup: []string{
			"CREATE TABLE parts_t (k DateTime('UTC'), id Int64) ENGINE = MergeTree PARTITION BY k ORDER BY id",
			insertRows("parts_t", "k, id", "1700000000, 1", "1700000000, 2"),
		},
		query: "SELECT partition, partition_id, sum(rows), max(active) FROM system.parts " +
			"WHERE database = currentDatabase() AND table = 'parts_t' AND active GROUP BY partition, partition_id",
		want: "2023-11-14 22:13:20|1700000000|2|1",
	},

	// DDL.
	{
		name: "ADD COLUMN (without IF NOT EXISTS) and system.columns",
		setup: []string{
			"CREATE TABLE addcol (id Int64) ENGINE = MergeTree ORDER BY id",
			"ALTER TABLE addcol ADD COLUMN x Nullable(Int64), ADD COLUMN y String DEFAULT 'd' AFTER id",
		},
		query: "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'addcol' ORDER BY name",
		want:  "id|Int64;x|Nullable(Int64);y|String",
	},
	{
		name:  "EXISTS TABLE",
		setup: []string{"CREATE TABLE ex (x Int64) ENGINE = Memory"},
		query: "EXISTS TABLE ex",
		want:  "1",
	},
	{
		name:  "EXISTS TABLE missing",
		query: "EXISTS TABLE no_such_table",
		want:  "0",
	},
	{
		name: "CREATE TABLE AS copies engine and keys",
		setup: []string{
			"CREATE TABLE orig (k DateTime('UTC'), id Int64) ENGINE = MergeTree PARTITION BY k ORDER BY id",
			"CREATE TABLE copy AS orig",
		},
		query: "SELECT name, engine, partition_key, sorting_key FROM system.tables WHERE database = currentDatabase() AND name IN ('orig', 'copy') ORDER BY name",
		want:  "copy|MergeTree|k|id;orig|MergeTree|k|id",
	},
	{
		name: "RENAME TABLE, several at once (swap)",
		setup: []string{
			"CREATE TABLE ra (x Int64) ENGINE = Memory", insertRows("ra", "x", "1"),
			"CREATE TABLE rb (x Int64) ENGINE = Memory", insertRows("rb", "x", "2"),
			"RENAME TABLE ra TO rtmp, rb TO ra, rtmp TO rb",
		},
		query: "SELECT (SELECT any(x) FROM ra), (SELECT any(x) FROM rb)",
		want:  "2|1",
	},
	{
		name: "CREATE VIEW, replaced by DROP TABLE IF EXISTS + CREATE VIEW",
		setup: []string{
			"CREATE VIEW vw AS SELECT 1 AS x",
			"DROP TABLE IF EXISTS vw",
			"CREATE VIEW IF NOT EXISTS vw AS SELECT u, max(ts) AS ts FROM ev GROUP BY u",
		},
		query: "SELECT u, ts FROM vw ORDER BY u",
		want:  "1|100;2|5",
	},
	{
		name: "TRUNCATE TABLE and MergeTree ORDER BY tuple()",
		setup: []string{
			"CREATE TABLE tr (x Int64) ENGINE = MergeTree ORDER BY tuple()",
			insertRows("tr", "x", "1"),
			"TRUNCATE TABLE tr",
		},
		query: "SELECT count() FROM tr",
		want:  "0",
	},
	{
		name: "INSERT SELECT with column list",
		setup: []string{
			"CREATE TABLE ins (u Int64, c UInt64) ENGINE = MergeTree ORDER BY u",
			"INSERT INTO ins (u, c) SELECT u, count() FROM ev GROUP BY u",
		},
		query: "SELECT u, c FROM ins ORDER BY u",
		want:  "1|4;2|1",
	},

	// last / first: (time, partition, offset) ordering with a tuple.
	{
		name:  "argMaxIf/argMinIf with a tuple ordering argument",
		query: "SELECT u, argMaxIf(cat, (ts, part, off), b = 'buy'), argMinIf(cat, tuple(ts, part, off), b = 'buy') FROM ev GROUP BY u ORDER BY u",
		// User 2 has no buy: the empty result is the type's default, not NULL.
		want: "1|20|40;2|0|0",
	},
	{
		name: "last via max of a tuple (keeps NULL values, portable)",
		query: "SELECT u, tupleElement(maxIf((ts, part, off, ns), b = 'buy'), 4), tupleElement(minIf((ts, part, off, cat), b = 'buy'), 4), " +
			"argMaxIf(ns, (ts, part, off), b = 'buy') FROM ev GROUP BY u ORDER BY u",
		// argMax skips rows whose value is NULL (x instead of NULL); the tuple form does not.
		want: "1|NULL|40|x;2|NULL|0|NULL",
	},
	{
		name: "last with empty → NULL",
		query: "SELECT u, if(countIf(b = 'buy') = 0, NULL, tupleElement(maxIf((ts, part, off, cat), b = 'buy'), 4)) AS last " +
			"FROM ev GROUP BY u ORDER BY u",
		want: "1|20;2|NULL",
	},

	// Conditional aggregates.
	{
		name:  "If aggregates on Int64",
		query: "SELECT u, countIf(b = 'buy'), uniqExactIf(cat, b = 'buy'), sumIf(cat, b = 'buy'), minIf(cat, b = 'buy'), maxIf(cat, b = 'buy'), avgIf(cat, b = 'buy') FROM ev GROUP BY u ORDER BY u",
		// Empty groups give 0 (and NaN for avg), not NULL.
		want: "1|3|3|70|10|40|23.333333333333332;2|0|0|0|0|0|NaN",
	},
	{
		name:  "If aggregates on Float64",
		query: "SELECT u, sumIf(f, b = 'buy'), minIf(f, b = 'buy'), maxIf(f, b = 'buy'), avgIf(f, b = 'buy'), uniqExactIf(f, b = 'buy') FROM ev GROUP BY u ORDER BY u",
		want:  "1|4|0|2.5|1.3333333333333333|3;2|0|0|0|NaN|0",
	},
	{
		name:  "If aggregates on Nullable skip NULLs; empty is NULL",
		query: "SELECT u, sumIf(ni, b = 'buy'), minIf(nf, b = 'buy'), maxIf(nf, b = 'buy'), avgIf(nf, b = 'buy'), toTypeName(sumIf(ni, b = 'buy')) FROM ev GROUP BY u ORDER BY u",
		want:  "1|1|1.5|2|1.75|Nullable(Int64);2|NULL|NULL|NULL|NULL|Nullable(Int64)",
	},
	{
		name: "count and count distinct of a Nullable column, portable",
		// countIf(x, c) and uniqExactIf(x, c) return NULL (not 0) on 18.16 when no
		// row qualifies; these forms return UInt64 0 everywhere.
		query: "SELECT u, countIf(b = 'buy' AND isNotNull(ni)), uniqExactIf(assumeNotNull(ni), b = 'buy' AND isNotNull(ni)), " +
			"toTypeName(uniqExactIf(assumeNotNull(ni), b = 'buy' AND isNotNull(ni))) FROM ev GROUP BY u ORDER BY u",
		want: "1|1|1|UInt64;2|0|0|UInt64",
	},
	{
		name: "empty window → NULL for min/max/sum/avg",
		query: "SELECT u, if(countIf(b = 'buy') = 0, NULL, minIf(cat, b = 'buy')), if(countIf(b = 'buy') = 0, NULL, avgIf(f, b = 'buy')) " +
			"FROM ev GROUP BY u ORDER BY u",
		want: "1|10|1.3333333333333333;2|NULL|NULL",
	},

	// mode: most frequent value, ties to the smallest.
	{
		name:  "mode of Int64 via min((-count, value))",
		query: "SELECT u, tupleElement(min((-c, v)), 2) FROM (SELECT u, v, count() AS c FROM m GROUP BY u, v) GROUP BY u ORDER BY u",
		want:  "1|3;2|-2;3|7",
	},
	{
		name:  "mode of String via min((-count, value))",
		query: "SELECT u, tupleElement(min((-c, s)), 2) FROM (SELECT u, s, count() AS c FROM m GROUP BY u, s) GROUP BY u ORDER BY u",
		want:  "1|a;2|z;3|x",
	},
	{
		name:  "mode via argMin(value, (-count, value))",
		query: "SELECT u, argMin(s, (-c, s)) FROM (SELECT u, s, count() AS c FROM m GROUP BY u, s) GROUP BY u ORDER BY u",
		want:  "1|a;2|z;3|x",
	},

	// NULL handling.
	{
		name:  "if(cond, NULL, x) is Nullable(x)",
		query: "SELECT u, if(u > 1, NULL, cat) AS x, toTypeName(x) FROM ev WHERE off IN (1, 5) ORDER BY u",
		want:  "1|10|Nullable(Int64);2|NULL|Nullable(Int64)",
	},
	{
		name:  "ifNull, isNull, isNotNull, coalesce, CAST(NULL AS Nullable(T))",
		query: "SELECT ifNull(ns, 'd'), isNull(ns), isNotNull(ns), coalesce(ns, 'c'), CAST(NULL AS Nullable(Int64)), toTypeName(CAST(NULL AS Nullable(Float64))) FROM ev WHERE u = 2",
		want:  "d|1|0|c|NULL|Nullable(Float64)",
	},

	// Query shapes.
	{
		name:  "LIMIT 1 BY after ORDER BY",
		query: "SELECT u, b, cat FROM ev ORDER BY u, b, ts DESC, part DESC, off DESC LIMIT 1 BY u, b",
		want:  "1|buy|20;1|pv|30;2|pv|7",
	},
	{
		name: "ANY LEFT JOIN (subquery) USING key, unmatched → default",
		query: "SELECT u, c, cat FROM (SELECT u, count() AS c FROM ev GROUP BY u) AS l " +
			"ANY LEFT JOIN (SELECT u, min(cat) AS cat FROM ev WHERE b = 'buy' GROUP BY u) AS r USING u ORDER BY u",
		want: "1|4|10;2|1|0",
	},
	{
		name: "ANY LEFT JOIN with join_use_nulls = 1, unmatched → NULL",
		query: "SELECT u, cat FROM (SELECT u FROM ev GROUP BY u) AS l " +
			"ANY LEFT JOIN (SELECT u, max(cat) AS cat FROM ev WHERE b = 'buy' GROUP BY u) AS r USING u ORDER BY u SETTINGS join_use_nulls = 1",
		want: "1|40;2|NULL",
	},
	{
		name: "LEFT JOIN (ALL) and ON",
		query: "SELECT l.u, r.v FROM (SELECT u FROM ev GROUP BY u) AS l " +
			"LEFT JOIN (SELECT u, v FROM m WHERE u = 1 AND v > 3) AS r ON l.u = r.u ORDER BY l.u, r.v",
		want: "1|5;1|5;1|9;2|0",
	},
	{
		name: "FULL JOIN USING",
		query: "SELECT u, c, n FROM (SELECT u, count() AS c FROM ev GROUP BY u) AS l " +
			"ANY FULL JOIN (SELECT u, count() AS n FROM m GROUP BY u) AS r USING u ORDER BY u",
		want: "1|4|5;2|1|3;3|0|1",
	},
	{
		name:  "UNION ALL, WITH scalar, multiIf, greatest/least",
		query: "WITH 2 AS two SELECT x, multiIf(x = 1, 'a', x = two, 'b', 'c'), greatest(x, two), least(x, two) FROM (SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 3) ORDER BY x",
		want:  "1|a|2|1;2|b|2|2;3|c|3|2",
	},

	// Strings.
	{
		name:  "position, startsWith, endsWith",
		query: "SELECT position('hello', 'll'), position('hello', 'z'), startsWith('hello', 'he'), endsWith('hello', 'lo'), positionUTF8('héllo', 'l')",
		want:  "3|0|1|1|3",
	},
	{
		name:  `LIKE with escaped % and _`,
		query: `SELECT 'a%b' LIKE 'a\\%b', 'axb' LIKE 'a\\%b', 'a_b' LIKE 'a\\_b', 'axb' LIKE 'a\\_b', 'a\\b' LIKE 'a\\\\b', 'abc' LIKE '%b%'`,
		want:  "1|0|1|0|1|1",
	},
	{
		name:  "string functions",
		query: "SELECT lower('ABC'), upper('abc'), lowerUTF8('É'), length('héllo'), lengthUTF8('héllo'), concat('a', 'b'), substring('hello', 2, 3), match('abc', '^a.c$')",
		want:  "abc|ABC|é|6|5|ab|ell|1",
	},

	// Numbers.
	{
		name:  "toInt64 truncates, toFloat64",
		query: "SELECT toInt64('12'), toInt64(3.9), toInt64(-3.9), toFloat64('1.5'), toFloat64(3), toInt64OrNull('x')",
		want:  "12|3|-3|1.5|3|NULL",
	},
	{
		name:  "intDiv truncates toward zero, % takes the dividend's sign",
		query: "SELECT intDiv(-7, 2), intDiv(7, -2), -7 % 2, 7 % -2, toInt64(-7) % 3, intDivOrZero(1, 0)",
		want:  "-3|-3|-1|1|-1|0",
	},
	{
		name: "floor division for bucket numbers",
		query: "SELECT groupArray(intDiv(x, 3600) - (x % 3600 < 0)) FROM " +
			"(SELECT arrayJoin([toInt64(-3601), -3600, -1, 0, 1, 3599, 3600]) AS x)",
		want: "[-2 -1 -1 0 0 0 1]",
	},
	{
		name:  "aggregate result types",
		query: "SELECT toTypeName(sumIf(cat, 1)), toTypeName(countIf(1)), toTypeName(uniqExactIf(cat, 1)), toTypeName(avgIf(cat, 1)), toTypeName(count()) FROM ev",
		want:  "Int64|UInt64|UInt64|Float64|UInt64",
	},
}

// gap is a construct that does not work on 18.16, with the portable form to
// use instead. On 18.16 the test asserts it still fails (so the doc stays
// true); on other versions it only logs what it saw.
type gap struct {
	name     string
	setup    []string
	stmt     string
	portable string
}

var compatGaps = []gap{
	{
		name:     "ADD COLUMN IF NOT EXISTS",
		setup:    []string{"CREATE TABLE gap_add (id Int64) ENGINE = MergeTree ORDER BY id"},
		stmt:     "ALTER TABLE gap_add ADD COLUMN IF NOT EXISTS x Int64",
		portable: "read system.columns, ADD COLUMN only the missing ones",
	},
	{
		name:     "DROP COLUMN IF EXISTS",
		setup:    []string{"CREATE TABLE gap_drop (id Int64, x Int64) ENGINE = MergeTree ORDER BY id"},
		stmt:     "ALTER TABLE gap_drop DROP COLUMN IF EXISTS x",
		portable: "read system.columns, DROP COLUMN only the present ones",
	},
	{name: "CREATE OR REPLACE VIEW", stmt: "CREATE OR REPLACE VIEW gap_v AS SELECT 1", portable: "DROP TABLE IF EXISTS v; CREATE VIEW v"},
	{name: "DROP VIEW", setup: []string{"CREATE VIEW gap_dv AS SELECT 1"}, stmt: "DROP VIEW gap_dv", portable: "DROP TABLE IF EXISTS v"},
	{
		name:     "EXCHANGE TABLES",
		setup:    []string{"CREATE TABLE gap_x1 (x Int64) ENGINE = Memory", "CREATE TABLE gap_x2 (x Int64) ENGINE = Memory"},
		stmt:     "EXCHANGE TABLES gap_x1 AND gap_x2",
		portable: "RENAME TABLE a TO tmp, b TO a, tmp TO b",
	},
	{
		name:     "REPLACE PARTITION with a string literal for an integer key",
		setup:    []string{"CREATE TABLE gap_p (k Int64) ENGINE = MergeTree PARTITION BY k ORDER BY k", "CREATE TABLE gap_ps AS gap_p"},
		stmt:     "ALTER TABLE gap_p REPLACE PARTITION '5' FROM gap_ps",
		portable: "PARTITION ID '5' or PARTITION 5",
	},
	{name: "WITH name AS (subquery) (CTE)", stmt: "WITH t AS (SELECT 1 AS x) SELECT x FROM t", portable: "a subquery in FROM"},
	{name: "UNION DISTINCT", stmt: "SELECT 1 UNION SELECT 2", portable: "UNION ALL, then GROUP BY / DISTINCT outside"},
	{name: "window functions", stmt: "SELECT row_number() OVER () FROM system.one", portable: "GROUP BY with tuple min/max, LIMIT n BY"},
	{name: "toStartOfInterval", stmt: "SELECT toStartOfInterval(now(), INTERVAL 1 hour)", portable: "arithmetic on unix seconds (floor division), toStartOfHour/toStartOfDay"},
	{name: "DateTime64", stmt: "SELECT toDateTime64(1, 3)", portable: "DateTime('UTC') seconds, or Int64 milliseconds"},
	{name: "LowCardinality without the experimental setting", stmt: "CREATE TABLE gap_lc (x LowCardinality(String)) ENGINE = Memory", portable: "String"},
	{name: "server-side query parameters", stmt: "SELECT {x:Int64}", portable: "literals built with QuoteString / strconv, or the driver's ? binding"},
	{name: "DateTime minus Float64", stmt: "SELECT now() - 1e3", portable: "integer seconds: now() - 1000, or toUnixTimestamp arithmetic"},
}

func TestCompat(t *testing.T) {
	c := chtest.Open(t)
	ctx := t.Context()
	major, minor := c.ServerVersion()
	t.Logf("server %d.%d", major, minor)
	for _, s := range compatFixtures {
		require.NoError(t, c.Exec(ctx, s))
	}

	for _, p := range compatProbes {
		t.Run(p.name, func(t *testing.T) {
			for _, s := range p.setup {
				require.NoError(t, c.Exec(ctx, s))
			}
			got, err := queryRendered(t, c, p.query)
			require.NoError(t, err, p.query)
			assert.Equal(t, p.want, got, p.query)
		})
	}

	t.Run("gaps", func(t *testing.T) {
		for _, g := range compatGaps {
			t.Run(g.name, func(t *testing.T) {
				for _, s := range g.setup {
					require.NoError(t, c.Exec(ctx, s))
				}
				err := c.Exec(ctx, g.stmt)
				if major == 18 && minor == 16 {
					assert.Error(t, err, "works on 18.16 after all: update docs/clickhouse-compat.md")
				}
				if err != nil {
					msg, _, _ := strings.Cut(err.Error(), "\n")
					t.Logf("not supported here: %s\nportable form: %s", clickhouse.Abbrev(msg, 300), g.portable)
				} else {
					t.Logf("supported on %d.%d; portable form: %s", major, minor, g.portable)
				}
			})
		}
	})
}

// TestCompatDriver checks what the clickhouse-go driver can do with the server.
func TestCompatDriver(t *testing.T) {
	c := chtest.Open(t)
	ctx := t.Context()
	conn := c.Conn()
	require.NoError(t, c.Exec(ctx, "CREATE TABLE d (id Int64, s String) ENGINE = MergeTree ORDER BY id"))

	t.Run("batch insert with column list", func(t *testing.T) {
		b, err := conn.PrepareBatch(ctx, clickhouse.InsertColumns("d", []string{"s", "id"}))
		require.NoError(t, err)
		require.NoError(t, b.Append("a", int64(1)))
		require.NoError(t, b.Send())
	})
	t.Run("batch insert without column list", func(t *testing.T) {
		// 18.16 answers INSERT INTO t with an empty header, so Append fails.
		b, err := conn.PrepareBatch(ctx, "INSERT INTO d")
		if err == nil {
			err = b.Append(int64(2), "b")
			_ = b.Abort()
		}
		if major, minor := c.ServerVersion(); major == 18 && minor == 16 {
			assert.Error(t, err)
		}
		t.Logf("without column list: %v", err)
	})
	t.Run("INSERT VALUES through the driver hangs", func(t *testing.T) {
		// What clickhouse.ErrInlineInsert guards against: 18.16 answers with the
		// table header and waits for data blocks that never come.
		if major, minor := c.ServerVersion(); major != 18 || minor != 16 {
			t.Skip("only checked on 18.16")
		}
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := conn.Exec(short, "INSERT INTO d (id, s) VALUES (9, 'z')")
		assert.Error(t, err)
	})
	t.Run("? binding", func(t *testing.T) {
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM d WHERE id = ? AND s = ?", 1, "a").Scan(&n))
		assert.Equal(t, uint64(1), n)
	})
	t.Run("literals with binding characters, no args", func(t *testing.T) {
		var s string
		require.NoError(t, conn.QueryRow(ctx, "SELECT "+clickhouse.QuoteString("? $1 @x {x:Int64}")).Scan(&s))
		assert.Equal(t, "? $1 @x {x:Int64}", s)
	})
	t.Run("int settings in the context", func(t *testing.T) {
		sctx := ch.Context(ctx, ch.WithSettings(ch.Settings{"max_threads": 1, "join_use_nulls": 1}))
		var n uint64
		require.NoError(t, conn.QueryRow(sctx, "SELECT count() FROM d").Scan(&n))
	})
	t.Run("SETTINGS clause", func(t *testing.T) {
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM d SETTINGS max_threads = 1").Scan(&n))
	})
	t.Run("tuple result scans into []any", func(t *testing.T) {
		var tup []any
		require.NoError(t, conn.QueryRow(ctx, "SELECT max((id, s)) FROM d").Scan(&tup))
		assert.Equal(t, []any{int64(1), "a"}, tup)
	})
}

// queryRendered runs a query and renders its rows: columns joined by "|",
// rows by ";", NULL for a null, DateTime as "2006-01-02 15:04:05" in UTC.
func queryRendered(t *testing.T, c *clickhouse.Client, query string) (string, error) {
	rows, err := c.Conn().Query(t.Context(), query)
	if err != nil {
		return "", err
	}
	defer func() { _ = rows.Close() }()
	types := rows.ColumnTypes()
	var out []string
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return "", err
		}
		cols := make([]string, len(dest))
		for i, d := range dest {
			cols[i] = renderValue(reflect.ValueOf(d).Elem())
		}
		out = append(out, strings.Join(cols, "|"))
	}
	return strings.Join(out, ";"), rows.Err()
}

func renderValue(v reflect.Value) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return "NULL"
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return x.UTC().Format(time.DateTime)
	case float64:
		if math.IsNaN(x) {
			return "NaN"
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i := range x {
			parts[i] = renderValue(reflect.ValueOf(&x[i]).Elem())
		}
		return "(" + strings.Join(parts, ",") + ")"
	default:
		return fmt.Sprint(x)
	}
}
