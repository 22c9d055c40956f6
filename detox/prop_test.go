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
// copy-dependent conditions, block and dataset actions, and lines that
// delete everything.
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
	"Delete always",
	"DeleteBlock always",
	"Dismiss site.storage_type != DISK",
}

// propPartitions splits the replicas by owner, so that a partition's
// opt-in can be checked not to leak into the other.
const propPartitions = "Analysis: blockreplica.owner == AnalysisOps\nProduction: blockreplica.owner == DataOps\n"

type propWorld struct {
	policies  map[string]string  // partition -> policy text
	until     map[string]float64 // Until site.occupancy < until; 0 for "Until never"
	allowLast map[string]bool
	locks     []Lock
}

var (
	propTypes    = []inventory.StorageType{inventory.StorageDisk, inventory.StorageMSS, inventory.StorageBuffer, inventory.StorageUnknown}
	propStatuses = []inventory.SiteStatus{inventory.SiteReady, inventory.SiteWaitroom, inventory.SiteMorgue, inventory.SiteUnknown}
)

// genWorld builds a random inventory in h (every storage type and site
// status, incomplete replicas, locks) and a random policy per partition.
func genWorld(t *rapid.T, h *harness) propWorld {
	nSites := rapid.IntRange(2, 6).Draw(t, "sites")
	var sites []string
	for i := 0; i < nSites; i++ {
		name := fmt.Sprintf("T2_S%d", i)
		st := propTypes[rapid.IntRange(0, 6).Draw(t, "type")%len(propTypes)] // disk more often
		if rapid.IntRange(0, 3).Draw(t, "typeDisk") == 0 {
			st = inventory.StorageDisk
		}
		status := propStatuses[rapid.IntRange(0, 6).Draw(t, "status")%len(propStatuses)]
		quota := rapid.Int64Range(0, 1500).Draw(t, "quota")
		h.doc.Sites = append(h.doc.Sites, inventory.InjectSite{Name: name, StorageType: st, Status: status,
			Quotas: map[string]int64{"Analysis": quota, "Production": quota}})
		sites = append(sites, name)
	}
	groups := []string{"AnalysisOps", "DataOps"}
	for _, g := range groups {
		h.doc.Groups = append(h.doc.Groups, inventory.InjectGroup{Name: g})
	}
	w := propWorld{policies: map[string]string{}, until: map[string]float64{}, allowLast: map[string]bool{}}
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
			for _, b := range blocks {
				if rapid.IntRange(0, 3).Draw(t, "blockHere") != 0 {
					// Owners vary per block replica, so a block's copies
					// fall into both partitions.
					g := groups[rapid.IntRange(0, 1).Draw(t, "group")]
					br := inventory.InjectBlockReplica{Block: name + "#" + b, Site: s, Group: g}
					if rapid.IntRange(0, 5).Draw(t, "partial") == 0 && files[slices.Index(blocks, b)] > 1 {
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
					l.Sites = []string{s}
				}
				w.locks = append(w.locks, l)
			}
		}
	}
	for _, part := range []string{"Analysis", "Production"} {
		var b strings.Builder
		fmt.Fprintf(&b, "Partition %s\n", part)
		b.WriteString(rapid.SampledFrom([]string{"On site.name == T2_*\n", "On always\n"}).Draw(t, "on"))
		switch rapid.IntRange(0, 2).Draw(t, "when") {
		case 0:
			b.WriteString("When always\n")
		case 1:
			b.WriteString("When site.occupancy > 0.5\n")
		default:
			b.WriteString("When site.occupancy > 0\n")
		}
		switch rapid.IntRange(0, 2).Draw(t, "until") {
		case 0:
			b.WriteString("Until never\n")
		case 1:
			b.WriteString("Until site.occupancy < 0\n")
		default:
			w.until[part] = rapid.Float64Range(0.05, 0.9).Draw(t, "untilFrac")
			fmt.Fprintf(&b, "Until site.occupancy < %.3f\n", w.until[part])
		}
		if rapid.Bool().Draw(t, "lockLine") {
			b.WriteString("ProtectBlock blockreplica.is_locked\n")
		}
		for _, i := range rapid.SliceOfN(rapid.IntRange(0, len(propRules)-1), 0, 6).Draw(t, "rules") {
			b.WriteString(propRules[i] + "\n")
		}
		b.WriteString(rapid.SampledFrom([]string{"Dismiss", "Protect", "Delete"}).Draw(t, "default") + "\n")
		b.WriteString(rapid.SampledFrom([]string{"", "Order decreasing replica.size\n", "Order increasing dataset.size decreasing replica.size\n"}).Draw(t, "order"))
		if rapid.IntRange(0, 3).Draw(t, "static") == 0 {
			b.WriteString("Algo Static\n")
		}
		w.policies[part] = b.String()
		w.allowLast[part] = rapid.Bool().Draw(t, "allowLast")
	}
	return w
}

