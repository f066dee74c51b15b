package landing

import (
	"errors"
	"fmt"
	"time"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/internal/eventjson"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/schemas"
)

// Defaults of Config.
const (
	DefaultGroup           = "portrait-landing"
	DefaultRollBytes       = 64 << 20
	DefaultRollAge         = time.Minute
	DefaultIdleTimeout     = time.Minute
	DefaultAllowedLateness = 10 * time.Minute
	DefaultCloseInterval   = 5 * time.Second
	DefaultClockSkew       = kafka.DefaultClockSkew
	DefaultMaxRecordBytes  = kafka.DefaultMaxRecordBytes
)

// Config configures the landing.
type Config struct {
	// Catalog defines the events (required).
	Catalog *schemas.Catalog `yaml:"-"`
	// Kafka is where the events topic is; Kafka.Group defaults to
	// "portrait-landing" and Kafka.DLQTopic to the topic plus ".dlq".
	Kafka kafka.Config `yaml:"kafka"`
	// Warehouse is the warehouse root folder (required).
	Warehouse string `yaml:"warehouse"`
	// RollBytes rolls a partition's files once the records buffered for
	// it reach this many bytes of JSON (default 64 MiB; the Parquet files
	// are several times smaller). While one roll is being written the
	// partition buffers the next, so it holds up to twice this.
	RollBytes int64 `yaml:"roll_bytes"`
	// RollAge rolls a partition's files once its oldest buffered record
	// was read this long ago (default 1m).
	RollAge time.Duration `yaml:"roll_age"`
	// IdleTimeout: a partition caught up with its high watermark that got
	// no record for this long does not hold the watermark back
	// (default 1m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AllowedLateness: an hour is closed once the watermark passes its end
	// plus this (default 10m).
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// CloseInterval is how often hours are considered for closing and
	// the re-load queue is worked (default 5s).
	CloseInterval time.Duration `yaml:"close_interval"`
	// ConsumerTuning holds max_record_bytes, clock_skew (as in the speed
	// layer), session_timeout and rebalance_timeout.
	kafka.ConsumerTuning `yaml:",inline"`
	// ClickHouse, when set, receives every closed or re-opened hour in
	// its events table (chbatch.LoadEvents). Without it the re-load queue
	// is kept for a later run that has one.
	ClickHouse *clickhouse.Client `yaml:"-"`
	// Now is the clock that decides roll ages, idleness and the skew
	// check (default time.Now); tests inject their own.
	Now func() time.Time `yaml:"-"`
}

// ApplyDefaults fills the fields left at their zero value.
func (c *Config) ApplyDefaults() {
	if c.Kafka.Group == "" {
		c.Kafka.Group = DefaultGroup
	}
	c.Kafka.ApplyDefaults()
	if c.RollBytes == 0 {
		c.RollBytes = DefaultRollBytes
	}
	if c.RollAge == 0 {
		c.RollAge = DefaultRollAge
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.AllowedLateness == 0 {
		c.AllowedLateness = DefaultAllowedLateness
	}
	if c.CloseInterval == 0 {
		c.CloseInterval = DefaultCloseInterval
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
	if c.Warehouse == "" {
		return errors.New("warehouse: required")
	}
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	if c.Kafka.Group == "" {
		return errors.New("kafka.group: required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"roll_age", c.RollAge}, {"idle_timeout", c.IdleTimeout}, {"close_interval", c.CloseInterval},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s: %s must be positive", d.name, d.v)
		}
	}
	if c.AllowedLateness < 0 {
		return fmt.Errorf("allowed_lateness: %s is negative", c.AllowedLateness)
	}
	if c.RollBytes < 0 {
		return fmt.Errorf("roll_bytes: %d is negative", c.RollBytes)
	}
	return c.ConsumerTuning.Validate()
}

// limits are the record checks beyond the catalog's.
func (c *Config) limits() eventjson.Limits {
	return eventjson.Limits{MaxRecordBytes: c.MaxRecordBytes, ClockSkew: c.ClockSkew}
}
