package policy

import (
	"slices"
	"strings"
)

// Type is the value type of a variable.
type Type uint8

// Variable types.
const (
	TypeString Type = iota + 1 // text; == and != take fnmatch globs, =~ a regex
	TypeNumber                 // float64
	TypeBytes                  // int64 bytes; right-hand sides may carry units (TB)
	TypeTime                   // int64 unix seconds; right-hand sides are time expressions
	TypeBool                   // used bare or with not
	TypeEnum                   // one of Variable.Enum, written as an upper-case constant
)

var typeNames = [...]string{"", "string", "number", "bytes", "time", "bool", "enum"}

// String returns the lower-case type name used in messages and docs.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// Scope says which object a variable describes.
type Scope uint8

// Variable scopes.
const (
	ScopeSite          Scope = iota + 1 // the site (of the replica, or being targeted)
	ScopeSitePartition                  // the (site, partition) pair: occupancy, quota
	ScopeDataset                        // the dataset of the replica
	ScopeReplica                        // the dataset replica
	ScopeBlockReplica                   // one block replica; OR over blocks on a dataset replica
	ScopeConst                          // always / never
)

var scopeNames = [...]string{"", "site", "sitepartition", "dataset", "replica", "blockreplica", "constant"}

// String returns the scope name used in messages and docs.
func (s Scope) String() string {
	if int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return "invalid"
}

// Context is the kind of object a whole condition is evaluated on; it
// decides which scopes may appear.
type Context uint8

// Condition contexts.
const (
	// ContextReplica: Detox rules and Order keys, partition definitions,
	// enforcer "replicas" conditions. The subject is a (dataset or block)
	// replica at a site.
	ContextReplica Context = iota + 1
	// ContextSite: Detox On/When/Until lines, Dealer and enforcer
	// destination/source conditions. The subject is a site in a partition.
	ContextSite
)

// String names the context for messages.
func (c Context) String() string {
	switch c {
	case ContextReplica:
		return "replica condition"
	case ContextSite:
		return "site condition"
	}
	return "invalid context"
}

// allows reports whether variables of scope s may be used in context c.
func (c Context) allows(s Scope) bool {
	switch s {
	case ScopeConst, ScopeSite:
		return true
	case ScopeSitePartition:
		return c == ContextSite
	case ScopeDataset, ScopeReplica, ScopeBlockReplica:
		return c == ContextReplica
	}
	return false
}

// Attribute producers. A producer computes attributes that are not plain
// inventory fields; Detox and the Dealer load exactly the producers a
// compiled policy reports through RequiredAttrs.
const (
	ProducerLocks         = "locks"          // detox_locks: locked block replicas
	ProducerAccesses      = "accesses"       // access history: last access, usage rank, access counts
	ProducerDemand        = "demand"         // global demand rank
	ProducerRelease       = "release"        // latest production release tagging
	ProducerProtectedSite = "protected_site" // datasets with a copy on a protected site
	ProducerCatalog       = "catalog"        // existence in the external dataset catalogs (DBS)
	ProducerTapeRequest   = "tape_request"   // pending tape copy requests
	ProducerUnhandledCopy = "unhandled_copy" // copy requests not yet served
	ProducerEnforcer      = "enforcer"       // replicas protected by enforcer rules
	ProducerRelativeAge   = "relative_age"   // block replica age relative to the newest block
	ProducerTape          = "tape"           // tape (MSS) replica coverage
	ProducerCopies        = "copies"         // copy counts; change while Detox deletes
	ProducerOccupancy     = "occupancy"      // partition occupancy and quota per site
)

// Variable describes one catalog entry.
type Variable struct {
	Name     string
	Type     Type
	Scope    Scope
	Enum     []string // allowed constants for TypeEnum, upper case
	Producer string   // attribute producer needed, "" for plain inventory fields
	Doc      string   // one-line meaning
}

// Enum value sets, in catalog order (Value.Enum indexes them). Callers must
// not modify them.
var (
	DatasetStatuses = []string{"UNKNOWN", "DELETED", "DEPRECATED", "INVALID", "PRODUCTION", "VALID", "IGNORED"}
	TapeCoverages   = []string{"NONE", "PARTIAL", "FULL"}
	SiteStatuses    = []string{"READY", "WAITROOM", "MORGUE", "UNKNOWN"}
	StorageTypes    = []string{"DISK", "MSS", "BUFFER", "UNKNOWN"}
)

