package inventory

// Validation of each update against the state a Txn sees. Every message
// names the object by name, not by id, so an operator can act on it.

func (u UpsertSite) check(t *Txn) error {
	if u.ID <= 0 || u.ID > MaxSites {
		return invalid("site %q: id %d out of range 1..%d", u.Name, u.ID, MaxSites)
	}
	if err := CheckSiteName(u.Name); err != nil {
		return invalid("%v", err)
	}
	if id, ok := t.SiteID(u.Name); ok && id != u.ID {
		return invalid("site %q already exists with id %d", u.Name, id)
	}
	if old, ok := t.site(u.ID); ok && old.Name != u.Name {
		return invalid("site id %d is %q; a site cannot be renamed to %q", u.ID, old.Name, u.Name)
	}
	if u.StorageType > StorageBuffer || u.Status > SiteMorgue {
		return invalid("site %q: bad storage type or status", u.Name)
	}
	return nil
}

func (u UpsertGroup) check(t *Txn) error {
	if u.ID <= 0 || u.ID > 1<<16-1 {
		return invalid("group %q: id %d out of range", u.Name, u.ID)
	}
	if err := CheckGroupName(u.Name); err != nil {
		return invalid("%v", err)
	}
	if id, ok := t.GroupID(u.Name); ok && id != u.ID {
		return invalid("group %q already exists with id %d", u.Name, id)
	}
	if u.Level > OwnBlock {
		return invalid("group %q: bad ownership level", u.Name)
	}
	return nil
}

func (u UpsertPartition) check(t *Txn) error {
	if u.ID <= 0 || u.ID > MaxPartitions {
		return invalid("partition %q: id %d out of range 1..%d (at most %d partitions)", u.Name, u.ID, MaxPartitions, MaxPartitions)
	}
	if err := CheckPartitionName(u.Name); err != nil {
		return invalid("%v", err)
	}
	if id, ok := t.PartitionID(u.Name); ok && id != u.ID {
		return invalid("partition %q already exists with id %d", u.Name, id)
	}
	return nil
}

func (u SetQuota) check(t *Txn) error {
	if !t.siteExists(u.Site) {
		return invalid("quota: no site with id %d", u.Site)
	}
	if !t.partitionExists(u.Partition) {
		return invalid("quota for site %s: no partition with id %d", t.siteName(u.Site), u.Partition)
	}
	if u.Bytes < 0 {
		return invalid("quota for site %s: negative (%d bytes)", t.siteName(u.Site), u.Bytes)
	}
	return nil
}

func (u UpsertDataset) check(t *Txn) error {
	if u.ID <= 0 {
		return invalid("dataset %q: bad id %d", u.Name, u.ID)
	}
	if err := CheckDatasetName(u.Name); err != nil {
		return invalid("%v", err)
	}
	if id, known := t.datasetIDAny(u.Name); known && id != u.ID {
		return invalid("dataset %q already has id %d", u.Name, id)
	}
	if int32(u.ID) < t.st.datasets.len() {
		if old := t.st.datasets.at(int32(u.ID)).name; old != "" && old != u.Name {
			return invalid("dataset id %d is %q; cannot rename it to %q", u.ID, old, u.Name)
		}
	}
	if u.LastUpdate < 0 {
		return invalid("dataset %s: negative last_update", u.Name)
	}
	if u.Status > DatasetIgnored || u.DataType > DataProduction {
		return invalid("dataset %s: bad status or data type", u.Name)
	}
	if len(u.SoftwareVersion) > 64 {
		return invalid("dataset %s: software version longer than 64 characters", u.Name)
	}
	return nil
}

// datasetIDAny returns the id reserved for name, existing or deleted.
func (t *Txn) datasetIDAny(name string) (DatasetID, bool) {
	if id, ok := t.datasets[name]; ok {
		return id, true
	}
	return t.n.dataset(name)
}

func (u DeleteDataset) check(t *Txn) error {
	if !t.datasetExists(u.ID) {
		return invalid("delete dataset: no dataset with id %d", u.ID)
	}
	return nil
}

