package dealer_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/inventory"
)

// world is a random inventory plus random Dealer inputs and limits.
type world struct {
	doc  inventory.InjectDoc
	cfg  dealer.Config
	in   dealer.Inputs
	seed uint64
}

func genWorld(t *rapid.T) world {
	var w world
	w.doc.Groups = []inventory.InjectGroup{{Name: "AnalysisOps"}, {Name: "DataOps"}}
	statuses := []inventory.SiteStatus{inventory.SiteReady, inventory.SiteReady, inventory.SiteReady, inventory.SiteWaitroom, inventory.SiteMorgue, inventory.SiteUnknown}
	nSites := rapid.IntRange(1, 7).Draw(t, "sites")
	var sites []string
	for i := range nSites {
		name := fmt.Sprintf("T2_S%d", i)
		sites = append(sites, name)
		s := inventory.InjectSite{Name: name, StorageType: inventory.StorageDisk,
			Status: statuses[rapid.IntRange(0, len(statuses)-1).Draw(t, "status")]}
		if q := rapid.IntRange(0, 60).Draw(t, "quotaTB"); q > 0 {
			s.Quotas = map[string]int64{"Default": int64(q) * 1e12}
		}
		w.doc.Sites = append(w.doc.Sites, s)
	}
	w.doc.Sites = append(w.doc.Sites, inventory.InjectSite{Name: "T1_SRC", StorageType: inventory.StorageMSS, Status: inventory.SiteReady})
	nDS := rapid.IntRange(1, 12).Draw(t, "datasets")
	var dsNames []string
	for i := range nDS {
		name := fmt.Sprintf("/D%d/R/AOD", i)
		dsNames = append(dsNames, name)
		ds := inventory.InjectDataset{Name: name, Status: inventory.DatasetValid, DataType: inventory.DataMC}
		if rapid.IntRange(0, 9).Draw(t, "invalid") == 0 {
			ds.Status = inventory.DatasetInvalid
		}
		nb := rapid.IntRange(1, 4).Draw(t, "blocks")
		for b := range nb {
			size := int64(rapid.IntRange(0, 15000).Draw(t, "blockGB")) * 1e9
			nf := int32(1)
			ds.Blocks = append(ds.Blocks, inventory.InjectBlock{Name: fmt.Sprintf("b%d", b), Size: &size, NumFiles: &nf})
		}
		w.doc.Datasets = append(w.doc.Datasets, ds)
		if rapid.IntRange(0, 5).Draw(t, "onTape") > 0 {
			w.doc.DatasetReplicas = append(w.doc.DatasetReplicas, inventory.InjectDatasetReplica{Dataset: name, Site: "T1_SRC", Group: "DataOps"})
		}
		for _, s := range sites {
			if rapid.IntRange(0, 3).Draw(t, "atSite") == 0 {
				w.doc.DatasetReplicas = append(w.doc.DatasetReplicas, inventory.InjectDatasetReplica{Dataset: name, Site: s, Group: "AnalysisOps"})
			}
		}
	}
	nReq := rapid.IntRange(0, 15).Draw(t, "requests")
	for i := range nReq {
		r := dealer.CopyRequest{ID: int64(i + 1), Status: dealer.RequestNew, N: rapid.IntRange(0, 3).Draw(t, "n")}
		r.Items = []string{rapid.SampledFrom(dsNames).Draw(t, "item")}
		if rapid.Bool().Draw(t, "glob") {
			r.Sites = []string{"T2_*"}
		} else {
			r.Sites = []string{rapid.SampledFrom(sites).Draw(t, "site"), rapid.SampledFrom(sites).Draw(t, "site2")}
		}
		w.in.Requests = append(w.in.Requests, r)
	}
	for _, n := range dsNames {
		if c := rapid.IntRange(0, 12).Draw(t, "accesses"); c > 0 {
			w.in.Accesses = append(w.in.Accesses, dealer.DatasetAccess{Dataset: n, Count: c, Time: scenarioNow.Unix()})
		}
	}
	w.cfg = dealer.DefaultConfig()
	w.cfg.TargetOccupancy = rapid.Float64Range(0.3, 1).Draw(t, "target")
	w.cfg.MaxPendingFraction = rapid.Float64Range(0.01, 1).Draw(t, "pending")
	w.cfg.MaxCycleVolume = dealer.Bytes(rapid.IntRange(0, 80).Draw(t, "cycleTB")) * dealer.TB
	w.cfg.MaxSiteCycleVolume = dealer.Bytes(rapid.IntRange(0, 30).Draw(t, "siteTB")) * dealer.TB
	w.cfg.MaxRequestVolume = dealer.Bytes(rapid.IntRange(0, 30).Draw(t, "requestTB")) * dealer.TB
	w.cfg.Plugins.Popularity.Threshold = 1
	w.cfg.Plugins.Popularity.MaxCycleVolume = dealer.Bytes(rapid.IntRange(0, 30).Draw(t, "popTB")) * dealer.TB
	w.seed = rapid.Uint64().Draw(t, "seed")
	return w
}

