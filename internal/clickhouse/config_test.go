package clickhouse_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/clickhouse"
)

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		want    clickhouse.Config
		wantErr string
	}{
		{
			dsn:  "127.0.0.1:19000",
			want: clickhouse.Config{Addr: "127.0.0.1:19000", Database: "portrait", User: "default", DialTimeout: 5 * time.Second},
		},
		{
			dsn:  "  ch.example:9000 ",
			want: clickhouse.Config{Addr: "ch.example:9000", Database: "portrait", User: "default", DialTimeout: 5 * time.Second},
		},
		{
			dsn:  "clickhouse://alice:s3cr%40t@ch.example:9440/analytics",
			want: clickhouse.Config{Addr: "ch.example:9440", Database: "analytics", User: "alice", Password: "s3cr@t", DialTimeout: 5 * time.Second},
		},
		{
			dsn:  "clickhouse://bob@ch.example/",
			want: clickhouse.Config{Addr: "ch.example:9000", Database: "portrait", User: "bob", DialTimeout: 5 * time.Second},
		},
		{
			dsn:  "clickhouse://127.0.0.1:19000?dial_timeout=250ms",
			want: clickhouse.Config{Addr: "127.0.0.1:19000", Database: "portrait", User: "default", DialTimeout: 250 * time.Millisecond},
		},
		{
			dsn:  "tcp://[::1]:19000/db_1",
			want: clickhouse.Config{Addr: "[::1]:19000", Database: "db_1", User: "default", DialTimeout: 5 * time.Second},
		},
		{dsn: "", wantErr: "parsing clickhouse DSN: empty"},
		{dsn: "localhost", wantErr: `parsing clickhouse DSN: clickhouse addr "localhost": want host:port: address localhost: missing port in address`},
		{dsn: "localhost:http", wantErr: `parsing clickhouse DSN: clickhouse addr "localhost:http": bad port "http"`},
		{dsn: ":9000", wantErr: `parsing clickhouse DSN: clickhouse addr ":9000": empty host`},
		{dsn: "http://127.0.0.1:18123", wantErr: `parsing clickhouse DSN: scheme "http": want clickhouse:// (native protocol)`},
		{dsn: "clickhouse:///db", wantErr: "parsing clickhouse DSN: no host"},
		{dsn: "clickhouse://h:9000/bad-name", wantErr: `parsing clickhouse DSN: clickhouse database "bad-name": want letters, digits and underscores, not starting with a digit`},
		{dsn: "clickhouse://h:9000/db?compress=1", wantErr: `parsing clickhouse DSN: unknown parameter "compress"`},
		{dsn: "clickhouse://h:9000/db?dial_timeout=soon", wantErr: `parsing clickhouse DSN: dial_timeout: time: invalid duration "soon"`},
		{dsn: "clickhouse://u:p@h:99999/db", wantErr: `parsing clickhouse DSN: clickhouse addr "h:99999": bad port "99999"`},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			got, err := clickhouse.ParseDSN(tc.dsn)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseDSNErrorHidesPassword(t *testing.T) {
	_, err := clickhouse.ParseDSN("clickhouse://u:hunter2@h:9000/db\x7f")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestConfigValidate(t *testing.T) {
	valid := clickhouse.DefaultConfig()
	require.NoError(t, valid.Validate())

	for _, tc := range []struct {
		name    string
		mutate  func(*clickhouse.Config)
		wantErr string
	}{
		{"empty addr", func(c *clickhouse.Config) { c.Addr = "" }, `clickhouse addr "": want host:port: missing port in address`},
		{"empty database", func(c *clickhouse.Config) { c.Database = "" }, `clickhouse database "": want letters, digits and underscores, not starting with a digit`},
		{"database with backquote", func(c *clickhouse.Config) { c.Database = "a`b" }, "clickhouse database \"a`b\": want letters, digits and underscores, not starting with a digit"},
		{"database starting with digit", func(c *clickhouse.Config) { c.Database = "1db" }, `clickhouse database "1db": want letters, digits and underscores, not starting with a digit`},
		{"empty user", func(c *clickhouse.Config) { c.User = "" }, "clickhouse user: must not be empty"},
		{"negative timeout", func(c *clickhouse.Config) { c.DialTimeout = -time.Second }, "clickhouse dial_timeout -1s: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.mutate(&cfg)
			require.EqualError(t, cfg.Validate(), tc.wantErr)
		})
	}
}

func TestConfigWithDefaults(t *testing.T) {
	assert.Equal(t, clickhouse.DefaultConfig(), clickhouse.Config{}.WithDefaults())
	custom := clickhouse.Config{Addr: "h:1", Database: "d", User: "u", Password: "p", DialTimeout: time.Minute}
	assert.Equal(t, custom, custom.WithDefaults())
}

func TestConfigStringMasksPassword(t *testing.T) {
	cfg := clickhouse.Config{Addr: "h:9000", Database: "d", User: "u", Password: "hunter2"}
	assert.Equal(t, "clickhouse://u:xxxxx@h:9000/d", cfg.String())
	cfg.Password = ""
	assert.Equal(t, "clickhouse://u@h:9000/d", cfg.String())
}
