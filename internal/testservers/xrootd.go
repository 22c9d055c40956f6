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

// XRootDOptions tunes XRootD.
type XRootDOptions struct {
	// HTTP also starts XrdHttp (HTTPS with PKI's host certificate: WebDAV
	// subset, Want-Digest, and the WLCG HTTP-TPC handler, which XrdHttp
	// loads only with TLS configured) on a second loopback port.
	HTTP bool
	// PKI for HTTP; a new one is made when nil.
	PKI *PKI
	// ExtraConfig is appended to the generated configuration.
	ExtraConfig string
}

// XRootDServer is a running xrootd exporting /data.
type XRootDServer struct {
	// URL is the root:// URL of the export, "root://localhost:PORT//data".
	URL string
	// Addr is "localhost:PORT", for xrdfs.
	Addr string
	// HTTPURL is "https://localhost:PORT/data/" when HTTP was asked for.
	HTTPURL string
	// PKI holds the certificates when HTTP is on.
	PKI *PKI
	// DataDir is the local directory behind /data.
	DataDir string
	// Log is xrootd's log file.
	Log string
	// Pid is the server's process id.
	Pid int
}

// XRootD starts Debian's xrootd on loopback. xrootd cannot bind a single
// address, so systemd-socket-activate binds 127.0.0.1:PORT and hands xrootd
// the socket (Debian builds xrootd with systemd support); as root it runs as
// nobody through setpriv (not runuser, which would leave a parent behind).
// systemd-socket-activate execs xrootd, so the PID we stop is xrootd's.
// Readiness is a plain TCP connect: xrdfs itself would retry a refused
// connection for minutes (XRD_CONNECTIONWINDOW).
func XRootD(t testing.TB, opts XRootDOptions) *XRootDServer {
	t.Helper()
	xrootd := Need(t, "xrootd")
	ssa := Need(t, "systemd-socket-activate")
	dir := Dir(t)
	for _, sub := range []string{"root/data", "admin", "run", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := FreePort(t)
	wait := []int{port}
	s := &XRootDServer{
		URL: fmt.Sprintf("root://localhost:%d//data", port), Addr: fmt.Sprintf("localhost:%d", port),
		DataDir: filepath.Join(dir, "root", "data"),
		// With -n NAME xrootd writes to logs/NAME/xrootd.log.
		Log: filepath.Join(dir, "logs", "test", "xrootd.log"),
	}
	var b strings.Builder
	fmt.Fprintf(&b, `xrd.port %d
all.role server
all.export /data
oss.localroot %s
all.adminpath %s
all.pidpath %s
xrootd.chksum adler32
`, port, filepath.Join(dir, "root"), filepath.Join(dir, "admin"), filepath.Join(dir, "run"))
	listen := []string{"-l", fmt.Sprintf("127.0.0.1:%d", port)}
	if opts.HTTP {
		if opts.PKI == nil {
			opts.PKI = NewPKI(t)
		}
		s.PKI = opts.PKI
		hport := FreePort(t)
		wait = append(wait, hport)
		s.HTTPURL = fmt.Sprintf("https://localhost:%d/data/", hport)
		// xrootd insists on owning its key with mode 0400: use copies.
		cert, key := filepath.Join(dir, "hostcert.pem"), filepath.Join(dir, "hostkey.pem")
		copyFile(t, opts.PKI.HostCert, cert, 0o644)
		copyFile(t, opts.PKI.HostKey, key, 0o400)
		fmt.Fprintf(&b, `xrd.protocol XrdHttp:%d libXrdHttp.so
xrd.tls %s %s
xrd.tlsca certdir %s
http.exthandler xrdtpc libXrdHttpTPC.so
ofs.tpc pgm /usr/bin/xrdcp
`, hport, cert, key, opts.PKI.CertDir)
		listen = append(listen, "-l", fmt.Sprintf("127.0.0.1:%d", hport))
	}
	b.WriteString(opts.ExtraConfig)
	cfg := filepath.Join(dir, "xrootd.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, listen...), xrootd, "-c", cfg, "-l", filepath.Join(dir, "logs", "xrootd.log"), "-n", "test")
	cmd := exec.Command(ssa, args...)
	if uid, gid, ok := runAs("nobody"); ok {
		setpriv := Need(t, "setpriv")
		if err := chownAll(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(setpriv, append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", ssa}, args...)...)
	}
	p := start(t, cmd, filepath.Join(dir, "logs", "stdout.log"), 10*time.Second)
	s.Pid = cmd.Process.Pid
	// XrdHttp may answer later than the root protocol: a test that talks
	// HTTPS right away must not find its port refusing connections.
	for _, p2 := range wait {
		if err := WaitTCP(fmt.Sprintf("127.0.0.1:%d", p2), 15*time.Second, p.done); err != nil {
			t.Fatalf("xrootd: %v\n%s\n%s", err, logTail(filepath.Join(dir, "logs", "stdout.log")), logTail(s.Log))
		}
	}
	return s
}

func copyFile(t testing.TB, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}
