// Package config is portrait's one config file: the settings of every
// component `portrait run` starts (speed layer, landing, scheduler, lookup
// API), with their defaults, strict loading, environment overrides and
// validation.
//
// Precedence, lowest first: Default(), the YAML file (Load: unknown keys
// are errors naming their line), the environment (ApplyEnv, the
// variables in EnvVars), then command-line flags (the command applies
// them). Validate names the first bad field by its YAML path.
//
// `portrait config print-defaults` writes Default() as YAML with every
// field documented (Documented); portrait.example.yaml at the repository
// root is that output, kept in sync by a golden test.
//
// The package exports no metrics.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/jobs"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream"
	"github.com/portrait-dev/portrait/warehouse"
	"github.com/portrait-dev/portrait/warehouse/landing"
)

// Config is the whole config file.
type Config struct {
	// Catalog is the catalog YAML file that defines events and tags.
	Catalog string `yaml:"catalog"`
	// Warehouse is the warehouse root folder (events, snapshots, run
	// records, landing state).
	Warehouse string `yaml:"warehouse"`
	// Kafka is how every component reaches Kafka; its group is set per
	// component (speed.group, landing.group).
	Kafka kafka.Config `yaml:"kafka"`
	// EmbeddedKafka is the in-process development broker, started when
	// kafka.brokers is empty.
	EmbeddedKafka EmbeddedKafka `yaml:"embedded_kafka"`
	// ClickHouse is the DSN of the ClickHouse server (optional): host:port
	// or clickhouse://user:password@host:port/database. Empty: no
	// ClickHouse; snapshots and events stay in the warehouse.
	ClickHouse string      `yaml:"clickhouse"`
	Speed      Speed       `yaml:"speed"`
	Landing    Landing     `yaml:"landing"`
	API        API         `yaml:"api"`
	Jobs       jobs.Config `yaml:"jobs"`
	Retention  Retention   `yaml:"retention"`
	Status     Status      `yaml:"status"`
}

// EmbeddedKafka configures the development broker.
type EmbeddedKafka struct {
	Addr       string `yaml:"addr"`
	Partitions int32  `yaml:"partitions"`
}

