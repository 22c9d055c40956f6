package scheduler

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

// Config configures the scheduler. It belongs under the `scheduler:` key
// of the main configuration. Zero fields take the defaults of
// DefaultConfig when decoded with DecodeConfig or completed with
// ApplyDefaults.
type Config struct {
	// ServerID names this server in the lease and the run history.
	// Default: hostname:pid.
	ServerID string `yaml:"server_id"`
	// LeasePeriod is how long a writer lease lasts without a heartbeat: a
	// standby server takes over at most this long (plus one heartbeat)
	// after the holder died.
	LeasePeriod time.Duration `yaml:"lease_period"`
	// Heartbeat is how often the holder renews the lease and a standby
	// tries to take it (and catches up with the change log). At most a
	// third of LeasePeriod.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// ReplayInterval is how often a standby reads the change log for the
	// holder's new writes between heartbeats: its reads are at most this
	// stale (plus the replay). An idle poll is one indexed query that
	// returns no rows. At most Heartbeat; default 250ms (or Heartbeat if
	// shorter).
	ReplayInterval time.Duration `yaml:"replay_interval"`
	// Grace is how long running applications may take to finish after
	// shutdown starts before their contexts are cancelled. Keep it below
	// serve.shutdown_grace.
	Grace time.Duration `yaml:"grace"`
	// DefaultTimeout bounds a run whose app, step or request names none.
	DefaultTimeout time.Duration `yaml:"default_timeout"`
	// RetryDelay is the pause before a sequence repeats a failed line (&)
	// or restarts after a failure (^), so that a broken app does not spin.
	RetryDelay time.Duration `yaml:"retry_delay"`
	// MaxReaders bounds read-only runs in parallel.
	MaxReaders int `yaml:"max_readers"`
	// Sequences is the path of a Dynamo sequences file ("" for none).
	Sequences string `yaml:"sequences"`
	// Cron lists wall-clock schedules.
	Cron []CronEntry `yaml:"cron"`
	// TestApps registers the test applications (test:counter), used by
	// the two-server tests. Never in production.
	TestApps bool `yaml:"test_apps"`
}

// CronEntry runs an application on a cron schedule.
type CronEntry struct {
	// Name identifies the entry in the history (default: the app name).
	Name string `yaml:"name"`
	// Schedule is a cron expression: 5 fields (minute hour dom month
	// dow), 6 with leading seconds, or a descriptor (@hourly, @every 90s).
	// Times are UTC.
	Schedule string `yaml:"schedule"`
	// App is the registered application to run.
	App string `yaml:"app"`
	// Args are passed to the application.
	Args []string `yaml:"args"`
	// Timeout overrides the app's timeout (0: the app's or the default).
	Timeout time.Duration `yaml:"timeout"`
	// ReadOnly runs a writer app as a dry run (plan computed, not applied).
	ReadOnly bool `yaml:"read_only"`
	// Jitter delays each firing by a random time up to this, so that
	// entries firing at the same minute do not all start at once.
	Jitter time.Duration `yaml:"jitter"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		LeasePeriod:    15 * time.Second,
		Heartbeat:      3 * time.Second,
		ReplayInterval: 250 * time.Millisecond,
		Grace:          20 * time.Second,
		DefaultTimeout: time.Hour,
		RetryDelay:     time.Minute,
		MaxReaders:     8,
	}
}

// ApplyDefaults fills zero fields from DefaultConfig.
func (c *Config) ApplyDefaults() {
	d := DefaultConfig()
	if c.ServerID == "" {
		host, _ := os.Hostname()
		c.ServerID = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if c.LeasePeriod == 0 {
		c.LeasePeriod = d.LeasePeriod
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = d.Heartbeat
	}
	if c.ReplayInterval == 0 {
		c.ReplayInterval = min(d.ReplayInterval, c.Heartbeat)
	}
	if c.Grace == 0 {
		c.Grace = d.Grace
	}
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = d.DefaultTimeout
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = d.RetryDelay
	}
	if c.MaxReaders == 0 {
		c.MaxReaders = d.MaxReaders
	}
	for i := range c.Cron {
		if c.Cron[i].Name == "" {
			c.Cron[i].Name = c.Cron[i].App
		}
	}
}

// cronParser accepts 5 fields, 6 with leading seconds, and descriptors.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Validate checks every option and names the one that is wrong. It does
// not check that applications exist (they register later); Run does.
func (c *Config) Validate() error {
	if len(c.ServerID) > 128 {
		return fmt.Errorf("scheduler.server_id: longer than 128 characters")
	}
	if c.LeasePeriod < time.Second {
		return fmt.Errorf("scheduler.lease_period %s: at least 1s", c.LeasePeriod)
	}
	if c.Heartbeat <= 0 || c.Heartbeat*3 > c.LeasePeriod {
		return fmt.Errorf("scheduler.heartbeat %s: must be positive and at most a third of lease_period (%s)",
			c.Heartbeat, c.LeasePeriod)
	}
	if c.ReplayInterval <= 0 || c.ReplayInterval > c.Heartbeat {
		return fmt.Errorf("scheduler.replay_interval %s: must be positive and at most heartbeat (%s)",
			c.ReplayInterval, c.Heartbeat)
	}
	if c.MaxReaders < 1 {
		return fmt.Errorf("scheduler.max_readers %d: at least 1", c.MaxReaders)
	}
	seen := map[string]bool{}
	for i, e := range c.Cron {
		where := fmt.Sprintf("scheduler.cron[%d]", i)
		if err := CheckAppName(e.App); err != nil {
			return fmt.Errorf("%s.app: %w", where, err)
		}
		if e.Name == "" {
			e.Name = e.App
		}
		if seen[e.Name] {
			return fmt.Errorf("%s: name %q used twice (set name: to tell entries apart)", where, e.Name)
		}
		seen[e.Name] = true
		if _, err := cronParser.Parse(e.Schedule); err != nil {
			return fmt.Errorf("%s.schedule %q: %w", where, e.Schedule, err)
		}
	}
	return nil
}

// DecodeConfig decodes a `scheduler:` section from its node (see
// yamlconf: strict, positions of the file), applies the defaults and
// validates. A nil node gives the defaults.
func DecodeConfig(n *yaml.Node) (Config, error) {
	var c Config
	if err := yamlconf.Decode(n, &c); err != nil {
		return c, fmt.Errorf("scheduler: %w", err)
	}
	c.ApplyDefaults()
	return c, c.Validate()
}

func joinArgs(a []string) string { return strings.Join(a, " ") }