// catalog is every variable Dynamo's lib/policy/variables.py lists, plus
// replica.last_used from the older lib/detox/variables.py. Sorted by name.
var catalog = []Variable{
	{"always", TypeBool, ScopeConst, nil, "", "constant true"},
	{"blockreplica.age_relative_to_newest", TypeNumber, ScopeBlockReplica, nil, ProducerRelativeAge, "age of the block replica relative to the newest block of the dataset replica"},
	{"blockreplica.is_last_transfer_source", TypeBool, ScopeBlockReplica, nil, ProducerCopies, "complete, no other complete copy on a READY disk site, and an incomplete copy exists elsewhere"},
	{"blockreplica.is_locked", TypeBool, ScopeBlockReplica, nil, ProducerLocks, "the block replica is locked (detox locks)"},
	{"blockreplica.last_update", TypeTime, ScopeBlockReplica, nil, "", "last update of the block replica"},
	{"blockreplica.num_full_disk_copy", TypeNumber, ScopeBlockReplica, nil, ProducerCopies, "number of complete replicas of the block"},
	{"blockreplica.on_tape", TypeBool, ScopeBlockReplica, nil, ProducerTape, "a complete tape (MSS) replica of the block exists"},
	{"blockreplica.owner", TypeString, ScopeBlockReplica, nil, "", "owning group name; None for the null group"},
	{"dataset.demand_rank", TypeNumber, ScopeDataset, nil, ProducerDemand, "global demand rank"},
	{"dataset.is_latest_production_release", TypeBool, ScopeDataset, nil, ProducerRelease, "the dataset was made with the latest production release"},
	{"dataset.last_access", TypeTime, ScopeDataset, nil, ProducerAccesses, "last access to the dataset (0 if never)"},
	{"dataset.last_update", TypeTime, ScopeDataset, nil, "", "last update of the dataset"},
	{"dataset.name", TypeString, ScopeDataset, nil, "", "dataset name (/A/B/C in CMS)"},
	{"dataset.num_full_disk_copy", TypeNumber, ScopeDataset, nil, ProducerCopies, "full replicas on READY disk sites"},
	{"dataset.on_protected_site", TypeBool, ScopeDataset, nil, ProducerProtectedSite, "a replica exists on a protected site"},
	{"dataset.on_tape", TypeEnum, ScopeDataset, TapeCoverages, ProducerTape, "tape coverage of the dataset"},
	{"dataset.release", TypeString, ScopeDataset, nil, "", "software release X_Y_Z[_suffix]"},
	{"dataset.size", TypeBytes, ScopeDataset, nil, "", "dataset size"},
	{"dataset.status", TypeEnum, ScopeDataset, DatasetStatuses, "", "dataset status"},
	{"dataset.tape_copy_requested", TypeBool, ScopeDataset, nil, ProducerTapeRequest, "a tape copy has been requested"},
	{"dataset.unhandled_copy_exists", TypeBool, ScopeDataset, nil, ProducerUnhandledCopy, "a copy request for the dataset is not yet served"},
	{"dataset.unknown_in_all_dbs", TypeBool, ScopeDataset, nil, ProducerCatalog, "the dataset is unknown to every external catalog"},
	{"dataset.usage_rank", TypeNumber, ScopeDataset, nil, ProducerAccesses, "global usage rank (idle days minus accesses per GB; higher is less popular)"},
	{"never", TypeBool, ScopeConst, nil, "", "constant false"},
	{"replica.enforcer_protected", TypeBool, ScopeReplica, nil, ProducerEnforcer, "protected by an enforcer rule with protect: true"},
	{"replica.first_block_created", TypeTime, ScopeReplica, nil, "", "earliest block replica last_update"},
	{"replica.incomplete", TypeBool, ScopeReplica, nil, "", "some block replica is incomplete"},
	{"replica.last_block_created", TypeTime, ScopeReplica, nil, "", "latest block replica last_update"},
	{"replica.last_used", TypeTime, ScopeReplica, nil, ProducerAccesses, "max(last_block_created, last local access)"},
	{"replica.num_access", TypeNumber, ScopeReplica, nil, ProducerAccesses, "number of accesses"},
	{"replica.num_full_disk_copy_common_owner", TypeNumber, ScopeReplica, nil, ProducerCopies, "full replicas on READY disk sites sharing an owner (this one included)"},
	{"replica.num_full_other_copy_common_owner", TypeNumber, ScopeReplica, nil, ProducerCopies, "full replicas at other READY sites (any storage) sharing an owner"},
	{"replica.size", TypeBytes, ScopeReplica, nil, "", "physical size of the replica"},
	{"site.name", TypeString, ScopeSite, nil, "", "site name"},
	{"site.occupancy", TypeNumber, ScopeSitePartition, nil, ProducerOccupancy, "physical occupancy fraction of the partition quota at the site"},
	{"site.quota", TypeBytes, ScopeSitePartition, nil, ProducerOccupancy, "partition quota at the site"},
	{"site.status", TypeEnum, ScopeSite, SiteStatuses, "", "site status"},
	{"site.storage_type", TypeEnum, ScopeSite, StorageTypes, "", "site storage type"},
}

// aliases maps legacy names found in older CMS campaign files to the modern
// variable with the same meaning when evaluated on a dataset replica (block
// variables are ORed over the replica's blocks).
var aliases = map[string]string{
	"replica.has_locked_block": "blockreplica.is_locked", // "some block of the replica is locked"
	"replica.group_name":       "blockreplica.owner",     // "some block of the replica is owned by"
	"replica.owners":           "blockreplica.owner",
}

var catalogByName = func() map[string]*Variable {
	m := make(map[string]*Variable, len(catalog))
	for i := range catalog {
		m[catalog[i].Name] = &catalog[i]
	}
	return m
}()

// Lookup returns the catalog entry for name, resolving legacy aliases.
func Lookup(name string) (*Variable, bool) {
	if a, ok := aliases[name]; ok {
		name = a
	}
	v, ok := catalogByName[name]
	return v, ok
}

// Variables returns a copy of the catalog sorted by name.
func Variables() []Variable { return slices.Clone(catalog) }

// Aliases returns the legacy alias table (alias -> modern name).
func Aliases() map[string]string {
	m := make(map[string]string, len(aliases))
	for k, v := range aliases {
		m[k] = v
	}
	return m
}

// enumIndex returns the index of value (case-insensitive) in v.Enum, or -1.
func (v *Variable) enumIndex(value string) int {
	for i, e := range v.Enum {
		if strings.EqualFold(e, value) {
			return i
		}
	}
	return -1
}

// variableNames lists every name usable in ctx, for typo hints.
func variableNames(ctx Context) []string {
	var out []string
	for _, v := range catalog {
		if ctx == 0 || ctx.allows(v.Scope) {
			out = append(out, v.Name)
		}
	}
	return out
}
