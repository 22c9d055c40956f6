package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/db"
)

// The popularity plugin reads what the system records: an experiment's
// feed imported with `dynamo access import` (a bad record writes nothing)
// comes back summed per dataset and day; the balancer reads the latest
// Detox cycle (none yet: no figures, not an error). Both plugins are on by
// default because both inputs are wired.
func TestDealerInputsFromRecordedAccessesAndDetoxHistory(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "d.db")
	feed := filepath.Join(dir, "feed.ndjson")
	must(t, os.WriteFile(feed, []byte(`{"dataset": "/A/B-v1/AOD", "site": "T2_X", "count": 3, "at": "2026-11-01T10:00:00Z"}
{"dataset": "/A/B-v1/AOD", "site": "T2_Y", "count": 2, "at": "2026-11-01T18:00:00Z"}
{"dataset": "/C/D-v1/RAW", "site": "T2_X", "count": 1, "at": "2026-11-03T00:00:00Z"}
`), 0o644))
	out, _, err := runDynamo(t, "access", "import", feed, "--db", dsn)
	must(t, err)
	if !strings.Contains(out, "recorded 3 records (6 accesses)") {
		t.Fatalf("import: %q", out)
	}
	bad := filepath.Join(dir, "bad.json")
	must(t, os.WriteFile(bad, []byte(`[{"dataset": "/E/F-v1/AOD", "site": "T2_X", "count": 1, "at": "2026-11-04T00:00:00Z"},
 {"dataset": "not a dataset", "site": "T2_X", "count": 1, "at": "2026-11-04T00:00:00Z"}]`), 0o644))
	if _, _, err := runDynamo(t, "access", "import", bad, "--db", dsn); err == nil || !strings.Contains(err.Error(), "record 2") {
		t.Fatalf("bad feed: %v", err)
	}
	d, err := db.Open(context.Background(), dsn)
	must(t, err)
	defer d.Close()
	accs, err := recordedAccesses{detox.DBAccesses{DB: d}}.DatasetAccesses(context.Background(), 0)
	must(t, err)
	got := map[string]int{}
	for _, a := range accs {
		got[a.Dataset] += a.Count
	}
	if len(got) != 2 || got["/A/B-v1/AOD"] != 5 || got["/C/D-v1/RAW"] != 1 {
		t.Fatalf("accesses: %+v", accs)
	}
	deps, err := dealerDeps(&env{db: d})
	must(t, err)
	if p, err := deps.Protection.LatestProtection(context.Background(), "Default"); err != nil || p != nil {
		t.Fatalf("protection without a Detox cycle: %+v %v", p, err)
	}
	cfg := serveDealerDefaults()
	if !cfg.Plugins.Popularity.Enabled || !cfg.Plugins.Balancer.Enabled {
		t.Fatal("popularity or balancer off by default although their inputs are wired")
	}
	deps.Transfers = fileopQueue{}
	must(t, dealerInputs(cfg, deps))
}
