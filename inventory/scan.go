package inventory

// Whole-inventory scans in slot order. A reader that needs every block or
// block replica (a Detox cycle) reads the record arrays front to back
// through these: the addresses ascend, so the processor streams the pages
// instead of waiting on one cache and TLB miss per record as a walk of the
// per-site or per-block lists does once the inventory outgrows the caches.
// Slot order is not a meaningful order: callers that need one sort.

// BlockScan is a block as a scan yields it (no name: copying 30 M names
// would cost more than the scan).
type BlockScan struct {
	ID         BlockID
	Dataset    DatasetID
	Size       int64
	NumFiles   int32
	LastUpdate int64
}

// BlockSlots is one more than the highest block id: arrays indexed by
// block id of this length hold every block of the snapshot.
func (s *Snapshot) BlockSlots() int32 { return s.st.blocks.len() }

// DatasetSlots is one more than the highest dataset id.
func (s *Snapshot) DatasetSlots() int32 { return s.st.datasets.len() }

// ReplicaSlots is one more than the highest block replica slot: the range
// ScanReplicas splits.
func (s *Snapshot) ReplicaSlots() int32 { return s.st.replicas.len() }

// ScanBlocks calls f for every block, in id order. f must not keep b.
func (s *Snapshot) ScanBlocks(f func(b *BlockScan)) {
	var v BlockScan
	eachSlot(&s.st.blocks, 1, s.st.blocks.len(), func(i int32, r *blockRec) {
		if r.flags&flagExists == 0 {
			return
		}
		v = BlockScan{ID: BlockID(i), Dataset: r.dataset, Size: r.size, NumFiles: r.numFiles, LastUpdate: int64(r.lastUpdate)}
		f(&v)
	})
}

// ReplicaScan is a block replica as a scan yields it.
type ReplicaScan struct {
	Block           BlockID
	Site            SiteID
	Group           GroupID
	LastUpdate      int64
	Complete        bool
	Suspicious      bool
	PendingDeletion bool
	mask            uint64
	partial         int32
	st              *state
}

// Present returns the bytes and files present at the site: the block's
// for a complete replica. It reads another record (the block's), so a
// scan that needs no sizes does not pay for it.
func (r *ReplicaScan) Present() (size int64, files int32) {
	if r.partial != 0 {
		p := r.st.partials.at(r.partial)
		return p.size, p.numFiles
	}
	b := r.st.blocks.at(int32(r.Block))
	return b.size, b.numFiles
}

// InPartition reports whether the replica is a member of partition p.
func (r *ReplicaScan) InPartition(p PartitionID) bool {
	return p > 0 && p <= MaxPartitions && r.mask&(1<<(p-1)) != 0
}

// ScanReplicas calls f for every block replica (including those pending
// deletion) whose slot is in [from, to), in slot order; ranges that
// partition [1, ReplicaSlots()) visit each replica once, so disjoint
// ranges can be scanned side by side. f must not keep r.
func (s *Snapshot) ScanReplicas(from, to int32, f func(r *ReplicaScan)) {
	st := s.st
	var v ReplicaScan
	eachSlot(&st.replicas, from, to, func(_ int32, r *replicaRec) {
		if r.flags&flagExists == 0 {
			return
		}
		v = ReplicaScan{Block: r.block, Site: SiteID(r.site), Group: GroupID(r.group), LastUpdate: int64(r.lastUpdate),
			Complete: r.partial == 0, Suspicious: r.flags&flagSuspicious != 0,
			PendingDeletion: r.flags&flagPendingDeletion != 0, mask: r.mask, partial: r.partial, st: st}
		f(&v)
	})
}

// ScanDatasetReplicas calls f for every dataset replica, in slot order.
func (s *Snapshot) ScanDatasetReplicas(f func(r DatasetReplica)) {
	eachSlot(&s.st.dsReplicas, 1, s.st.dsReplicas.len(), func(_ int32, r *dsReplicaRec) {
		if r.flags&flagExists != 0 {
			f(DatasetReplica{Dataset: r.dataset, Site: SiteID(r.site), Growing: r.flags&flagGrowing != 0, Group: GroupID(r.group)})
		}
	})
}

// eachSlot calls f for the slots [from, to) of p (clamped to its length),
// page by page.
func eachSlot[T any](p *paged[T], from, to int32, f func(i int32, r *T)) {
	from, to = max(from, 1), min(to, p.len())
	for i := from; i < to; {
		pg := &p.pages[i>>pageBits].items
		end := min(to, (i|pageMask)+1)
		for j := i & pageMask; i < end; i, j = i+1, j+1 {
			f(i, &pg[j])
		}
	}
}
