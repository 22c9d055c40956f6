package consistency_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// TestExtractExpected: on both dialects the inventory side comes out in
// byte order (upper case before lower, '-' before '/'), the order the
// spool sorts the listing in; files of replicas elsewhere are not there,
// states follow the replica (files an incomplete replica does not list
// yet are incoming), and replicas changed after the extraction are judged
// by the snapshot of the diff, not the one of the extraction.
func TestExtractExpected(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		st, err := inventory.Load(ctx, d, testLog(t), nil, time.Unix(1e9, 0))
		if err != nil {
			t.Fatal(err)
		}
		doc := `{
 "sites": [{"name": "T2_A", "storage_type": "disk", "status": "ready"}, {"name": "T2_B", "storage_type": "disk", "status": "ready"}],
 "groups": [{"name": "G", "olevel": "dataset"}],
 "datasets": [{"name": "/P/R-v1/AOD", "status": "valid", "data_type": "mc", "is_open": false,
   "blocks": [
     {"name": "b1", "files": [{"lfn": "/s/a/b", "size": 1}, {"lfn": "/s/B", "size": 1}, {"lfn": "/s/a-b", "size": 1}]},
     {"name": "b2", "files": [{"lfn": "/s/a", "size": 1}, {"lfn": "/s/Z/z", "size": 1}, {"lfn": "/s/_", "size": 1}]},
     {"name": "b3", "files": [{"lfn": "/s/elsewhere", "size": 1}]}]}],
 "dataset_replicas": [{"dataset": "/P/R-v1/AOD", "site": "T2_A", "group": "G", "growing": false, "blocks": ["b1"]},
                      {"dataset": "/P/R-v1/AOD", "site": "T2_B", "group": "G", "growing": false, "blocks": ["b3"]}],
 "block_replicas": [{"block": "/P/R-v1/AOD#b2", "site": "T2_A", "group": "G", "files": ["/s/a"]}]
}`
		idoc, err := inventory.DecodeInjectDoc(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Inject(ctx, time.Unix(1e9, 0), idoc); err != nil {
			t.Fatal(err)
		}
		snap := st.Snapshot()
		site, _ := snap.SiteByName("T2_A")
		// Budget 1 byte: every batch becomes its own run, and one block per
		// batch: the merge has runs to merge.
		x, err := consistency.ExtractExpected(ctx, d, snap, site.ID, t.TempDir(), consistency.ExtractOptions{Readers: 2, BatchBlocks: 1, Budget: 1})
		if err != nil {
			t.Fatal(err)
		}
		if x.Blocks != 2 || x.Files != 6 || len(x.Runs) != 2 {
			t.Fatalf("extracted %+v", x)
		}
		read := func(now *inventory.Snapshot) (got, states []string) {
			t.Helper()
			s, err := consistency.MergeExpected(x.Runs, now, site.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for s.Next() {
				got = append(got, string(s.Rec().LFN))
				states = append(states, map[uint8]string{consistency.StatePresent: "p", consistency.StateIncoming: "i", consistency.StateDeleting: "d"}[s.Rec().State])
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			return got, states
		}
		got, states := read(nil)
		want := []string{"/s/a", "/s/a/b", "/s/B", "/s/a-b", "/s/Z/z", "/s/_"}
		slices.Sort(want) // Go's string order is byte order
		if !slices.Equal(got, want) {
			t.Errorf("order %q, want %q", got, want)
		}
		// /s/a is listed in the incomplete replica of b2, /s/Z/z and /s/_ are not.
		wantStates := map[string]string{"/s/B": "p", "/s/Z/z": "i", "/s/_": "i", "/s/a": "p", "/s/a-b": "p", "/s/a/b": "p"}
		for i, n := range got {
			if states[i] != wantStates[n] {
				t.Errorf("%s: state %s, want %s", n, states[i], wantStates[n])
			}
		}

		// After the extraction b1's replica is marked for deletion and b2's
		// completes: against the newer snapshot, b1's files are no longer
		// expected and b2's are present with b2's new update time.
		b1, _ := snap.BlockByName("/P/R-v1/AOD#b1")
		b2, _ := snap.BlockByName("/P/R-v1/AOD#b2")
		r1, _ := snap.BlockReplica(b1.ID, site.ID)
		r2, _ := snap.BlockReplica(b2.ID, site.ID)
		r1.PendingDeletion = true
		r2.Complete, r2.NumFiles, r2.Size, r2.LastUpdate = true, 3, 3, 2e9
		if _, err := st.Write(ctx, time.Unix(2e9, 0), func(tx *inventory.Txn) error {
			if err := tx.Add(inventory.UpsertBlockReplica{BlockReplica: r1}); err != nil {
				return err
			}
			return tx.Add(inventory.UpsertBlockReplica{BlockReplica: r2})
		}); err != nil {
			t.Fatal(err)
		}
		got, states = read(st.Snapshot())
		wantStates = map[string]string{"/s/B": "d", "/s/a-b": "d", "/s/a/b": "d", "/s/Z/z": "p", "/s/_": "p", "/s/a": "p"}
		for i, n := range got {
			if states[i] != wantStates[n] {
				t.Errorf("after the change, %s: state %s, want %s", n, states[i], wantStates[n])
			}
		}
	})
}
