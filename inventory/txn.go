package inventory

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/jmoiron/sqlx"
)

// ErrInvalid marks updates rejected by validation; nothing was written.
var ErrInvalid = errors.New("invalid update")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Txn is one write being built. It reads the writer's current state plus
// what it has added itself, allocates ids for new objects, and collects
// validated updates. It is only valid inside the function passed to
// Store.Write and must not be used from other goroutines.
type Txn struct {
	st *state
	n  *names
	at time.Time

	updates []Update
	execs   []func(ctx context.Context, tx *sqlx.Tx) error

	nextSite    SiteID
	nextGroup   GroupID
	nextPart    PartitionID
	nextDataset DatasetID
	nextBlock   BlockID
	nextFile    FileID

	sites      map[string]SiteID
	siteRecs   map[SiteID]Site
	groups     map[string]GroupID
	groupIDs   map[GroupID]bool
	parts      map[string]PartitionID
	partIDs    map[PartitionID]bool
	datasets   map[string]DatasetID
	dsIDs      map[DatasetID]bool
	blocks     map[blockKey]BlockID
	blockDS    map[BlockID]DatasetID
	blockSize  map[BlockID]Block
	dsReplicas map[[2]int32]bool
	replicas   map[[2]int32]bool

	deletedDatasets map[DatasetID]bool
	deletedBlocks   map[BlockID]bool

	// Reverse indexes of what this Txn added, so that naming an object in
	// a message or listing a dataset's new blocks costs O(1) per call, not
	// a scan of everything the Txn holds (which made large injections
	// quadratic).
	dsNames   map[DatasetID]string
	newBlocks map[DatasetID][]string

	progress func(Progress)
}

// Progress reports how far a large write has got: Phase is "build" while
// the updates are being validated, "write" while they are persisted.
// Done and Total count datasets in "build" (Total 0 when unknown) and
// updates in "write".
type Progress struct {
	Phase       string
	Done, Total int
}

// OnProgress asks Write to report how far persisting this Txn's updates has
// got. fn runs on the writer's goroutine, inside the database transaction:
// it must be quick and must not call the store.
func (t *Txn) OnProgress(fn func(Progress)) { t.progress = fn }

type blockKey struct {
	ds   DatasetID
	name string
}

func newTxn(st *state, n *names, at time.Time, nextFile FileID) *Txn {
	return &Txn{
		st: st, n: n, at: at,
		nextSite:    SiteID(len(st.sites)),
		nextGroup:   GroupID(len(st.groups)),
		nextPart:    PartitionID(len(st.parts)),
		nextDataset: DatasetID(st.datasets.len()),
		nextBlock:   BlockID(st.blocks.len()),
		nextFile:    nextFile,
		sites:       map[string]SiteID{}, siteRecs: map[SiteID]Site{},
		groups: map[string]GroupID{}, groupIDs: map[GroupID]bool{},
		parts: map[string]PartitionID{}, partIDs: map[PartitionID]bool{},
		datasets: map[string]DatasetID{}, dsIDs: map[DatasetID]bool{},
		blocks: map[blockKey]BlockID{}, blockDS: map[BlockID]DatasetID{}, blockSize: map[BlockID]Block{},
		dsReplicas: map[[2]int32]bool{}, replicas: map[[2]int32]bool{},
		deletedDatasets: map[DatasetID]bool{}, deletedBlocks: map[BlockID]bool{},
		dsNames: map[DatasetID]string{}, newBlocks: map[DatasetID][]string{},
	}
}

// At is the time of this write; updates use it as their last_update.
func (t *Txn) At() time.Time { return t.at }

// Updates returns the updates collected so far.
func (t *Txn) Updates() []Update { return t.updates }

// Exec registers fn to run inside the database transaction of this write,
// after the updates are persisted and before the commit. It lets another
// component (the file-operation daemon moving a subscription to done, Detox
// queueing deletions) change its own tables atomically with the inventory:
// both commit or neither does. If fn fails the transaction rolls back, Write
// returns fn's error and memory is unchanged. fn may run more than once (the
// transaction is retried on deadlocks and SQLite busy), so it must depend
// only on tx and its own inputs. fn must not touch inventory tables: the
// in-memory state would not follow. A write with Exec functions but no
// updates still runs its transaction (and adds no change-log row).
func (t *Txn) Exec(fn func(ctx context.Context, tx *sqlx.Tx) error) {
	t.execs = append(t.execs, fn)
}

// Add validates the updates against the current state and what this Txn
// added before, and queues them. On error nothing of this call is queued.
func (t *Txn) Add(us ...Update) error {
	for _, u := range us {
		if err := u.check(t); err != nil {
			return err
		}
		t.note(u)
		t.updates = append(t.updates, u)
	}
	return nil
}

