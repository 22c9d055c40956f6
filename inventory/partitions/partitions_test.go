package partitions_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/partitions"
)

func TestPartitionsFileDrivesOccupancy(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	defs, err := partitions.Load("testdata/partitions.txt", now)
	if err != nil {
		t.Fatal(err)
	}
	d := testdb.SQLite(t)
	s, err := inventory.Load(context.Background(), d, logging.Discard(), defs, now)
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"sites": [{"name": "T2_D", "storage_type": "disk", "status": "ready", "quotas": {"Analysis": 100, "Production": 50}},
	                   {"name": "T1_T", "storage_type": "mss", "status": "ready"}],
	 "groups": [{"name": "Analysis", "olevel": "dataset"}, {"name": "express", "olevel": "dataset"}],
	 "datasets": [{"name": "/A/Run-v1/AOD", "status": "valid", "data_type": "data", "blocks": [{"name": "b", "size": 10, "num_files": 1}]},
	              {"name": "/A/StreamExpress-v1/RAW", "status": "valid", "data_type": "data", "blocks": [{"name": "b", "size": 7, "num_files": 1}]},
	              {"name": "/U/Run-v1/AOD", "status": "valid", "data_type": "data", "blocks": [{"name": "b", "size": 3, "num_files": 1}]}],
	 "dataset_replicas": [{"dataset": "/A/Run-v1/AOD", "site": "T2_D", "group": "Analysis"},
	                      {"dataset": "/A/Run-v1/AOD", "site": "T1_T", "group": "Analysis"},
	                      {"dataset": "/A/StreamExpress-v1/RAW", "site": "T2_D", "group": "express"},
	                      {"dataset": "/U/Run-v1/AOD", "site": "T2_D"}]}`
	dd, err := inventory.DecodeInjectDoc(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inject(context.Background(), now, dd); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	use := func(site, part string) int64 {
		st, _ := snap.SiteByName(site)
		p, ok := snap.PartitionByName(part)
		if !ok {
			t.Fatalf("no partition %s", part)
		}
		return snap.Usage(st.ID, p.ID).Physical
	}
	for _, c := range []struct {
		site, part string
		want       int64
	}{
		{"T2_D", "Analysis", 10}, {"T2_D", "Express", 7}, {"T2_D", "Unowned", 3}, {"T2_D", "Production", 0},
		{"T1_T", "Tape", 10}, {"T1_T", "Analysis", 0}, {"T2_D", "Physics", 10}, {"T1_T", "Physics", 10},
	} {
		if got := use(c.site, c.part); got != c.want {
			t.Errorf("%s/%s = %d, want %d", c.site, c.part, got, c.want)
		}
	}
	st, _ := snap.SiteByName("T2_D")
	phys, _ := snap.PartitionByName("Physics")
	if q := snap.Usage(st.ID, phys.ID).Quota; q != 150 {
		t.Errorf("super-partition quota %d, want 150 (sum of the subs')", q)
	}
}

func TestUnboundVariableIsALoadError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.txt")
	os.WriteFile(p, []byte("Old: dataset.last_update older_than 90 days ago\n"), 0o644)
	if _, err := partitions.Load(p, time.Now()); err == nil || !strings.Contains(err.Error(), "p.txt:1") {
		t.Fatalf("want a positioned error for a variable partitions cannot use, got %v", err)
	}
}