func (u UpsertBlock) check(t *Txn) error {
	if u.ID <= 0 {
		return invalid("block %q: bad id %d", u.Name, u.ID)
	}
	if !t.datasetExists(u.Dataset) {
		return invalid("block %q: no dataset with id %d", u.Name, u.Dataset)
	}
	where := t.datasetName(u.Dataset) + "#" + u.Name
	if err := CheckBlockName(u.Name); err != nil {
		return invalid("block %s: %v", where, err)
	}
	if ds, ok := t.blockDataset(u.ID); ok {
		if ds != u.Dataset {
			return invalid("block %s: id %d belongs to another dataset", where, u.ID)
		}
		if b, _ := t.Block(u.ID); b.Name != u.Name {
			return invalid("block %s: id %d is block %q", where, u.ID, b.Name)
		}
	} else if id, ok := t.BlockID(u.Dataset, u.Name); ok && id != u.ID {
		return invalid("block %s already exists with id %d", where, id)
	}
	if u.Size < 0 || u.NumFiles < 0 {
		return invalid("block %s: negative size or file count", where)
	}
	if u.LastUpdate < 0 || u.LastUpdate > 1<<32-1 {
		return invalid("block %s: last_update %d out of range", where, u.LastUpdate)
	}
	return nil
}

func (u DeleteBlock) check(t *Txn) error {
	if !t.blockExists(u.ID) {
		return invalid("delete block: no block with id %d", u.ID)
	}
	return nil
}

func (u UpsertFiles) check(t *Txn) error {
	if !t.blockExists(u.Block) {
		return invalid("files: no block with id %d", u.Block)
	}
	seen := make(map[string]bool, len(u.Files))
	for _, f := range u.Files {
		if err := CheckLFN(f.LFN); err != nil {
			return invalid("block %s: %v", t.blockName(u.Block), err)
		}
		if seen[f.LFN] {
			return invalid("block %s: file %s listed twice", t.blockName(u.Block), f.LFN)
		}
		seen[f.LFN] = true
		if f.ID <= 0 {
			return invalid("file %s: bad id %d", f.LFN, f.ID)
		}
		if f.Size < 0 {
			return invalid("file %s: negative size %d", f.LFN, f.Size)
		}
		if err := CheckAdler32(f.Adler32); err != nil {
			return invalid("file %s: %v", f.LFN, err)
		}
	}
	return nil
}

func (u UpsertDatasetReplica) check(t *Txn) error {
	if !t.datasetExists(u.Dataset) {
		return invalid("dataset replica: no dataset with id %d", u.Dataset)
	}
	if !t.siteExists(u.Site) {
		return invalid("replica of %s: no site with id %d", t.datasetName(u.Dataset), u.Site)
	}
	if !t.groupExists(u.Group) {
		return invalid("replica of %s at %s: no group with id %d", t.datasetName(u.Dataset), t.siteName(u.Site), u.Group)
	}
	return nil
}

func (u DeleteDatasetReplica) check(t *Txn) error {
	if !t.dsReplicaExists(u.Dataset, u.Site) {
		return invalid("delete replica: %s has no replica at %s", t.datasetName(u.Dataset), t.siteName(u.Site))
	}
	return nil
}

func (u UpsertBlockReplica) check(t *Txn) error {
	ds, ok := t.blockDataset(u.Block)
	if !ok || !t.blockExists(u.Block) {
		return invalid("block replica: no block with id %d", u.Block)
	}
	where := t.blockName(u.Block) + " at " + t.siteName(u.Site)
	if !t.siteExists(u.Site) {
		return invalid("replica of %s: no site with id %d", t.blockName(u.Block), u.Site)
	}
	if !t.dsReplicaExists(ds, u.Site) {
		return invalid("replica of %s: the dataset has no replica at that site (add the dataset replica first)", where)
	}
	if !t.groupExists(u.Group) {
		return invalid("replica of %s: no group with id %d", where, u.Group)
	}
	b, _ := t.Block(u.Block)
	if u.Complete && (u.Size != b.Size || u.NumFiles != b.NumFiles) {
		return invalid("replica of %s: complete, but size %d/%d files differs from the block's %d/%d", where, u.Size, u.NumFiles, b.Size, b.NumFiles)
	}
	if u.Size < 0 || u.NumFiles < 0 || u.Size > b.Size || u.NumFiles > b.NumFiles {
		return invalid("replica of %s: size %d and %d files must be within the block's %d and %d", where, u.Size, u.NumFiles, b.Size, b.NumFiles)
	}
	if u.LastUpdate < 0 || u.LastUpdate > 1<<32-1 {
		return invalid("replica of %s: last_update %d out of range", where, u.LastUpdate)
	}
	return nil
}

func (u DeleteBlockReplica) check(t *Txn) error {
	if !t.replicaExists(u.Block, u.Site) {
		return invalid("delete replica: %s has no replica at %s", t.blockName(u.Block), t.siteName(u.Site))
	}
	return nil
}

func (u SetReplicaFiles) check(t *Txn) error {
	if !t.replicaExists(u.Block, u.Site) {
		return invalid("replica files: %s has no replica at %s", t.blockName(u.Block), t.siteName(u.Site))
	}
	return nil
}