// TestPlanSafetyProperties checks, on random inventories, inputs and limits,
// that a plan never takes a site past its quota or a limit, never targets a
// site that is not ready, never copies a block where it already is, and
// that the same seed gives the same plan.
func TestPlanSafetyProperties(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, copies, rejections := 0, 0, 0
	defer func() {
		// The generator must exercise both outcomes, or the properties
		// above hold vacuously.
		if copies == 0 || rejections == 0 {
			t.Errorf("random worlds produced %d copies and %d rejections", copies, rejections)
		}
	}()
	rapid.Check(t, func(rt *rapid.T) {
		w := genWorld(rt)
		n++
		d, err := db.Open(ctx, "sqlite:"+filepath.Join(dir, fmt.Sprintf("w%d.db", n)))
		if err != nil {
			rt.Fatal(err)
		}
		defer d.Close()
		if _, err := d.Migrate(ctx); err != nil {
			rt.Fatal(err)
		}
		store, err := inventory.Load(ctx, d, logging.Discard(), nil, scenarioNow)
		if err != nil {
			rt.Fatal(err)
		}
		if _, err := store.Inject(ctx, scenarioNow, &w.doc); err != nil {
			rt.Fatal(err)
		}
		dl, err := dealer.New(w.cfg, dealer.Deps{}, logging.Discard())
		if err != nil {
			rt.Fatal(err)
		}
		snap := store.Snapshot()
		plan, err := dl.PlanWith(snap, w.in, dealer.PlanOptions{Seed: w.seed, Now: scenarioNow})
		if err != nil {
			rt.Fatal(err)
		}
		part, _ := snap.PartitionByName("Default")
		perSite := map[inventory.SiteID]int64{}
		perReq := map[int64]int64{}
		perPlugin := map[string]int64{}
		var total int64
		for _, c := range plan.Copies {
			site, _ := snap.Site(c.Site)
			if site.Status != inventory.SiteReady {
				rt.Fatalf("copy of %s to %s which is %s", c.DatasetName, site.Name, site.Status)
			}
			var bytes int64
			for _, b := range c.Blocks {
				if _, exists := snap.BlockReplica(b, c.Site); exists {
					rt.Fatalf("copy of %s to %s where it already is", snap.BlockFullName(b), site.Name)
				}
				blk, _ := snap.Block(b)
				bytes += blk.Size
			}
			if bytes != c.Bytes {
				rt.Fatalf("copy of %s to %s: %d bytes charged, blocks hold %d", c.DatasetName, site.Name, c.Bytes, bytes)
			}
			perSite[c.Site] += c.Bytes
			pr := plan.Proposals[c.Proposal]
			perReq[pr.RequestID] += c.Bytes
			perPlugin[pr.Plugin] += c.Bytes
			total += c.Bytes
		}
		for s, added := range perSite {
			u := snap.Usage(s, part.ID)
			if added > 0 && u.Projected+added > u.Quota {
				rt.Fatalf("site %d: projected %d + %d > quota %d", s, u.Projected, added, u.Quota)
			}
			if m := int64(w.cfg.MaxSiteCycleVolume); m > 0 && added > m {
				rt.Fatalf("site %d: %d planned > site cycle volume %d", s, added, m)
			}
		}
		if m := int64(w.cfg.MaxCycleVolume); m > 0 && total > m {
			rt.Fatalf("%d planned > cycle volume %d", total, m)
		}
		for id, v := range perReq {
			if m := int64(w.cfg.MaxRequestVolume); id != 0 && m > 0 && v > m {
				rt.Fatalf("request %d: %d planned > request volume %d", id, v, m)
			}
		}
		if m := int64(w.cfg.Plugins.Popularity.MaxCycleVolume); m > 0 && perPlugin[dealer.PluginPopularity] > m {
			rt.Fatalf("popularity: %d planned > %d", perPlugin[dealer.PluginPopularity], m)
		}
		for _, dec := range plan.Decisions {
			if !dec.Accepted && dec.Reason == "" {
				rt.Fatalf("rejection without reason: %+v", dec)
			}
		}
		copies += len(plan.Copies)
		rejections += len(plan.Rejections())
		// The seed recorded with the plan reproduces it (w.seed may be 0,
		// which draws a fresh seed).
		again, err := dl.PlanWith(snap, w.in, dealer.PlanOptions{Seed: plan.Seed, Now: scenarioNow})
		if err != nil {
			rt.Fatal(err)
		}
		if !reflect.DeepEqual(plan.Copies, again.Copies) || !reflect.DeepEqual(plan.Decisions, again.Decisions) {
			for i := range plan.Decisions {
				if i < len(again.Decisions) && plan.Decisions[i] != again.Decisions[i] {
					rt.Logf("%+v\n%+v", plan.Decisions[i], again.Decisions[i])
				}
			}
			rt.Fatalf("same seed, different plans")
		}
	})
}
