package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConsistencyRunDryRun drives `dynamo consistency run --dry-run`
// against a file:// site: the JSON summary reports the planted missing file
// and orphan, and a run without --dry-run is refused while no
// file-operation queue is wired.
func TestConsistencyRunDryRun(t *testing.T) {
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
	if _, err := runCLI(t, dbArg, "consistency", "run", "--site", "T2_A", "--consistency-config", cfg); err == nil || !strings.Contains(err.Error(), "--dry-run") {
		t.Errorf("run without a queue: %v", err)
	}
}
