package dashboards

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// day1 is 2017-11-25 00:00 UTC, inside the Taobao data set's range.
var day1 = time.Date(2017, 11, 25, 0, 0, 0, 0, time.UTC)

// TestSQL runs every dashboards/sql/*.sql file on a real ClickHouse server
// (18.16 in CI) against the schema chbatch.EnsureSchema creates for the
// taobao catalog, filled with a small fixture, and compares the result with
// testdata/sql/<name>.golden (rewrite with -update).
func TestSQL(t *testing.T) {
	files, err := filepath.Glob("sql/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboards/sql/*.sql files")

	c := chtest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cat, err := schemas.Load("../schemas/catalogs/taobao.yaml")
	require.NoError(t, err)
	require.NoError(t, chbatch.EnsureSchema(ctx, c, cat))
	loadFixture(ctx, t, c)

	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".sql")
		t.Run(name, func(t *testing.T) {
			query, err := os.ReadFile(f)
			require.NoError(t, err)
			require.NotContains(t, string(query), ";", "%s: one statement, without a trailing semicolon (the native protocol and Grafana take one)", f)
			got, err := runQuery(ctx, c, string(query))
			require.NoError(t, err, "running %s", f)
			golden := filepath.Join("testdata", "sql", name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "missing golden file: run go test ./dashboards -run TestSQL -update")
			require.Equal(t, string(want), got, "result of %s", f)
		})
	}
}

// runQuery runs a query and renders its result as tab-separated text with a
// header line of column names and types.
func runQuery(ctx context.Context, c *clickhouse.Client, query string) (string, error) {
	rows, err := c.Conn().Query(ctx, query)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols := rows.ColumnTypes()
	var b strings.Builder
	for i, ct := range cols {
		if i > 0 {
			b.WriteByte('\t')
		}
		b.WriteString(ct.Name() + " " + ct.DatabaseTypeName())
	}
	b.WriteByte('\n')
	for rows.Next() {
		dest := make([]any, len(cols))
		for i, ct := range cols {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return "", fmt.Errorf("scanning: %w", err)
		}
		for i, d := range dest {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(render(reflect.ValueOf(d).Elem(), cols[i].DatabaseTypeName()))
		}
		b.WriteByte('\n')
	}
	return b.String(), rows.Err()
}

func render(v reflect.Value, dbType string) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "NULL"
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		if strings.Contains(dbType, "Date") && !strings.Contains(dbType, "DateTime") {
			return x.UTC().Format("2006-01-02")
		}
		return x.UTC().Format("2006-01-02 15:04:05")
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return strconv.Quote(x)
	default:
		return fmt.Sprint(x)
	}
}

