package jobs

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// Names of the jobs portrait runs.
const (
	Recompute  = "recompute"
	Reconcile  = "reconcile"
	LoadEvents = "load-events"
	Compact    = "compact"
	Retention  = "retention"
)

// Known lists the jobs portrait runs, in the order they are listed.
var Known = []string{Recompute, Reconcile, LoadEvents, Compact, Retention}

// Config is the jobs section of portrait's config file: one entry per job
// name. In YAML it is a mapping from job name to JobConfig:
//
//	recompute: {schedule: "5 * * * *", retries: 3}
//	compact:   {enabled: false}
//
// A job missing from the file takes DefaultJobConfig(name); a job listed
// takes its defaults for the fields it leaves out (so `retries: 0` and
// `enabled: false` mean what they say).
type Config struct {
	Jobs map[string]JobConfig
}

// JobConfig configures one job.
type JobConfig struct {
	// Schedule is a cron spec: five fields, or six with seconds first,
	// or a descriptor (@hourly, @daily, @every 1h30m). Read in UTC unless
	// it starts with CRON_TZ=<zone>.
	Schedule string `yaml:"schedule"`
	// Enabled jobs run on their schedule; any job can be run by hand.
	Enabled bool `yaml:"enabled"`
	// Retries is how many times a failed attempt is retried (0: never).
	Retries int `yaml:"retries"`
	// Backoff is the wait before the first retry; it doubles for each
	// further retry, up to MaxBackoff.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Timeout bounds one attempt (0: no limit).
	Timeout time.Duration `yaml:"timeout"`
}

// Defaults shared by every job.
const (
	DefaultRetries    = 3
	DefaultBackoff    = 30 * time.Second
	DefaultMaxBackoff = 10 * time.Minute
	DefaultTimeout    = time.Hour
)

// defaultSchedules are the schedules of the known jobs: landing loads
// closed hours often, recompute runs after the hour has closed,
// reconcile after recompute, housekeeping at night.
var defaultSchedules = map[string]string{
	LoadEvents: "*/10 * * * *",
	Recompute:  "15 * * * *",
	Reconcile:  "45 * * * *",
	Compact:    "30 2 * * *",
	Retention:  "0 3 * * *",
}

// DefaultJobConfig is the config of a job the file does not change. The
// known jobs are enabled on their default schedule; any other name is
// disabled with no schedule (it runs by hand only).
func DefaultJobConfig(name string) JobConfig {
	s, ok := defaultSchedules[name]
	return JobConfig{
		Schedule:   s,
		Enabled:    ok,
		Retries:    DefaultRetries,
		Backoff:    DefaultBackoff,
		MaxBackoff: DefaultMaxBackoff,
		Timeout:    DefaultTimeout,
	}
}

// DefaultConfig holds the default config of every known job.
func DefaultConfig() Config {
	c := Config{Jobs: map[string]JobConfig{}}
	for _, n := range Known {
		c.Jobs[n] = DefaultJobConfig(n)
	}
	return c
}

// Job returns the config of a job: the file's entry, or its defaults.
func (c Config) Job(name string) JobConfig {
	if jc, ok := c.Jobs[name]; ok {
		return jc
	}
	return DefaultJobConfig(name)
}

// Names returns the configured job names with the known ones: known jobs
// first in their order, then the others sorted.
func (c Config) Names() []string {
	out := slices.Clone(Known)
	var extra []string
	for n := range c.Jobs {
		if !slices.Contains(Known, n) {
			extra = append(extra, n)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

// UnmarshalYAML reads the mapping of job names to job configs, starting
// each listed job from its defaults.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	if isZeroNode(n) {
		return nil // "jobs:" with nothing under it: the defaults
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: jobs: want a mapping of job name to job config", n.Line)
	}
	if c.Jobs == nil {
		c.Jobs = map[string]JobConfig{}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name := n.Content[i].Value
		jc := DefaultJobConfig(name)
		if err := checkFields(n.Content[i+1]); err != nil {
			return fmt.Errorf("jobs.%s: %w", name, err)
		}
		if !isZeroNode(n.Content[i+1]) {
			if err := n.Content[i+1].Decode(&jc); err != nil {
				return fmt.Errorf("jobs.%s: %w", name, err)
			}
		}
		if _, ok := defaultSchedules[name]; !ok && jc.Schedule != "" && !hasField(n.Content[i+1], "enabled") {
			jc.Enabled = true // an unknown job given a schedule runs on it
		}
		c.Jobs[name] = jc
	}
	return nil
}

// MarshalYAML writes the config as the mapping UnmarshalYAML reads.
func (c Config) MarshalYAML() (any, error) { return c.Jobs, nil }

func isZeroNode(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "")
}

// jobFields are the keys a job's config may have.
var jobFields = []string{"schedule", "enabled", "retries", "backoff", "max_backoff", "timeout"}

// checkFields refuses keys JobConfig does not have (a typo would
// otherwise be ignored).
func checkFields(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(jobFields, k.Value) {
			return fmt.Errorf("line %d: unknown field %q (want one of %s)", k.Line, k.Value, strings.Join(jobFields, ", "))
		}
	}
	return nil
}

func hasField(n *yaml.Node, key string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// Validate checks every job's config; the error names the job and field.
func (c Config) Validate() error {
	var errs []error
	for _, name := range c.Names() {
		jc, ok := c.Jobs[name]
		if !ok {
			continue
		}
		if err := jc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("jobs.%s.%w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Validate checks one job's config; the error starts with the field name.
func (jc JobConfig) Validate() error {
	if jc.Schedule == "" {
		if jc.Enabled {
			return errors.New("schedule: an enabled job needs a schedule")
		}
	} else if _, err := ParseSchedule(jc.Schedule); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	switch {
	case jc.Retries < 0:
		return fmt.Errorf("retries: %d is negative", jc.Retries)
	case jc.Backoff < 0:
		return fmt.Errorf("backoff: %s is negative", jc.Backoff)
	case jc.Retries > 0 && jc.Backoff == 0:
		return errors.New("backoff: retries need a backoff above 0")
	case jc.MaxBackoff < 0:
		return fmt.Errorf("max_backoff: %s is negative", jc.MaxBackoff)
	case jc.MaxBackoff > 0 && jc.MaxBackoff < jc.Backoff:
		return fmt.Errorf("max_backoff: %s is below backoff %s", jc.MaxBackoff, jc.Backoff)
	case jc.Timeout < 0:
		return fmt.Errorf("timeout: %s is negative", jc.Timeout)
	}
	return nil
}

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a cron spec (optional seconds field, descriptors),
// in UTC unless it starts with CRON_TZ= or TZ=.
func ParseSchedule(spec string) (cron.Schedule, error) {
	spec = strings.TrimSpace(spec)
	if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
		spec = "CRON_TZ=UTC " + spec
	}
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("bad cron spec %q: %w", strings.TrimPrefix(spec, "CRON_TZ=UTC "), err)
	}
	return s, nil
}

// backoff is the wait before retry number n (1 for the first retry).
func (jc JobConfig) backoff(n int) time.Duration {
	d := jc.Backoff
	max := jc.MaxBackoff
	if max <= 0 {
		max = DefaultMaxBackoff
		if max < d {
			max = d
		}
	}
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
