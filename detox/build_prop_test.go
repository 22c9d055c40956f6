package detox

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// TestBuildCountsProperties: the records a cycle builds from slot-order
// scans of the replica array, split over several ranges, are what a
// direct walk of the snapshot's per-block and per-site lists gives: the
// per-block copy counters, tape coverage, the drecs (grouping, block
// order, owner) and the full copies, in both copy scopes.
func TestBuildCountsProperties(t *testing.T) {
	defer func(n int32) { rangeMin = n }(rangeMin)
	rangeMin = 1
	rapid.Check(t, func(rt *rapid.T) {
		// Everything holds both owners' replicas: full copies with several
		// owners.
		h := newHarnessOn(rt, t, testdb.SQLite(t), propPartitions+"Everything: blockreplica.owner != None\n")
		w := genWorld(rt, h)
		w.policies["Everything"] = strings.Replace(w.policies["Analysis"], "Partition Analysis", "Partition Everything", 1)
		h.flush()
		snap := h.store.Snapshot()
		part := rapid.SampledFrom([]string{"Analysis", "Production", "Everything"}).Draw(rt, "partition")
		pol, err := policy.ParsePolicy(part+".txt", []byte(w.policies[part]), policy.PolicyOptions{})
		require.NoError(rt, err)
		scope := rapid.SampledFrom([]CopyScope{CopyScopePartition, CopyScopeInventory}).Draw(rt, "scope")
		workers := rapid.IntRange(1, 4).Draw(rt, "workers")
		var src Sources
		require.NoError(rt, src.FillEmpty(policy.ProducerLocks, policy.ProducerAccesses, policy.ProducerEnforcer))
		in, err := src.Gather(context.Background(), snap, pol, h.now)
		require.NoError(rt, err)
		c := &cycle{pol: pol, snap: snap, at: h.now, now: h.now.Unix(), in: in,
			opts: PlanOptions{At: h.now, CopyCounts: scope, Workers: workers}}
		c.cp, err = policy.CompilePolicy(pol, c.replicaBindings(), siteBindings(), h.now)
		require.NoError(rt, err)
		require.NoError(rt, c.build(context.Background()))
		checkBuild(rt, c, snap, scope)
	})
}

type wantFull struct {
	site        inventory.SiteID
	ready, disk bool
	owners      []inventory.GroupID
}

