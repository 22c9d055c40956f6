package inventory

// Records. They are small, pointer-free where it matters (the per-block and
// per-replica ones number in the millions), and linked by int32 slot
// indexes instead of pointers or maps. 0 means "none" in every link.

type siteRec struct {
	exists  bool
	name    string
	host    string
	backend string
	typ     StorageType
	status  SiteStatus

	repHead   int32 // block replicas at the site (doubly linked)
	dsRepHead int32 // dataset replicas at the site (doubly linked)
	replicas  int32 // number of block replicas

	// Accounting per partition id, copy-on-write: gen says which writer
	// generation owns these slices (see paged.mut for the idea).
	gen     uint64
	quota   []int64 // bytes; index = PartitionID; 0 = none
	phys    []int64 // bytes on disk of member replicas
	proj    []int64 // bytes once member replicas are complete
	pending int64   // bytes of replicas pending deletion (in no partition)
}

type groupRec struct {
	exists bool
	name   string
	level  OwnershipLevel
}

type datasetRec struct {
	name       string
	lastUpdate int64
	size       int64 // sum of the sizes of its blocks
	blockHead  int32
	repHead    int32 // dataset replicas (singly linked)
	numBlocks  int32
	numFiles   int32
	swVersion  uint16 // index into names.software
	status     DatasetStatus
	dataType   DataType
	flags      uint8
}

type blockRec struct {
	size       int64
	dataset    DatasetID
	nameOff    uint32
	numFiles   int32
	lastUpdate uint32
	next       int32 // next block of the same dataset
	repHead    int32 // block replicas (singly linked by nextInBlock)
	nameLen    uint8
	flags      uint8
}

// replicaRec is a block replica. Its slot is internal to the process: the
// database identifies a block replica by (block, site).
type replicaRec struct {
	mask        uint64 // partition membership, bit = PartitionID-1
	block       BlockID
	lastUpdate  uint32
	nextInBlock int32 // also the free-list link of a dead slot
	nextAtSite  int32
	prevAtSite  int32
	partial     int32 // slot in partials when incomplete; 0 when complete
	site        uint16
	group       uint16
	flags       uint8
}

type dsReplicaRec struct {
	dataset       DatasetID
	nextInDataset int32 // also the free-list link of a dead slot
	nextAtSite    int32
	prevAtSite    int32
	site          uint16
	group         uint16
	flags         uint8
}

// partialRec holds what is present of an incomplete block replica.
type partialRec struct {
	size     int64
	numFiles int32
	nextFree int32
}

const (
	flagExists          = 1 << 0
	flagOpen            = 1 << 1 // datasets, blocks
	flagCustodial       = 1 << 1 // block replicas
	flagPendingDeletion = 1 << 2 // block replicas
	flagSuspicious      = 1 << 3 // block replicas
	flagGrowing         = 1 << 1 // dataset replicas
)

type partRec struct {
	exists bool
	name   string
	subs   []PartitionID // non-empty for a super-partition
	match  func(*ReplicaFacts) bool
}

// state is everything the store holds in memory. The writer mutates one
// state; a snapshot is a frozen copy sharing pages with it.
type state struct {
	gen uint64
	seq uint64 // change-log sequence number of the last applied update

	sites      []siteRec  // index = SiteID
	groups     []groupRec // index = GroupID; 0 is the null group
	parts      []partRec  // index = PartitionID
	blockNames arena

	datasets   paged[datasetRec]
	blocks     paged[blockRec]
	replicas   paged[replicaRec]
	dsReplicas paged[dsReplicaRec]
	partials   paged[partialRec]

	freeReplica, freeDSReplica, freePartial int32
	numReplicas, numDSReplicas              int64

	// scratch for memberMask: a field, so that passing its address to the
	// partition predicates does not allocate per replica.
	factsBuf ReplicaFacts
	// maskMemo remembers the last membership computed: replicas arrive
	// grouped by block, and neighbours usually share all the facts.
	maskMemo struct {
		valid                bool
		site, group, dataset int32
		flags                uint8
		mask                 uint64
	}
}

func newState() *state {
	return &state{
		gen:        1,
		sites:      make([]siteRec, 1),
		groups:     []groupRec{{exists: true, name: ""}},
		parts:      make([]partRec, 1),
		datasets:   newPaged[datasetRec](),
		blocks:     newPaged[blockRec](),
		replicas:   newPaged[replicaRec](),
		dsReplicas: newPaged[dsReplicaRec](),
		partials:   newPaged[partialRec](),
	}
}

// freeze returns a copy of s for readers and moves s to a new generation so
// that its next writes clone whatever they share with the copy.
func (s *state) freeze() *state {
	c := *s
	c.sites = append([]siteRec(nil), s.sites...)
	c.groups = append([]groupRec(nil), s.groups...)
	c.parts = append([]partRec(nil), s.parts...)
	c.datasets = s.datasets.snapshot()
	c.blocks = s.blocks.snapshot()
	c.replicas = s.replicas.snapshot()
	c.dsReplicas = s.dsReplicas.snapshot()
	c.partials = s.partials.snapshot()
	s.gen++
	return &c
}

