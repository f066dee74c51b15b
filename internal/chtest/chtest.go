// Package chtest gives tests a real ClickHouse server: each test gets a fresh,
// uniquely named database that is dropped when the test ends.
//
// The server is the one named by PORTRAIT_TEST_CLICKHOUSE (a DSN accepted by
// clickhouse.ParseDSN), by default the local one that
// deploy/local/clickhouse.sh start runs on 127.0.0.1:19000. When no server
// answers, a test is skipped, or fails when CI=true so that CI never passes by
// skipping.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/internal/clickhouse"
)

// EnvDSN names the environment variable holding the test server's DSN.
const EnvDSN = "PORTRAIT_TEST_CLICKHOUSE"

// DefaultDSN is the local server of deploy/local/clickhouse.sh.
const DefaultDSN = "127.0.0.1:19000"

// DatabasePrefix starts the name of every database chtest creates, so
// leftovers of killed test runs are easy to find and drop.
const DatabasePrefix = "chtest_"

// Open connects to the test server with a fresh database of its own, dropped
// in t.Cleanup. It skips the test (fails it when CI=true) when no server is
// reachable.
func Open(t *testing.T) *clickhouse.Client {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		dsn = DefaultDSN
	}
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return open(t, dsn, ci)
}

func open(tb testing.TB, dsn string, ci bool) *clickhouse.Client {
	tb.Helper()
	cfg, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		tb.Fatalf("chtest: %s=%q: %v", EnvDSN, dsn, err)
	}

	// Tell "no server" (skip) from "server, but broken" (fail) by a plain dial.
	d := net.Dialer{Timeout: 2 * time.Second}
	nc, err := d.Dial("tcp", cfg.Addr)
	if err != nil {
		msg := "chtest: no ClickHouse server at " + cfg.Addr + " (" + err.Error() + "); " +
			"start one with `deploy/local/clickhouse.sh start` (or `make ch-start`), " +
			"or point " + EnvDSN + " at one"
		if ci {
			tb.Fatalf("%s", msg)
		}
		tb.Skip(msg)
	}
	_ = nc.Close()

	cfg.Database = databaseName(tb.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("chtest: opening ClickHouse at %s: %v", cfg.Addr, err)
	}
	tb.Cleanup(func() {
		// The test's own context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.Exec(ctx, "DROP DATABASE IF EXISTS "+clickhouse.QuoteIdent(cfg.Database)); err != nil {
			tb.Errorf("chtest: dropping test database: %v", err)
		}
		if err := client.Close(); err != nil {
			tb.Errorf("chtest: %v", err)
		}
	})
	return client
}

// databaseName returns a unique database name that shows which test made it:
// chtest_<test name, sanitized and cut>_<random hex>.
func databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	var buf [6]byte
	_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails
	return DatabasePrefix + b.String() + "_" + hex.EncodeToString(buf[:])
}