// Speed configures the speed layer (stream.Config).
type Speed struct {
	Group              string        `yaml:"group"`
	StateDir           string        `yaml:"state_dir"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	MaxDirtyUsers      int           `yaml:"max_dirty_users"`
	MaxRecordBytes     int           `yaml:"max_record_bytes"`
	ClockSkew          time.Duration `yaml:"clock_skew"`
	Grace              time.Duration `yaml:"grace"`
	SweepInterval      time.Duration `yaml:"sweep_interval"`
	SessionTimeout     time.Duration `yaml:"session_timeout"`
	RebalanceTimeout   time.Duration `yaml:"rebalance_timeout"`
	// GCPercent, MemoryLimitMB and ProcsPerCPU tune the process's
	// garbage collector and scheduler (stream.GC).
	GCPercent     int   `yaml:"gc_percent"`
	MemoryLimitMB int64 `yaml:"memory_limit_mb"`
	ProcsPerCPU   int   `yaml:"procs_per_cpu"`
}

// Landing configures the landing (landing.Config).
type Landing struct {
	Group            string        `yaml:"group"`
	RollBytes        int64         `yaml:"roll_bytes"`
	RollAge          time.Duration `yaml:"roll_age"`
	IdleTimeout      time.Duration `yaml:"idle_timeout"`
	AllowedLateness  time.Duration `yaml:"allowed_lateness"`
	CloseInterval    time.Duration `yaml:"close_interval"`
	ClockSkew        time.Duration `yaml:"clock_skew"`
	MaxRecordBytes   int           `yaml:"max_record_bytes"`
	SessionTimeout   time.Duration `yaml:"session_timeout"`
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
}

// API configures the HTTP server: lookup API, /ui, /metrics, health.
type API struct {
	Listen       string `yaml:"listen"`
	Token        string `yaml:"token"`
	MaxBodyBytes int64  `yaml:"max_body_bytes"`
	MaxBatchKeys int    `yaml:"max_batch_keys"`
}

// Retention configures the retention job.
type Retention struct {
	// Keep is how much event time the warehouse keeps: a Go duration or
	// a number of days ("90d").
	Keep string `yaml:"keep"`
}

// Status holds the thresholds of the conditions the status page and
// `portrait status` report (the alert rules have their own).
type Status struct {
	FreshnessTarget time.Duration `yaml:"freshness_target"`
	MaxLagRecords   int64         `yaml:"max_lag_records"`
	SnapshotMaxAge  time.Duration `yaml:"snapshot_max_age"`
	MaxDriftShare   float64       `yaml:"max_drift_share"`
}

// Defaults not taken from a component package.
const (
	DefaultCatalog        = "schemas/catalogs/taobao.yaml"
	DefaultWarehouse      = "data/warehouse"
	DefaultStateDir       = "data/speed"
	DefaultListen         = "127.0.0.1:8080"
	DefaultRetentionKeep  = "90d"
	DefaultFreshness      = time.Minute
	DefaultMaxLagRecords  = 100_000
	DefaultSnapshotMaxAge = 3 * time.Hour
	DefaultMaxDriftShare  = 0.01
	// DefaultMaxBodyBytes and DefaultMaxBatchKeys are serving's
	// (serving.DefaultMaxBodyBytes, serving.DefaultMaxBatchKeys).
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxBatchKeys = 1000
)

// Default returns the config with every default filled in.
func Default() Config {
	kc := kafka.DefaultConfig()
	return Config{
		Catalog:       DefaultCatalog,
		Warehouse:     DefaultWarehouse,
		Kafka:         kc,
		EmbeddedKafka: EmbeddedKafka{Addr: kafka.DefaultBrokerAddr, Partitions: kafka.DefaultPartitions},
		Speed: Speed{
			Group:              stream.DefaultGroup,
			StateDir:           DefaultStateDir,
			CheckpointInterval: stream.DefaultCheckpointInterval,
			MaxDirtyUsers:      stream.DefaultMaxDirtyUsers,
			MaxRecordBytes:     stream.DefaultMaxRecordBytes,
			ClockSkew:          stream.DefaultClockSkew,
			Grace:              stream.DefaultGrace,
			SweepInterval:      stream.DefaultSweepInterval,
			SessionTimeout:     10 * time.Second,
			RebalanceTimeout:   60 * time.Second,
			GCPercent:          stream.DefaultGCPercent,
			ProcsPerCPU:        stream.DefaultProcsPerCPU,
		},
		Landing: Landing{
			Group:            landing.DefaultGroup,
			RollBytes:        landing.DefaultRollBytes,
			RollAge:          landing.DefaultRollAge,
			IdleTimeout:      landing.DefaultIdleTimeout,
			AllowedLateness:  landing.DefaultAllowedLateness,
			CloseInterval:    landing.DefaultCloseInterval,
			ClockSkew:        landing.DefaultClockSkew,
			MaxRecordBytes:   landing.DefaultMaxRecordBytes,
			SessionTimeout:   10 * time.Second,
			RebalanceTimeout: 60 * time.Second,
		},
		API: API{
			Listen:       DefaultListen,
			MaxBodyBytes: DefaultMaxBodyBytes,
			MaxBatchKeys: DefaultMaxBatchKeys,
		},
		Jobs:      jobs.DefaultConfig(),
		Retention: Retention{Keep: DefaultRetentionKeep},
		Status: Status{
			FreshnessTarget: DefaultFreshness,
			MaxLagRecords:   DefaultMaxLagRecords,
			SnapshotMaxAge:  DefaultSnapshotMaxAge,
			MaxDriftShare:   DefaultMaxDriftShare,
		},
	}
}

// Load reads the config file at path over Default(). Unknown keys are
// errors naming their line. It neither applies the environment nor
// validates: call ApplyEnv and Validate.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse reads a config file's contents over Default().
func Parse(data []byte) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, err
	}
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = nil // "brokers: []" is the default
	}
	// A jobs section lists only the jobs it changes; the others keep
	// their defaults.
	for name, jc := range jobs.DefaultConfig().Jobs {
		if _, ok := c.Jobs.Jobs[name]; !ok {
			c.Jobs.Jobs[name] = jc
		}
	}
	return c, nil
}

// Validate reports the first bad field by its YAML path.
func (c *Config) Validate() error {
	if c.Catalog == "" {
		return errors.New("catalog: required")
	}
	if c.Warehouse == "" {
		return errors.New("warehouse: required")
	}
	if c.Kafka.Group != "" {
		return fmt.Errorf("kafka.group: %q: set speed.group and landing.group instead", c.Kafka.Group)
	}
	kc := c.Kafka
	if len(kc.Brokers) == 0 {
		kc.Brokers = []string{c.EmbeddedKafka.Addr}
		if c.EmbeddedKafka.Addr == "" || !strings.Contains(c.EmbeddedKafka.Addr, ":") {
			return fmt.Errorf("embedded_kafka.addr: %q is not a host:port address (needed: kafka.brokers is empty)", c.EmbeddedKafka.Addr)
		}
	}
	if err := kc.Validate(); err != nil {
		return err
	}
	if c.EmbeddedKafka.Partitions < 1 {
		return fmt.Errorf("embedded_kafka.partitions: %d must be at least 1", c.EmbeddedKafka.Partitions)
	}
	if c.ClickHouse != "" {
		if _, err := clickhouse.ParseDSN(c.ClickHouse); err != nil {
			return fmt.Errorf("clickhouse: %w", err)
		}
	}
	// The components' own checks run on a copy with the brokers filled in
	// and a placeholder catalog (the real one is loaded later).
	cc := *c
	cc.Kafka = kc
	cat := &schemas.Catalog{}
	if c.Speed.Group == "" {
		return errors.New("speed.group: required")
	}
	if err := validateSpeed(cc.StreamConfig(nil)); err != nil {
		return fmt.Errorf("speed.%w", err)
	}
	if err := c.GC().Validate(); err != nil {
		return fmt.Errorf("speed.%w", err)
	}
	if c.Landing.Group == "" {
		return errors.New("landing.group: required")
	}
	lc := cc.LandingConfig(cat)
	if err := lc.Validate(); err != nil {
		return fmt.Errorf("landing.%w", err)
	}
	if c.API.Listen == "" {
		return errors.New("api.listen: required")
	}
	switch {
	case c.API.MaxBodyBytes < 1:
		return fmt.Errorf("api.max_body_bytes: %d must be at least 1", c.API.MaxBodyBytes)
	case c.API.MaxBatchKeys < 1:
		return fmt.Errorf("api.max_batch_keys: %d must be at least 1", c.API.MaxBatchKeys)
	case strings.ContainsAny(c.API.Token, " \t\r\n"):
		return errors.New("api.token: must not contain white space")
	}
	if err := c.Jobs.Validate(); err != nil {
		return err
	}
	if _, err := warehouse.ParseRetention(c.Retention.Keep); err != nil {
		return fmt.Errorf("retention.keep: %w", err)
	}
	switch {
	case c.Status.FreshnessTarget <= 0:
		return fmt.Errorf("status.freshness_target: %s must be positive", c.Status.FreshnessTarget)
	case c.Status.MaxLagRecords < 0:
		return fmt.Errorf("status.max_lag_records: %d is negative", c.Status.MaxLagRecords)
	case c.Status.SnapshotMaxAge <= 0:
		return fmt.Errorf("status.snapshot_max_age: %s must be positive", c.Status.SnapshotMaxAge)
	case c.Status.MaxDriftShare < 0 || c.Status.MaxDriftShare > 1:
		return fmt.Errorf("status.max_drift_share: %g must be between 0 and 1", c.Status.MaxDriftShare)
	}
	return nil
}

// validateSpeed checks the speed fields stream.Config.Validate checks,
// without the catalog (checked once it is loaded).
func validateSpeed(sc stream.Config) error {
	if sc.StateDir == "" {
		return errors.New("state_dir: required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"checkpoint_interval", sc.CheckpointInterval}, {"clock_skew", sc.ClockSkew}, {"grace", sc.Grace},
		{"sweep_interval", sc.SweepInterval}, {"session_timeout", sc.SessionTimeout}, {"rebalance_timeout", sc.RebalanceTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("%s: %s is negative", d.name, d.v)
		}
	}
	if sc.MaxDirtyUsers < 0 {
		return fmt.Errorf("max_dirty_users: %d is negative", sc.MaxDirtyUsers)
	}
	if sc.MaxRecordBytes < 0 {
		return fmt.Errorf("max_record_bytes: %d is negative", sc.MaxRecordBytes)
	}
	return nil
}

// RetentionKeep returns retention.keep as a duration (after Validate).
func (c *Config) RetentionKeep() time.Duration {
	d, _ := warehouse.ParseRetention(c.Retention.Keep)
	return d
}

// StreamConfig is the speed layer's config for catalog cat.
func (c *Config) StreamConfig(cat *schemas.Catalog) stream.Config {
	kc := c.Kafka
	kc.Group = c.Speed.Group
	s := c.Speed
	return stream.Config{
		Catalog: cat, Kafka: kc, StateDir: s.StateDir, CheckpointInterval: s.CheckpointInterval,
		MaxDirtyUsers: s.MaxDirtyUsers, Grace: s.Grace, SweepInterval: s.SweepInterval,
		ConsumerTuning: kafka.ConsumerTuning{MaxRecordBytes: s.MaxRecordBytes, ClockSkew: s.ClockSkew,
			SessionTimeout: s.SessionTimeout, RebalanceTimeout: s.RebalanceTimeout},
	}
}

// GC is the garbage collector and scheduler setting of the process
// (speed.gc_percent, speed.memory_limit_mb, speed.procs_per_cpu).
func (c *Config) GC() stream.GC {
	return stream.GC{Percent: c.Speed.GCPercent, MemoryLimitMB: c.Speed.MemoryLimitMB, ProcsPerCPU: c.Speed.ProcsPerCPU}
}

// LandingConfig is the landing's config for catalog cat (without
// ClickHouse, which the caller connects).
func (c *Config) LandingConfig(cat *schemas.Catalog) landing.Config {
	kc := c.Kafka
	kc.Group = c.Landing.Group
	l := c.Landing
	return landing.Config{
		Catalog: cat, Kafka: kc, Warehouse: c.Warehouse, RollBytes: l.RollBytes, RollAge: l.RollAge,
		IdleTimeout: l.IdleTimeout, AllowedLateness: l.AllowedLateness, CloseInterval: l.CloseInterval,
		ConsumerTuning: kafka.ConsumerTuning{ClockSkew: l.ClockSkew, MaxRecordBytes: l.MaxRecordBytes,
			SessionTimeout: l.SessionTimeout, RebalanceTimeout: l.RebalanceTimeout},
	}
}
