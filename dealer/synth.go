package dealer

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dynamo-go/dynamo/inventory"
)

// SyntheticInputs builds Dealer inputs over an inventory for benchmarks and
// demos, deterministically from seed: nRequests open copy requests (mostly
// one dataset to n copies over a site glob, some to listed sites, some
// several datasets, some a few blocks), accesses to about five times as many
// datasets, and Detox-like protection figures (every disk site with quota,
// its first 50 datasets as last copies). Nothing is written anywhere.
func SyntheticInputs(snap *inventory.Snapshot, nRequests int, seed uint64, now time.Time) Inputs {
	rng := rand.New(rand.NewPCG(seed, 0xdea1e7))
	nDS := int(snap.Counts().Datasets)
	var disk []inventory.Site
	for _, s := range snap.Sites() {
		if s.StorageType == inventory.StorageDisk {
			disk = append(disk, s)
		}
	}
	var in Inputs
	if nDS == 0 || len(disk) == 0 {
		return in
	}
	// pick returns a dataset that has at least one replica.
	pick := func() (inventory.Dataset, bool) {
		for range 20 {
			ds, ok := snap.Dataset(inventory.DatasetID(1 + rng.IntN(nDS)))
			if !ok {
				continue
			}
			for range snap.DatasetReplicas(ds.ID) {
				return ds, true
			}
		}
		return inventory.Dataset{}, false
	}
	for i := range nRequests {
		r := CopyRequest{ID: int64(i + 1), User: fmt.Sprintf("user%03d", rng.IntN(200)), Status: RequestNew}
		if rng.IntN(10) == 0 {
			r.Status = RequestActivated
		}
		ds, ok := pick()
		if !ok {
			continue
		}
		switch k := rng.IntN(10); {
		case k < 7:
			r.Items = []string{ds.Name}
		case k < 9:
			r.Items = []string{ds.Name}
			for range 1 + rng.IntN(3) {
				if o, ok := pick(); ok {
					r.Items = append(r.Items, o.Name)
				}
			}
		default:
			for b := range snap.Blocks(ds.ID) {
				r.Items = append(r.Items, snap.BlockFullName(b.ID))
				if len(r.Items) >= 1+rng.IntN(3) {
					break
				}
			}
		}
		if rng.IntN(10) < 7 {
			r.Sites = []string{"T2_*"}
			r.N = 1 + rng.IntN(2)
		} else {
			for range 1 + rng.IntN(3) {
				r.Sites = append(r.Sites, disk[rng.IntN(len(disk))].Name)
			}
		}
		in.Requests = append(in.Requests, r)
	}
	for range 5 * nRequests {
		if ds, ok := pick(); ok {
			in.Accesses = append(in.Accesses, DatasetAccess{Dataset: ds.Name, Count: 1 + rng.IntN(20),
				Time: now.Add(-time.Duration(rng.IntN(30*24)) * time.Hour).Unix()})
		}
	}
	in.Protection = &Protection{Cycle: 1, Fractions: map[string]float64{}, LastCopies: map[string][]string{}}
	for _, s := range disk {
		in.Protection.Fractions[s.Name] = rng.Float64() * 0.8
		n := 0
		for dr := range snap.DatasetReplicasAtSite(s.ID) {
			ds, _ := snap.Dataset(dr.Dataset)
			in.Protection.LastCopies[s.Name] = append(in.Protection.LastCopies[s.Name], ds.Name)
			if n++; n >= 50 {
				break
			}
		}
	}
	return in
}
