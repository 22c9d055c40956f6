package registry

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testservers"
)

// TestRealGridProxy authenticates with an RFC 3820 proxy made by the real
// tools (scripts/mkproxies.sh: grid-proxy-init, or openssl) rather than Go.
func TestRealGridProxy(t *testing.T) {
	dir := testservers.NewGridPKI(t)
	e := newEnv(t, testdb.SQLite(t), func(c *Config) {
		c.TLS = TLSConfig{Cert: filepath.Join(dir, "hostcert.pem"), Key: filepath.Join(dir, "hostkey.pem"), CADir: filepath.Join(dir, "certificates")}
		c.Users = append(c.Users, UserConfig{Name: "testuser", DNs: []string{"/DC=org/DC=example/CN=Test User"}, Roles: map[string]string{"registry": "user"}})
	})
	e.pki.pool.AppendCertsFromPEM(must(os.ReadFile(filepath.Join(dir, "ca.pem"))))
	proxy, err := tls.LoadX509KeyPair(filepath.Join(dir, "proxy.pem"), filepath.Join(dir, "proxy.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if len(proxy.Certificate) < 2 {
		t.Fatalf("proxy.pem holds %d certificates, want proxy + EEC", len(proxy.Certificate))
	}
	e.certs["proxy"] = proxy
	var l Lock
	e.must("proxy", "POST", "/api/v1/locks", map[string]any{"item": "/P/*", "expires": "2099-01-01"}, 201, &l)
	if l.User != "testuser" || l.DN != "/DC=org/DC=example/CN=Test User" {
		t.Fatalf("proxy identity: %+v", l)
	}
	// The Go-made certificates of newEnv come from a CA this server does not trust now.
	e.must("alice", "POST", "/api/v1/locks", map[string]any{"item": "/P/*", "expires": "2099-01-01"}, 401, nil)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestVOMSRoles: a role granted by FQAN goes to a proxy whose AC verifies
// against the vomsdir, not to one signed by a forger using the trusted
// server's DN, and not to an AC claiming another VO.
func TestVOMSRoles(t *testing.T) {
	testservers.Need(t, "voms-proxy-fake")
	dir := testservers.NewGridPKI(t)
	e := newEnv(t, testdb.SQLite(t), func(c *Config) {
		c.TLS = TLSConfig{Cert: filepath.Join(dir, "hostcert.pem"), Key: filepath.Join(dir, "hostkey.pem"),
			CADir: filepath.Join(dir, "certificates"), VOMSDir: filepath.Join(dir, "vomsdir")}
		// Test User has no role of its own: only the FQAN rule can grant one.
		c.FQANRoles = []FQANRole{{FQAN: "/dteam", Roles: map[string]string{"registry": "user"}},
			{FQAN: "/atlas", Roles: map[string]string{"*": "admin"}}}
	})
	e.pki.pool.AppendCertsFromPEM(must(os.ReadFile(filepath.Join(dir, "ca.pem"))))
	for name, want := range map[string]int{"vomsproxy.pem": 201, "vomsproxy-forged.pem": 403, "vomsproxy-wrongvo.pem": 403, "proxy.pem": 403} {
		cred, err := tls.LoadX509KeyPair(filepath.Join(dir, name), filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		e.certs[name] = cred
		e.must(name, "POST", "/api/v1/locks", map[string]any{"item": "/P/*", "expires": "2099-01-01"}, want, nil)
	}
}