// survivors counts the copies of b that the last-copy rule accepts.
func survivors(snap *inventory.Snapshot, b inventory.BlockID) int {
	return inventory.UsableCopies(snap, b, 0)
}

// checkLastCopies: after the deletions dels (of one or more plans) are
// gone from snap's state, every block that lost a replica keeps a usable
// copy, except through LastCopy deletions of a partition that opted in,
// made by Delete lines; no LastCopy deletion left a copy behind.
func checkLastCopies(rt *rapid.T, snap *inventory.Snapshot, dels []Deletion, partOf map[Deletion]string, allow map[string]bool, pol map[string]*policy.Policy) {
	gone := map[inventory.ReplicaID]bool{}
	byBlock := map[inventory.BlockID][]Deletion{}
	for _, d := range dels {
		gone[inventory.ReplicaID{Block: d.Block, Site: d.Site}] = true
		byBlock[d.Block] = append(byBlock[d.Block], d)
	}
	for b, ds := range byBlock {
		left := 0
		for r := range snap.BlockReplicas(b) {
			s, _ := snap.Site(r.Site)
			if inventory.CountsAsCopy(s, r) && !gone[inventory.ReplicaID{Block: b, Site: r.Site}] {
				left++
			}
		}
		marked := 0
		for _, d := range ds {
			if !d.LastCopy {
				continue
			}
			marked++
			part := partOf[d]
			require.True(rt, allow[part], "%s: LAST COPY deletion in partition %s without the opt-in", snap.BlockFullName(b), part)
			require.Equal(rt, ReasonLastCopyDeleted, d.Reason)
			require.Equal(rt, policy.ActionDelete, lineAction(pol[part], d.Line), "%s: LAST COPY deleted by %s", snap.BlockFullName(b), pol[part].Source)
		}
		if left == 0 {
			// Several can be marked: each deletion that left no usable
			// copy behind (say of an incomplete replica, then of a copy at
			// a morgue site) was a last copy.
			require.Positive(rt, marked, "the last copy of %s was deleted without a LAST COPY mark: %+v", snap.BlockFullName(b), ds)
		} else {
			require.Zero(rt, marked, "%s keeps %d copies, yet a deletion is marked LAST COPY", snap.BlockFullName(b), left)
		}
	}
}

func lineAction(p *policy.Policy, line int) policy.Action {
	for _, r := range p.Rules {
		if r.Line == line {
			return r.Action.DatasetLevel()
		}
	}
	return p.Default
}

