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

// TestInventoryStreamByteOrder: both dialects stream a site's files in
// byte order (upper case before lower, '-' before '/'), the order the
// spool sorts the listing in; files of replicas elsewhere are not there,
// and states follow the replica.
func TestInventoryStreamByteOrder(t *testing.T) {
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
		site, _ := st.Snapshot().SiteByName("T2_A")
		s, err := consistency.OpenInventoryStream(ctx, d, site.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var got, states []string
		for s.Next() {
			got = append(got, string(s.Rec().LFN))
			states = append(states, map[uint8]string{consistency.StatePresent: "p", consistency.StateIncoming: "i", consistency.StateDeleting: "d"}[s.Rec().State])
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
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
	})
}
