package inventory

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
)

// ErrBuiltInMemory is returned by Write on a store made by a Builder.
var ErrBuiltInMemory = errors.New("this inventory was built in memory for a benchmark and is read-only")

// Builder makes a store straight in memory, the way Load does from the
// database, for scaling benchmarks whose inventories are too large to
// write to a database first (10x CMS is 100 M block replicas). The store
// it returns serves snapshots like any other but refuses writes: nothing
// backs it. Rows arrive parents first (sites, groups, datasets before
// their blocks and replicas), as the loader reads them.
type Builder struct {
	s       *Store
	st      *state
	n       *names
	oldGC   int
	done    bool
	partIDs map[string]PartitionID
}

// NewBuilder starts an in-memory store with the given partition
// definitions (DefaultPartitions when nil). d is the database the store
// hands to components that keep their own tables (requests, locks); the
// inventory is never written to it.
func NewBuilder(d *db.DB, log *logrus.Entry, defs []PartitionDef) (*Builder, error) {
	if defs == nil {
		defs = DefaultPartitions()
	}
	s := &Store{db: d, log: log, w: newState(), names: newNames(), nextFile: 1, memoryOnly: true}
	b := &Builder{s: s, st: s.w, n: s.names, partIDs: map[string]PartitionID{}}
	for i, def := range defs {
		if err := CheckPartitionName(def.Name); err != nil {
			return nil, err
		}
		id := PartitionID(i + 1)
		b.partIDs[def.Name] = id
		UpsertPartition{Partition{ID: id, Name: def.Name}}.apply(b.st, b.n)
	}
	for _, def := range defs {
		p := &b.st.parts[b.partIDs[def.Name]]
		p.match = def.Match
		for _, sub := range def.Subs {
			sid, ok := b.partIDs[sub]
			if !ok {
				return nil, fmt.Errorf("partition %q: unknown sub-partition %q", def.Name, sub)
			}
			p.subs = append(p.subs, sid)
		}
	}
	// As in Load: the working set is allocated once and kept.
	b.oldGC = debug.SetGCPercent(400)
	return b, nil
}

// Site adds a site.
func (b *Builder) Site(v Site) {
	b.n.sites[v.Name] = v.ID
	b.st.putSite(v.ID, v)
}

// Group adds a group.
func (b *Builder) Group(v Group) {
	b.n.groups[v.Name] = v.ID
	b.st.putGroup(v.ID, v)
}

// Quota sets a site's quota in the named partition.
func (b *Builder) Quota(site SiteID, partition string, bytes int64) error {
	id, ok := b.partIDs[partition]
	if !ok {
		return fmt.Errorf("quota: unknown partition %q", partition)
	}
	b.st.setQuota(site, id, bytes)
	return nil
}

// Dataset adds a dataset (its derived fields are ignored).
func (b *Builder) Dataset(v Dataset) {
	b.n.putDataset(v.Name, v.ID)
	b.st.putDataset(v.ID, v, b.n.software(v.SoftwareVersion))
}

// Block adds a block of a dataset already added; name is copied.
func (b *Builder) Block(id BlockID, ds DatasetID, name []byte, size int64, numFiles int32, open bool, lastUpdate int64) {
	b.st.putBlockBytes(id, ds, name, size, numFiles, open, lastUpdate)
}

// DatasetReplica adds a dataset replica.
func (b *Builder) DatasetReplica(v DatasetReplica) { b.st.putDSReplica(v) }

// BlockReplica adds a block replica; (block, site) must be new.
func (b *Builder) BlockReplica(v BlockReplica) { b.st.putReplicaAt(v, 0) }

// Store finishes the build. The builder must not be used afterwards.
func (b *Builder) Store() *Store {
	if !b.done {
		b.done = true
		debug.SetGCPercent(b.oldGC)
		b.n.datasetOrder() // as Load: sorted once, before any reader
	}
	return b.s
}
