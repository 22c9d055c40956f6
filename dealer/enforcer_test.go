package dealer_test

import (
	"context"
	"testing"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// TestEnforcerProtected: replicas matching a protect:true rule at its
// destinations are protected for Detox; elsewhere, or under a rule without
// protect, they are not.
func TestEnforcerProtected(t *testing.T) {
	ctx := context.Background()
	d := testdb.SQLite(t)
	store, err := inventory.Load(ctx, d, logging.Discard(), nil, scenarioNow)
	if err != nil {
		t.Fatal(err)
	}
	size, nf := int64(1e12), int32(1)
	ds := func(name string) inventory.InjectDataset {
		return inventory.InjectDataset{Name: name, Status: inventory.DatasetValid,
			Blocks: []inventory.InjectBlock{{Name: "b0", Size: &size, NumFiles: &nf}}}
	}
	site := func(name string) inventory.InjectSite {
		return inventory.InjectSite{Name: name, StorageType: inventory.StorageDisk, Status: inventory.SiteReady}
	}
	doc := &inventory.InjectDoc{
		Sites:    []inventory.InjectSite{site("T2_US_A"), site("T2_DE_X"), site("T2_CH_CERN")},
		Groups:   []inventory.InjectGroup{{Name: "AnalysisOps"}, {Name: "RelVal"}},
		Datasets: []inventory.InjectDataset{ds("/M/R/MINIAOD"), ds("/RV/R/GEN-SIM")},
		DatasetReplicas: []inventory.InjectDatasetReplica{
			{Dataset: "/M/R/MINIAOD", Site: "T2_US_A", Group: "AnalysisOps"},
			{Dataset: "/M/R/MINIAOD", Site: "T2_DE_X", Group: "AnalysisOps"},
			{Dataset: "/RV/R/GEN-SIM", Site: "T2_CH_CERN", Group: "RelVal"},
		},
	}
	if _, err := store.Inject(ctx, scenarioNow, doc); err != nil {
		t.Fatal(err)
	}
	cfg := dealer.DefaultConfig()
	cfg.Plugins.Enforcer.RulesFiles = []string{"testdata/enforcer_default.json"}
	dl, err := dealer.New(cfg, dealer.Deps{}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	snap := store.Snapshot()
	prot, err := dl.EnforcerProtected(snap, scenarioNow)
	if err != nil {
		t.Fatal(err)
	}
	key := func(dsName, siteName string) dealer.ProtectedReplica {
		ds, _ := snap.DatasetByName(dsName)
		s, _ := snap.SiteByName(siteName)
		return dealer.ProtectedReplica{Dataset: ds.ID, Site: s.ID}
	}
	if prot[key("/M/R/MINIAOD", "T2_US_A")] != "minis_in_us" {
		t.Fatalf("MINIAOD at a US site not protected: %v", prot)
	}
	if _, ok := prot[key("/M/R/MINIAOD", "T2_DE_X")]; ok {
		t.Fatal("MINIAOD outside the rule's destinations protected")
	}
	if _, ok := prot[key("/RV/R/GEN-SIM", "T2_CH_CERN")]; ok || len(prot) != 1 {
		t.Fatalf("replica of a rule without protect protected: %v", prot)
	}
}
