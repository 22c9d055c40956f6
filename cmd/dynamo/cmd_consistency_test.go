package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
)

// TestConsistencyRunCLI drives `dynamo consistency run`
// against a file:// site: the JSON summary reports the planted missing file
// and orphan; real runs act through the file-operation queue.
func TestConsistencyRunCLI(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	old := time.Now().Add(-30 * 24 * time.Hour)
	for name, size := range map[string]int{"store/mc/a/f1.root": 10, "store/mc/a/orphan.root": 3} {
		p := filepath.Join(site, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, make([]byte, size), 0o644)
		os.Chtimes(p, old, old)
	}
	doc := fmt.Sprintf(`{"sites": [{"name": "T2_A", "storage_type": "disk", "status": "ready", "backend": "file://%s"}],
 "groups": [{"name": "G", "olevel": "dataset"}],
 "datasets": [{"name": "/P/R-v1/AOD", "status": "valid", "data_type": "mc", "is_open": false, "last_update": 1,
   "blocks": [{"name": "b1", "files": [{"lfn": "/store/mc/a/f1.root", "size": 10}, {"lfn": "/store/mc/a/f2.root", "size": 10}]}]}],
 "dataset_replicas": [{"dataset": "/P/R-v1/AOD", "site": "T2_A", "group": "G", "growing": false}]}`, site)
	inj := filepath.Join(dir, "inject.json")
	os.WriteFile(inj, []byte(doc), 0o644)
	cfg := filepath.Join(dir, "consistency.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("work_dir: %s\nmin_age: 0s\nmax_missing_fraction: 1\nmax_orphan_fraction: 1\nsites:\n  T2_A: {paths: [/store/mc]}\n", filepath.Join(dir, "work"))), 0o644)
	dbArg := "--db=sqlite:" + filepath.Join(dir, "d.db")
	if out, err := runCLI(t, dbArg, "inventory", "inject", inj); err != nil {
		t.Fatalf("inject: %v\n%s", err, out)
	}
	out, err := runCLI(t, dbArg, "consistency", "run", "--site", "T2_A", "--dry-run", "--consistency-config", cfg)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	var rec struct {
		Status  string `json:"status"`
		Missing int    `json:"missing"`
		Orphans int    `json:"orphans"`
		DryRun  bool   `json:"dry_run"`
		WorkDir string `json:"work_dir"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rec); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rec.Status != "done" || rec.Missing != 1 || rec.Orphans != 1 || !rec.DryRun {
		t.Errorf("summary: %+v", rec)
	}
	b, err := os.ReadFile(filepath.Join(rec.WorkDir, "report", "actions.ndjson"))
	if err != nil || !strings.Contains(string(b), `"action":"delete","path":"/store/mc/a/orphan.root"`) {
		t.Errorf("actions: %s %v", b, err)
	}
	// The same section inside the main configuration file.
	section, _ := os.ReadFile(cfg)
	mainCfg := filepath.Join(dir, "dynamo.yaml")
	os.WriteFile(mainCfg, []byte("consistency:\n  "+strings.ReplaceAll(strings.TrimSpace(string(section)), "\n", "\n  ")+"\n"), 0o644)
	out, err = runCLI(t, dbArg, "--config", mainCfg, "consistency", "run", "--site", "T2_A", "--dry-run")
	if err != nil || !strings.Contains(out, `"orphans": 1`) {
		t.Errorf("run from the main configuration: %v\n%s", err, out)
	}
	if _, err := runCLI(t, dbArg, "consistency", "run", "--site", "T2_A", "--dry-run"); err == nil || !strings.Contains(err.Error(), "no consistency: section") {
		t.Errorf("run without any section: %v", err)
	}
	// For real, through the file-operation queue: the first run deletes
	// the old orphan itself (the queue holds inventory files only) and
	// waits for f2 to be confirmed; the second queues f2's transfer with
	// the inventory change; a dry run then sees it in flight.
	out, err = runCLI(t, dbArg, "consistency", "run", "--site", "T2_A", "--consistency-config", cfg)
	if err != nil || !strings.Contains(out, `"deletions_queued": 1`) || !strings.Contains(out, `"transfers_queued": 0`) {
		t.Fatalf("first real run: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(site, "store/mc/a/orphan.root")); !os.IsNotExist(err) {
		t.Errorf("orphan not deleted: %v", err)
	}
	out, err = runCLI(t, dbArg, "consistency", "run", "--site", "T2_A", "--consistency-config", cfg)
	if err != nil || !strings.Contains(out, `"transfers_queued": 1`) || !strings.Contains(out, `"replicas_updated": 1`) {
		t.Fatalf("second real run: %v\n%s", err, out)
	}
	d, err := db.Open(context.Background(), strings.TrimPrefix(dbArg, "--db="))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var subs []string
	if err := d.Select(&subs, "SELECT op || ' ' || lfn || ' ' || state FROM fileop_subscriptions"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(subs, ",") != "transfer /store/mc/a/f2.root new" {
		t.Errorf("fileop subscriptions: %q", subs)
	}
	out, err = runCLI(t, dbArg, "consistency", "run", "--site", "T2_A", "--dry-run", "--consistency-config", cfg)
	if err != nil || !strings.Contains(out, `"stalled": 0`) || !strings.Contains(out, `"missing": 0`) {
		t.Errorf("dry run with the transfer in flight: %v\n%s", err, out)
	}
}
