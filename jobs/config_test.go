package jobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestConfigYAMLDefaults(t *testing.T) {
	var file struct {
		Jobs Config `yaml:"jobs"`
	}
	src := `
jobs:
  recompute:
    schedule: "0 */2 * * *"
    retries: 0
  compact:
    enabled: false
  reconcile:
    backoff: 1m
    timeout: 90s
  vacuum:
    schedule: "@every 6h"
`
	require.NoError(t, yaml.Unmarshal([]byte(src), &file))
	cfg := file.Jobs
	require.NoError(t, cfg.Validate())

	rc := cfg.Job(Recompute)
	assert.Equal(t, "0 */2 * * *", rc.Schedule)
	assert.Equal(t, 0, rc.Retries, "an explicit retries: 0 is kept")
	assert.True(t, rc.Enabled)
	assert.Equal(t, DefaultBackoff, rc.Backoff)

	assert.False(t, cfg.Job(Compact).Enabled)
	assert.Equal(t, DefaultJobConfig(Compact).Schedule, cfg.Job(Compact).Schedule)

	re := cfg.Job(Reconcile)
	assert.Equal(t, time.Minute, re.Backoff)
	assert.Equal(t, 90*time.Second, re.Timeout)
	assert.Equal(t, DefaultRetries, re.Retries)

	assert.Equal(t, DefaultJobConfig(Retention), cfg.Job(Retention), "a job not in the file takes its defaults")
	assert.True(t, cfg.Job("vacuum").Enabled, "an unknown job given a schedule runs on it")
	assert.Equal(t, []string{Recompute, Reconcile, LoadEvents, Compact, Retention, "vacuum"}, cfg.Names())

	require.NoError(t, DefaultConfig().Validate())
}

func TestConfigYAMLErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"unknown field", "jobs:\n  recompute:\n    schedul: '@hourly'\n",
			`jobs.recompute: line 3: unknown field "schedul" (want one of schedule, enabled, retries, backoff, max_backoff, timeout)`},
		{"bad duration", "jobs:\n  compact: {backoff: soon}\n", "jobs.compact: "},
		{"not a mapping", "jobs: [recompute]\n", "line 1: jobs: want a mapping of job name to job config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var file struct {
				Jobs Config `yaml:"jobs"`
			}
			err := yaml.Unmarshal([]byte(tt.src), &file)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	t.Run("empty section keeps the defaults", func(t *testing.T) {
		file := struct {
			Jobs Config `yaml:"jobs"`
		}{Jobs: DefaultConfig()}
		require.NoError(t, yaml.Unmarshal([]byte("jobs:\n"), &file))
		assert.Equal(t, DefaultConfig(), file.Jobs)
	})
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultJobConfig(Recompute)
	with := func(f func(*JobConfig)) JobConfig { jc := ok; f(&jc); return jc }
	tests := []struct {
		name string
		job  JobConfig
		want string
	}{
		{"bad cron spec", with(func(j *JobConfig) { j.Schedule = "61 * * * *" }),
			`jobs.recompute.schedule: bad cron spec "61 * * * *": end of range (61) above maximum (59): 61`},
		{"bad descriptor", with(func(j *JobConfig) { j.Schedule = "@fortnightly" }),
			`jobs.recompute.schedule: bad cron spec "@fortnightly": unrecognized descriptor: @fortnightly`},
		{"too many fields", with(func(j *JobConfig) { j.Schedule = "0 0 * * * * *" }),
			`jobs.recompute.schedule: bad cron spec "0 0 * * * * *": expected 5 to 6 fields, found 7: [0 0 * * * * *]`},
		{"enabled without schedule", with(func(j *JobConfig) { j.Schedule = "" }),
			`jobs.recompute.schedule: an enabled job needs a schedule`},
		{"negative retries", with(func(j *JobConfig) { j.Retries = -1 }),
			`jobs.recompute.retries: -1 is negative`},
		{"retries without backoff", with(func(j *JobConfig) { j.Backoff = 0 }),
			`jobs.recompute.backoff: retries need a backoff above 0`},
		{"max below backoff", with(func(j *JobConfig) { j.MaxBackoff = time.Second }),
			`jobs.recompute.max_backoff: 1s is below backoff 30s`},
		{"negative timeout", with(func(j *JobConfig) { j.Timeout = -time.Second }),
			`jobs.recompute.timeout: -1s is negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Jobs: map[string]JobConfig{Recompute: tt.job}}.Validate()
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}

	t.Run("good specs", func(t *testing.T) {
		for _, spec := range []string{"*/5 * * * *", "30 */5 * * * *", "@hourly", "@every 1h30m", "CRON_TZ=Asia/Shanghai 0 3 * * *"} {
			jc := with(func(j *JobConfig) { j.Schedule = spec })
			assert.NoError(t, jc.Validate(), spec)
		}
	})

	t.Run("scheduler refuses an unknown job", func(t *testing.T) {
		_, err := New(Options{Root: t.TempDir(), Config: Config{Jobs: map[string]JobConfig{"recompte": {}}}})
		require.EqualError(t, err, "jobs: jobs.recompte: no such job (registered: [])")
	})
}

func TestBackoffDoublesAndCaps(t *testing.T) {
	jc := JobConfig{Backoff: time.Second, MaxBackoff: 5 * time.Second}
	var got []time.Duration
	for n := 1; n <= 5; n++ {
		got = append(got, jc.backoff(n))
	}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, got)
}

func TestScheduleIsUTC(t *testing.T) {
	s, err := ParseSchedule("0 3 * * *")
	require.NoError(t, err)
	assert.Equal(t, t0.Add(3*time.Hour), s.Next(t0))
}
