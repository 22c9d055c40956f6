package inventory

// The primitive mutations of the writer's state. They assume their input
// was validated (see txn.go): they are used by apply, which runs after the
// database commit, and by the loader, and must not fail.

func (s *state) putSite(id SiteID, v Site) {
	for int(id) >= len(s.sites) {
		s.sites = append(s.sites, siteRec{})
	}
	r := &s.sites[id]
	remask := r.exists && (r.typ != v.StorageType || r.status != v.Status)
	s.maskMemo.valid = false
	r.exists, r.name, r.host, r.backend, r.typ, r.status = true, v.Name, v.Host, v.Backend, v.StorageType, v.Status
	s.siteAcct(id)
	if remask {
		s.remaskSite(id)
	}
}

func (s *state) remaskSite(id SiteID) {
	for i := s.sites[id].repHead; i != 0; i = s.replicas.at(i).nextAtSite {
		s.remask(i)
	}
}

// remask recomputes a replica's partition membership and its accounting.
func (s *state) remask(i int32) {
	r := s.replicas.mut(i, s.gen)
	s.account(r, -1)
	r.mask = s.memberMask(r)
	s.account(r, +1)
}

func (s *state) putGroup(id GroupID, v Group) {
	for int(id) >= len(s.groups) {
		s.groups = append(s.groups, groupRec{})
	}
	s.groups[id] = groupRec{exists: true, name: v.Name, level: v.Level}
}

func (s *state) setQuota(site SiteID, part PartitionID, bytes int64) {
	s.siteAcct(site).quota[part] = bytes
}

func (s *state) putDataset(id DatasetID, v Dataset, sw uint16) {
	r := s.datasets.grow(int32(id), s.gen)
	r.name, r.lastUpdate, r.swVersion, r.status, r.dataType = v.Name, v.LastUpdate, sw, v.Status, v.DataType
	r.flags = flagExists
	if v.Open {
		r.flags |= flagOpen
	}
}

func (s *state) delDataset(id DatasetID) {
	for s.datasets.at(int32(id)).repHead != 0 {
		r := s.dsReplicas.at(s.datasets.at(int32(id)).repHead)
		s.delDSReplica(id, SiteID(r.site))
	}
	for s.datasets.at(int32(id)).blockHead != 0 {
		s.delBlock(BlockID(s.datasets.at(int32(id)).blockHead))
	}
	d := s.datasets.mut(int32(id), s.gen)
	name := d.name
	*d = datasetRec{name: name} // keep the name: the id stays reserved for it
}

func (s *state) putBlock(id BlockID, v Block) {
	isNew := id >= BlockID(s.blocks.len()) || s.blocks.at(int32(id)).flags&flagExists == 0
	var oldSize int64
	var oldFiles int32
	if isNew {
		b := s.blocks.grow(int32(id), s.gen)
		off, n := s.blockNames.add(v.Name)
		*b = blockRec{dataset: v.Dataset, nameOff: off, nameLen: n}
		d := s.datasets.mut(int32(v.Dataset), s.gen)
		b.next = d.blockHead
		d.blockHead = int32(id)
		d.numBlocks++
	} else {
		old := s.blocks.at(int32(id))
		oldSize, oldFiles = old.size, old.numFiles
	}
	sizeChanged := !isNew && oldSize != v.Size
	if sizeChanged {
		// Complete replicas are as large as the block: take them out of the
		// accounting with the old size and put them back with the new one.
		for i := s.blocks.at(int32(id)).repHead; i != 0; i = s.replicas.at(i).nextInBlock {
			s.account(s.replicas.at(i), -1)
		}
	}
	b := s.blocks.mut(int32(id), s.gen)
	b.size, b.numFiles, b.lastUpdate = v.Size, v.NumFiles, uint32(v.LastUpdate)
	b.flags = flagExists
	if v.Open {
		b.flags |= flagOpen
	}
	d := s.datasets.mut(int32(v.Dataset), s.gen)
	d.size += v.Size - oldSize
	d.numFiles += v.NumFiles - oldFiles
	if sizeChanged {
		for i := s.blocks.at(int32(id)).repHead; i != 0; i = s.replicas.at(i).nextInBlock {
			s.account(s.replicas.at(i), +1)
		}
	}
}

