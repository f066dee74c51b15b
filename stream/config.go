package stream

import (
	"errors"
	"fmt"
	"time"

	"github.com/portrait-dev/portrait/internal/eventjson"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream/incremental"
)

// Defaults of Config.
const (
	DefaultGroup              = "portrait-speed"
	DefaultCheckpointInterval = time.Second
	DefaultMaxDirtyUsers      = 100_000
	DefaultMaxRecordBytes     = kafka.DefaultMaxRecordBytes
	DefaultClockSkew          = kafka.DefaultClockSkew
	DefaultGrace              = incremental.DefaultGrace
	DefaultSweepInterval      = time.Minute
	// DefaultFetchBytes is the speed layer's default Kafka fetch size per
	// partition (kafka.Config.FetchDefault), larger than the client's
	// default so that a fetch carries thousands of records.
	DefaultFetchBytes = 8 << 20
)

// Config configures the speed layer.
type Config struct {
	// Catalog defines the events and tags (required).
	Catalog *schemas.Catalog `yaml:"-"`
	// Kafka is where the events topic is; Kafka.Group defaults to
	// "portrait-speed" and Kafka.DLQTopic to the topic plus ".dlq".
	Kafka kafka.Config `yaml:"kafka"`
	// StateDir holds the Pebble state store (required).
	StateDir string `yaml:"state_dir"`
	// CheckpointInterval is how often dirty state and offsets are synced
	// to the store (default 1s).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// MaxDirtyUsers starts a checkpoint early when this many users
	// changed since the last one (default 100000).
	MaxDirtyUsers int `yaml:"max_dirty_users"`
	// ConsumerTuning holds max_record_bytes, clock_skew (the watermark
	// never passes it either), session_timeout and rebalance_timeout.
	kafka.ConsumerTuning `yaml:",inline"`
	// Grace is how long buckets are kept beyond the longest window, so
	// that values as of a past cutoff can be computed. It is also the
	// allowed lateness: an event older than the longest window plus Grace
	// before the end of its partition's watermark bucket is late, changes
	// nothing and is left to the batch layer (default 24h).
	Grace time.Duration `yaml:"grace"`
	// SweepInterval is how often every user (not only the dirty ones) is
	// checked for buckets to evict (default 1m).
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// Now is the wall clock (default time.Now); tests inject their own.
	Now func() time.Time `yaml:"-"`
}

// ApplyDefaults fills the fields left at their zero value.
func (c *Config) ApplyDefaults() {
	if c.Kafka.Group == "" {
		c.Kafka.Group = DefaultGroup
	}
	if c.Kafka.FetchDefault == 0 && (c.Kafka.FetchMax == 0 || c.Kafka.FetchMax >= DefaultFetchBytes) {
		c.Kafka.FetchDefault = DefaultFetchBytes
	}
	c.Kafka.ApplyDefaults()
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.MaxDirtyUsers == 0 {
		c.MaxDirtyUsers = DefaultMaxDirtyUsers
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	c.ConsumerTuning.ApplyDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first bad field by its yaml name.
func (c *Config) Validate() error {
	if c.Catalog == nil {
		return errors.New("catalog: required")
	}
	if t := c.Catalog.KeyField().Type; t != schemas.TypeInt64 && t != schemas.TypeString {
		return fmt.Errorf("catalog: key field %s is %s; the speed layer needs int64 or string keys", c.Catalog.KeyField().Name, t)
	}
	if c.StateDir == "" {
		return errors.New("state_dir: required")
	}
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	if c.Kafka.Group == "" {
		return errors.New("kafka.group: required")
	}
	if c.CheckpointInterval < 0 {
		return fmt.Errorf("checkpoint_interval: %s is negative", c.CheckpointInterval)
	}
	if c.MaxDirtyUsers < 0 {
		return fmt.Errorf("max_dirty_users: %d is negative", c.MaxDirtyUsers)
	}
	if err := c.ConsumerTuning.Validate(); err != nil {
		return err
	}
	if c.Grace < 0 {
		return fmt.Errorf("grace: %s is negative", c.Grace)
	}
	if c.SweepInterval < 0 {
		return fmt.Errorf("sweep_interval: %s is negative", c.SweepInterval)
	}
	return nil
}

// limits are the record checks beyond the catalog's.
func (c *Config) limits() eventjson.Limits {
	return eventjson.Limits{MaxRecordBytes: c.MaxRecordBytes, ClockSkew: c.ClockSkew}
}