// loadFixture fills every table with a few rows that exercise the queries:
// events over two days and three users, two snapshots, a reconcile re-run,
// and job runs written at start and end.
func loadFixture(ctx context.Context, t *testing.T, c *clickhouse.Client) {
	t.Helper()
	at := func(h, m int) time.Time { return day1.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	ms := func(tm time.Time) int64 { return tm.UnixMilli() }
	hour := func(tm time.Time) time.Time { return tm.Truncate(time.Hour) }
	i64 := func(n int64) *int64 { return &n }

	type ev struct {
		user, item, cat int64
		behavior        string
		ts              time.Time
		part            int32
		off             int64
	}
	events := []ev{
		{1, 100, 7, "pv", at(10, 5), 0, 0},
		{1, 101, 7, "buy", at(10, 20), 0, 1},
		{2, 102, 8, "pv", at(23, 30), 1, 0},
		{2, 102, 8, "fav", at(23, 31), 1, 1},
		{1, 103, 9, "pv", at(24, 10), 0, 2},
		{3, 104, 7, "cart", at(25, 0), 1, 2},
		{3, 104, 7, "pv", at(25, 1), 1, 3},
	}
	var rows [][]any
	for _, e := range events {
		h := hour(e.ts)
		ingest := h.Add(time.Hour + 2*time.Minute)
		rows = append(rows, []any{e.user, e.item, e.cat, e.behavior, ms(e.ts), e.part, e.off, ms(ingest), h})
	}
	insert(ctx, t, c, chbatch.EventsTable,
		[]string{"user_id", "item_id", "category_id", "behavior", "ts", "_partition", "_offset", "_ingest_time", "_hour"}, rows)

	s1, s2 := at(24, 0), at(25, 0)
	cols := []string{"snapshot", "user_id", "pv_24h", "buys_7d", "items_seen_7d", "top_category_7d",
		"last_buy_cat", "first_seen", "buyer_7d", "window_shopper", "carts_24h", "last_seen", "catalog_hash"}
	insert(ctx, t, c, chbatch.ProfilesTable, cols, [][]any{
		{s1, int64(1), int64(1), int64(1), int64(2), i64(7), i64(7), i64(ms(at(10, 5))), uint8(1), uint8(0), int64(0), i64(ms(at(10, 20))), "h1"},
		{s1, int64(2), int64(1), int64(0), int64(1), i64(8), nil, i64(ms(at(23, 30))), uint8(0), uint8(0), int64(0), i64(ms(at(23, 31))), "h1"},
		{s2, int64(1), int64(1), int64(1), int64(3), i64(7), i64(7), i64(ms(at(10, 5))), uint8(1), uint8(0), int64(0), i64(ms(at(24, 10))), "h1"},
		{s2, int64(2), int64(1), int64(0), int64(1), i64(8), nil, i64(ms(at(23, 30))), uint8(0), uint8(0), int64(0), i64(ms(at(23, 31))), "h1"},
		{s2, int64(3), int64(25), int64(0), int64(1), nil, nil, i64(ms(at(25, 0))), uint8(0), uint8(1), int64(1), i64(ms(at(25, 1))), "h1"},
	})

	insert(ctx, t, c, chbatch.TagDriftTable,
		[]string{"snapshot", "tag", "users_compared", "equal", "different", "only_batch", "only_speed", "max_abs_error", "mean_abs_error", "sample", "causes", "computed_at"},
		[][]any{
			{s1, "pv_24h", int64(2), int64(0), int64(2), int64(0), int64(0), 3.0, 1.5, "1,2", "late_events", at(24, 10)},
			{s1, "pv_24h", int64(2), int64(1), int64(1), int64(0), int64(0), 1.0, 0.5, "2", "late_events", at(24, 30)}, // re-run after repair
			{s1, "buys_7d", int64(2), int64(2), int64(0), int64(0), int64(0), 0.0, 0.0, "", "", at(24, 10)},
			{s2, "pv_24h", int64(3), int64(2), int64(0), int64(0), int64(1), 0.0, 0.0, "3", "dlq", at(25, 10)},
		})

	zero := time.Unix(0, 0).UTC()
	insert(ctx, t, c, chbatch.JobRunsTable,
		[]string{"job", "run_id", "attempt", "started", "ended", "status", "rows", "error"},
		[][]any{
			{"recompute", "r1", int64(1), at(24, 1), zero, "running", int64(0), ""},
			{"recompute", "r1", int64(1), at(24, 1), at(24, 3), "success", int64(2), ""},
			{"recompute", "r2", int64(1), at(25, 1), at(25, 2), "failed", int64(0), "clickhouse: connection refused"},
			{"recompute", "r2", int64(2), at(25, 3), at(25, 4), "success", int64(3), ""},
			{"reconcile", "r3", int64(1), at(25, 5), zero, "running", int64(0), ""},
		})
}

func insert(ctx context.Context, t *testing.T, c *clickhouse.Client, table string, cols []string, rows [][]any) {
	t.Helper()
	b, err := c.Conn().PrepareBatch(ctx, clickhouse.InsertColumns(table, cols))
	require.NoError(t, err, "preparing insert into %s", table)
	for i, r := range rows {
		require.NoError(t, b.Append(r...), "appending row %d to %s", i, table)
	}
	require.NoError(t, b.Send(), "inserting into %s", table)
}
