package testservers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ApacheOptions tunes Apache.
type ApacheOptions struct {
	// TLS adds an https listener using PKI's host certificate.
	TLS bool
	// ClientCert makes the https listener require a client certificate
	// signed by the test CA (an EEC: mod_ssl refuses RFC 3820 proxies).
	ClientCert bool
	// PKI to use; a new one is made when nil and TLS is set.
	PKI *PKI
}

// ApacheServer is a running Apache httpd with mod_dav serving DataDir.
type ApacheServer struct {
	// URL is the plain-HTTP WebDAV root, "http://127.0.0.1:PORT/" (always set).
	URL string
	// TLSURL is "https://localhost:PORT/" when TLS was asked for.
	TLSURL string
	// DataDir is the directory served at "/" (owned by www-data when run as root).
	DataDir string
	// PKI holds the certificates when TLS is on.
	PKI *PKI
	// ErrorLog is Apache's error log, for debugging failures.
	ErrorLog string
}

// Apache starts Debian's apache2 with mod_dav/mod_dav_fs (and mod_ssl) on
// loopback ports in a temp directory, in the foreground (-DFOREGROUND), and
// stops it when the test ends.
func Apache(t testing.TB, opts ApacheOptions) *ApacheServer {
	t.Helper()
	bin := Need(t, "apache2")
	mods := "/usr/lib/apache2/modules"
	for _, m := range []string{"mod_dav.so", "mod_dav_fs.so", "mod_mpm_event.so", "mod_authz_core.so", "mod_ssl.so"} {
		if _, err := os.Stat(filepath.Join(mods, m)); err != nil {
			Need(t, filepath.Join(mods, m)) // skip/fail with the same rules
		}
	}
	dir := Dir(t)
	for _, sub := range []string{"dav", "logs", "run", "lock"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &ApacheServer{DataDir: filepath.Join(dir, "dav"), ErrorLog: filepath.Join(dir, "logs", "error.log")}
	port := FreePort(t)
	s.URL = fmt.Sprintf("http://127.0.0.1:%d/", port)
	var b strings.Builder
	fmt.Fprintf(&b, `ServerRoot %q
ServerName localhost
Listen 127.0.0.1:%d
LoadModule mpm_event_module %s/mod_mpm_event.so
LoadModule authz_core_module %s/mod_authz_core.so
LoadModule dav_module %s/mod_dav.so
LoadModule dav_fs_module %s/mod_dav_fs.so
PidFile %q
ErrorLog %q
LogLevel warn
DavLockDB %q
Mutex file:%s default
StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
Timeout 60
KeepAlive On
DocumentRoot %q
<Directory />
  Require all denied
</Directory>
<Directory %q>
  Dav On
  AllowOverride None
  Require all granted
</Directory>
`, dir, port, mods, mods, mods, mods, filepath.Join(dir, "run", "httpd.pid"), s.ErrorLog,
		filepath.Join(dir, "lock", "DavLock"), filepath.Join(dir, "lock"), s.DataDir, s.DataDir)
	if uid, gid, ok := runAs("www-data"); ok {
		fmt.Fprintf(&b, "User www-data\nGroup www-data\n")
		for _, sub := range []string{"dav", "lock"} {
			if err := chownAll(filepath.Join(dir, sub), uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	tlsPort := 0
	if opts.TLS {
		if opts.PKI == nil {
			opts.PKI = NewPKI(t)
		}
		s.PKI = opts.PKI
		tlsPort = FreePort(t)
		s.TLSURL = fmt.Sprintf("https://localhost:%d/", tlsPort)
		verify := "none"
		if opts.ClientCert {
			verify = "require"
		}
		fmt.Fprintf(&b, `LoadModule ssl_module %s/mod_ssl.so
Listen 127.0.0.1:%d
SSLSessionCache none
<VirtualHost 127.0.0.1:%d>
  ServerName localhost
  SSLEngine on
  SSLCertificateFile %q
  SSLCertificateKeyFile %q
  SSLCACertificateFile %q
  SSLVerifyClient %s
  SSLVerifyDepth 3
</VirtualHost>
`, mods, tlsPort, tlsPort, opts.PKI.HostCert, opts.PKI.HostKey, opts.PKI.CA, verify)
	}
	conf := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", conf, "-DFOREGROUND")
	// Debian's apache2 reads APACHE_* variables only from its own config;
	// an empty environment keeps the host's settings out of the test.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	p := start(t, cmd, filepath.Join(dir, "logs", "stdout.log"), 10*time.Second)
	addrs := []string{fmt.Sprintf("127.0.0.1:%d", port)}
	if tlsPort != 0 {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", tlsPort))
	}
	for _, a := range addrs {
		if err := WaitTCP(a, 15*time.Second, p.done); err != nil {
			t.Fatalf("apache2: %v\nstdout:\n%s\nerror log:\n%s", err, logTail(filepath.Join(dir, "logs", "stdout.log")), logTail(s.ErrorLog))
		}
	}
	return s
}
