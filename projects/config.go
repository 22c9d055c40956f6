package projects

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/estimator"
	"github.com/dynamo-go/dynamo/fileop/pfn"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
	"github.com/dynamo-go/dynamo/stager"
)

// StorageKind says how a site's SRM storage treats files (the seed's
// volatile, durable and permanent storage).
type StorageKind string

// The storage kinds.
const (
	// Volatile storage may drop files by itself: the station checks a file
	// lazily each time it is requested and unregisters what is gone.
	Volatile StorageKind = "volatile"
	// Durable storage keeps files until told to erase them: the station
	// erases (EnforceQuota) to stay under the site's quota.
	Durable StorageKind = "durable"
	// Permanent storage never displaces files; its access cost (tape or
	// disk) is managed through the estimator's priorities.
	Permanent StorageKind = "permanent"
)

// LocationRule picks the directory of a file placed at a destination.
type LocationRule string

// The location mapping rules.
const (
	// LocationBase puts every file directly under the base directory (the
	// old SAM behaviour; flat, kept for compatibility).
	LocationBase LocationRule = "base"
	// LocationShortest appends the directory of the shortest replica path.
	LocationShortest LocationRule = "shortest"
	// LocationSameProtocol appends the directory of a replica with the
	// destination's protocol, falling back on the shortest.
	LocationSameProtocol LocationRule = "same-protocol"
)

// SiteConfig is one consumption site.
type SiteConfig struct {
	// Kind is volatile, durable or permanent (default permanent).
	Kind StorageKind `yaml:"kind"`
	// QuotaBytes bounds a durable site's cache area (EnforceQuota).
	QuotaBytes int64 `yaml:"quota_bytes"`
	// CacheRoot is the SURL of a durable site's cache directory, listed
	// and pruned by EnforceQuota.
	CacheRoot string `yaml:"cache_root"`
	// Mapping maps LFNs to SURLs (protocol "srm"); see fileop/pfn. When
	// absent, SURLPrefix + LFN is used, then the inventory site's backend
	// URL + LFN.
	Mapping pfn.Config `yaml:"mapping"`
	// SURLPrefix is "srm://host:port/prefix" put in front of LFNs.
	SURLPrefix string `yaml:"surl_prefix"`
	// Protocols asked for the TURLs consumers get; default the stager's.
	Protocols []string `yaml:"protocols"`
	// Location is the directory rule for files placed at this site.
	Location LocationRule `yaml:"location"`
	// LocationBase is the base directory (SURL) of placed files.
	LocationBase string `yaml:"location_base"`

	mapper *pfn.Mapper
}

// Config configures the project manager (the `projects:` section).
type Config struct {
	// LookAhead is how many files of a project are kept staged ahead of
	// the consumers (staging or ready, not yet delivered); default 5.
	LookAhead int `yaml:"lookahead"`
	// RetryAfter is the Retry-After of a 202 (nothing ready yet); default 10s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// ConsumerTimeout: a consumer silent this long is dead; its delivered
	// files are lost (recovery list) and their pins released. Default 2h.
	ConsumerTimeout time.Duration `yaml:"consumer_timeout"`
	// Tick is the period of the look-ahead and liveness loop; default 5s.
	Tick time.Duration `yaml:"tick"`
	// QuotaInterval is how often Run keeps every durable site's cache
	// under its quota_bytes (EnforceQuota); default 10m.
	QuotaInterval time.Duration `yaml:"quota_interval"`
	// RateBatch is how many files of a project get their priority asked
	// per loop (one estimator lookup); default 200.
	RateBatch int `yaml:"rate_batch"`
	// Sites are the consumption sites by name.
	Sites map[string]*SiteConfig `yaml:"sites"`
	// Credential is what the stager and estimator present at the SEs.
	Credential CredentialConfig `yaml:"credential"`
	// Stager and Estimator configure the two services the manager runs.
	Stager    stager.Config    `yaml:"stager"`
	Estimator estimator.Config `yaml:"estimator"`
}

// ErrBadConfig wraps configuration errors.
var ErrBadConfig = errors.New("projects: bad configuration")

// ApplyDefaults fills zero values (the stager's and estimator's too).
func (c *Config) ApplyDefaults() {
	if c.LookAhead == 0 {
		c.LookAhead = 5
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = 10 * time.Second
	}
	if c.ConsumerTimeout == 0 {
		c.ConsumerTimeout = 2 * time.Hour
	}
	if c.Tick == 0 {
		c.Tick = 5 * time.Second
	}
	if c.QuotaInterval == 0 {
		c.QuotaInterval = 10 * time.Minute
	}
	if c.RateBatch == 0 {
		c.RateBatch = 200
	}
	for _, s := range c.Sites {
		if s != nil && s.Kind == "" {
			s.Kind = Permanent
		}
		if s != nil && s.Location == "" {
			s.Location = LocationShortest
		}
	}
	c.Stager.ApplyDefaults()
	c.Estimator.ApplyDefaults()
}

// Validate reports every bad value, naming its key; it compiles the name
// mappings.
func (c *Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+f, append([]any{ErrBadConfig}, a...)...))
	}
	if c.LookAhead < 1 {
		bad("lookahead %d must be at least 1", c.LookAhead)
	}
	if c.RetryAfter < time.Second {
		bad("retry_after %v must be at least 1s (Retry-After counts seconds)", c.RetryAfter)
	}
	if c.ConsumerTimeout <= 0 {
		bad("consumer_timeout %v must be positive", c.ConsumerTimeout)
	}
	if c.Tick <= 0 {
		bad("tick %v must be positive", c.Tick)
	}
	if c.QuotaInterval <= 0 {
		bad("quota_interval %v must be positive", c.QuotaInterval)
	}
	if c.RateBatch < 1 {
		bad("rate_batch %d must be at least 1", c.RateBatch)
	}
	names := make([]string, 0, len(c.Sites))
	for n := range c.Sites {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := c.Sites[n]
		if s == nil {
			bad("sites.%s is empty", n)
			continue
		}
		switch s.Kind {
		case Volatile, Permanent:
		case Durable:
			if s.QuotaBytes <= 0 || s.CacheRoot == "" {
				bad("sites.%s: a durable site needs quota_bytes and cache_root", n)
			}
		default:
			bad("sites.%s.kind %q is not volatile, durable or permanent", n, s.Kind)
		}
		switch s.Location {
		case LocationBase, LocationShortest, LocationSameProtocol:
		default:
			bad("sites.%s.location %q is not base, shortest or same-protocol", n, s.Location)
		}
		if s.SURLPrefix != "" && !strings.HasPrefix(s.SURLPrefix, "srm://") {
			bad("sites.%s.surl_prefix %q is not an srm:// URL", n, s.SURLPrefix)
		}
		if len(s.Mapping) > 0 {
			m, err := pfn.Compile(n, s.Mapping)
			if err != nil {
				bad("sites.%s.mapping: %w", n, err)
			}
			s.mapper = m
		}
	}
	if err := c.Stager.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("stager: %w", err))
	}
	if err := c.Estimator.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("estimator: %w", err))
	}
	return errors.Join(errs...)
}

// DecodeConfig decodes a `projects:` section from its node (see yamlconf:
// strict, positions of the file), applies the defaults and validates.
func DecodeConfig(n *yaml.Node) (Config, error) {
	var c Config
	if err := yamlconf.Decode(n, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	c.ApplyDefaults()
	return c, c.Validate()
}
