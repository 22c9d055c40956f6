package tracker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// Requests delete through Detox's choke point: a last complete copy is
// refused with the reason, for a request as for Detox; an incomplete copy
// (a cancelled transfer's) is never a last copy and goes.
func TestDetoxChokePointKeepsLastCopies(t *testing.T) {
	ctx := context.Background()
	store, err := inventory.Load(ctx, testdb.SQLite(t), logging.Discard(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := inventory.DecodeInjectDoc(strings.NewReader(fixture))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Inject(ctx, time.Now(), doc); err != nil {
		t.Fatal(err)
	}
	snap := store.Snapshot()
	only := ref(t, snap, "/D/Only-v1/RAW#b0", "T2_A")
	complete := ref(t, snap, "/D/A-v1/RAW#b0", "T2_A")
	partial := ref(t, snap, "/D/A-v1/RAW#b0", "T2_B")
	c := DetoxChokePoint{Store: store}

	refused, err := c.Refusals(ctx, snap, []fileop.ReplicaRef{only, complete, partial})
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 2 || !strings.Contains(refused[only], "last") || !strings.Contains(refused[complete], "last") {
		t.Fatalf("refusals %v: want the two last complete copies refused", refused)
	}

	commit := func(ctx context.Context, fn func(*inventory.Txn) error) (inventory.WriteResult, error) {
		return store.Write(ctx, time.Now(), fn)
	}
	refused, err = c.Delete(ctx, commit, snap, []fileop.ReplicaRef{only, partial}, "request 1")
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || refused[only] == "" {
		t.Fatalf("delete refused %v, want only the last copy", refused)
	}
	after := store.Snapshot()
	if br, ok := after.BlockReplica(partial.Block, partial.Site); ok && !br.PendingDeletion {
		t.Errorf("the incomplete replica is still there and not pending deletion: %+v", br)
	}
	if br, ok := after.BlockReplica(only.Block, only.Site); !ok || br.PendingDeletion {
		t.Errorf("the last copy was touched: %+v %v", br, ok)
	}
}