func checkBuild(rt *rapid.T, c *cycle, snap *inventory.Snapshot, scope CopyScope) {
	p, _ := snap.PartitionByName(c.pol.Partition)
	target := map[inventory.SiteID]bool{}
	for _, st := range c.sites {
		target[st.site.ID] = st.target
	}
	site := func(id inventory.SiteID) inventory.Site { s, _ := snap.Site(id); return s }
	sat := func(n int) uint8 { return uint8(min(n, 255)) }
	for d := range snap.Datasets() {
		tape := int32(0)
		for b := range snap.Blocks(d.ID) {
			var copies, readyDisk, disk int
			var flags uint8
			for br := range snap.BlockReplicas(b.ID) {
				s := site(br.Site)
				if br.PendingDeletion {
					continue
				}
				if !br.Complete || br.Suspicious {
					flags |= blkIncomplete
					continue
				}
				if inventory.CountsAsCopy(s, br) {
					copies++
				}
				isDisk := s.StorageType == inventory.StorageDisk
				if isDisk && s.Status == inventory.SiteReady {
					readyDisk++
				}
				if s.StorageType == inventory.StorageMSS {
					flags |= blkTape
				}
				inScope := scope == CopyScopeInventory || (target[br.Site] && snap.InPartition(b.ID, br.Site, p.ID))
				if isDisk && inScope {
					disk++
				}
			}
			if flags&blkTape != 0 {
				tape++
			}
			name := snap.BlockFullName(b.ID)
			require.Equal(rt, d.ID, c.blkDS[b.ID], "%s: dataset", name)
			require.Equal(rt, sat(copies), c.blkCopies[b.ID], "%s: copies", name)
			require.Equal(rt, sat(readyDisk), c.blkReadyDisk[b.ID], "%s: READY disk copies", name)
			require.Equal(rt, sat(disk), c.blkDisk[b.ID], "%s: disk copies in scope %s", name, scope)
			require.Equal(rt, flags, c.blkFlags[b.ID], "%s: flags", name)
		}
		require.Equal(rt, tape, c.ds[d.ID].tapeBlocks, "%s: blocks on tape", d.Name)
	}

	// The drecs: per target site, per dataset (ascending), the partition's
	// block replicas in block order, and the dataset replica's owner.
	type wantDrec struct {
		site   inventory.SiteID
		ds     inventory.DatasetID
		owner  inventory.GroupID
		blocks []inventory.BlockID
	}
	var want []wantDrec
	fulls := map[inventory.DatasetID][]wantFull{}
	for _, st := range c.sites {
		s := st.site
		ready, disk := s.Status == inventory.SiteReady, s.StorageType == inventory.StorageDisk
		if st.target {
			byDS := map[inventory.DatasetID][]inventory.BlockReplica{}
			for br := range snap.BlockReplicasInPartition(s.ID, p.ID) {
				ds := c.blkDS[br.Block]
				byDS[ds] = append(byDS[ds], br)
			}
			for _, ds := range slices.Sorted(maps.Keys(byDS)) {
				brs := byDS[ds]
				slices.SortFunc(brs, func(a, b inventory.BlockReplica) int { return cmp.Compare(a.Block, b.Block) })
				wd := wantDrec{site: s.ID, ds: ds}
				for r := range snap.DatasetReplicas(ds) {
					if r.Site == s.ID {
						wd.owner = r.Group
					}
				}
				for _, br := range brs {
					wd.blocks = append(wd.blocks, br.Block)
				}
				want = append(want, wd)
				if scope == CopyScopePartition {
					if f, ok := fullOf(brs, ready, disk, s.ID, c.ds[ds].d.NumBlocks); ok {
						fulls[ds] = append(fulls[ds], f)
					}
				}
			}
		}
		if scope == CopyScopeInventory {
			byDS := map[inventory.DatasetID][]inventory.BlockReplica{}
			for br := range snap.BlockReplicasAtSite(s.ID) {
				if !br.PendingDeletion {
					byDS[c.blkDS[br.Block]] = append(byDS[c.blkDS[br.Block]], br)
				}
			}
			for _, ds := range slices.Sorted(maps.Keys(byDS)) {
				if f, ok := fullOf(byDS[ds], ready, disk, s.ID, c.ds[ds].d.NumBlocks); ok {
					fulls[ds] = append(fulls[ds], f)
				}
			}
		}
	}
	require.Len(rt, c.drs, len(want), "drecs")
	for i, wd := range want {
		d := c.drs[i]
		var blocks []inventory.BlockID
		for _, r := range c.brs[d.first : d.first+d.n] {
			blocks = append(blocks, r.block)
			// seq carries the dataset while building: a built cycle
			// starts with no deletion order.
			require.Zero(rt, r.seq, "seq of a built block replica")
		}
		got := wantDrec{site: c.sites[d.site].site.ID, ds: d.ds, owner: d.owner, blocks: blocks}
		require.Equal(rt, wd, got, "drec %d", i)
		require.Contains(rt, c.ds[d.ds].drs, int32(i), "the dataset's drecs")
		require.Contains(rt, c.sites[d.site].drs, int32(i), "the site's drecs")
	}
	for ds := range c.ds {
		var got []wantFull
		for _, f := range c.ds[ds].full {
			owners := f.owners
			if len(owners) == 0 {
				owners = []inventory.GroupID{f.owner}
			}
			got = append(got, wantFull{site: f.site, ready: f.ready, disk: f.disk, owners: slices.Sorted(slices.Values(owners))})
		}
		require.Equal(rt, fulls[inventory.DatasetID(ds)], got, "dataset %d: full copies in scope %s", ds, scope)
		for _, di := range c.ds[ds].drs {
			require.Equal(rt, inventory.DatasetID(ds), c.drs[di].ds)
		}
	}
}

// fullOf is a full copy when the complete, usable replicas brs cover
// every block of the dataset.
func fullOf(brs []inventory.BlockReplica, ready, disk bool, site inventory.SiteID, blocks int32) (wantFull, bool) {
	var n int32
	f := wantFull{site: site, ready: ready, disk: disk}
	for _, br := range brs {
		if br.Complete && !br.Suspicious && !br.PendingDeletion {
			n++
			if !slices.Contains(f.owners, br.Group) {
				f.owners = append(f.owners, br.Group)
			}
		}
	}
	slices.Sort(f.owners)
	return f, n == blocks && n > 0
}

// TestBrecSize: a cycle holds one brec per block replica of the partition
// (ten million at CMS scale); growing it costs fresh memory every cycle.
func TestBrecSize(t *testing.T) {
	require.EqualValues(t, 32, unsafe.Sizeof(brec{}))
}
