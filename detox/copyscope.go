package detox

// CopyScope is the view of the inventory the copy-counting and fullness
// variables (dataset.num_full_disk_copy,
// replica.num_full_disk_copy_common_owner,
// replica.num_full_other_copy_common_owner, blockreplica.num_full_disk_copy
// and whether a copy is full) are evaluated on. docs/policy-language.md
// states each variable under both scopes.
//
// The last-copy guard (inventory.DeletionGuard) is not a policy variable
// and always counts over the whole inventory, whatever the scope.
type CopyScope string

const (
	// CopyScopePartition is Dynamo's view: only the block replicas that
	// belong to the partition at the partition's target sites (On lines)
	// count. A copy at a site no On line matches, a block replica outside
	// the partition (for CMS partitions: without an owner, or owned by a
	// group of another partition) is not counted, and a dataset replica
	// with any block outside the partition is not full.
	CopyScopePartition CopyScope = "partition"
	// CopyScopeInventory counts every complete block replica at every
	// site, whatever its partition or owner.
	CopyScopeInventory CopyScope = "inventory"
)

func (s CopyScope) valid() bool {
	return s == "" || s == CopyScopePartition || s == CopyScopeInventory
}

// partition reports whether the scope is the partition's view (the
// default).
func (s CopyScope) partition() bool { return s != CopyScopeInventory }
