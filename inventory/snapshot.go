package inventory

import (
	"iter"
	"slices"
	"strings"
)

// Snapshot is an immutable, consistent view of the inventory at one change
// sequence number. It is cheap to take (O(pages)), safe for any number of
// goroutines, and unaffected by later writes. Values it returns are copies.
type Snapshot struct {
	st *state
	n  *names
}

// Seq is the change-log sequence number the snapshot reflects.
func (s *Snapshot) Seq() uint64 { return s.st.seq }

func siteView(st *state, id SiteID) Site {
	r := &st.sites[id]
	return Site{ID: id, Name: r.name, Host: r.host, StorageType: r.typ, Backend: r.backend, Status: r.status}
}

func blockView(st *state, id BlockID) Block {
	b := st.blocks.at(int32(id))
	return Block{ID: id, Dataset: b.dataset, Name: st.blockNames.get(b.nameOff, b.nameLen), Size: b.size,
		NumFiles: b.numFiles, Open: b.flags&flagOpen != 0, LastUpdate: int64(b.lastUpdate)}
}

func replicaView(st *state, i int32) BlockReplica {
	r := st.replicas.at(i)
	v := BlockReplica{Block: r.block, Site: SiteID(r.site), Group: GroupID(r.group),
		Custodial: r.flags&flagCustodial != 0, PendingDeletion: r.flags&flagPendingDeletion != 0,
		Suspicious: r.flags&flagSuspicious != 0,
		LastUpdate: int64(r.lastUpdate), Complete: r.partial == 0}
	if r.partial != 0 {
		p := st.partials.at(r.partial)
		v.Size, v.NumFiles = p.size, p.numFiles
	} else {
		b := st.blocks.at(int32(r.block))
		v.Size, v.NumFiles = b.size, b.numFiles
	}
	return v
}

func (s *Snapshot) datasetView(id DatasetID) Dataset {
	d := s.st.datasets.at(int32(id))
	return Dataset{ID: id, Name: d.name, Status: d.status, DataType: d.dataType,
		SoftwareVersion: s.n.softwareName(d.swVersion), LastUpdate: d.lastUpdate, Open: d.flags&flagOpen != 0,
		Size: d.size, NumBlocks: d.numBlocks, NumFiles: d.numFiles}
}

// Sites returns every site, by id.
func (s *Snapshot) Sites() []Site {
	var out []Site
	for id := range s.st.sites {
		if s.st.sites[id].exists {
			out = append(out, siteView(s.st, SiteID(id)))
		}
	}
	return out
}

// Site returns the site with the given id.
func (s *Snapshot) Site(id SiteID) (Site, bool) {
	if id <= 0 || int(id) >= len(s.st.sites) || !s.st.sites[id].exists {
		return Site{}, false
	}
	return siteView(s.st, id), true
}

// SiteByName returns the named site.
func (s *Snapshot) SiteByName(name string) (Site, bool) {
	id, ok := s.n.site(name)
	if !ok {
		return Site{}, false
	}
	return s.Site(id)
}

// Groups returns every group except the null group, by id.
func (s *Snapshot) Groups() []Group {
	var out []Group
	for id := 1; id < len(s.st.groups); id++ {
		if g := s.st.groups[id]; g.exists {
			out = append(out, Group{ID: GroupID(id), Name: g.name, Level: g.level})
		}
	}
	return out
}

// Group returns the group with the given id; NoGroup is the null group "".
func (s *Snapshot) Group(id GroupID) (Group, bool) {
	if id < 0 || int(id) >= len(s.st.groups) || !s.st.groups[id].exists {
		return Group{}, false
	}
	g := s.st.groups[id]
	return Group{ID: id, Name: g.name, Level: g.level}, true
}

// GroupByName returns the named group.
func (s *Snapshot) GroupByName(name string) (Group, bool) {
	id, ok := s.n.group(name)
	if !ok {
		return Group{}, false
	}
	return s.Group(id)
}

// Partitions returns every partition, by id.
func (s *Snapshot) Partitions() []Partition {
	var out []Partition
	for id := 1; id < len(s.st.parts); id++ {
		p := &s.st.parts[id]
		if !p.exists {
			continue
		}
		v := Partition{ID: PartitionID(id), Name: p.name}
		for _, sub := range p.subs {
			v.Subs = append(v.Subs, s.st.parts[sub].name)
		}
		out = append(out, v)
	}
	return out
}

// PartitionByName returns the named partition.
func (s *Snapshot) PartitionByName(name string) (Partition, bool) {
	id, ok := s.n.partition(name)
	if !ok || int(id) >= len(s.st.parts) || !s.st.parts[id].exists {
		return Partition{}, false
	}
	for _, p := range s.Partitions() {
		if p.ID == id {
			return p, true
		}
	}
	return Partition{}, false
}

