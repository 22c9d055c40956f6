package fileop

import (
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/pfn"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

// Config is the file-operation daemon's configuration (YAML key `fileop:`
// of the main configuration). Zero fields take the defaults of
// DefaultConfig; Validate reports every bad field.
type Config struct {
	// Backend names the engine: "native" (default), "gfal2" or "fts3".
	Backend string `yaml:"backend"`
	// Interval is how often an idle daemon looks for new work (default 10s).
	// Finished work and new capacity wake it at once.
	Interval time.Duration `yaml:"interval"`
	// BatchSize is the most tasks per batch (default 200).
	BatchSize int `yaml:"batch_size"`
	// MaxPending bounds the operations in flight (inbatch), default 2000.
	MaxPending int `yaml:"max_pending"`
	// PerLink bounds concurrent transfers per (source, destination) site
	// pair and concurrent deletions per site (default 100).
	PerLink int `yaml:"per_link"`
	// PerSite bounds concurrent operations touching one site, as source or
	// destination (default 200).
	PerSite int `yaml:"per_site"`
	// MaxTries is the number of failed attempts after which a subscription
	// is held with reason all_failed (default 5).
	MaxTries int `yaml:"max_tries"`
	// RetryBase and RetryMax shape the exponential backoff after a
	// recoverable failure: RetryBase * 2^(tries-1), at most RetryMax
	// (defaults 1m and 6h).
	RetryBase time.Duration `yaml:"retry_base"`
	RetryMax  time.Duration `yaml:"retry_max"`
	// CommitBatch is the most results recorded in one transaction (default 1000).
	CommitBatch int `yaml:"commit_batch"`
	// SuspectAfterMismatches is how many checksum mismatches of transfers
	// read from one source replica flag it suspicious (not counted as a
	// copy, not used as a source) until an operator clears it. 0: 3.
	SuspectAfterMismatches int `yaml:"suspect_after_mismatches"`
	// Protocol selects the PFN mapping used with Sites[*].PFN (default "davs").
	Protocol string `yaml:"protocol"`
	// Sites overrides per site how LFNs become storage URLs. Without an
	// entry a site's PFN is its inventory backend URL joined with the LFN.
	Sites map[string]SiteConfig `yaml:"sites"`
	// Driver holds the storage credentials and TLS settings.
	Driver driver.Options `yaml:"driver"`

	Native NativeConfig `yaml:"native"`
	Gfal2  Gfal2Config  `yaml:"gfal2"`
	FTS3   FTS3Config   `yaml:"fts3"`
}

// SiteConfig is the per-site part of Config.
type SiteConfig struct {
	// PFN is the site's LFN-to-PFN mapping (see fileop/pfn).
	PFN pfn.Config `yaml:"pfn"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills zero fields with their defaults.
func (c *Config) ApplyDefaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Backend == "" {
		c.Backend = "native"
	}
	if c.Protocol == "" {
		c.Protocol = "davs"
	}
	defD(&c.Interval, 10*time.Second)
	def(&c.BatchSize, 200)
	def(&c.MaxPending, 2000)
	def(&c.PerLink, 100)
	def(&c.PerSite, 200)
	def(&c.MaxTries, 5)
	defD(&c.RetryBase, time.Minute)
	defD(&c.RetryMax, 6*time.Hour)
	def(&c.CommitBatch, 1000)
	def(&c.SuspectAfterMismatches, 3)
	c.Native.applyDefaults()
	c.Gfal2.applyDefaults()
	c.FTS3.applyDefaults()
}

// Validate reports every invalid field, named by its YAML path.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("fileop."+format, args...)) }
	if c.SuspectAfterMismatches < 1 {
		bad("suspect_after_mismatches: %d: must be at least 1", c.SuspectAfterMismatches)
	}
	switch c.Backend {
	case "native", "gfal2", "fts3":
	default:
		bad("backend: %q: want native, gfal2 or fts3", c.Backend)
	}
	if c.Interval < 10*time.Millisecond {
		bad("interval: %v is under 10ms", c.Interval)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"batch_size", c.BatchSize}, {"max_pending", c.MaxPending}, {"per_link", c.PerLink},
		{"per_site", c.PerSite}, {"max_tries", c.MaxTries}, {"commit_batch", c.CommitBatch}} {
		if f.v < 1 {
			bad("%s: %d must be at least 1", f.name, f.v)
		}
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		bad("retry_base/retry_max: %v/%v: want 0 < retry_base <= retry_max", c.RetryBase, c.RetryMax)
	}
	for site, sc := range c.Sites {
		if _, err := pfn.Compile(site, sc.PFN); err != nil {
			bad("sites.%s.pfn: %w", site, err)
		}
	}
	if err := c.Native.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Backend == "gfal2" {
		if err := c.Gfal2.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Backend == "fts3" {
		if err := c.FTS3.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DecodeConfig decodes a `fileop:` section from its node (see yamlconf:
// strict, positions of the file), applies the defaults and validates. A
// nil node gives the defaults.
func DecodeConfig(n *yaml.Node) (Config, error) {
	var c Config
	if err := yamlconf.Decode(n, &c); err != nil {
		return Config{}, fmt.Errorf("fileop: %w", err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