func (s *state) delBlock(id BlockID) {
	for s.blocks.at(int32(id)).repHead != 0 {
		r := s.replicas.at(s.blocks.at(int32(id)).repHead)
		s.delReplica(id, SiteID(r.site))
	}
	b := s.blocks.at(int32(id))
	ds := b.dataset
	d := s.datasets.mut(int32(ds), s.gen)
	d.size -= b.size
	d.numFiles -= b.numFiles
	d.numBlocks--
	if d.blockHead == int32(id) {
		d.blockHead = b.next
	} else {
		for i := d.blockHead; i != 0; i = s.blocks.at(i).next {
			if s.blocks.at(i).next == int32(id) {
				s.blocks.mut(i, s.gen).next = b.next
				break
			}
		}
	}
	nb := s.blocks.mut(int32(id), s.gen)
	*nb = blockRec{}
}

func (s *state) putDSReplica(v DatasetReplica) {
	i := s.findDSReplica(v.Dataset, v.Site)
	if i == 0 {
		i = s.freeDSReplica
		if i != 0 {
			s.freeDSReplica = s.dsReplicas.at(i).nextInDataset
		} else {
			i = s.dsReplicas.len()
		}
		r := s.dsReplicas.grow(i, s.gen)
		*r = dsReplicaRec{dataset: v.Dataset, site: uint16(v.Site)}
		d := s.datasets.mut(int32(v.Dataset), s.gen)
		r.nextInDataset, d.repHead = d.repHead, i
		site := &s.sites[v.Site]
		r.nextAtSite = site.dsRepHead
		if site.dsRepHead != 0 {
			s.dsReplicas.mut(site.dsRepHead, s.gen).prevAtSite = i
		}
		site.dsRepHead = i
		s.numDSReplicas++
	}
	r := s.dsReplicas.mut(i, s.gen)
	r.group = uint16(v.Group)
	r.flags = flagExists
	if v.Growing {
		r.flags |= flagGrowing
	}
}

// delDSReplica removes the dataset replica and every block replica of the
// dataset at that site.
func (s *state) delDSReplica(ds DatasetID, site SiteID) {
	for b := s.datasets.at(int32(ds)).blockHead; b != 0; b = s.blocks.at(b).next {
		if s.findReplica(BlockID(b), site) != 0 {
			s.delReplica(BlockID(b), site)
		}
	}
	i := s.findDSReplica(ds, site)
	if i == 0 {
		return
	}
	r := *s.dsReplicas.at(i)
	d := s.datasets.mut(int32(ds), s.gen)
	if d.repHead == i {
		d.repHead = r.nextInDataset
	} else {
		for j := d.repHead; j != 0; j = s.dsReplicas.at(j).nextInDataset {
			if s.dsReplicas.at(j).nextInDataset == i {
				s.dsReplicas.mut(j, s.gen).nextInDataset = r.nextInDataset
				break
			}
		}
	}
	if r.prevAtSite != 0 {
		s.dsReplicas.mut(r.prevAtSite, s.gen).nextAtSite = r.nextAtSite
	} else {
		s.sites[site].dsRepHead = r.nextAtSite
	}
	if r.nextAtSite != 0 {
		s.dsReplicas.mut(r.nextAtSite, s.gen).prevAtSite = r.prevAtSite
	}
	*s.dsReplicas.mut(i, s.gen) = dsReplicaRec{nextInDataset: s.freeDSReplica}
	s.freeDSReplica = i
	s.numDSReplicas--
}

// putReplica inserts or updates the block replica (v.Block, v.Site).
func (s *state) putReplica(v BlockReplica) { s.putReplicaAt(v, s.findReplica(v.Block, v.Site)) }

