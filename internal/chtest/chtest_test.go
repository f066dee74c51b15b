package chtest

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenGivesFreshDatabaseDroppedAtCleanup(t *testing.T) {
	admin := Open(t)
	ctx := t.Context()

	var first, second string
	t.Run("first", func(t *testing.T) {
		c := Open(t)
		first = c.Database()
		require.NoError(t, c.Exec(ctx, "CREATE TABLE t (x Int64) ENGINE = Memory"))
		var current string
		require.NoError(t, c.Conn().QueryRow(ctx, "SELECT currentDatabase()").Scan(&current))
		assert.Equal(t, first, current, "unqualified names resolve in the fresh database")
	})
	t.Run("second", func(t *testing.T) {
		second = Open(t).Database()
	})

	assert.NotEqual(t, first, second)
	assert.True(t, strings.HasPrefix(first, DatabasePrefix), first)
	for _, db := range []string{first, second} {
		var n uint64
		require.NoError(t, admin.Conn().QueryRow(ctx,
			"SELECT count() FROM system.databases WHERE name = ?", db).Scan(&n))
		assert.Zero(t, n, "database %s should be dropped after its test", db)
	}
}

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	for _, name := range []string{
		"TestX",
		"TestX/sub_test#01",
		"Test with spaces/and ünïcode",
		strings.Repeat("TestLong", 30),
	} {
		got := databaseName(name)
		assert.Regexp(t, valid, got)
		assert.LessOrEqual(t, len(got), len(DatabasePrefix)+40+1+12, got)
		assert.NotEqual(t, got, databaseName(name), "names are unique")
	}
}

// recorder stands in for testing.TB to see whether open skips or fails.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls open in its own goroutine, since Skip and Fatalf end the goroutine.
func (r *recorder) run(dsn string, ci bool) {
	var wg sync.WaitGroup
	wg.Go(func() { open(r, dsn, ci) })
	wg.Wait()
}

func TestOpenWithoutServer(t *testing.T) {
	const noServer = "127.0.0.1:1" // nothing listens on port 1
	const hint = "deploy/local/clickhouse.sh start"

	t.Run("skips outside CI", func(t *testing.T) {
		r := &recorder{TB: t}
		r.run(noServer, false)
		assert.Contains(t, r.skipped, hint)
		assert.Empty(t, r.failed)
	})
	t.Run("fails in CI", func(t *testing.T) {
		r := &recorder{TB: t}
		r.run(noServer, true)
		assert.Contains(t, r.failed, hint)
		assert.Empty(t, r.skipped)
	})
	t.Run("fails on a bad DSN", func(t *testing.T) {
		r := &recorder{TB: t}
		r.run("http://127.0.0.1:18123", false)
		assert.Contains(t, r.failed, "scheme")
	})
}

func TestOpenFailsOnBrokenServer(t *testing.T) {
	c := Open(t) // needs a server; skipped without one
	r := &recorder{TB: t}
	// Reachable, but the wrong password: a broken setup fails, it never skips.
	dsn := "clickhouse://default:wrong@" + c.Config().Addr + "/x"
	r.run(dsn, false)
	assert.NotEmpty(t, r.failed)
	assert.Empty(t, r.skipped)
}
