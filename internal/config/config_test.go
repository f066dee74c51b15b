package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/stream"
)

var update = flag.Bool("update", false, "rewrite portrait.example.yaml")

// examplePath is the documented default config at the repository root.
var examplePath = filepath.Join("..", "..", "portrait.example.yaml")

func TestExampleInSync(t *testing.T) {
	got, err := Documented(Default())
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(examplePath, got, 0o644))
	}
	want, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got),
		"portrait.example.yaml is stale: go run ./cmd/portrait config print-defaults > portrait.example.yaml (or go test ./internal/config -update)")
}

func TestExampleLoadsToDefaults(t *testing.T) {
	c, err := Load(examplePath)
	require.NoError(t, err)
	require.Equal(t, Default(), c)
	require.NoError(t, c.Validate())
}

func TestParse(t *testing.T) {
	c, err := Parse([]byte(`
kafka:
  brokers: [k1:9092, k2:9092]
speed:
  grace: 2h
  gc_percent: 400
  memory_limit_mb: 4096
jobs:
  recompute: {schedule: "@every 5m", retries: 0}
  compact: {enabled: false}
`))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, []string{"k1:9092", "k2:9092"}, c.Kafka.Brokers)
	require.Equal(t, 2*time.Hour, c.Speed.Grace)
	require.Equal(t, "@every 5m", c.Jobs.Jobs["recompute"].Schedule)
	require.Equal(t, 0, c.Jobs.Jobs["recompute"].Retries)
	require.Equal(t, 30*time.Second, c.Jobs.Jobs["recompute"].Backoff, "fields left out keep their defaults")
	require.False(t, c.Jobs.Jobs["compact"].Enabled)
	require.Equal(t, Default().Jobs.Jobs["retention"], c.Jobs.Jobs["retention"], "jobs left out keep their defaults")
	require.Equal(t, Default().Landing, c.Landing)

	sc := c.StreamConfig(nil)
	require.Equal(t, "portrait-speed", sc.Kafka.Group)
	require.Equal(t, 2*time.Hour, sc.Grace)
	require.Equal(t, stream.GC{Percent: 400, MemoryLimitMB: 4096, ProcsPerCPU: stream.DefaultProcsPerCPU}, c.GC(), "procs_per_cpu left out keeps its default")
	d := Default()
	require.Equal(t, stream.DefaultGC(), d.GC(), "a deployment gets the speed layer's default")
	lc := c.LandingConfig(nil)
	require.Equal(t, "portrait-landing", lc.Kafka.Group)
	require.Equal(t, c.Warehouse, lc.Warehouse)
}

