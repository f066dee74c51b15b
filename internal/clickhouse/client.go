// Package clickhouse connects portrait to a ClickHouse server over the native
// protocol and holds the small helpers that generated SQL needs (identifier and
// string quoting, insert statement prefixes).
//
// The oldest server portrait supports is Debian's clickhouse-server 18.16, which
// CI runs; docs/clickhouse-compat.md lists the SQL that works there and the
// portable forms to use. Callers gate newer features on Client.AtLeast.
//
// Use the native protocol only: 18.16 does not work with the driver's HTTP
// transport. Query settings sent to an 18.16 server must be int or bool values
// (the old protocol sends settings as numbers), and unknown settings are errors.
// Rows go in through batches (PrepareBatch) or
// INSERT ... SELECT: old servers never read INSERT ... VALUES data sent in the
// statement text over the native protocol and hang, so Client.Exec refuses it.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"unicode/utf8"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Client is a pool of native-protocol connections to one database.
type Client struct {
	conn         driver.Conn
	cfg          Config
	major, minor int
}

// Open connects to the server in cfg (empty fields take their defaults),
// creates cfg.Database when it is missing and returns a client whose
// connections use that database.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}

	// The handshake fails for a database that does not exist yet, so create
	// it over a connection that names none (the user's default database).
	boot, err := dial(ctx, cfg, "")
	if err != nil {
		return nil, err
	}
	createErr := boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+QuoteIdent(cfg.Database))
	closeErr := boot.Close()
	if createErr != nil {
		return nil, fmt.Errorf("creating clickhouse database %s: %w", cfg.Database, createErr)
	}
	if closeErr != nil {
		return nil, fmt.Errorf("closing clickhouse bootstrap connection: %w", closeErr)
	}

	conn, err := dial(ctx, cfg, cfg.Database)
	if err != nil {
		return nil, err
	}
	v, err := conn.ServerVersion()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("reading clickhouse server version at %s: %w", cfg.Addr, err)
	}
	return &Client{
		conn:  conn,
		cfg:   cfg,
		major: int(v.Version.Major),
		minor: int(v.Version.Minor),
	}, nil
}

// dial opens a connection pool and checks that the server answers.
func dial(ctx context.Context, cfg Config, database string) (driver.Conn, error) {
	conn, err := ch.Open(&ch.Options{
		Protocol: ch.Native, // never HTTP: 18.16 breaks on the driver's HTTP transport
		Addr:     []string{cfg.Addr},
		Auth: ch.Auth{
			Database: database,
			Username: cfg.User,
			Password: cfg.Password,
		},
		DialTimeout: cfg.DialTimeout,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, fmt.Errorf("opening clickhouse %s: %w", cfg, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("connecting to clickhouse %s: %w", cfg, err)
	}
	return conn, nil
}

// Conn returns the driver connection, for queries, rows and batch inserts.
func (c *Client) Conn() driver.Conn { return c.conn }

// Config returns the config the client was opened with, defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Database returns the database the client's connections use.
func (c *Client) Database() string { return c.cfg.Database }

// ServerVersion returns the server's major and minor version, e.g. 18, 16.
func (c *Client) ServerVersion() (major, minor int) { return c.major, c.minor }

// AtLeast reports whether the server's version is major.minor or newer.
func (c *Client) AtLeast(major, minor int) bool {
	return c.major > major || (c.major == major && c.minor >= minor)
}

// ErrInlineInsert is returned by Exec for an INSERT that carries its rows in the
// statement text (VALUES or FORMAT). ClickHouse 18.16 does not read such data
// over the native protocol: the statement hangs until the read timeout. Newer
// servers accept it, but it is refused everywhere so code that works against a
// new server also works on the oldest one.
var ErrInlineInsert = errors.New("INSERT with inline VALUES/FORMAT data hangs on old servers over the native protocol; " +
	"use a batch (PrepareBatch) or INSERT ... SELECT")

var inlineInsert = regexp.MustCompile(`(?is)^\s*INSERT\s+INTO\s+\S+?\s*(\([^()]*\))?\s*(VALUES|FORMAT)\b`)

// Exec runs a statement that returns no rows. The error names the statement
// by its first 200 characters. INSERT ... VALUES is refused with
// ErrInlineInsert.
func (c *Client) Exec(ctx context.Context, query string, args ...any) error {
	if inlineInsert.MatchString(query) {
		return fmt.Errorf("clickhouse exec %q: %w", Abbrev(query, 200), ErrInlineInsert)
	}
	if err := c.conn.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("clickhouse exec %q: %w", Abbrev(query, 200), err)
	}
	return nil
}

// PrepareBatch starts a native batch insert into the named columns of
// table (18.16 needs the column list). The batch runs detached from ctx's
// cancellation, which is checked only before it starts: clickhouse-go
// closes a batch's TCP connection when the batch's context is cancelled,
// and its watchdog can still do so after Send has returned the connection
// to the pool (it selects between "sent" and "cancelled", either may
// win), which broke the next statement on that connection with "use of
// closed network connection" once a caller cancelled its context right
// after a successful insert. An insert in flight finishes or hits the
// driver's read and write timeouts.
func (c *Client) PrepareBatch(ctx context.Context, table string, columns []string) (driver.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.conn.PrepareBatch(context.WithoutCancel(ctx), InsertColumns(table, columns))
}

// Close closes every connection of the pool.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("closing clickhouse connection: %w", err)
	}
	return nil
}

// Abbrev returns the first n bytes of a statement, cut at a rune boundary,
// with "…" appended when it was cut; for error messages and logs.
func Abbrev(query string, n int) string {
	if len(query) <= n {
		return query
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(query[cut]) {
		cut--
	}
	return query[:cut] + "…"
}
