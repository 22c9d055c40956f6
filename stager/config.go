package stager

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/delegation"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

// Config tunes the stager. Zero values are replaced by ApplyDefaults; it is
// the `stager:` key of the `projects:` section (see docs/projects.md).
type Config struct {
	// BackoffStart is the first poll delay of an SRM request; default 2s.
	BackoffStart time.Duration `yaml:"backoff_start"`
	// BackoffCap bounds the poll delay, which doubles after each poll that
	// sees no change (CASTOR's SRM: 30 s growing to one hour); it also
	// bounds how long a server's estimatedWaitTime can defer a poll.
	// Default 5m.
	BackoffCap time.Duration `yaml:"backoff_cap"`
	// RequestTimeout is how long a request may take before the stager
	// aborts it at the SE and reports it timed out; default 6h.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// CallTimeout bounds one SRM call; default 2m.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// PinLifetime is the pin asked for a get and how long the stager keeps
	// a ready get pinned for its owner before releasing it itself (state
	// expired); default 1h.
	PinLifetime time.Duration `yaml:"pin_lifetime"`
	// Protocols are the TURL protocols asked for a get when the request
	// names none; default [https, root, gsiftp].
	Protocols []string `yaml:"protocols"`
	// Tick is the poller's period: how often due requests are looked at;
	// default 1s.
	Tick time.Duration `yaml:"tick"`
	// Retention is how long finished requests stay in the database for
	// Lookup; default 7 days.
	Retention time.Duration `yaml:"retention"`
	// Workers bounds the SRM calls in flight; default 8.
	Workers int `yaml:"workers"`
	// Webhook configures callbacks to external callers.
	Webhook WebhookConfig `yaml:"webhook"`
	// Delegation keeps the proxies users delegate, with which their own
	// requests are carried out (docs/delegation.md).
	Delegation delegation.Config `yaml:"delegation"`
}

// WebhookConfig configures the HTTP callbacks.
type WebhookConfig struct {
	// Timeout bounds one delivery; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a failed delivery is retried (with the
	// poll backoff); default 5. After that the callback is dropped with a
	// warning.
	Retries int `yaml:"retries"`
	// Secret, when set, signs each body: header X-Dynamo-Signature is
	// "sha256=" + hex(HMAC-SHA256(secret, body)).
	Secret string `yaml:"secret"`
	// AllowHosts, when not empty, limits webhook URLs to these hosts: an
	// entry "cb.example.org" matches that host, ".example.org" any host
	// under it. The stager POSTs from the server's network: without a list
	// any authenticated caller can make it call any URL.
	AllowHosts []string `yaml:"allow_hosts"`
}

// webhookAllowed reports whether host may be called back.
func (w WebhookConfig) webhookAllowed(host string) bool {
	if len(w.AllowHosts) == 0 {
		return true
	}
	for _, a := range w.AllowHosts {
		if host == a || (strings.HasPrefix(a, ".") && strings.HasSuffix(host, a)) {
			return true
		}
	}
	return false
}

// Errors of configuration loading.
var ErrBadConfig = errors.New("stager: bad configuration")

// ApplyDefaults fills zero values.
func (c *Config) ApplyDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.BackoffStart, 2*time.Second)
	def(&c.BackoffCap, 5*time.Minute)
	def(&c.RequestTimeout, 6*time.Hour)
	def(&c.CallTimeout, 2*time.Minute)
	def(&c.PinLifetime, time.Hour)
	def(&c.Tick, time.Second)
	def(&c.Webhook.Timeout, 10*time.Second)
	def(&c.Retention, 7*24*time.Hour)
	if len(c.Protocols) == 0 {
		c.Protocols = []string{"https", "root", "gsiftp"}
	}
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.Webhook.Retries == 0 {
		c.Webhook.Retries = 5
	}
	c.Delegation.ApplyDefaults()
}

// Validate reports the first bad value, naming its key.
func (c *Config) Validate() error {
	switch {
	case c.BackoffStart <= 0:
		return fmt.Errorf("%w: backoff_start %v must be positive", ErrBadConfig, c.BackoffStart)
	case c.BackoffCap < c.BackoffStart:
		return fmt.Errorf("%w: backoff_cap %v is below backoff_start %v", ErrBadConfig, c.BackoffCap, c.BackoffStart)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("%w: request_timeout %v must be positive", ErrBadConfig, c.RequestTimeout)
	case c.CallTimeout <= 0:
		return fmt.Errorf("%w: call_timeout %v must be positive", ErrBadConfig, c.CallTimeout)
	case c.PinLifetime < time.Second:
		return fmt.Errorf("%w: pin_lifetime %v must be at least 1s (SRM counts in seconds)", ErrBadConfig, c.PinLifetime)
	case c.Tick <= 0:
		return fmt.Errorf("%w: tick %v must be positive", ErrBadConfig, c.Tick)
	case c.Retention <= 0:
		return fmt.Errorf("%w: retention %v must be positive", ErrBadConfig, c.Retention)
	case c.Workers < 1:
		return fmt.Errorf("%w: workers %d must be at least 1", ErrBadConfig, c.Workers)
	case c.Webhook.Timeout <= 0:
		return fmt.Errorf("%w: webhook.timeout %v must be positive", ErrBadConfig, c.Webhook.Timeout)
	case c.Webhook.Retries < 0:
		return fmt.Errorf("%w: webhook.retries %d must not be negative", ErrBadConfig, c.Webhook.Retries)
	}
	for i, p := range c.Protocols {
		if p == "" {
			return fmt.Errorf("%w: protocols[%d] is empty", ErrBadConfig, i)
		}
	}
	if err := c.Delegation.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return nil
}

// DecodeConfig decodes a `stager:` section from its node (see yamlconf:
// strict, positions of the file), applies the defaults and validates. A
// nil node gives the defaults.
func DecodeConfig(n *yaml.Node) (Config, error) {
	var c Config
	if err := yamlconf.Decode(n, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	c.ApplyDefaults()
	return c, c.Validate()
}

// nextDelay is the poll backoff: double the previous delay up to the cap,
// but never poll sooner than the server's estimated wait (itself capped,
// so that a server cannot park a request for hours).
func nextDelay(prev, serverWait, start, cap time.Duration) time.Duration {
	d := prev * 2
	if prev <= 0 {
		d = start
	}
	d = min(max(d, start), cap)
	if serverWait > d {
		d = min(serverWait, cap)
	}
	return d
}
