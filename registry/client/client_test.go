package client

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

// TestClientWithGridCredentials runs the client against an HTTPS server
// with the grid test PKI (testservers.NewGridPKI): the server is verified
// against the hashed CA dir, the user authenticates with the EEC or the
// grid-proxy-init proxy.
func TestClientWithGridCredentials(t *testing.T) {
	dir := testservers.NewGridPKI(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := testdb.SQLite(t)
	ctx := context.Background()
	st, err := inventory.Load(ctx, d, log.WithField("component", "inventory"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := inventory.DecodeInjectDoc(strings.NewReader(`{"sites": [{"name": "T2_A", "storage_type": "disk", "status": "ready"}], "groups": [{"name": "AnalysisOps", "olevel": "dataset"}],
		"datasets": [{"name": "/P/R/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "b", "size": 1, "num_files": 1}]}]}`))
	if _, err := st.Inject(ctx, time.Now(), doc); err != nil {
		t.Fatal(err)
	}
	cfg := registry.DefaultConfig()
	cfg.AnonymousRead = registry.AnonNever
	cfg.TLS = registry.TLSConfig{Cert: filepath.Join(dir, "hostcert.pem"), Key: filepath.Join(dir, "hostkey.pem"), CADir: filepath.Join(dir, "certificates")}
	cfg.Users = []registry.UserConfig{{Name: "tester", DNs: []string{"/DC=org/DC=example/CN=Test User"}, Roles: map[string]string{"registry": "user"}}}
	srv, err := registry.New(registry.Options{Config: cfg, DB: d, Log: log.WithField("component", "registry"), Inventory: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	server := "https://localhost:" + strings.Split(ln.Addr().String(), ":")[1]
	caDir := filepath.Join(dir, "certificates")

	for name, o := range map[string]Options{
		"proxy": {Server: server, CADir: caDir, Proxy: filepath.Join(dir, "proxy.pem")},
		"eec":   {Server: server, CADir: caDir, Cert: filepath.Join(dir, "usercert.pem"), Key: filepath.Join(dir, "userkey.pem")},
	} {
		c, err := New(o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r, err := c.CreateCopy(ctx, registry.CopyRequestBody{Items: []string{"/P/R/AOD"}, Sites: []string{"T2_*"}})
		if err != nil || r.User != "tester" {
			t.Fatalf("%s: copy: %+v %v", name, r, err)
		}
		var n int
		if err := c.Datasets(ctx, "/P/*", func(registry.DatasetView) error { n++; return nil }); err != nil || n != 1 {
			t.Fatalf("%s: datasets: %d %v", name, n, err)
		}
		reps, err := c.DatasetReplicas(ctx, "/P/R/AOD")
		if err != nil || len(reps) != 0 {
			t.Fatalf("%s: replicas: %v %v", name, reps, err)
		}
	}
	// No credentials: the server's 401 comes back as an *Error.
	c, err := New(Options{Server: server, CADir: caDir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Sites(ctx, "")
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != 401 || ae.Body.ErrorType != "unauthenticated" {
		t.Fatalf("anonymous: %v", err)
	}
	// Without the CA dir the server certificate is not trusted.
	c, _ = New(Options{Server: server, Proxy: filepath.Join(dir, "proxy.pem")})
	if _, err := c.Sites(ctx, ""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server accepted: %v", err)
	}
	if _, err := New(Options{Server: "ftp://x"}); err == nil {
		t.Fatal("bad server URL accepted")
	}
	if _, err := New(Options{Server: server, Proxy: filepath.Join(dir, "missing.pem")}); err == nil {
		t.Fatal("missing proxy accepted")
	}
}
