package detox

import (
	"time"

	"math"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// view is the replica subject policy lines are evaluated on: a dataset
// replica restricted to the block replicas still undecided in the current
// walk (one < 0), or a single block replica (one >= 0, used to find the
// blocks a block line matches).
type view struct {
	c   *cycle
	d   int32
	one int32
}

func (v *view) dr() *drec      { return &v.c.drs[v.d] }
func (v *view) info() *dsInfo  { return &v.c.ds[v.c.drs[v.d].ds] }
func (v *view) st() *siteState { return &v.c.sites[v.c.drs[v.d].site] }

// each calls f for every block replica the view covers, until f returns true.
func (v *view) each(f func(*brec) bool) bool {
	if v.one >= 0 {
		return f(&v.c.brs[v.one])
	}
	d := v.dr()
	for i := d.first; i < d.first+d.n; i++ {
		r := &v.c.brs[i]
		if r.flags&(brGone|brStripped) != 0 {
			continue
		}
		if f(r) {
			return true
		}
	}
	return false
}

func (v *view) size() int64 {
	var n int64
	v.each(func(r *brec) bool { n += r.size; return false })
	return n
}

func (v *view) lastBlockCreated() int64 {
	var t int64
	v.each(func(r *brec) bool { t = max(t, r.updated()); return false })
	return t
}

func (v *view) firstBlockCreated() int64 {
	t := int64(math.MaxInt64)
	v.each(func(r *brec) bool { t = min(t, r.updated()); return false })
	if t == math.MaxInt64 {
		return 0
	}
	return t
}

// sharesOwner reports whether a full copy has an owner among the view's
// block replicas.
func (v *view) sharesOwner(f *fullRep) bool {
	if len(f.owners) == 0 {
		return v.each(func(r *brec) bool { return r.groupID() == f.owner })
	}
	return v.each(func(r *brec) bool { return containsGroup(f.owners, r.groupID()) })
}

// fullCopies counts the dataset's full copies (excluding those this cycle
// broke) that pass keep.
func (v *view) fullCopies(keep func(*fullRep) bool) float64 {
	n := 0
	full := v.info().full
	for i := range full {
		if keep(&full[i]) {
			n++
		}
	}
	return float64(n)
}

// tapeCoverage codes.
const (
	tapeNone = iota
	tapePartial
	tapeFull
)

// The inventory's enum values are in the catalog's order except for the
// unknown value, which the inventory puts first.
var (
	siteStatusCodes = map[string]int{"UNKNOWN": int(inventory.SiteUnknown), "READY": int(inventory.SiteReady),
		"WAITROOM": int(inventory.SiteWaitroom), "MORGUE": int(inventory.SiteMorgue)}
	storageCodes = map[string]int{"UNKNOWN": int(inventory.StorageUnknown), "DISK": int(inventory.StorageDisk),
		"MSS": int(inventory.StorageMSS), "BUFFER": int(inventory.StorageBuffer)}
	datasetStatusCodes = map[string]int{"UNKNOWN": int(inventory.DatasetUnknown), "DELETED": int(inventory.DatasetDeleted),
		"DEPRECATED": int(inventory.DatasetDeprecated), "INVALID": int(inventory.DatasetInvalid),
		"PRODUCTION": int(inventory.DatasetProduction), "VALID": int(inventory.DatasetValid), "IGNORED": int(inventory.DatasetIgnored)}
	tapeCodes = map[string]int{"NONE": tapeNone, "PARTIAL": tapePartial, "FULL": tapeFull}
)

const bytesPerGB = 1e9

// usageRank is Dynamo's CMS formula (docs/detox.md): idle days minus
// accesses per GB; higher means less popular.
func usageRank(info *dsInfo, now int64) float64 {
	last := max(info.lastAccess, info.d.LastUpdate, info.maxBlockTime)
	idle := float64(now-last) / 86400
	gb := float64(info.d.Size) / bytesPerGB
	if gb <= 0 {
		return idle
	}
	return idle - float64(info.numAccess)/gb
}

// replicaBindings binds every replica-context variable. Attributes whose
// producer is not configured are bound too (they read zero); the load-time
// check (Sources.CheckProducers) refuses policies that use them.
func (c *cycle) replicaBindings() *policy.Bindings[*view] {
	b := policy.NewBindings[*view]()
	// Dataset.
	b.String("dataset.name", func(v *view) string { return v.info().d.Name }).
		Enum("dataset.status", func(v *view) int { return int(v.info().d.Status) }, datasetStatusCodes).
		Enum("dataset.on_tape", func(v *view) int {
			i := v.info()
			switch {
			case i.d.NumBlocks > 0 && i.tapeBlocks >= i.d.NumBlocks:
				return tapeFull
			case i.tapeBlocks > 0:
				return tapePartial
			}
			return tapeNone
		}, tapeCodes).
		Bool("dataset.tape_copy_requested", func(v *view) bool { return v.info().flags&dsTapeRequested != 0 }).
		Bool("dataset.unhandled_copy_exists", func(v *view) bool { return v.info().flags&dsUnhandled != 0 }).
		Bool("dataset.on_protected_site", func(v *view) bool { return v.info().flags&dsProtectedSite != 0 }).
		Bool("dataset.unknown_in_all_dbs", func(v *view) bool { return v.info().flags&dsUnknownCatalog != 0 }).
		Bool("dataset.is_latest_production_release", func(v *view) bool { return v.info().flags&dsLatestRelease != 0 }).
		Bytes("dataset.size", func(v *view) int64 { return v.info().d.Size }).
		Time("dataset.last_update", func(v *view) int64 { return v.info().d.LastUpdate }).
		Time("dataset.last_access", func(v *view) int64 { return v.info().lastAccess }).
		Number("dataset.num_full_disk_copy", func(v *view) float64 {
			return v.fullCopies(func(f *fullRep) bool { return f.disk && f.ready })
		}).
		Number("dataset.usage_rank", func(v *view) float64 { return v.info().rank }).
		Number("dataset.demand_rank", func(v *view) float64 { return v.info().demand }).
		String("dataset.release", func(v *view) string { return v.info().release })
	// Dataset replica.
	b.Bytes("replica.size", func(v *view) int64 { return v.size() }).
		Bool("replica.incomplete", func(v *view) bool {
			return v.each(func(r *brec) bool { return r.flags&brComplete == 0 })
		}).
		Time("replica.last_block_created", func(v *view) int64 { return v.lastBlockCreated() }).
		Time("replica.first_block_created", func(v *view) int64 { return v.firstBlockCreated() }).
		Number("replica.num_access", func(v *view) float64 { return float64(v.info().numAccess) }).
		Time("replica.last_used", func(v *view) int64 {
			d := v.dr()
			return max(v.lastBlockCreated(), v.c.localAccess[ReplicaKey{d.ds, v.st().site.ID}])
		}).
		Number("replica.num_full_disk_copy_common_owner", func(v *view) float64 {
			return v.fullCopies(func(f *fullRep) bool { return f.disk && f.ready && v.sharesOwner(f) })
		}).
		Number("replica.num_full_other_copy_common_owner", func(v *view) float64 {
			here := v.st().site.ID
			return v.fullCopies(func(f *fullRep) bool { return f.site != here && f.ready && v.sharesOwner(f) })
		}).
		Bool("replica.enforcer_protected", func(v *view) bool {
			return v.c.protectedEnf[ReplicaKey{v.dr().ds, v.st().site.ID}]
		})
	// Block replicas: OR over the view's block replicas.
	b.AnyBool("blockreplica.is_last_transfer_source", func(v *view, yield func(bool) bool) bool {
		ready := v.st().site.Status == inventory.SiteReady && v.st().site.StorageType == inventory.StorageDisk
		return v.each(func(r *brec) bool { return yield(v.c.lastTransferSource(r, ready)) })
	}).
		AnyTime("blockreplica.last_update", func(v *view, yield func(int64) bool) bool {
			return v.each(func(r *brec) bool { return yield(r.updated()) })
		}).
		AnyString("blockreplica.owner", func(v *view, yield func(string) bool) bool {
			return v.each(func(r *brec) bool { return yield(v.c.groups[r.group]) })
		}).
		AnyBool("blockreplica.is_locked", func(v *view, yield func(bool) bool) bool {
			return v.each(func(r *brec) bool { return yield(r.flags&brLocked != 0) })
		}).
		AnyNumber("blockreplica.num_full_disk_copy", func(v *view, yield func(float64) bool) bool {
			return v.each(func(r *brec) bool { return yield(float64(v.c.blkDisk[r.block])) })
		}).
		AnyBool("blockreplica.on_tape", func(v *view, yield func(bool) bool) bool {
			return v.each(func(r *brec) bool { return yield(v.c.blkFlags[r.block]&blkTape != 0) })
		}).
		AnyNumber("blockreplica.age_relative_to_newest", func(v *view, yield func(float64) bool) bool {
			newest := v.c.ds[v.dr().ds].maxBlockTime
			return v.each(func(r *brec) bool { return yield(float64(newest-r.updated()) / 86400) })
		})
	// The replica's site.
	b.String("site.name", func(v *view) string { return v.st().site.Name }).
		Enum("site.status", func(v *view) int { return int(v.st().site.Status) }, siteStatusCodes).
		Enum("site.storage_type", func(v *view) int { return int(v.st().site.StorageType) }, storageCodes)
	return b
}

// groupedReplicaBindings are replicaBindings with the dataset variables
// fixed when the cycle's records are built grouped by dataset in dsMemo,
// and the site's by site in siteMemo, so that a condition over one of them
// alone (a dataset name glob, a site name pattern) is evaluated once per
// dataset or site, not once per replica and re-evaluation. Both caches
// must be Reset before matching: dsMemo with the snapshot's dataset slots,
// siteMemo with the cycle's sites.
func (c *cycle) groupedReplicaBindings(dsMemo, siteMemo *policy.GroupCache) *policy.Bindings[*view] {
	return c.replicaBindings().
		Grouped(dsMemo, func(v *view) int32 { return int32(v.c.drs[v.d].ds) }, datasetConstants...).
		Grouped(siteMemo, func(v *view) int32 { return v.c.drs[v.d].site }, "site.name", "site.status", "site.storage_type")
}

// datasetConstants are the dataset variables no step of a cycle changes
// after build: the dataset record, its tape coverage, the producers' flags
// and figures, the usage rank. dataset.num_full_disk_copy is not one: the
// cycle's deletions break full copies.
var datasetConstants = []string{"dataset.name", "dataset.status", "dataset.on_tape",
	"dataset.tape_copy_requested", "dataset.unhandled_copy_exists", "dataset.on_protected_site",
	"dataset.unknown_in_all_dbs", "dataset.is_latest_production_release", "dataset.size",
	"dataset.last_update", "dataset.last_access", "dataset.usage_rank", "dataset.demand_rank",
	"dataset.release"}

// lastTransferSource: complete, no other complete copy on a READY disk
// site, and an incomplete copy exists elsewhere.
func (c *cycle) lastTransferSource(r *brec, hereReadyDisk bool) bool {
	if r.flags&brComplete == 0 || c.blkFlags[r.block]&blkIncomplete == 0 {
		return false
	}
	others := int(c.blkReadyDisk[r.block])
	if hereReadyDisk {
		others--
	}
	return others <= 0
}

// occupancy is the physical fraction of the quota; with no quota, +Inf when
// anything is stored (Dynamo's rule).
func (s *siteState) occupancy() float64 {
	if s.quota <= 0 {
		if s.used > 0 {
			return math.Inf(1)
		}
		return 0
	}
	return float64(s.used) / float64(s.quota)
}

func siteBindings() *policy.Bindings[*siteState] {
	b := policy.NewBindings[*siteState]()
	b.String("site.name", func(s *siteState) string { return s.site.Name }).
		Enum("site.status", func(s *siteState) int { return int(s.site.Status) }, siteStatusCodes).
		Enum("site.storage_type", func(s *siteState) int { return int(s.site.StorageType) }, storageCodes).
		Number("site.occupancy", func(s *siteState) float64 { return s.occupancy() }).
		Bytes("site.quota", func(s *siteState) int64 { return s.quota })
	return b
}

// PartitionDefs turns a partitions file into the inventory's partition
// definitions (membership predicates over ReplicaFacts), compiled at now.
func PartitionDefs(ps *policy.Partitions, now time.Time) ([]inventory.PartitionDef, error) {
	b := policy.NewBindings[*inventory.ReplicaFacts]()
	b.String("site.name", func(f *inventory.ReplicaFacts) string { return f.SiteName }).
		Enum("site.storage_type", func(f *inventory.ReplicaFacts) int { return int(f.SiteType) }, storageCodes).
		Enum("site.status", func(f *inventory.ReplicaFacts) int { return int(f.SiteStatus) }, siteStatusCodes).
		String("blockreplica.owner", func(f *inventory.ReplicaFacts) string {
			if f.GroupName == "" {
				return "None"
			}
			return f.GroupName
		}).
		String("dataset.name", func(f *inventory.ReplicaFacts) string { return f.DatasetName })
	var defs []inventory.PartitionDef
	for _, p := range ps.List {
		if p.Cond == nil {
			defs = append(defs, inventory.PartitionDef{Name: p.Name, Subs: p.Subs})
			continue
		}
		m, err := policy.Compile(p.Cond, b, now)
		if err != nil {
			return nil, err
		}
		defs = append(defs, inventory.PartitionDef{Name: p.Name, Match: m.Match})
	}
	return defs, nil
}