// TestPlanProperties: over random inventories (every storage type and
// site status, incomplete replicas, locks) and random policies (including
// Delete everything) for two partitions, each with or without the
// last-copy opt-in: no plan, and no pair of applied plans, ever removes the
// last copy of a block without the opt-in of the deleting partition; with
// it, each such deletion is marked LAST COPY and made by a Delete line.
// Plans never delete locked data, never delete past the replica that made
// Until hold, and decide every block replica once. Both plans are made on
// the same snapshot and applied one after the other, so the second is
// re-checked at apply time against a state its plan did not see.
func TestPlanProperties(t *testing.T) {
	defer func(n int) { parallelMin = n }(parallelMin)
	parallelMin = 1
	rapid.Check(t, func(rt *rapid.T) {
		h := newHarnessOn(rt, t, testdb.SQLite(t), propPartitions)
		w := genWorld(rt, h)
		for _, l := range w.locks {
			h.locks.Add(l)
		}
		step := rapid.Float64Range(0.001, 0.5).Draw(rt, "step")
		plans := map[string]*Plan{}
		pols := map[string]*policy.Policy{}
		partOf := map[Deletion]string{}
		var all []Deletion
		for _, part := range []string{"Analysis", "Production"} {
			p, err := policy.ParsePolicy(part+".txt", []byte(w.policies[part]), policy.PolicyOptions{})
			require.NoError(rt, err, w.policies[part])
			h.pol, pols[part] = p, p
			h.opts.AllowLastCopyDeletion = w.allowLast[part]
			h.opts.DeletionPerIteration = step
			// How many goroutines plan never changes the plan (the
			// parallel path is forced: these worlds are small).
			h.opts.Workers = 1
			seq := h.runPlan()
			h.opts.Workers = 0
			plan := h.runPlan()
			require.Equal(rt, seq.Sites, plan.Sites, "one planning goroutine and GOMAXPROCS disagree on sites")
			require.Equal(rt, seq.Replicas, plan.Replicas, "one planning goroutine and GOMAXPROCS disagree on decisions")
			require.Equal(rt, seq.Deletions, plan.Deletions, "one planning goroutine and GOMAXPROCS disagree on deletions")
			require.Equal(rt, seq.Iterations, plan.Iterations)
			plans[part] = plan
			rt.Logf("policy %s (last copies allowed: %v):\n%s\nplan: %v", part, w.allowLast[part], w.policies[part], plan)
			checkPlan(rt, h, w, plan, part)
			checkLastCopies(rt, plan.Snapshot(), plan.Deletions, partOfAll(partOf, plan.Deletions, part), w.allowLast, pols)
			all = append(all, plan.Deletions...)
		}
		snap := plans["Analysis"].Snapshot()
		// Both plans on the same state: their union may remove last copies
		// that neither did alone. Apply them in turn: the second is
		// re-checked against the state the first left.
		var applied []Deletion
		for _, part := range []string{"Analysis", "Production"} {
			res, err := Apply(h.ctx, h.store, plans[part], ApplyOptions{AllowLastCopyDeletion: w.allowLast[part], Locks: &h.locks,
				Queue: &MemQueue{}, At: h.now})
			require.NoError(rt, err)
			applied = append(applied, res.Deleted...)
		}
		checkLastCopies(rt, snap, applied, partOf, w.allowLast, pols)
		// The store agrees: every block replica now pending deletion was
		// applied, and every block that lost one keeps a copy unless a
		// LAST COPY deletion took it.
		after := h.store.Snapshot()
		for _, d := range applied {
			br, ok := after.BlockReplica(d.Block, d.Site)
			require.True(rt, !ok || br.PendingDeletion)
			if !d.LastCopy {
				require.Positive(rt, survivors(after, d.Block)+lastCopyTaken(applied, d.Block), "%s lost its last copy", after.BlockFullName(d.Block))
			}
		}
	})
}

func partOfAll(m map[Deletion]string, dels []Deletion, part string) map[Deletion]string {
	for _, d := range dels {
		m[d] = part
	}
	return m
}

func lastCopyTaken(dels []Deletion, b inventory.BlockID) int {
	n := 0
	for _, d := range dels {
		if d.Block == b && d.LastCopy {
			n++
		}
	}
	return n
}

// checkPlan checks one plan: every block replica decided once, no locked
// replica deleted, nothing deleted at a site past Until.
func checkPlan(rt *rapid.T, h *harness, w propWorld, plan *Plan, part string) {
	snap := plan.Snapshot()
	for _, s := range plan.Sites {
		for br := range snap.BlockReplicasInPartition(s.Site, plan.PartitionID) {
			ds, _ := snap.Dataset(mustBlock(snap, br.Block).Dataset)
			require.Len(rt, h.decisions(snap.BlockFullName(br.Block), s.Name), 1, "%s at %s", ds.Name, s.Name)
		}
	}
	for _, d := range plan.Deletions {
		ds, _ := snap.Dataset(d.Dataset)
		site, _ := snap.Site(d.Site)
		blk := mustBlock(snap, d.Block)
		for _, l := range w.locks {
			hit := l.Dataset == ds.Name && (l.Block == "" || l.Block == blk.Name) && (len(l.Sites) == 0 || slices.Contains(l.Sites, site.Name))
			require.False(rt, hit, "locked %s#%s at %s deleted", ds.Name, blk.Name, site.Name)
		}
	}
	until := w.until[part]
	if until <= 0 {
		return
	}
	// Before the last dismissed replica at a site went, the site had not
	// reached Until yet.
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
		require.False(rt, occ < until, "site %s was already at %.3f < %.3f before its last dismissed replica", s.Name, occ, until)
	}
}

func mustBlock(snap *inventory.Snapshot, id inventory.BlockID) inventory.Block {
	b, _ := snap.Block(id)
	return b
}
