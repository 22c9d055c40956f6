package inventory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// datasetsByNameDirect is what DatasetsByName must yield, computed from
// the snapshot's own list of datasets.
func datasetsByNameDirect(snap *inventory.Snapshot, prefix, after string, keep func(string) bool) []string {
	var out []string
	for d := range snap.Datasets() {
		if strings.HasPrefix(d.Name, prefix) && d.Name > after && (keep == nil || keep(d.Name)) {
			out = append(out, d.Name)
		}
	}
	slices.Sort(out)
	return out
}

func datasetsByName(snap *inventory.Snapshot, prefix, after string, keep func(string) bool) []string {
	var out []string
	for d := range snap.DatasetsByName(prefix, after, keep) {
		if got, ok := snap.DatasetByName(d.Name); !ok || got != d {
			panic(fmt.Sprintf("yielded %+v, the snapshot holds %+v", d, got))
		}
		out = append(out, d.Name)
	}
	return out
}

// TestDatasetsByNameFollowsWrites checks the name order against a direct
// computation after a load, after datasets are created in several writes
// (merged into the order, not sorted again) and deleted, on new and old
// snapshots alike.
func TestDatasetsByNameFollowsWrites(t *testing.T) {
	d := testdb.SQLite(t)
	rng := rand.New(rand.NewPCG(7, 8))
	primaries := []string{"A", "B", "Bb", "C", "Zed"}
	var created []string
	injectSome := func(s *inventory.Store, n int) {
		var ds []string
		for range n {
			name := fmt.Sprintf("/%s/R%d-v%d/%s", primaries[rng.IntN(len(primaries))], rng.IntN(1000), rng.IntN(3), []string{"AOD", "RAW", "MINIAOD"}[rng.IntN(3)])
			if slices.Contains(created, name) {
				continue
			}
			created = append(created, name)
			ds = append(ds, fmt.Sprintf(`{"name": %q, "status": "valid", "data_type": "mc"}`, name))
		}
		inject(t, s, `{"datasets": [`+strings.Join(ds, ",")+`]}`)
	}
	injectSome(load(t, d), 60)
	s := load(t, d) // the order comes from the load this time
	check := func(when string, snap *inventory.Snapshot) {
		t.Helper()
		tierAOD := func(name string) bool { return strings.HasSuffix(name, "/AOD") }
		afters := []string{"", "/B", "/B/R5", "/C/R999-v9/ZZZ", "~"}
		afters = append(afters, created[rng.IntN(len(created))], created[rng.IntN(len(created))])
		for _, prefix := range []string{"", "/", "/B", "/Bb/", "/Zed/R1", "/Q"} {
			for _, after := range afters {
				for _, keep := range []func(string) bool{nil, tierAOD} {
					want := datasetsByNameDirect(snap, prefix, after, keep)
					if got := datasetsByName(snap, prefix, after, keep); !slices.Equal(got, want) {
						t.Fatalf("%s: prefix %q after %q filtered %v: got %d names %q, want %d %q", when, prefix, after, keep != nil, len(got), got, len(want), want)
					}
				}
			}
		}
	}
	check("after load", s.Snapshot())
	before := s.Snapshot()
	beforeNames := datasetsByNameDirect(before, "", "", nil)
	for i := range 3 {
		injectSome(s, 15)
		check(fmt.Sprintf("after write %d", i), s.Snapshot())
	}
	var del []inventory.DatasetID
	for _, name := range created[:10] {
		ds, _ := s.Snapshot().DatasetByName(name)
		del = append(del, ds.ID)
	}
	if _, err := s.Write(context.Background(), t0, func(tx *inventory.Txn) error {
		for _, id := range del {
			if err := tx.Add(inventory.DeleteDataset{ID: id}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check("after deletions", s.Snapshot())
	check("old snapshot", before)
	if got := datasetsByName(before, "", "", nil); !slices.Equal(got, beforeNames) {
		t.Errorf("the snapshot taken before the writes lists %d datasets, it held %d", len(got), len(beforeNames))
	}
}
