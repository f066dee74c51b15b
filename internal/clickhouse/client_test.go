package clickhouse_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/internal/clickhouse"
)

func TestOpenCreatesDatabase(t *testing.T) {
	admin := chtest.Open(t)
	ctx := t.Context()

	cfg := admin.Config()
	cfg.Database = admin.Database() + "_created"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, admin.Exec(ctx, "DROP DATABASE IF EXISTS "+clickhouse.QuoteIdent(cfg.Database)))
	})

	for range 2 { // the second Open finds the database already there
		c, err := clickhouse.Open(ctx, cfg)
		require.NoError(t, err)
		var current string
		require.NoError(t, c.Conn().QueryRow(ctx, "SELECT currentDatabase()").Scan(&current))
		assert.Equal(t, cfg.Database, current)
		require.NoError(t, c.Close())
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	_, err := clickhouse.Open(t.Context(), clickhouse.Config{Addr: "nohost"})
	require.EqualError(t, err, `clickhouse addr "nohost": want host:port: address nohost: missing port in address`)
}

func TestServerVersion(t *testing.T) {
	c := chtest.Open(t)
	major, minor := c.ServerVersion()
	var version string
	require.NoError(t, c.Conn().QueryRow(t.Context(), "SELECT version()").Scan(&version))
	assert.True(t, strings.HasPrefix(version+".", strconv.Itoa(major)+"."+strconv.Itoa(minor)+"."), "version() %s vs %d.%d", version, major, minor)

	assert.True(t, c.AtLeast(major, minor))
	assert.True(t, c.AtLeast(major-1, 99))
	assert.False(t, c.AtLeast(major, minor+1))
	assert.False(t, c.AtLeast(major+1, 0))
}

func TestExecErrorNamesQuery(t *testing.T) {
	c := chtest.Open(t)
	long := "SELECT no_such_column FROM system.one WHERE " + strings.Repeat("1 = 1 AND ", 50) + "1 = 1"
	err := c.Exec(t.Context(), long)
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, long[:200]+"…")
	assert.NotContains(t, msg, long[:201])
	assert.Contains(t, msg, "no_such_column")
}

// TestInsertRoundTrip writes every column type portrait uses through a batch
// insert that names its columns, and reads the rows back.
func TestInsertRoundTrip(t *testing.T) {
	c := chtest.Open(t)
	ctx := t.Context()
	require.NoError(t, c.Exec(ctx, `CREATE TABLE round_trip (
		ts    DateTime('UTC'),
		id    Int64,
		name  String,
		score Float64,
		n     Nullable(Int64),
		f     Nullable(Float64),
		s     Nullable(String),
		b     Nullable(UInt8),
		at    Nullable(DateTime('UTC')),
		extra String DEFAULT 'dflt'
	) ENGINE = MergeTree ORDER BY (id, ts)`))

	type row struct {
		ts    time.Time
		id    int64
		name  string
		score float64
		n     *int64
		f     *float64
		s     *string
		b     *uint8
		at    *time.Time
		extra string
	}
	ts := time.Date(2017, 11, 25, 13, 0, 0, 0, time.UTC)
	i64, f64, str, u8 := int64(-42), 2.5, "it's", uint8(1)
	want := []row{
		{ts: ts, id: 1, name: "a", score: 0.5, n: &i64, f: &f64, s: &str, b: &u8, at: &ts, extra: "dflt"},
		{ts: ts.Add(time.Hour), id: 2, name: "ünï", score: -1, extra: "dflt"},
	}

	// Columns in another order than the table, and one left to its default.
	batch, err := c.Conn().PrepareBatch(ctx, clickhouse.InsertColumns("round_trip",
		[]string{"id", "ts", "name", "score", "n", "f", "s", "b", "at"}))
	require.NoError(t, err)
	for _, r := range want {
		require.NoError(t, batch.Append(r.id, r.ts, r.name, r.score, r.n, r.f, r.s, r.b, r.at))
	}
	require.NoError(t, batch.Send())

	rows, err := c.Conn().Query(ctx, "SELECT ts, id, name, score, n, f, s, b, at, extra FROM round_trip ORDER BY id")
	require.NoError(t, err)
	var got []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.ts, &r.id, &r.name, &r.score, &r.n, &r.f, &r.s, &r.b, &r.at, &r.extra))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].ts, got[i].ts.UTC())
		assert.Equal(t, time.UTC.String(), got[i].ts.Location().String(), "DateTime('UTC') reads back in UTC")
		got[i].ts = want[i].ts
		if got[i].at != nil {
			at := got[i].at.UTC()
			got[i].at = &at
		}
		assert.Equal(t, want[i], got[i])
	}
}

func TestExecRefusesInlineInsert(t *testing.T) {
	c := chtest.Open(t)
	ctx := t.Context()
	require.NoError(t, c.Exec(ctx, "CREATE TABLE ins (a Int64, b String) ENGINE = Memory"))

	for _, q := range []string{
		"INSERT INTO ins VALUES (1, 'x')",
		"insert into ins (a, b) values (1, 'x')",
		"  INSERT INTO ins(a,b)VALUES(1,'x')",
		"INSERT INTO db.ins (a, b)\nVALUES (1, 'x')",
		"INSERT INTO ins FORMAT TabSeparated",
	} {
		err := c.Exec(ctx, q)
		assert.ErrorIs(t, err, clickhouse.ErrInlineInsert, q)
	}

	for _, q := range []string{
		"INSERT INTO ins (a, b) SELECT 1, 'VALUES'",
		"INSERT INTO ins SELECT toInt64(number), 'FORMAT' FROM system.numbers LIMIT 2",
	} {
		assert.NoError(t, c.Exec(ctx, q), q)
	}
	var n uint64
	require.NoError(t, c.Conn().QueryRow(ctx, "SELECT count() FROM ins").Scan(&n))
	assert.Equal(t, uint64(3), n)
}

// TestBatchIsDetachedFromCancel checks that a batch, once prepared, is
// not bound to its context's cancellation: clickhouse-go closes a batch's
// TCP connection when that context is cancelled, and its watchdog could
// do so even after Send had returned the connection to the pool, breaking
// the next statement on it ("use of closed network connection", seen in
// CI when a caller cancelled its context right after an insert). Here the
// context is cancelled before Send, the widest form of that race.
func TestBatchIsDetachedFromCancel(t *testing.T) {
	c := chtest.Open(t)
	ctx := t.Context()
	require.NoError(t, c.Exec(ctx, "CREATE TABLE cancel_after (id Int64) ENGINE = MergeTree ORDER BY id"))
	const rounds = 20
	for i := range rounds {
		bctx, cancel := context.WithCancel(ctx)
		b, err := c.PrepareBatch(bctx, "cancel_after", []string{"id"})
		require.NoError(t, err)
		require.NoError(t, b.Append(int64(i)))
		cancel()
		require.NoError(t, b.Send(), "round %d", i)
		require.NoError(t, c.Exec(ctx, "DROP TABLE IF EXISTS cancel_after_none"), "round %d", i)
	}
	var n uint64
	require.NoError(t, c.Conn().QueryRow(ctx, "SELECT count() FROM cancel_after").Scan(&n))
	require.Equal(t, uint64(rounds), n)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := c.PrepareBatch(cancelled, "cancel_after", []string{"id"})
	require.ErrorIs(t, err, context.Canceled, "a context done before the batch starts still stops it")
}
