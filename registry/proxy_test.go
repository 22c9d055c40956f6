package registry

import (
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/dynamo-go/dynamo/internal/testdb"
)

// TestRealGridProxy authenticates with an RFC 3820 proxy made by the real
// tools (scripts/mkpki.sh: openssl and grid-proxy-init) rather than Go.
func TestRealGridProxy(t *testing.T) {
	for _, bin := range []string{"bash", "openssl"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not installed (scripts/install-test-deps.sh)", bin)
			}
			t.Skipf("%s not installed", bin)
		}
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "scripts", "mkpki.sh")
	dir := t.TempDir()
	if out, err := exec.Command("bash", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("mkpki.sh: %v\n%s", err, out)
	}
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
