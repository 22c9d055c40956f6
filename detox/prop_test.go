package detox

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// propRules are the decision lines random policies draw from: static and
// copy-dependent conditions, block and dataset actions.
var propRules = []string{
	"Delete dataset.status == INVALID",
	"DeleteBlock blockreplica.owner == DataOps",
	"Protect dataset.name == /A*/*/*",
	"DismissBlock blockreplica.owner == AnalysisOps and blockreplica.num_full_disk_copy > 1",
	"Protect replica.num_full_other_copy_common_owner < 1",
	"Dismiss replica.size > 150",
	"ProtectBlock blockreplica.on_tape",
	"Delete replica.incomplete",
	"DismissBlock not blockreplica.on_tape",
	"Protect dataset.on_tape == FULL and replica.num_full_disk_copy_common_owner < 2",
}

type propWorld struct {
	policyText string
	until      float64 // Until site.occupancy < until; 0 for "Until never"
	allowLast  bool
	locks      []Lock
}

// genWorld builds a random inventory in h and returns the random policy.
func genWorld(t *rapid.T, h *harness) propWorld {
	nSites := rapid.IntRange(2, 5).Draw(t, "sites")
	var sites []string
	for i := 0; i < nSites; i++ {
		name := fmt.Sprintf("T2_S%d", i)
		st := inventory.StorageDisk
		if i == nSites-1 && rapid.Bool().Draw(t, "tape") {
			name, st = "T1_X_MSS", inventory.StorageMSS
		}
		status := inventory.SiteReady
		if rapid.IntRange(0, 5).Draw(t, "morgue") == 0 {
			status = inventory.SiteMorgue
		}
		quota := rapid.Int64Range(0, 1500).Draw(t, "quota")
		h.doc.Sites = append(h.doc.Sites, inventory.InjectSite{Name: name, StorageType: st, Status: status, Quotas: map[string]int64{"Default": quota}})
		sites = append(sites, name)
	}
	groups := []string{"AnalysisOps", "DataOps"}
	for _, g := range groups {
		h.doc.Groups = append(h.doc.Groups, inventory.InjectGroup{Name: g})
	}
	var w propWorld
	nDS := rapid.IntRange(1, 12).Draw(t, "datasets")
	for i := 0; i < nDS; i++ {
		name := fmt.Sprintf("/%c%d/R-v1/AOD", "ABC"[rapid.IntRange(0, 2).Draw(t, "prim")], i)
		status := inventory.DatasetValid
		if rapid.IntRange(0, 4).Draw(t, "invalid") == 0 {
			status = inventory.DatasetInvalid
		}
		nb := rapid.IntRange(1, 3).Draw(t, "blocks")
		var blocks []string
		var sizes []int64
		var files []int
		for b := 0; b < nb; b++ {
			blocks = append(blocks, fmt.Sprintf("b%d", b))
			sizes = append(sizes, rapid.Int64Range(10, 300).Draw(t, "size"))
			files = append(files, rapid.IntRange(1, 3).Draw(t, "files"))
		}
		h.addDataset(name, status, 1700000000, blocks, sizes, files)
		for _, s := range sites {
			if !rapid.Bool().Draw(t, "placed") {
				continue
			}
			g := groups[rapid.IntRange(0, 1).Draw(t, "group")]
			for _, b := range blocks {
				if rapid.IntRange(0, 3).Draw(t, "blockHere") != 0 {
					br := inventory.InjectBlockReplica{Block: name + "#" + b, Site: s, Group: g}
					if rapid.IntRange(0, 6).Draw(t, "partial") == 0 && files[slices.Index(blocks, b)] > 1 {
						br.Files = []string{lfn(name, b, 0)}
					}
					h.doc.BlockReplicas = append(h.doc.BlockReplicas, br)
				}
			}
			if rapid.IntRange(0, 4).Draw(t, "lock") == 0 {
				l := Lock{Dataset: name}
				if rapid.Bool().Draw(t, "blockLock") {
					l.Block = blocks[0]
				}
				if rapid.Bool().Draw(t, "siteLock") {
					l.Site = s
				}
				w.locks = append(w.locks, l)
			}
		}
	}
	// The policy.
	var b strings.Builder
	b.WriteString("Partition Default\nOn site.name == T2_*\n")
	switch rapid.IntRange(0, 2).Draw(t, "when") {
	case 0:
		b.WriteString("When always\n")
	case 1:
		b.WriteString("When site.occupancy > 0.5\n")
	default:
		b.WriteString("When site.status == MORGUE\n")
	}
	if rapid.Bool().Draw(t, "untilNever") {
		b.WriteString("Until never\n")
	} else {
		w.until = rapid.Float64Range(0.05, 0.9).Draw(t, "until")
		fmt.Fprintf(&b, "Until site.occupancy < %.3f\n", w.until)
	}
	if rapid.Bool().Draw(t, "lockLine") {
		b.WriteString("ProtectBlock blockreplica.is_locked\n")
	}
	for _, i := range rapid.SliceOfN(rapid.IntRange(0, len(propRules)-1), 0, 6).Draw(t, "rules") {
		b.WriteString(propRules[i] + "\n")
	}
	b.WriteString(rapid.SampledFrom([]string{"Dismiss", "Protect"}).Draw(t, "default") + "\n")
	b.WriteString(rapid.SampledFrom([]string{"", "Order decreasing replica.size\n", "Order increasing dataset.size decreasing replica.size\n"}).Draw(t, "order"))
	if rapid.IntRange(0, 3).Draw(t, "static") == 0 {
		b.WriteString("Algo Static\n")
	}
	w.policyText = b.String()
	w.allowLast = rapid.Bool().Draw(t, "allowLast")
	return w
}

