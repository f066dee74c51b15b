package clickhouse

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults for Config fields left empty.
const (
	DefaultAddr        = "127.0.0.1:19000" // the local server of deploy/local/clickhouse.sh
	DefaultDatabase    = "portrait"
	DefaultUser        = "default"
	DefaultDialTimeout = 5 * time.Second

	// nativePort is ClickHouse's standard native-protocol port, used when a DSN
	// names a host without a port.
	nativePort = "9000"
)

// Config says which ClickHouse server and database to use.
type Config struct {
	// Addr is the host:port of the server's native TCP protocol (not HTTP).
	Addr string `yaml:"addr"`
	// Database is created on Open when it does not exist.
	Database string `yaml:"database"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// DialTimeout bounds connecting and acquiring a pooled connection.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// DefaultConfig returns the config of the local development server.
func DefaultConfig() Config {
	return Config{
		Addr:        DefaultAddr,
		Database:    DefaultDatabase,
		User:        DefaultUser,
		DialTimeout: DefaultDialTimeout,
	}
}

// WithDefaults returns c with every empty field set to its default.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.Database == "" {
		c.Database = d.Database
	}
	if c.User == "" {
		c.User = d.User
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	return c
}

// databaseName is what Validate accepts as a database name: a plain identifier,
// so the name never needs care in logs, paths or SQL.
var databaseName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports the first field that is not usable.
func (c Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("clickhouse addr %q: want host:port: %w", c.Addr, err)
	}
	if host == "" {
		return fmt.Errorf("clickhouse addr %q: empty host", c.Addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("clickhouse addr %q: bad port %q", c.Addr, port)
	}
	if !databaseName.MatchString(c.Database) {
		return fmt.Errorf("clickhouse database %q: want letters, digits and underscores, not starting with a digit", c.Database)
	}
	if c.User == "" {
		return errors.New("clickhouse user: must not be empty")
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("clickhouse dial_timeout %v: must not be negative", c.DialTimeout)
	}
	return nil
}

// ParseDSN parses a server address in one of two forms:
//
//	host:port
//	clickhouse://[user[:password]@]host[:port][/database][?dial_timeout=5s]
//
// A URL without a port uses ClickHouse's native port 9000. Parts not given
// take their defaults (see DefaultConfig). The result is validated.
func ParseDSN(s string) (Config, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Config{}, errors.New("parsing clickhouse DSN: empty")
	}
	if !strings.Contains(s, "://") {
		cfg := Config{Addr: s}.WithDefaults()
		if err := cfg.Validate(); err != nil {
			return Config{}, fmt.Errorf("parsing clickhouse DSN: %w", err)
		}
		return cfg, nil
	}

	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole input, password included: leave it out.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Config{}, fmt.Errorf("parsing clickhouse DSN: %w", err)
	}
	if u.Scheme != "clickhouse" && u.Scheme != "tcp" {
		return Config{}, fmt.Errorf("parsing clickhouse DSN: scheme %q: want clickhouse:// (native protocol)", u.Scheme)
	}
	if u.Host == "" {
		return Config{}, errors.New("parsing clickhouse DSN: no host")
	}
	var cfg Config
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), nativePort)
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	cfg.Database = strings.Trim(u.Path, "/")
	for key, vals := range u.Query() {
		switch key {
		case "dial_timeout":
			d, err := time.ParseDuration(vals[0])
			if err != nil {
				return Config{}, fmt.Errorf("parsing clickhouse DSN: dial_timeout: %w", err)
			}
			cfg.DialTimeout = d
		default:
			return Config{}, fmt.Errorf("parsing clickhouse DSN: unknown parameter %q", key)
		}
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("parsing clickhouse DSN: %w", err)
	}
	return cfg, nil
}

// String returns the config as a DSN with the password masked, for logs.
func (c Config) String() string {
	u := url.URL{Scheme: "clickhouse", Host: c.Addr, Path: "/" + c.Database}
	if c.Password != "" {
		u.User = url.UserPassword(c.User, "xxxxx")
	} else if c.User != "" {
		u.User = url.User(c.User)
	}
	return u.String()
}