// siteAcct returns site id's record with accounting slices owned by the
// current generation and long enough for every partition.
func (s *state) siteAcct(id SiteID) *siteRec {
	r := &s.sites[id]
	n := len(s.parts)
	if r.gen != s.gen || len(r.phys) < n {
		grow := func(v []int64) []int64 {
			c := make([]int64, n)
			copy(c, v)
			return c
		}
		r.quota, r.phys, r.proj = grow(r.quota), grow(r.phys), grow(r.proj)
		r.gen = s.gen
	}
	return r
}

// ReplicaFacts is what partition conditions see of a block replica. The
// inventory fills it when a replica is added or changes, and caches the
// result as a membership mask; conditions must depend on nothing else.
type ReplicaFacts struct {
	SiteName    string
	SiteType    StorageType
	SiteStatus  SiteStatus
	GroupName   string // "" for the null group
	DatasetName string
	Custodial   bool
}

func (s *state) facts(r *replicaRec) ReplicaFacts {
	site := &s.sites[r.site]
	b := s.blocks.at(int32(r.block))
	return ReplicaFacts{
		SiteName:    site.name,
		SiteType:    site.typ,
		SiteStatus:  site.status,
		GroupName:   s.groups[r.group].name,
		DatasetName: s.datasets.at(int32(b.dataset)).name,
		Custodial:   r.flags&flagCustodial != 0,
	}
}

// memberMask evaluates every leaf partition for r; a super-partition is a
// member when any of its subs is. Replicas pending deletion belong to none:
// they have left their owner's quota.
func (s *state) memberMask(r *replicaRec) uint64 {
	if r.flags&flagPendingDeletion != 0 {
		return 0
	}
	ds := int32(s.blocks.at(int32(r.block)).dataset)
	memo := &s.maskMemo
	if memo.valid && memo.site == int32(r.site) && memo.group == int32(r.group) && memo.dataset == ds && memo.flags == r.flags {
		return memo.mask
	}
	s.factsBuf = s.facts(r)
	f := &s.factsBuf
	var m uint64
	for id := 1; id < len(s.parts); id++ {
		p := &s.parts[id]
		if p.exists && len(p.subs) == 0 && p.match != nil && p.match(f) {
			m |= 1 << (id - 1)
		}
	}
	for id := 1; id < len(s.parts); id++ {
		p := &s.parts[id]
		if !p.exists || len(p.subs) == 0 {
			continue
		}
		for _, sub := range p.subs {
			if m&(1<<(sub-1)) != 0 {
				m |= 1 << (id - 1)
				break
			}
		}
	}
	memo.valid, memo.site, memo.group, memo.dataset, memo.flags, memo.mask = true, int32(r.site), int32(r.group), ds, r.flags, m
	return m
}

// replicaSize is the bytes of r present at its site.
func (s *state) replicaSize(r *replicaRec) int64 {
	if r.partial != 0 {
		return s.partials.at(r.partial).size
	}
	return s.blocks.at(int32(r.block)).size
}

// account adds (sign=+1) or removes (sign=-1) r's bytes from its site's
// per-partition occupancy.
func (s *state) account(r *replicaRec, sign int64) {
	site := s.siteAcct(SiteID(r.site))
	size := s.replicaSize(r)
	if r.flags&flagPendingDeletion != 0 {
		site.pending += sign * size
		return
	}
	full := s.blocks.at(int32(r.block)).size
	for m, id := r.mask, 1; m != 0; m, id = m>>1, id+1 {
		if m&1 != 0 {
			site.phys[id] += sign * size
			site.proj[id] += sign * full
		}
	}
}

// findReplica returns the slot of the replica of block b at site, or 0.
func (s *state) findReplica(b BlockID, site SiteID) int32 {
	for i := s.blocks.at(int32(b)).repHead; i != 0; {
		r := s.replicas.at(i)
		if SiteID(r.site) == site {
			return i
		}
		i = r.nextInBlock
	}
	return 0
}

// findDSReplica returns the slot of the replica of dataset d at site, or 0.
func (s *state) findDSReplica(d DatasetID, site SiteID) int32 {
	for i := s.datasets.at(int32(d)).repHead; i != 0; {
		r := s.dsReplicas.at(i)
		if SiteID(r.site) == site {
			return i
		}
		i = r.nextInDataset
	}
	return 0
}

// findBlock returns the block of dataset d with the given name, or 0.
func (s *state) findBlock(d DatasetID, name string) BlockID {
	for i := s.datasets.at(int32(d)).blockHead; i != 0; {
		b := s.blocks.at(i)
		if s.blockNames.equal(b.nameOff, b.nameLen, name) {
			return BlockID(i)
		}
		i = b.next
	}
	return 0
}
