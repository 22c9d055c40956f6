package inventory

import "iter"

// SiteIndex lists the block and dataset replicas of every site of one
// snapshot, each site's in slot order, in two flat arrays (4 bytes per
// replica). It is for readers that walk the replicas of many sites, such
// as a Detox cycle.
//
// The snapshot's per-site lists (BlockReplicasAtSite) link replicas in
// insertion order, which scatters one site's replicas over the whole
// replica array: each step of the walk waits for the previous load, a
// cache and TLB miss once the inventory outgrows the caches (at ten times
// CMS a single walk of all sites took minutes). Through the index the
// addresses are known in advance and ascend, so the processor fetches
// many at once and the walk costs what a scan of the replica array costs.
type SiteIndex struct {
	st     *state
	repOff []int32 // site s's block replica slots are reps[repOff[s]:repOff[s+1]]
	reps   []int32
	dsOff  []int32
	dsReps []int32
}

// SiteIndex builds the index with one pass over the block replicas and one
// over the dataset replicas. The snapshot does not keep it: the caller
// holds it as long as it walks (a cycle), and its memory goes with it.
func (s *Snapshot) SiteIndex() *SiteIndex {
	st := s.st
	x := &SiteIndex{st: st}
	x.repOff, x.reps = slotsBySite(len(st.sites), &st.replicas, func(r *replicaRec) (int, bool) {
		return int(r.site), r.flags&flagExists != 0
	})
	x.dsOff, x.dsReps = slotsBySite(len(st.sites), &st.dsReplicas, func(r *dsReplicaRec) (int, bool) {
		return int(r.site), r.flags&flagExists != 0
	})
	return x
}

// slotsBySite counting-sorts the live slots of p by site: a pass that
// counts, a pass that places, both in slot order over whole pages.
func slotsBySite[T any](sites int, p *paged[T], siteOf func(*T) (int, bool)) (off, slots []int32) {
	off = make([]int32, sites+2)
	each := func(f func(i int32, site int)) {
		n := p.len()
		for pi, pg := range p.pages {
			base := int32(pi) << pageBits
			if base >= n {
				break
			}
			end := min(n-base, pageSize)
			for j := int32(0); j < end; j++ {
				if site, ok := siteOf(&pg.items[j]); ok && base+j > 0 && site > 0 && site < sites {
					f(base+j, site)
				}
			}
		}
	}
	each(func(_ int32, site int) { off[site+2]++ })
	for s := 2; s < len(off); s++ {
		off[s] += off[s-1]
	}
	// off[s+1] is now where site s starts: placing advances it to where
	// site s ends, which is where site s+1 starts.
	slots = make([]int32, off[sites+1])
	each(func(i int32, site int) {
		slots[off[site+1]] = i
		off[site+1]++
	})
	return off[:sites+1], slots
}

// BlockReplicasAtSite yields every block replica at a site (including
// those pending deletion), in slot order.
func (x *SiteIndex) BlockReplicasAtSite(site SiteID) iter.Seq[BlockReplica] {
	return x.BlockReplicasInPartition(site, 0)
}

// BlockReplicasInPartition yields the block replicas at a site that belong
// to a partition (part 0: all of them), in slot order.
func (x *SiteIndex) BlockReplicasInPartition(site SiteID, part PartitionID) iter.Seq[BlockReplica] {
	return func(yield func(BlockReplica) bool) {
		if site <= 0 || int(site) >= len(x.repOff)-1 {
			return
		}
		var bit uint64
		if part > 0 {
			bit = 1 << (part - 1)
		}
		for _, i := range x.reps[x.repOff[site]:x.repOff[site+1]] {
			if bit == 0 || x.st.replicas.at(i).mask&bit != 0 {
				if !yield(replicaView(x.st, i)) {
					return
				}
			}
		}
	}
}

// DatasetReplicasAtSite yields every dataset replica at a site, in slot
// order.
func (x *SiteIndex) DatasetReplicasAtSite(site SiteID) iter.Seq[DatasetReplica] {
	return func(yield func(DatasetReplica) bool) {
		if site <= 0 || int(site) >= len(x.dsOff)-1 {
			return
		}
		for _, i := range x.dsReps[x.dsOff[site]:x.dsOff[site+1]] {
			if !yield(dsReplicaView(x.st, i)) {
				return
			}
		}
	}
}
