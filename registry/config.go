package registry

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Anonymous-read policies (Config.AnonymousRead).
const (
	AnonLoopback = "loopback" // anonymous reads only from 127.0.0.0/8 and ::1 (default)
	AnonAlways   = "always"
	AnonNever    = "never"
)

// Config configures the REST API. It hangs under the `registry:` key of the
// main configuration; the zero value is not usable: start from
// DefaultConfig and call Validate.
type Config struct {
	// Listen is the address to serve on (`dynamo serve --listen` overrides
	// it). Without TLS it must be a loopback address: plain HTTP carries
	// bearer tokens in clear.
	Listen string `yaml:"listen"`
	// TLS enables HTTPS with the site's host certificate and X.509 client
	// authentication against a grid CA directory.
	TLS TLSConfig `yaml:"tls"`
	// AnonymousRead says who may read without credentials: loopback,
	// always or never. Writes always need an authenticated user with a role.
	AnonymousRead string `yaml:"anonymous_read"`
	// Users map certificate DNs, token and JWT subjects to roles.
	Users []UserConfig `yaml:"users"`
	// Tokens are static bearer tokens, for services.
	Tokens []TokenConfig `yaml:"tokens"`
	// JWTIssuers are the issuers whose signed tokens are accepted.
	JWTIssuers []JWTIssuer `yaml:"jwt_issuers"`
	// FQANRoles grant roles to certificate clients by VOMS attribute
	// (needs tls.voms_dir: only verified attributes count).
	FQANRoles []FQANRole `yaml:"fqan_roles"`
	// BodyLimit bounds request bodies in bytes, on every route but the
	// injection routes; over it a request is answered 413.
	BodyLimit int64 `yaml:"body_limit"`
	// InjectBodyLimit bounds injection documents (POST
	// /api/v1/injections, /api/v1/injections/sync, /data/inventory/inject),
	// which list whole datasets with their files.
	InjectBodyLimit int64 `yaml:"inject_body_limit"`
	// DefaultGroup is the group of copy requests that name none.
	DefaultGroup string `yaml:"default_group"`
	// InjectInterval is how often the serve loop applies queued injections
	// (0 disables the loop, leaving it to the scheduler).
	InjectInterval time.Duration `yaml:"inject_interval"`
	// DBTimeout bounds every database call a request makes (100ms to 10m;
	// 0: 5s): a stalled or unreachable database answers 503 with
	// Retry-After after at most this long instead of holding the request.
	// /readyz probes the database with the same bound.
	DBTimeout time.Duration `yaml:"db_timeout"`
	// RequestInterval is how often `dynamo serve` runs the request tracker
	// (the scheduler app "requests") when no scheduler cron entry names it;
	// 0 for never (then only sequences, cron entries or `dynamo app run
	// requests` run it).
	RequestInterval time.Duration `yaml:"request_interval"`
	// Client is what the CLI (dynamo request|lock|inventory --server) uses
	// when neither flags nor environment say otherwise.
	Client ClientConfig `yaml:"client"`
}

// ClientConfig names the server and credentials for CLI commands that
// call the API. Flags win over the environment, which wins over these.
type ClientConfig struct {
	Server    string `yaml:"server"`     // https://host:port
	TokenFile string `yaml:"token_file"` // file holding a bearer token
	Cert      string `yaml:"cert"`
	Key       string `yaml:"key"`
	Proxy     string `yaml:"proxy"`
	CADir     string `yaml:"ca_dir"`
}

// TLSConfig names the host credentials and the client CA directory.
type TLSConfig struct {
	Cert  string `yaml:"cert"`   // PEM host certificate (chain)
	Key   string `yaml:"key"`    // PEM private key
	CADir string `yaml:"ca_dir"` // grid CA directory (X509_CERT_DIR layout) for client certificates
	// VOMSDir is the vomsdir (/etc/grid-security/vomsdir layout) that VOMS
	// attribute certificates of client proxies are verified against; an AC
	// that does not verify is ignored. Empty: no AC is believed.
	VOMSDir string `yaml:"voms_dir"`
}

// FQANRole grants Roles to a certificate client whose verified VOMS
// attributes include FQAN: a group ("/cms/ops") matches every role in it,
// a full FQAN ("/cms/Role=production") only that role.
type FQANRole struct {
	FQAN  string            `yaml:"fqan"`
	Roles map[string]string `yaml:"roles"`
}

// UserConfig is one user: a name, the DNs that authenticate as it, and its
// roles per target.
type UserConfig struct {
	Name string   `yaml:"name"`
	DNs  []string `yaml:"dns"`
	// Roles maps a target (inventory, registry, policy, application, or
	// "*" for all) to a role (user, operator, admin).
	Roles map[string]string `yaml:"roles"`
	// Groups are the inventory groups the user acts for: the user's
	// deletion requests are approved without an operator when every
	// replica they delete is owned by one of these groups.
	Groups []string `yaml:"groups"`
}

// UserGroups returns the groups user acts for (nil for an unknown user).
func (c *Config) UserGroups(user string) []string {
	for _, u := range c.Users {
		if u.Name == user {
			return u.Groups
		}
	}
	return nil
}