// note records what u creates or deletes so later checks in the same Txn
// see it.
func (t *Txn) note(u Update) {
	switch v := u.(type) {
	case UpsertSite:
		t.sites[v.Name] = v.ID
		t.siteRecs[v.ID] = v.Site
	case UpsertGroup:
		t.groups[v.Name], t.groupIDs[v.ID] = v.ID, true
	case UpsertPartition:
		t.parts[v.Name], t.partIDs[v.ID] = v.ID, true
	case UpsertDataset:
		t.datasets[v.Name], t.dsIDs[v.ID] = v.ID, true
		t.dsNames[v.ID] = v.Name
		delete(t.deletedDatasets, v.ID)
	case DeleteDataset:
		t.deletedDatasets[v.ID] = true
	case UpsertBlock:
		k := blockKey{v.Dataset, v.Name}
		if _, ok := t.blocks[k]; !ok {
			t.newBlocks[v.Dataset] = append(t.newBlocks[v.Dataset], v.Name)
		}
		t.blocks[k], t.blockDS[v.ID] = v.ID, v.Dataset
		t.blockSize[v.ID] = v.Block
		delete(t.deletedBlocks, v.ID)
	case DeleteBlock:
		t.deletedBlocks[v.ID] = true
	case UpsertDatasetReplica:
		t.dsReplicas[[2]int32{int32(v.Dataset), int32(v.Site)}] = true
	case DeleteDatasetReplica:
		t.dsReplicas[[2]int32{int32(v.Dataset), int32(v.Site)}] = false
	case UpsertBlockReplica:
		t.replicas[[2]int32{int32(v.Block), int32(v.Site)}] = true
	case DeleteBlockReplica:
		t.replicas[[2]int32{int32(v.Block), int32(v.Site)}] = false
	}
}

// ---- lookups that see this Txn's own additions ----

// SiteID returns the id of the named site.
func (t *Txn) SiteID(name string) (SiteID, bool) {
	if id, ok := t.sites[name]; ok {
		return id, true
	}
	id, ok := t.n.site(name)
	return id, ok && t.siteExists(id)
}

// GroupID returns the id of the named group ("" is the null group).
func (t *Txn) GroupID(name string) (GroupID, bool) {
	if id, ok := t.groups[name]; ok {
		return id, true
	}
	id, ok := t.n.group(name)
	return id, ok && t.groupExists(id)
}

// PartitionID returns the id of the named partition.
func (t *Txn) PartitionID(name string) (PartitionID, bool) {
	if id, ok := t.parts[name]; ok {
		return id, true
	}
	id, ok := t.n.partition(name)
	return id, ok && int(id) < len(t.st.parts) && t.st.parts[id].exists
}

// DatasetID returns the id of the named dataset, and whether it exists. A
// deleted dataset's id is returned with false: reuse it to re-create it.
func (t *Txn) DatasetID(name string) (DatasetID, bool) {
	if id, ok := t.datasets[name]; ok {
		return id, !t.deletedDatasets[id]
	}
	id, ok := t.n.dataset(name)
	if !ok {
		return 0, false
	}
	return id, t.datasetExists(id)
}

// BlockID returns the id of the named block of dataset ds.
func (t *Txn) BlockID(ds DatasetID, name string) (BlockID, bool) {
	if id, ok := t.blocks[blockKey{ds, name}]; ok {
		return id, t.blockExists(id)
	}
	if !t.datasetExists(ds) || int32(ds) >= t.st.datasets.len() {
		return 0, false
	}
	id := t.st.findBlock(ds, name)
	return id, id != 0 && t.blockExists(id)
}

// Block returns the block as this Txn sees it.
func (t *Txn) Block(id BlockID) (Block, bool) {
	if b, ok := t.blockSize[id]; ok {
		return b, t.blockExists(id)
	}
	if !t.blockExists(id) {
		return Block{}, false
	}
	return blockView(t.st, id), true
}

// BlockReplica returns the current replica of block b at site, if any
// (replicas added by this Txn are not visible here).
func (t *Txn) BlockReplica(b BlockID, site SiteID) (BlockReplica, bool) {
	if !t.blockExists(b) || int32(b) >= t.st.blocks.len() {
		return BlockReplica{}, false
	}
	i := t.st.findReplica(b, site)
	if i == 0 {
		return BlockReplica{}, false
	}
	return replicaView(t.st, i), true
}

// Site returns the site with the given id as this Txn sees it (its own
// site updates included).
func (t *Txn) Site(id SiteID) (Site, bool) { return t.site(id) }

