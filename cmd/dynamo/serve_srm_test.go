package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/srm/client"
)

// An SE declared under storage_elements is started by serve and answers a
// real SRM client; its request database sits beside its storage area.
func TestServeRunsEmbeddedStorageElements(t *testing.T) {
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "se1")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	srmPort, dataPort := testservers.FreePort(t), testservers.FreePort(t)
	cfgPath := filepath.Join(dir, "dynamo.yaml")
	yaml := fmt.Sprintf(`storage_elements:
  - name: T2_TEST_SE
    listen: 127.0.0.1:%d
    data_listen: 127.0.0.1:%d
    cert: %s
    key: %s
    ca_dir: %s
    storage_areas:
      - name: data
        prefix: /
        root: %s
`, srmPort, dataPort, pki.HostCert, pki.HostKey, pki.CertDir, root)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := loadFileConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := logging.New(os.Stderr, "text", "warn")
	cfg := serveConfig{file: file}
	ln, err := bindListeners(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.close()
	s := &server{env: &env{file: file, log: l}, cfg: cfg, ln: ln}
	defer s.closeComponents()
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.buildStorageElements(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.runs[0].run(ctx) }()
	srv := s.storageElements[0]
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("SE stopped before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("SE not ready in 20 s")
	}
	cred, err := client.LoadCredential(pki.UserCred, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(fmt.Sprintf("httpg://localhost:%d/srm/managerv2", srmPort), client.Options{Certificate: cred, CADir: pki.CertDir})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, err := c.Ping(context.Background()); err != nil || v != "v2.2" {
		t.Fatalf("ping: %q %v", v, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".se1.dynamo-srm.db")); err != nil {
		t.Errorf("request database not beside the area: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("SE shutdown: %v", err)
	}
}

// One SE that cannot listen stops serve before anything else happens:
// every listener is bound before the database is touched.
func TestServeStorageElementBusyPortFailsFirst(t *testing.T) {
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "database: sqlite:%s\nstorage_elements:\n", filepath.Join(dir, "dynamo.db"))
	for i, srmAddr := range []string{fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t)), busy.Addr().String()} {
		root := filepath.Join(dir, fmt.Sprintf("se%d", i))
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&yaml, `  - name: SE%d
    listen: %s
    data_listen: 127.0.0.1:%d
    cert: %s
    key: %s
    ca_dir: %s
    storage_areas:
      - {name: data, prefix: /, root: %s}
`, i, srmAddr, testservers.FreePort(t), pki.HostCert, pki.HostKey, pki.CertDir, root)
	}
	cfgPath := filepath.Join(dir, "dynamo.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "--config", cfgPath, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t)))
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("want the busy address in the error, got %v (%s)", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "dynamo.db")); !os.IsNotExist(err) {
		t.Errorf("the database was created before the listeners were bound: %v", err)
	}
}
