// Package partitions turns a Dynamo partitions file ("Name: condition" and
// "Name: [Sub1, Sub2]" lines, in the policy language) into the inventory's
// partition definitions. It is the one place where the inventory meets the
// policy language, so that package inventory itself stays free of it.
package partitions

import (
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// Bindings binds the variables a partition condition may use to the facts
// the inventory keeps about a block replica.
func Bindings() *policy.Bindings[*inventory.ReplicaFacts] {
	storage := map[string]int{"DISK": int(inventory.StorageDisk), "MSS": int(inventory.StorageMSS),
		"BUFFER": int(inventory.StorageBuffer), "UNKNOWN": int(inventory.StorageUnknown)}
	status := map[string]int{"READY": int(inventory.SiteReady), "WAITROOM": int(inventory.SiteWaitroom),
		"MORGUE": int(inventory.SiteMorgue), "UNKNOWN": int(inventory.SiteUnknown)}
	return policy.NewBindings[*inventory.ReplicaFacts]().
		String("blockreplica.owner", func(f *inventory.ReplicaFacts) string {
			if f.GroupName == "" {
				return "None" // the language's name for the null group
			}
			return f.GroupName
		}).
		String("dataset.name", func(f *inventory.ReplicaFacts) string { return f.DatasetName }).
		String("site.name", func(f *inventory.ReplicaFacts) string { return f.SiteName }).
		Enum("site.storage_type", func(f *inventory.ReplicaFacts) int { return int(f.SiteType) }, storage).
		Enum("site.status", func(f *inventory.ReplicaFacts) int { return int(f.SiteStatus) }, status)
}

// Load reads a partitions file and compiles every partition in it. A
// condition using a variable the inventory does not keep per replica is an
// error naming the file, line and column.
func Load(path string, now time.Time) ([]inventory.PartitionDef, error) {
	ps, err := policy.LoadPartitions(path)
	if err != nil {
		return nil, err
	}
	return Compile(ps, now)
}

// Compile turns parsed partitions into definitions.
func Compile(ps *policy.Partitions, now time.Time) ([]inventory.PartitionDef, error) {
	b := Bindings()
	var defs []inventory.PartitionDef
	for _, p := range ps.List {
		if p.Cond == nil {
			// Super-partitions list their leaves: the inventory keeps one
			// level, the union of the leaves' memberships.
			var subs []string
			for _, leaf := range ps.Leaves(p.Name) {
				subs = append(subs, leaf.Name)
			}
			defs = append(defs, inventory.PartitionDef{Name: p.Name, Subs: subs})
			continue
		}
		m, err := policy.Compile(p.Cond, b, now)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: partition %s: %w", ps.File, p.Line, p.Name, err)
		}
		defs = append(defs, inventory.PartitionDef{Name: p.Name, Match: m.Match})
	}
	return defs, nil
}
