package projects

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/internal/setest"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// TestServices: the wiring `dynamo serve` uses, with the site's SURLs from
// its inventory backend (no mapping configured).
func TestServices(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	se.Mkdir(t, "/store/x")
	se.Put(t, "/store/x/a.root", []byte("a"), false)
	d := testdb.SQLite(t)
	ctx := context.Background()
	store, err := inventory.Load(ctx, d, testLog(t), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Inject(ctx, time.Now(), &inventory.InjectDoc{Sites: []inventory.InjectSite{{Name: "T2_X", Backend: se.Base}}}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Tick: 20 * time.Millisecond, Credential: CredentialConfig{Cert: filepath.Join(se.PKI, "proxy.pem"), CADir: filepath.Join(se.PKI, "certificates")}}
	cfg.Stager.BackoffStart, cfg.Stager.Tick = 20*time.Millisecond, 20*time.Millisecond
	reg := prometheus.NewRegistry()
	svc, err := NewServices(cfg, d, store, testLog(t), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	defer func() { cancel(); <-done }()
	if _, err := svc.Manager.Start(ctx, StartRequest{Name: "s", Files: []string{"/store/x/a.root"}, Site: "T2_X"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Manager.Start(ctx, StartRequest{Name: "s2", Files: []string{"/store/x/a.root"}, Site: "T2_NONE"}); err == nil {
		t.Error("unknown site accepted")
	}
	cpid, _ := svc.Manager.EstablishProcess(ctx, "s", "job")
	deadline := time.Now().Add(10 * time.Second)
	for {
		dl, err := svc.Manager.NextFile(ctx, "s", cpid)
		if err != nil {
			t.Fatal(err)
		}
		if dl.Status == Delivered {
			if dl.LFN != "/store/x/a.root" || dl.URL == "" {
				t.Errorf("delivery %+v", dl)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing delivered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := svc.Manager.UpdateFileStatus(ctx, "s", cpid, "/store/x/a.root", StatusConsumed); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Manager.End(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	se.NoLeaks(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"dynamo_stager_requests_submitted_total", "dynamo_projects_files_delivered_total", "dynamo_estimator_source_lookups_total"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
}