// TokenConfig is a static bearer token for User. Prefer TokenFile: the
// file is read at start and its surrounding whitespace trimmed.
type TokenConfig struct {
	User      string `yaml:"user"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// JWTIssuer accepts JWTs whose "iss" is Issuer, signed by the public key in
// KeyFile (PEM: RSA, ECDSA or Ed25519). The user is the UserClaim claim
// ("sub" by default); Audience, when set, must be in "aud".
type JWTIssuer struct {
	Issuer    string `yaml:"issuer"`
	KeyFile   string `yaml:"key_file"`
	Audience  string `yaml:"audience"`
	UserClaim string `yaml:"user_claim"`
}

// DefaultConfig is the development setup: plain HTTP on loopback,
// anonymous reads from loopback, no writers.
func DefaultConfig() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		AnonymousRead:   AnonLoopback,
		BodyLimit:       1 << 20,
		InjectBodyLimit: 16 << 20,
		DefaultGroup:    "AnalysisOps",
		InjectInterval:  10 * time.Second,
		DBTimeout:       defaultDBTimeout,
		RequestInterval: 30 * time.Second,
	}
}

// Validate checks every option and names the one that is wrong.
func (c *Config) Validate() error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("registry.listen %q: %w", c.Listen, err)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("registry.tls: cert and key go together")
	}
	if c.TLS.Cert == "" && !isLoopbackHost(host) {
		return fmt.Errorf("registry.listen %q: plain HTTP is only allowed on loopback; configure registry.tls.cert and key", c.Listen)
	}
	if c.TLS.CADir != "" && c.TLS.Cert == "" {
		return errors.New("registry.tls.ca_dir: client certificates need HTTPS (tls.cert and tls.key)")
	}
	if c.TLS.VOMSDir != "" && c.TLS.CADir == "" {
		return errors.New("registry.tls.voms_dir: VOMS proxies need client certificates (tls.ca_dir)")
	}
	if len(c.FQANRoles) > 0 && c.TLS.VOMSDir == "" {
		return errors.New("registry.fqan_roles: FQANs are only believed when verified: set registry.tls.voms_dir")
	}
	for i, f := range c.FQANRoles {
		where := fmt.Sprintf("registry.fqan_roles[%d]", i)
		if !strings.HasPrefix(f.FQAN, "/") {
			return fmt.Errorf("%s.fqan %q: want /vo[/group][/Role=role]", where, f.FQAN)
		}
		for target, role := range f.Roles {
			if _, err := ParseTarget(target); err != nil && target != "*" {
				return fmt.Errorf("%s.roles: %w", where, err)
			}
			if r, err := ParseRole(role); err != nil || r == RoleNone {
				return fmt.Errorf("%s.roles.%s %q: want user, operator or admin", where, target, role)
			}
		}
	}
	switch c.AnonymousRead {
	case AnonLoopback, AnonAlways, AnonNever:
	default:
		return fmt.Errorf("registry.anonymous_read %q: want loopback, always or never", c.AnonymousRead)
	}
	if c.BodyLimit <= 0 {
		return fmt.Errorf("registry.body_limit %d: must be positive", c.BodyLimit)
	}
	if c.InjectBodyLimit <= 0 {
		return fmt.Errorf("registry.inject_body_limit %d: must be positive", c.InjectBodyLimit)
	}
	for name, d := range map[string]time.Duration{"inject_interval": c.InjectInterval, "db_timeout": c.DBTimeout, "request_interval": c.RequestInterval} {
		if d < 0 {
			return fmt.Errorf("registry.%s %v: negative", name, d)
		}
	}
	if d := c.DBTimeout; d != 0 && (d < 100*time.Millisecond || d > 10*time.Minute) {
		return fmt.Errorf("registry.db_timeout %v: want between 100ms and 10m", d)
	}
	names := map[string]bool{}
	for i, u := range c.Users {
		where := fmt.Sprintf("registry.users[%d]", i)
		if u.Name == "" {
			return fmt.Errorf("%s.name: missing", where)
		}
		if names[u.Name] {
			return fmt.Errorf("%s.name %q: duplicate user", where, u.Name)
		}
		names[u.Name] = true
		for j, dn := range u.DNs {
			if !strings.HasPrefix(dn, "/") {
				return fmt.Errorf("%s.dns[%d] %q: want OpenSSL slash form, as /DC=org/CN=Name", where, j, dn)
			}
		}
		for target, role := range u.Roles {
			if _, err := ParseTarget(target); err != nil && target != "*" {
				return fmt.Errorf("%s.roles: %w", where, err)
			}
			if r, err := ParseRole(role); err != nil || r == RoleNone {
				return fmt.Errorf("%s.roles.%s %q: want user, operator or admin", where, target, role)
			}
		}
	}
	for i, t := range c.Tokens {
		where := fmt.Sprintf("registry.tokens[%d]", i)
		if t.User == "" {
			return fmt.Errorf("%s.user: missing", where)
		}
		if (t.Token == "") == (t.TokenFile == "") {
			return fmt.Errorf("%s: give exactly one of token and token_file", where)
		}
	}
	if c.Client.Server != "" && !strings.HasPrefix(c.Client.Server, "https://") && !strings.HasPrefix(c.Client.Server, "http://") {
		return fmt.Errorf("registry.client.server %q: want http(s)://host:port", c.Client.Server)
	}
	for i, j := range c.JWTIssuers {
		where := fmt.Sprintf("registry.jwt_issuers[%d]", i)
		if j.Issuer == "" {
			return fmt.Errorf("%s.issuer: missing", where)
		}
		if j.KeyFile == "" {
			return fmt.Errorf("%s.key_file: missing", where)
		}
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readSecret reads a token file, trimming whitespace.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// defaultDBTimeout is the database deadline of a request when DBTimeout is 0.
const defaultDBTimeout = 5 * time.Second

// dbTimeout is DBTimeout with its default.
func (c *Config) dbTimeout() time.Duration {
	if c.DBTimeout == 0 {
		return defaultDBTimeout
	}
	return c.DBTimeout
}