// TestBadConfigs pairs each bad file with the exact error it produces.
func TestBadConfigs(t *testing.T) {
	for _, tc := range []struct{ name, yaml, err string }{
		{"unknown top key", "catalog: x.yaml\nwarehous: w\n", "yaml: unmarshal errors:\n  line 2: field warehous not found in type config.Config"},
		{"unknown nested key", "speed:\n  grace: 1h\n  gracee: 2h\n", "yaml: unmarshal errors:\n  line 3: field gracee not found in type config.Speed"},
		{"unknown job field", "jobs:\n  recompute:\n    schedul: '@hourly'\n", "jobs.recompute: line 3: unknown field \"schedul\" (want one of schedule, enabled, retries, backoff, max_backoff, timeout)"},
		{"bad duration", "landing:\n  roll_age: soon\n", "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `soon` into time.Duration"},
		{"no warehouse", "warehouse: ''\n", "warehouse: required"},
		{"kafka group", "kafka:\n  group: g\n", `kafka.group: "g": set speed.group and landing.group instead`},
		{"bad broker", "kafka:\n  brokers: [nohost]\n", `kafka.brokers[0]: "nohost" is not a host:port address`},
		{"bad embedded addr", "embedded_kafka:\n  addr: nope\n", `embedded_kafka.addr: "nope" is not a host:port address (needed: kafka.brokers is empty)`},
		{"no partitions", "embedded_kafka:\n  partitions: 0\n", "embedded_kafka.partitions: 0 must be at least 1"},
		{"bad clickhouse", "clickhouse: 'clickhouse://h:99999/db'\n", "clickhouse: parsing clickhouse DSN: clickhouse addr \"h:99999\": bad port \"99999\""},
		{"speed negative grace", "speed:\n  grace: -1h\n", "speed.grace: -1h0m0s is negative"},
		{"speed no state", "speed:\n  state_dir: ''\n", "speed.state_dir: required"},
		{"speed gc off", "speed:\n  gc_percent: -1\n", "speed.gc_percent: negative (collector off) needs memory_limit_mb"},
		{"speed memory limit", "speed:\n  memory_limit_mb: -5\n", "speed.memory_limit_mb: -5 is negative"},
		{"landing roll age", "landing:\n  roll_age: -1s\n", "landing.roll_age: -1s must be positive"},
		{"api listen", "api:\n  listen: ''\n", "api.listen: required"},
		{"api token", "api:\n  token: 'a b'\n", "api.token: must not contain white space"},
		{"job schedule", "jobs:\n  compact: {schedule: 'every day'}\n", "jobs.compact.schedule: bad cron spec \"every day\": expected 5 to 6 fields, found 2: [every day]"},
		{"retention", "retention:\n  keep: forever\n", "retention.keep: retention \"forever\": want a positive number of days like 90d or a duration like 36h"},
		{"drift share", "status:\n  max_drift_share: 2\n", "status.max_drift_share: 2 must be between 0 and 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err == nil {
				err = c.Validate()
			}
			require.EqualError(t, err, tc.err)
		})
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"PORTRAIT_KAFKA_BROKERS":         "a:1, b:2",
		"PORTRAIT_KAFKA_TOPIC":           "ev",
		"PORTRAIT_API_LISTEN":            "0.0.0.0:9",
		"PORTRAIT_SPEED_GRACE":           "3h",
		"PORTRAIT_WAREHOUSE":             "/w",
		"PORTRAIT_RETENTION_KEEP":        "", // empty: ignored
		"PORTRAIT_API_TOKEN":             "secret",
		"PORTRAIT_CLICKHOUSE":            "127.0.0.1:19000",
		"PORTRAIT_SPEED_STATE_DIR":       "/s",
		"PORTRAIT_SPEED_MEMORY_LIMIT_MB": "3000",
		"PORTRAIT_SPEED_GC_PERCENT":      "400",
	}
	c := Default()
	require.NoError(t, c.ApplyEnv(func(k string) string { return env[k] }))
	require.NoError(t, c.Validate())
	require.Equal(t, []string{"a:1", "b:2"}, c.Kafka.Brokers)
	require.Equal(t, "ev", c.Kafka.Topic)
	require.Equal(t, "ev.dlq", c.Kafka.DLQTopic, "the DLQ topic follows the events topic")
	require.Equal(t, "0.0.0.0:9", c.API.Listen)
	require.Equal(t, 3*time.Hour, c.Speed.Grace)
	require.Equal(t, "/w", c.Warehouse)
	require.Equal(t, "90d", c.Retention.Keep)
	require.Equal(t, "secret", c.API.Token)
	require.Equal(t, "/s", c.Speed.StateDir)
	require.Equal(t, int64(3000), c.Speed.MemoryLimitMB)
	require.Equal(t, 400, c.Speed.GCPercent)

	c = Default()
	err := c.ApplyEnv(func(k string) string {
		if k == "PORTRAIT_SPEED_GRACE" {
			return "long"
		}
		return ""
	})
	require.EqualError(t, err, `PORTRAIT_SPEED_GRACE (speed.grace): "long": time: invalid duration "long"`)
}

func TestEveryKeyDocumented(t *testing.T) {
	// Documented fails on a key without documentation; every doc entry
	// must also match a key.
	out, err := Documented(Default())
	require.NoError(t, err)
	for path := range docs {
		if path == "jobs.*" {
			continue
		}
		require.Contains(t, string(out), "# "+docs[path][:min(len(docs[path]), 30)], "doc of %s not used", path)
	}
}