// BlockReplicas yields the current replicas of block b (like
// BlockReplica, changes made by this Txn are not visible). With Site and
// BlockReplica it makes a Txn a CopyReader, so a write can consult the
// DeletionGuard on the state it is about to change.
func (t *Txn) BlockReplicas(b BlockID) iter.Seq[BlockReplica] {
	return func(yield func(BlockReplica) bool) {
		if !t.blockExists(b) || int32(b) >= t.st.blocks.len() {
			return
		}
		for i := t.st.blocks.at(int32(b)).repHead; i != 0; i = t.st.replicas.at(i).nextInBlock {
			if !yield(replicaView(t.st, i)) {
				return
			}
		}
	}
}

var _ CopyReader = (*Txn)(nil)

// HasBlockReplica reports whether block b has a replica at site as this
// Txn sees it: replicas it added or deleted count.
func (t *Txn) HasBlockReplica(b BlockID, site SiteID) bool { return t.replicaExists(b, site) }

// NewSiteID and its siblings allocate ids for objects this Txn creates.
func (t *Txn) NewSiteID() SiteID           { t.nextSite++; return t.nextSite - 1 }
func (t *Txn) NewGroupID() GroupID         { t.nextGroup++; return t.nextGroup - 1 }
func (t *Txn) NewPartitionID() PartitionID { t.nextPart++; return t.nextPart - 1 }
func (t *Txn) NewDatasetID() DatasetID     { t.nextDataset++; return t.nextDataset - 1 }
func (t *Txn) NewBlockID() BlockID         { t.nextBlock++; return t.nextBlock - 1 }
func (t *Txn) NewFileID() FileID           { t.nextFile++; return t.nextFile - 1 }

// ---- existence as this Txn sees it ----

func (t *Txn) siteExists(id SiteID) bool {
	if _, ok := t.siteRecs[id]; ok {
		return true
	}
	return id > 0 && int(id) < len(t.st.sites) && t.st.sites[id].exists
}

func (t *Txn) site(id SiteID) (Site, bool) {
	if s, ok := t.siteRecs[id]; ok {
		return s, true
	}
	if !t.siteExists(id) {
		return Site{}, false
	}
	return siteView(t.st, id), true
}

func (t *Txn) groupExists(id GroupID) bool {
	return id == NoGroup || t.groupIDs[id] || int(id) < len(t.st.groups) && t.st.groups[id].exists
}

func (t *Txn) partitionExists(id PartitionID) bool {
	return t.partIDs[id] || id > 0 && int(id) < len(t.st.parts) && t.st.parts[id].exists
}

func (t *Txn) datasetExists(id DatasetID) bool {
	if t.deletedDatasets[id] {
		return false
	}
	return t.dsIDs[id] || id > 0 && int32(id) < t.st.datasets.len() && t.st.datasets.at(int32(id)).flags&flagExists != 0
}

func (t *Txn) blockDataset(id BlockID) (DatasetID, bool) {
	if ds, ok := t.blockDS[id]; ok {
		return ds, true
	}
	if id > 0 && int32(id) < t.st.blocks.len() && t.st.blocks.at(int32(id)).flags&flagExists != 0 {
		return t.st.blocks.at(int32(id)).dataset, true
	}
	return 0, false
}

func (t *Txn) blockExists(id BlockID) bool {
	if t.deletedBlocks[id] {
		return false
	}
	ds, ok := t.blockDataset(id)
	return ok && t.datasetExists(ds)
}

func (t *Txn) dsReplicaExists(ds DatasetID, site SiteID) bool {
	if v, ok := t.dsReplicas[[2]int32{int32(ds), int32(site)}]; ok {
		return v && t.datasetExists(ds)
	}
	return t.datasetExists(ds) && int32(ds) < t.st.datasets.len() && t.st.findDSReplica(ds, site) != 0
}

func (t *Txn) replicaExists(b BlockID, site SiteID) bool {
	if v, ok := t.replicas[[2]int32{int32(b), int32(site)}]; ok {
		return v && t.blockExists(b)
	}
	return t.blockExists(b) && int32(b) < t.st.blocks.len() && t.st.findReplica(b, site) != 0
}

func (t *Txn) datasetName(id DatasetID) string {
	if n, ok := t.dsNames[id]; ok {
		return n
	}
	if int32(id) < t.st.datasets.len() {
		return t.st.datasets.at(int32(id)).name
	}
	return fmt.Sprintf("dataset#%d", id)
}

func (t *Txn) siteName(id SiteID) string {
	if s, ok := t.site(id); ok {
		return s.Name
	}
	return fmt.Sprintf("site#%d", id)
}

func (t *Txn) blockName(id BlockID) string {
	b, ok := t.Block(id)
	if !ok {
		return fmt.Sprintf("block#%d", id)
	}
	return t.datasetName(b.Dataset) + "#" + b.Name
}
