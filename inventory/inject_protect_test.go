package inventory_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// Changing the storage type of a site, or its status away from ready or
// waitroom, through injection is an error while the site holds the last
// copy of some block, unless the site entry confirms it; the same change
// on a site whose copies all exist elsewhere is fine.
func TestInjectSiteProtection(t *testing.T) {
	ctx := context.Background()
	s := load(t, testdb.SQLite(t))
	inject(t, s, `{
 "sites": [{"name": "T2_A", "storage_type": "disk", "status": "ready"}, {"name": "T2_B", "storage_type": "disk", "status": "ready"},
  {"name": "T2_C", "storage_type": "disk", "status": "ready"}],
 "groups": [{"name": "DataOps", "olevel": "dataset"}],
 "datasets": [{"name": "/Only/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "b1", "size": 10, "num_files": 1}]},
  {"name": "/Two/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "b1", "size": 10, "num_files": 1}]}],
 "dataset_replicas": [{"dataset": "/Only/R-v1/AOD", "site": "T2_A", "group": "DataOps"},
  {"dataset": "/Two/R-v1/AOD", "site": "T2_B", "group": "DataOps"}, {"dataset": "/Two/R-v1/AOD", "site": "T2_C", "group": "DataOps"}]}`)
	try := func(doc string) error {
		d, err := inventory.DecodeInjectDoc(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Inject(ctx, t0, d)
		return err
	}
	for _, doc := range []string{
		`{"sites": [{"name": "T2_A", "storage_type": "mss", "status": "ready"}]}`,
		`{"sites": [{"name": "T2_A", "storage_type": "disk", "status": "morgue"}]}`,
		`{"sites": [{"name": "T2_A", "storage_type": "disk", "status": "unknown"}]}`,
	} {
		err := try(doc)
		if !errors.Is(err, inventory.ErrInvalid) || !strings.Contains(err.Error(), "/Only/R-v1/AOD#b1") || !strings.Contains(err.Error(), "allow_protection_change") {
			t.Fatalf("%s: got %v, want an invalid-input error naming the last copy", doc, err)
		}
		if site, _ := s.Snapshot().SiteByName("T2_A"); site.StorageType != inventory.StorageDisk || site.Status != inventory.SiteReady {
			t.Fatalf("refused change written: %+v", site)
		}
	}
	// Harmless changes: waitroom keeps copies counting; T2_B's copy exists
	// at T2_C too.
	for _, doc := range []string{
		`{"sites": [{"name": "T2_A", "storage_type": "disk", "status": "waitroom", "host": "a.example.org"}]}`,
		`{"sites": [{"name": "T2_B", "storage_type": "mss", "status": "morgue"}]}`,
		`{"sites": [{"name": "T2_A", "storage_type": "mss", "status": "morgue", "allow_protection_change": true}]}`,
	} {
		if err := try(doc); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
	}
	if site, _ := s.Snapshot().SiteByName("T2_A"); site.StorageType != inventory.StorageMSS || site.Status != inventory.SiteMorgue {
		t.Fatalf("confirmed change not written: %+v", site)
	}
}
