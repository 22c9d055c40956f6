package registry

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dynamo-go/dynamo/internal/testdb"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"plain http off loopback", func(c *Config) { c.Listen = "0.0.0.0:8080" }, "only allowed on loopback"},
		{"bad listen", func(c *Config) { c.Listen = "8080" }, "registry.listen"},
		{"cert without key", func(c *Config) { c.TLS.Cert = "x.pem" }, "cert and key go together"},
		{"ca dir without tls", func(c *Config) { c.TLS.CADir = "/etc/grid-security/certificates" }, "registry.tls.ca_dir"},
		{"anonymous policy", func(c *Config) { c.AnonymousRead = "sometimes" }, "registry.anonymous_read"},
		{"body limit", func(c *Config) { c.BodyLimit = 0 }, "registry.body_limit"},
		{"inject interval", func(c *Config) { c.InjectInterval = -time.Second }, "registry.inject_interval"},
		{"db timeout too short", func(c *Config) { c.DBTimeout = time.Millisecond }, "registry.db_timeout"},
		{"db timeout too long", func(c *Config) { c.DBTimeout = time.Hour }, "registry.db_timeout"},
		{"user without name", func(c *Config) { c.Users = []UserConfig{{}} }, "registry.users[0].name"},
		{"duplicate user", func(c *Config) { c.Users = []UserConfig{{Name: "a"}, {Name: "a"}} }, "registry.users[1].name"},
		{"comma DN", func(c *Config) { c.Users = []UserConfig{{Name: "a", DNs: []string{"CN=a,O=b"}}} }, "registry.users[0].dns[0]"},
		{"bad target", func(c *Config) { c.Users = []UserConfig{{Name: "a", Roles: map[string]string{"detox": "admin"}}} }, "target \"detox\""},
		{"bad role", func(c *Config) { c.Users = []UserConfig{{Name: "a", Roles: map[string]string{"registry": "root"}}} }, "registry.users[0].roles.registry"},
		{"token without user", func(c *Config) { c.Tokens = []TokenConfig{{Token: "x"}} }, "registry.tokens[0].user"},
		{"token and file", func(c *Config) { c.Tokens = []TokenConfig{{User: "u", Token: "x", TokenFile: "f"}} }, "exactly one"},
		{"jwt without key", func(c *Config) { c.JWTIssuers = []JWTIssuer{{Issuer: "https://iam"}} }, "registry.jwt_issuers[0].key_file"},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
}

func TestJWT(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	writePEM(t, filepath.Join(dir, "iam.pem"), "PUBLIC KEY", der)
	other := newKey(t)
	e := newEnv(t, testdb.SQLite(t), func(c *Config) {
		c.JWTIssuers = []JWTIssuer{{Issuer: "https://iam.example", KeyFile: filepath.Join(dir, "iam.pem"), Audience: "dynamo"}}
	})
	sign := func(k any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return "token:" + s
	}
	exp := time.Now().Add(time.Hour).Unix()
	body := map[string]any{"item": "/P/R-v1/AOD", "expires": "2099-01-01"}
	good := jwt.MapClaims{"iss": "https://iam.example", "sub": "alice", "aud": "dynamo", "exp": exp}
	var l Lock
	e.must(sign(key, good), "POST", "/api/v1/locks", body, 201, &l)
	if l.User != "alice" {
		t.Fatalf("JWT user: %+v", l)
	}
	for name, c := range map[string]struct {
		k      any
		claims jwt.MapClaims
	}{
		"wrong key":      {other, good},
		"expired":        {key, jwt.MapClaims{"iss": "https://iam.example", "sub": "alice", "aud": "dynamo", "exp": time.Now().Add(-time.Hour).Unix()}},
		"no expiry":      {key, jwt.MapClaims{"iss": "https://iam.example", "sub": "alice", "aud": "dynamo"}},
		"wrong audience": {key, jwt.MapClaims{"iss": "https://iam.example", "sub": "alice", "aud": "other", "exp": exp}},
		"unknown issuer": {key, jwt.MapClaims{"iss": "https://evil", "sub": "alice", "aud": "dynamo", "exp": exp}},
		"no subject":     {key, jwt.MapClaims{"iss": "https://iam.example", "aud": "dynamo", "exp": exp}},
	} {
		if code, b := e.call(sign(c.k, c.claims), "POST", "/api/v1/locks", body); code != 401 {
			t.Errorf("%s: %d %s", name, code, b)
		}
	}
	// A valid JWT for a user without roles authenticates but may not write.
	e.must(sign(key, jwt.MapClaims{"iss": "https://iam.example", "sub": "nobody", "aud": "dynamo", "exp": exp}), "POST", "/api/v1/locks", body, 403, nil)
}

func TestTokenFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(f, []byte("  file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, testdb.SQLite(t), func(c *Config) { c.Tokens = []TokenConfig{{User: "detox-svc", TokenFile: f}} })
	e.must("token:file-token", "POST", "/api/v1/locks", map[string]any{"item": "/P/*", "expires": "2099-01-01"}, 201, nil)
	e.must("token:s3cret-token", "POST", "/api/v1/locks", map[string]any{"item": "/P/*", "expires": "2099-01-01"}, 401, nil)
}
