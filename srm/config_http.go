package srm

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
)

// reservedHTTPPaths are served by the data endpoint itself (Tape REST
// discovery and API, SRR); no storage area may live under them.
var reservedHTTPPaths = []string{"/.well-known", "/api"}

// TokensConfig configures bearer-token authentication on the data endpoint
// (WLCG JWT profile).
type TokensConfig struct {
	// Audiences lists the accepted "aud" values; a token is accepted when
	// one of its audiences is listed. Required when issuers are configured.
	// List "https://wlcg.cern.ch/jwt/v1/any" to accept tokens for any
	// audience.
	Audiences []string `yaml:"audiences"`
	// Issuers are the trusted token issuers.
	Issuers []IssuerConfig `yaml:"issuers"`
	// Leeway is the clock skew allowed on exp/nbf/iat; default 60s.
	Leeway time.Duration `yaml:"leeway"`
}

// IssuerConfig is one trusted token issuer and its verification keys.
type IssuerConfig struct {
	// Name is how allow rules refer to the issuer (rule field "issuer").
	Name string `yaml:"name"`
	// Issuer is the exact "iss" claim value.
	Issuer string `yaml:"issuer"`
	// JWKSFile is a JSON Web Key Set file (RSA and EC keys).
	JWKSFile string `yaml:"jwks_file"`
	// PublicKeys are PEM public-key files (alternative to JWKSFile).
	PublicKeys []string `yaml:"public_keys"`
	// BasePath is the site file name the token's storage.*:/path scopes
	// are relative to; default "/".
	BasePath string `yaml:"base_path"`
}

// MacaroonConfig configures the macaroons the SE mints for authenticated
// clients (POST with Content-Type application/macaroon-request) and
// accepts back as bearer tokens.
type MacaroonConfig struct {
	// SecretFile holds the SE's macaroon secret (at least 32 bytes); it
	// must exist at startup. Empty disables macaroons.
	SecretFile string `yaml:"secret_file"`
	// MaxValidity bounds the validity a client may ask for; default 24h.
	MaxValidity time.Duration `yaml:"max_validity"`
}

// TPCConfig bounds HTTP third-party copies (pull and push).
type TPCConfig struct {
	// MaxConcurrent bounds running copies; more are refused with 503.
	// Default 16.
	MaxConcurrent int `yaml:"max_concurrent"`
	// Timeout bounds one copy from start to end; default 1h.
	Timeout time.Duration `yaml:"timeout"`
	// IdleTimeout fails a copy that moves no byte for this long;
	// default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// PerfMarkerInterval is how often progress markers are sent;
	// default 5s.
	PerfMarkerInterval time.Duration `yaml:"perf_marker_interval"`
}

func (c *Config) applyHTTPDefaults() {
	if c.Tokens.Leeway == 0 {
		c.Tokens.Leeway = time.Minute
	}
	for i := range c.Tokens.Issuers {
		if c.Tokens.Issuers[i].BasePath == "" {
			c.Tokens.Issuers[i].BasePath = "/"
		}
	}
	if c.Macaroons.MaxValidity == 0 {
		c.Macaroons.MaxValidity = 24 * time.Hour
	}
	t := &c.TPC
	if t.MaxConcurrent == 0 {
		t.MaxConcurrent = 16
	}
	if t.Timeout == 0 {
		t.Timeout = time.Hour
	}
	if t.IdleTimeout == 0 {
		t.IdleTimeout = 2 * time.Minute
	}
	if t.PerfMarkerInterval == 0 {
		t.PerfMarkerInterval = 5 * time.Second
	}
	if c.SiteName == "" {
		c.SiteName = c.Hostname
	}
}

// validateHTTP checks the data-endpoint sections; bad is Validate's
// collector.
func (c *Config) validateHTTP(bad func(string, ...any)) {
	issuers := map[string]bool{}
	for i, is := range c.Tokens.Issuers {
		where := fmt.Sprintf("tokens.issuers[%d] (%s)", i, is.Name)
		if is.Name == "" || strings.ContainsAny(is.Name, " \t") {
			bad("tokens.issuers[%d]: name is required (no spaces)", i)
		}
		if issuers[is.Name] {
			bad("%s: duplicate name", where)
		}
		issuers[is.Name] = true
		if u, err := url.Parse(is.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("%s: issuer %q must be an https URL", where, is.Issuer)
		}
		if (is.JWKSFile == "") == (len(is.PublicKeys) == 0) {
			bad("%s: give exactly one of jwks_file or public_keys", where)
		}
		for _, f := range append([]string{is.JWKSFile}, is.PublicKeys...) {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				bad("%s: key file %q does not exist", where, f)
			}
		}
		if !strings.HasPrefix(is.BasePath, "/") || path.Clean(is.BasePath) != is.BasePath {
			bad("%s: base_path %q must be a clean absolute path", where, is.BasePath)
		}
	}
	if len(c.Tokens.Issuers) > 0 && len(c.Tokens.Audiences) == 0 {
		bad("tokens.audiences: at least one accepted audience is required when issuers are configured")
	}
	if c.Tokens.Leeway < 0 || c.Tokens.Leeway > 10*time.Minute {
		bad("tokens.leeway %s: between 0 and 10m", c.Tokens.Leeway)
	}
	if f := c.Macaroons.SecretFile; f != "" {
		if st, err := os.Stat(f); err != nil {
			bad("macaroons.secret_file %q does not exist", f)
		} else if st.Size() < 32 {
			bad("macaroons.secret_file %q: the secret must be at least 32 bytes", f)
		}
	}
	if c.Macaroons.MaxValidity < time.Minute {
		bad("macaroons.max_validity %s: at least 1m", c.Macaroons.MaxValidity)
	}
	if c.TPC.MaxConcurrent < 1 {
		bad("tpc.max_concurrent %d: at least 1", c.TPC.MaxConcurrent)
	}
	if c.TPC.Timeout < time.Second || c.TPC.IdleTimeout < time.Second || c.TPC.PerfMarkerInterval < 100*time.Millisecond {
		bad("tpc: timeout and idle_timeout at least 1s, perf_marker_interval at least 100ms")
	}
	for i, a := range c.Areas {
		where := fmt.Sprintf("storage_areas[%d] (%s)", i, a.Name)
		for _, r := range reservedHTTPPaths {
			if under(a.Prefix, r, "/") {
				bad("%s: prefix %q collides with the reserved data-endpoint path %s", where, a.Prefix, r)
			}
		}
		for j, rule := range a.Allow {
			if rule.Issuer != "" && rule.Issuer != "*" && !issuers[rule.Issuer] {
				bad("%s: allow[%d]: issuer %q is not in tokens.issuers", where, j, rule.Issuer)
			}
		}
	}
}
