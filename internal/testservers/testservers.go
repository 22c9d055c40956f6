// Package testservers starts real storage servers (Apache mod_dav, XRootD)
// for tests: each runs from Debian's binaries in t.TempDir on a free
// loopback port, is waited for until it accepts connections, and is stopped
// by PID in t.Cleanup. A missing binary skips the test, or fails it when
// CI=true, so CI can never pass by not testing.
package testservers

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Need returns the path of binary (looked up in PATH, then /usr/sbin and
// /usr/bin). When it is missing the test is skipped, or fails under CI=true.
func Need(t testing.TB, binary string) string {
	t.Helper()
	if p, err := exec.LookPath(binary); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(dir, binary)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed and CI=true (run scripts/install-test-deps.sh)", binary)
	}
	t.Skipf("%s not installed (scripts/install-test-deps.sh installs it)", binary)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	// Not port 0: the kernel would hand out a port from the ephemeral range
	// (32768-60999), which any outgoing connection of any process may take
	// as its source port between our release and the server's bind, and
	// which a concurrent test process asking the same way may be given too.
	// A random port below that range, checked free, avoids both.
	for i := 0; i < 100; i++ {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatalf("free port: no free port found in 20000-31999")
	return 0
}

// WaitTCP waits until addr accepts a TCP connection, or the process behind
// done exits, or the timeout passes.
func WaitTCP(addr string, timeout time.Duration, done <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return errors.New("server exited before it accepted connections")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %v: %w", addr, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Dir returns a fresh temp directory that other users can traverse, because
// servers started as root drop to an unprivileged user (www-data, nobody)
// and t.TempDir's directories are 0700.
func Dir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	for p := d; p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755)
		if filepath.Dir(p) == os.TempDir() {
			break
		}
	}
	return d
}

// runAs reports the uid/gid servers should run as: the named user when the
// test runs as root, nil otherwise (then they run as the current user).
func runAs(name string) (uid, gid int, ok bool) {
	if os.Geteuid() != 0 {
		return 0, 0, false
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, false
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, true
}

// chownAll gives the tree at root to uid:gid (only meaningful as root).
func chownAll(root string, uid, gid int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// proc is a started server process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs cmd with stdout/stderr to logPath and registers a cleanup that
// stops it by PID: SIGTERM, then SIGKILL after grace.
func start(t testing.TB, cmd *exec.Cmd, logPath string, grace time.Duration) *proc {
	t.Helper()
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("server log: %v", err)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	// Own process group, so a Ctrl-C of `go test` does not race our cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); lf.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			t.Logf("%s (pid %d) ignored SIGTERM for %v; killing it", filepath.Base(cmd.Path), cmd.Process.Pid, grace)
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// logTail returns the end of a log file for failure messages.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