// Usage returns the quota and occupancy of a site partition. The quota of
// a super-partition is the sum of its sub-partitions' quotas.
func (s *Snapshot) Usage(site SiteID, part PartitionID) Usage {
	u := Usage{Site: site, Partition: part}
	if site <= 0 || int(site) >= len(s.st.sites) || part <= 0 || int(part) >= len(s.st.parts) {
		return u
	}
	r := &s.st.sites[site]
	at := func(v []int64, i PartitionID) int64 {
		if int(i) < len(v) {
			return v[i]
		}
		return 0
	}
	u.Physical, u.Projected = at(r.phys, part), at(r.proj, part)
	if subs := s.st.parts[part].subs; len(subs) > 0 {
		for _, sub := range subs {
			u.Quota += at(r.quota, sub)
		}
	} else {
		u.Quota = at(r.quota, part)
	}
	return u
}

// PendingDeletion returns the bytes at site that are pending deletion.
func (s *Snapshot) PendingDeletion(site SiteID) int64 {
	if site <= 0 || int(site) >= len(s.st.sites) {
		return 0
	}
	return s.st.sites[site].pending
}

// Counts is the size of the inventory.
type Counts struct {
	Sites, Groups, Partitions, Datasets, Blocks, DatasetReplicas, BlockReplicas int64
}

// Counts returns how many objects of each kind exist.
func (s *Snapshot) Counts() Counts {
	c := Counts{DatasetReplicas: s.st.numDSReplicas, BlockReplicas: s.st.numReplicas}
	for i := range s.st.sites {
		if s.st.sites[i].exists {
			c.Sites++
		}
	}
	c.Groups = int64(len(s.Groups()))
	c.Partitions = int64(len(s.Partitions()))
	for d := range s.Datasets() {
		c.Datasets++
		c.Blocks += int64(d.NumBlocks)
	}
	return c
}

// Datasets yields every dataset, by id.
func (s *Snapshot) Datasets() iter.Seq[Dataset] {
	return func(yield func(Dataset) bool) {
		for i := int32(1); i < s.st.datasets.len(); i++ {
			if s.st.datasets.at(i).flags&flagExists != 0 && !yield(s.datasetView(DatasetID(i))) {
				return
			}
		}
	}
}

// Dataset returns the dataset with the given id.
func (s *Snapshot) Dataset(id DatasetID) (Dataset, bool) {
	if id <= 0 || int32(id) >= s.st.datasets.len() || s.st.datasets.at(int32(id)).flags&flagExists == 0 {
		return Dataset{}, false
	}
	return s.datasetView(id), true
}

// DatasetByName returns the named dataset.
func (s *Snapshot) DatasetByName(name string) (Dataset, bool) {
	id, ok := s.n.dataset(name)
	if !ok {
		return Dataset{}, false
	}
	return s.Dataset(id)
}

// DatasetsByName yields, in name order, the datasets of the snapshot whose
// names start with prefix and sort after after (exclusive; "" starts at
// the first). keep, when not nil, filters the names before a dataset is
// looked up, so a scan rejecting most names costs little per name. The
// name order is kept by the store as datasets are created: a listing
// costs the names it visits, never a sort.
func (s *Snapshot) DatasetsByName(prefix, after string, keep func(name string) bool) iter.Seq[Dataset] {
	return func(yield func(Dataset) bool) {
		for name := range s.DatasetNamesInOrder(prefix, after) {
			if keep != nil && !keep(name) {
				continue
			}
			if d, ok := s.DatasetByName(name); ok && !yield(d) {
				return
			}
		}
	}
}

// DatasetNamesInOrder yields, in name order, the names that start with
// prefix and sort after after of every dataset the store ever had: this
// snapshot may predate some or follow their deletion (DatasetByName
// tells). It is for scans that must stop after visiting a number of
// names whether they match or not; DatasetsByName yields only this
// snapshot's datasets.
func (s *Snapshot) DatasetNamesInOrder(prefix, after string) iter.Seq[string] {
	return func(yield func(string) bool) {
		names := s.n.datasetOrder()
		i, _ := slices.BinarySearch(names, max(prefix, after))
		for ; i < len(names) && strings.HasPrefix(names[i], prefix); i++ {
			if names[i] != after && !yield(names[i]) {
				return
			}
		}
	}
}

// Blocks yields the blocks of a dataset.
func (s *Snapshot) Blocks(ds DatasetID) iter.Seq[Block] {
	return func(yield func(Block) bool) {
		if ds <= 0 || int32(ds) >= s.st.datasets.len() || s.st.datasets.at(int32(ds)).flags&flagExists == 0 {
			return
		}
		for i := s.st.datasets.at(int32(ds)).blockHead; i != 0; i = s.st.blocks.at(i).next {
			if !yield(blockView(s.st, BlockID(i))) {
				return
			}
		}
	}
}

