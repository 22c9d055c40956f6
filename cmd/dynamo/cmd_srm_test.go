package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/internal/testutil"
	"github.com/dynamo-go/dynamo/srm/client"
)

func freePort(t *testing.T) string {
	t.Helper()
	// Released before the server binds it: drawn below the ephemeral range
	// so no outgoing connection takes it meanwhile (testservers.FreePort).
	return fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t))
}

func TestSRMCommandUsage(t *testing.T) {
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs([]string{"srm"})
	err := root.Execute()
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "--config") {
		t.Errorf("no config, no root: err %v (exit %d)", err, exitCode(err))
	}
	root = newRootCmd(&out, &errb)
	root.SetArgs([]string{"srm", "--root", t.TempDir(), "--cert", "/nonexistent.pem", "--key", "/x", "--ca-dir", t.TempDir()})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "host credential") {
		t.Errorf("missing cert: %v", err)
	}
}

// TestSRMCommandQuickStart runs `dynamo srm --root ...` in-process and
// pings it with the SRM client; the default database lands next to the
// root, not inside it.
func TestSRMCommandQuickStart(t *testing.T) {
	pki := testservers.NewGridPKI(t)
	base := t.TempDir()
	dataDir := filepath.Join(base, "se")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs([]string{"srm", "--root", dataDir, "--listen", addr, "--data-listen", freePort(t),
		"--cert", filepath.Join(pki, "hostcert.pem"), "--key", filepath.Join(pki, "hostkey.pem"),
		"--ca-dir", filepath.Join(pki, "certificates"), "--log-level", "warn"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	cred, err := client.LoadCredential(filepath.Join(pki, "proxy.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	c, err := client.New("srm://localhost:"+port, client.Options{Certificate: cred, CADir: filepath.Join(pki, "certificates")})
	if err != nil {
		t.Fatal(err)
	}
	var ver string
	testutil.Poll(time.Minute, func() bool { ver, _, err = c.Ping(ctx); return err == nil })
	if ver != "v2.2" {
		t.Fatalf("ping: %q %v\n%s", ver, err, errb.String())
	}
	c.CloseIdle()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dynamo srm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, ".se.dynamo-srm.db")); err != nil {
		t.Errorf("default database not next to the root: %v", err)
	}
	if ents, _ := os.ReadDir(dataDir); len(ents) != 0 {
		t.Errorf("the served root is not empty: %v", ents)
	}
}