// putReplicaAt does putReplica's work given the replica's slot (0 for a
// new replica). The loader passes 0 directly: the database's primary key
// already guarantees (block, site) is unique.
func (s *state) putReplicaAt(v BlockReplica, i int32) {
	if i == 0 {
		i = s.freeReplica
		if i != 0 {
			s.freeReplica = s.replicas.at(i).nextInBlock
		} else {
			i = s.replicas.len()
		}
		r := s.replicas.grow(i, s.gen)
		*r = replicaRec{block: v.Block, site: uint16(v.Site)}
		b := s.blocks.mut(int32(v.Block), s.gen)
		r.nextInBlock, b.repHead = b.repHead, i
		site := &s.sites[v.Site]
		r.nextAtSite = site.repHead
		if site.repHead != 0 {
			s.replicas.mut(site.repHead, s.gen).prevAtSite = i
		}
		site.repHead = i
		site.replicas++
		s.numReplicas++
	} else {
		s.account(s.replicas.at(i), -1)
	}
	r := s.replicas.mut(i, s.gen)
	r.group, r.lastUpdate = uint16(v.Group), uint32(v.LastUpdate)
	r.flags = flagExists
	if v.Custodial {
		r.flags |= flagCustodial
	}
	if v.PendingDeletion {
		r.flags |= flagPendingDeletion
	}
	if v.Suspicious {
		r.flags |= flagSuspicious
	}
	if v.Complete {
		s.freePartialSlot(r)
	} else {
		if r.partial == 0 {
			r.partial = s.allocPartial()
		}
		p := s.partials.mut(r.partial, s.gen)
		p.size, p.numFiles = v.Size, v.NumFiles
	}
	r.mask = s.memberMask(r)
	s.account(r, +1)
}

func (s *state) allocPartial() int32 {
	i := s.freePartial
	if i != 0 {
		s.freePartial = s.partials.at(i).nextFree
	} else {
		i = s.partials.len()
	}
	*s.partials.grow(i, s.gen) = partialRec{}
	return i
}

func (s *state) freePartialSlot(r *replicaRec) {
	if r.partial == 0 {
		return
	}
	*s.partials.mut(r.partial, s.gen) = partialRec{nextFree: s.freePartial}
	s.freePartial = r.partial
	r.partial = 0
}

func (s *state) delReplica(block BlockID, site SiteID) {
	i := s.findReplica(block, site)
	if i == 0 {
		return
	}
	s.account(s.replicas.at(i), -1)
	r := *s.replicas.at(i)
	b := s.blocks.mut(int32(block), s.gen)
	if b.repHead == i {
		b.repHead = r.nextInBlock
	} else {
		for j := b.repHead; j != 0; j = s.replicas.at(j).nextInBlock {
			if s.replicas.at(j).nextInBlock == i {
				s.replicas.mut(j, s.gen).nextInBlock = r.nextInBlock
				break
			}
		}
	}
	if r.prevAtSite != 0 {
		s.replicas.mut(r.prevAtSite, s.gen).nextAtSite = r.nextAtSite
	} else {
		s.sites[site].repHead = r.nextAtSite
	}
	if r.nextAtSite != 0 {
		s.replicas.mut(r.nextAtSite, s.gen).prevAtSite = r.prevAtSite
	}
	if r.partial != 0 {
		*s.partials.mut(r.partial, s.gen) = partialRec{nextFree: s.freePartial}
		s.freePartial = r.partial
	}
	*s.replicas.mut(i, s.gen) = replicaRec{nextInBlock: s.freeReplica}
	s.freeReplica = i
	s.sites[site].replicas--
	s.numReplicas--
}

// putBlockBytes adds a new block during the load: like putBlock, but the
// name comes as bytes copied straight into the arena.
func (s *state) putBlockBytes(id BlockID, ds DatasetID, name []byte, size int64, numFiles int32, open bool, lastUpdate int64) {
	b := s.blocks.grow(int32(id), s.gen)
	off := uint32(len(s.blockNames.b))
	s.blockNames.b = append(s.blockNames.b, name...)
	*b = blockRec{dataset: ds, nameOff: off, nameLen: uint8(len(name)), size: size, numFiles: numFiles,
		lastUpdate: uint32(lastUpdate), flags: flagExists}
	if open {
		b.flags |= flagOpen
	}
	d := s.datasets.mut(int32(ds), s.gen)
	b.next, d.blockHead = d.blockHead, int32(id)
	d.numBlocks++
	d.size += size
	d.numFiles += numFiles
}