// TestPlanProperties: over random inventories and policies, a plan never
// deletes the last complete disk copy of a block (unless allowed and a
// Delete line matched), never deletes locked data, never deletes past the
// replica that made Until hold, and decides every block replica once.
func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		h := newHarnessOn(rt, t, testdb.SQLite(t), "")
		w := genWorld(rt, h)
		for _, l := range w.locks {
			h.locks.Add(l)
		}
		p, err := policy.ParsePolicy("prop.txt", []byte(w.policyText), policy.PolicyOptions{})
		require.NoError(rt, err, w.policyText)
		h.pol = p
		h.opts.AllowLastCopyDeletion = w.allowLast
		h.opts.DeletionPerIteration = rapid.Float64Range(0.001, 0.5).Draw(rt, "step")
		plan := h.runPlan()
		snap := plan.Snapshot()
		rt.Logf("policy:\n%s\nplan: %v", w.policyText, plan)

		// Every block replica in the partition at a target site has exactly
		// one decision.
		for _, s := range plan.Sites {
			for br := range snap.BlockReplicasInPartition(s.Site, plan.PartitionID) {
				ds, _ := snap.Dataset(mustBlock(snap, br.Block).Dataset)
				require.Len(rt, h.decisions(snap.BlockFullName(br.Block), s.Name), 1, "%s at %s", ds.Name, s.Name)
			}
		}
		// Last copies.
		deleted := map[inventory.BlockID][]Deletion{}
		for _, d := range plan.Deletions {
			deleted[d.Block] = append(deleted[d.Block], d)
		}
		for b, dels := range deleted {
			n := 0
			for r := range snap.BlockReplicas(b) {
				site, _ := snap.Site(r.Site)
				if r.Complete && !r.PendingDeletion && site.StorageType == inventory.StorageDisk {
					n++
				}
			}
			var diskDels []Deletion
			for _, d := range dels {
				br, _ := snap.BlockReplica(d.Block, d.Site)
				site, _ := snap.Site(d.Site)
				if br.Complete && site.StorageType == inventory.StorageDisk {
					diskDels = append(diskDels, d)
				}
			}
			k := len(diskDels)
			if n > 0 && n-k < 1 {
				// Only the deletion that removed the last copy (the latest
				// one) needs a Delete line; earlier ones were not last.
				require.True(rt, w.allowLast, "last disk copy of %s deleted", snap.BlockFullName(b))
				last := slices.MaxFunc(diskDels, func(a, b Deletion) int { return a.Seq - b.Seq })
				require.Equal(rt, ReasonDeleteLine, last.Reason, "last disk copy of %s deleted by a Dismiss", snap.BlockFullName(b))
			}
		}
		// Locks.
		for _, d := range plan.Deletions {
			ds, _ := snap.Dataset(d.Dataset)
			site, _ := snap.Site(d.Site)
			blk := mustBlock(snap, d.Block)
			for _, l := range w.locks {
				hit := l.Dataset == ds.Name && (l.Block == "" || l.Block == blk.Name) && (l.Site == "" || l.Site == site.Name)
				require.False(rt, hit, "locked %s#%s at %s deleted", ds.Name, blk.Name, site.Name)
			}
		}
		// Until: before the last dismissed replica at a site went, the
		// site had not reached Until yet.
		if w.until > 0 {
			for _, s := range plan.Sites {
				var dis []Deletion
				for _, d := range plan.Deletions {
					if d.Site == s.Site && d.Reason == ReasonDismissed {
						dis = append(dis, d)
					}
				}
				if len(dis) == 0 || s.Quota <= 0 {
					continue
				}
				last := slices.MaxFunc(dis, func(a, b Deletion) int { return a.Seq - b.Seq })
				firstOfLast := last.Seq
				for _, d := range dis {
					if d.Dataset == last.Dataset && d.Seq < firstOfLast {
						firstOfLast = d.Seq
					}
				}
				before := s.After
				for _, d := range plan.Deletions {
					if d.Site == s.Site && d.Seq >= firstOfLast {
						before += d.Size
					}
				}
				occ := float64(before) / float64(s.Quota)
				require.False(rt, occ < w.until, "site %s was already at %.3f < %.3f before its last dismissed replica", s.Name, occ, w.until)
			}
		}
	})
}

func mustBlock(snap *inventory.Snapshot, id inventory.BlockID) inventory.Block {
	b, _ := snap.Block(id)
	return b
}