// blockExists checks without building a Block (which copies the name).
func (s *Snapshot) blockExists(id BlockID) bool {
	return id > 0 && int32(id) < s.st.blocks.len() && s.st.blocks.at(int32(id)).flags&flagExists != 0
}

// Block returns the block with the given id.
func (s *Snapshot) Block(id BlockID) (Block, bool) {
	if !s.blockExists(id) {
		return Block{}, false
	}
	return blockView(s.st, id), true
}

// BlockByName returns the block named "dataset#block".
func (s *Snapshot) BlockByName(full string) (Block, bool) {
	i := strings.LastIndexByte(full, '#')
	if i < 0 {
		return Block{}, false
	}
	d, ok := s.DatasetByName(full[:i])
	if !ok {
		return Block{}, false
	}
	id := s.st.findBlock(d.ID, full[i+1:])
	if id == 0 {
		return Block{}, false
	}
	return blockView(s.st, id), true
}

// BlockFullName returns "dataset#block" for a block id.
func (s *Snapshot) BlockFullName(id BlockID) string {
	b, ok := s.Block(id)
	if !ok {
		return ""
	}
	return s.st.datasets.at(int32(b.Dataset)).name + "#" + b.Name
}

// BlockReplicas yields the replicas of a block.
func (s *Snapshot) BlockReplicas(b BlockID) iter.Seq[BlockReplica] {
	return func(yield func(BlockReplica) bool) {
		if !s.blockExists(b) {
			return
		}
		for i := s.st.blocks.at(int32(b)).repHead; i != 0; i = s.st.replicas.at(i).nextInBlock {
			if !yield(replicaView(s.st, i)) {
				return
			}
		}
	}
}

// BlockReplica returns the replica of block b at site.
func (s *Snapshot) BlockReplica(b BlockID, site SiteID) (BlockReplica, bool) {
	if !s.blockExists(b) {
		return BlockReplica{}, false
	}
	i := s.st.findReplica(b, site)
	if i == 0 {
		return BlockReplica{}, false
	}
	return replicaView(s.st, i), true
}

// BlockReplicasAtSite yields every block replica at a site.
func (s *Snapshot) BlockReplicasAtSite(site SiteID) iter.Seq[BlockReplica] {
	return s.BlockReplicasInPartition(site, 0)
}

// BlockReplicasInPartition yields the block replicas at a site that belong
// to a partition (part 0: all of them, including those pending deletion).
func (s *Snapshot) BlockReplicasInPartition(site SiteID, part PartitionID) iter.Seq[BlockReplica] {
	return func(yield func(BlockReplica) bool) {
		if site <= 0 || int(site) >= len(s.st.sites) {
			return
		}
		var bit uint64
		if part > 0 {
			bit = 1 << (part - 1)
		}
		for i := s.st.sites[site].repHead; i != 0; {
			r := s.st.replicas.at(i)
			if bit == 0 || r.mask&bit != 0 {
				if !yield(replicaView(s.st, i)) {
					return
				}
			}
			i = r.nextAtSite
		}
	}
}

// InPartition reports whether the replica of block b at site is a member
// of the partition.
func (s *Snapshot) InPartition(b BlockID, site SiteID, part PartitionID) bool {
	if part <= 0 || part > MaxPartitions {
		return false
	}
	if !s.blockExists(b) {
		return false
	}
	i := s.st.findReplica(b, site)
	return i != 0 && s.st.replicas.at(i).mask&(1<<(part-1)) != 0
}

// DatasetReplicas yields the replicas of a dataset.
func (s *Snapshot) DatasetReplicas(ds DatasetID) iter.Seq[DatasetReplica] {
	return func(yield func(DatasetReplica) bool) {
		if _, ok := s.Dataset(ds); !ok {
			return
		}
		for i := s.st.datasets.at(int32(ds)).repHead; i != 0; i = s.st.dsReplicas.at(i).nextInDataset {
			if !yield(dsReplicaView(s.st, i)) {
				return
			}
		}
	}
}

// DatasetReplicasAtSite yields every dataset replica at a site.
func (s *Snapshot) DatasetReplicasAtSite(site SiteID) iter.Seq[DatasetReplica] {
	return func(yield func(DatasetReplica) bool) {
		if site <= 0 || int(site) >= len(s.st.sites) {
			return
		}
		for i := s.st.sites[site].dsRepHead; i != 0; i = s.st.dsReplicas.at(i).nextAtSite {
			if !yield(dsReplicaView(s.st, i)) {
				return
			}
		}
	}
}

func dsReplicaView(st *state, i int32) DatasetReplica {
	r := st.dsReplicas.at(i)
	return DatasetReplica{Dataset: r.dataset, Site: SiteID(r.site), Growing: r.flags&flagGrowing != 0, Group: GroupID(r.group)}
}
