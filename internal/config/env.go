package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EnvVar is one environment override: PORTRAIT_<SECTION>_<KEY> for the
// YAML path section.key.
type EnvVar struct {
	Name string // e.g. PORTRAIT_KAFKA_BROKERS
	Path string // e.g. kafka.brokers
	set  func(c *Config, v string) error
}

func str(f func(c *Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func i64(f func(c *Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return err
		}
		*f(c) = n
		return nil
	}
}

func dur(f func(c *Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		*f(c) = d
		return nil
	}
}

// EnvVars are the settings the environment can override: the ones that
// differ between deployments of the same file (addresses, credentials,
// folders). A variable set to the empty string is ignored.
var EnvVars = []EnvVar{
	{"PORTRAIT_CATALOG", "catalog", str(func(c *Config) *string { return &c.Catalog })},
	{"PORTRAIT_WAREHOUSE", "warehouse", str(func(c *Config) *string { return &c.Warehouse })},
	{"PORTRAIT_CLICKHOUSE", "clickhouse", str(func(c *Config) *string { return &c.ClickHouse })},
	{"PORTRAIT_KAFKA_BROKERS", "kafka.brokers", func(c *Config, v string) error {
		c.Kafka.Brokers = nil
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				c.Kafka.Brokers = append(c.Kafka.Brokers, b)
			}
		}
		return nil
	}},
	{"PORTRAIT_KAFKA_TOPIC", "kafka.topic", func(c *Config, v string) error {
		// The DLQ topic follows the events topic unless set apart.
		if c.Kafka.DLQTopic == c.Kafka.Topic+".dlq" {
			c.Kafka.DLQTopic = v + ".dlq"
		}
		c.Kafka.Topic = v
		return nil
	}},
	{"PORTRAIT_KAFKA_SASL_MECHANISM", "kafka.sasl.mechanism", str(func(c *Config) *string { return &c.Kafka.SASL.Mechanism })},
	{"PORTRAIT_KAFKA_SASL_USER", "kafka.sasl.user", str(func(c *Config) *string { return &c.Kafka.SASL.User })},
	{"PORTRAIT_KAFKA_SASL_PASSWORD", "kafka.sasl.password", str(func(c *Config) *string { return &c.Kafka.SASL.Password })},
	{"PORTRAIT_EMBEDDED_KAFKA_ADDR", "embedded_kafka.addr", str(func(c *Config) *string { return &c.EmbeddedKafka.Addr })},
	{"PORTRAIT_SPEED_STATE_DIR", "speed.state_dir", str(func(c *Config) *string { return &c.Speed.StateDir })},
	{"PORTRAIT_SPEED_GRACE", "speed.grace", dur(func(c *Config) *time.Duration { return &c.Speed.Grace })},
	{"PORTRAIT_SPEED_GC_PERCENT", "speed.gc_percent", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return err
		}
		c.Speed.GCPercent = n
		return nil
	}},
	{"PORTRAIT_SPEED_MEMORY_LIMIT_MB", "speed.memory_limit_mb", i64(func(c *Config) *int64 { return &c.Speed.MemoryLimitMB })},
	{"PORTRAIT_LANDING_ALLOWED_LATENESS", "landing.allowed_lateness", dur(func(c *Config) *time.Duration { return &c.Landing.AllowedLateness })},
	{"PORTRAIT_LANDING_IDLE_TIMEOUT", "landing.idle_timeout", dur(func(c *Config) *time.Duration { return &c.Landing.IdleTimeout })},
	{"PORTRAIT_API_LISTEN", "api.listen", str(func(c *Config) *string { return &c.API.Listen })},
	{"PORTRAIT_API_TOKEN", "api.token", str(func(c *Config) *string { return &c.API.Token })},
	{"PORTRAIT_RETENTION_KEEP", "retention.keep", str(func(c *Config) *string { return &c.Retention.Keep })},
	{"PORTRAIT_EMBEDDED_KAFKA_PARTITIONS", "embedded_kafka.partitions", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return err
		}
		c.EmbeddedKafka.Partitions = int32(n)
		return nil
	}},
}

// ApplyEnv applies the overrides in EnvVars that getenv returns a
// non-empty value for (os.Getenv in the binary).
func (c *Config) ApplyEnv(getenv func(string) string) error {
	for _, e := range EnvVars {
		v := getenv(e.Name)
		if v == "" {
			continue
		}
		if err := e.set(c, v); err != nil {
			return fmt.Errorf("%s (%s): %q: %w", e.Name, e.Path, v, err)
		}
	}
	return nil
}
