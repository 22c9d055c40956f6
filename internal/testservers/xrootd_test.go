package testservers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestXRootDServesLoopbackOnly(t *testing.T) {
	s := XRootD(t, XRootDOptions{})
	xrdfs := Need(t, "xrdfs")
	cmd := exec.Command(xrdfs, s.Addr, "mkdir", "-p", "/data/a/b")
	cmd.Env = append(os.Environ(), "XRD_CONNECTIONRETRY=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xrdfs mkdir: %v: %s", err, out)
	}
	if st, err := os.Stat(filepath.Join(s.DataDir, "a", "b")); err != nil || !st.IsDir() {
		t.Fatalf("mkdir through xrootd did not reach the data dir: %v", err)
	}
	// The listening socket must be bound to 127.0.0.1 only.
	out, err := exec.Command("ss", "-Hltn").Output()
	if err == nil {
		port := s.Addr[strings.LastIndexByte(s.Addr, ':'):]
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, port+" ") && !strings.Contains(line, "127.0.0.1"+port) {
				t.Fatalf("xrootd listens beyond loopback: %s", line)
			}
		}
	}
}
