package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/srm"
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
	s := &serveEnv{env: &env{file: file, log: l}, shared: map[string]any{}}
	ctx, cancel := context.WithCancel(context.Background())
	run, err := setupEmbeddedSEs(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	srv := s.shared["storage-elements"].([]*srm.Server)[0]
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
