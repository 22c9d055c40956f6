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
	"github.com/dynamo-go/dynamo/registry"
)

// fixture: /D/A-v1/RAW (blocks b0, b1; 2 files each) complete at T2_A,
// b0 incomplete (1 of 2 files) at T2_B; /D/Only-v1/RAW complete at T2_A
// only, owned by DataOps.
const fixture = `{
 "sites": [
  {"name": "T2_A", "storage_type": "disk", "status": "ready"},
  {"name": "T2_B", "storage_type": "disk", "status": "ready"},
  {"name": "T2_C", "storage_type": "disk", "status": "ready"}],
 "groups": [{"name": "AnalysisOps", "olevel": "dataset"}, {"name": "DataOps", "olevel": "dataset"}],
 "datasets": [
  {"name": "/D/A-v1/RAW", "status": "valid", "blocks": [
    {"name": "b0", "files": [{"lfn": "/store/a/b0/f0", "size": 10}, {"lfn": "/store/a/b0/f1", "size": 30}]},
    {"name": "b1", "files": [{"lfn": "/store/a/b1/f0", "size": 10}, {"lfn": "/store/a/b1/f1", "size": 10}]}]},
  {"name": "/D/Only-v1/RAW", "status": "valid", "blocks": [
    {"name": "b0", "files": [{"lfn": "/store/o/b0/f0", "size": 5}]}]}],
 "dataset_replicas": [
  {"dataset": "/D/A-v1/RAW", "site": "T2_A", "group": "AnalysisOps"},
  {"dataset": "/D/Only-v1/RAW", "site": "T2_A", "group": "DataOps"}],
 "block_replicas": [{"block": "/D/A-v1/RAW#b0", "site": "T2_B", "group": "AnalysisOps", "files": ["/store/a/b0/f0"]}]
}`

func fixtureSnapshot(t *testing.T) *inventory.Snapshot {
	t.Helper()
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
	return store.Snapshot()
}

// guardFunc refuses what its function says.
type guardFunc func(snap *inventory.Snapshot, ref fileop.ReplicaRef) string

func (g guardFunc) Refusals(_ context.Context, snap *inventory.Snapshot, refs []fileop.ReplicaRef) (map[fileop.ReplicaRef]string, error) {
	out := map[fileop.ReplicaRef]string{}
	for _, r := range refs {
		if why := g(snap, r); why != "" {
			out[r] = why
		}
	}
	return out, nil
}

var allowAll = guardFunc(func(*inventory.Snapshot, fileop.ReplicaRef) string { return "" })

func ref(t *testing.T, snap *inventory.Snapshot, block, site string) fileop.ReplicaRef {
	t.Helper()
	b, ok := snap.BlockByName(block)
	s, ok2 := snap.SiteByName(site)
	if !ok || !ok2 {
		t.Fatalf("no %s or %s", block, site)
	}
	return fileop.ReplicaRef{Block: b.ID, Site: s.ID}
}

func only(t *testing.T, p *Plan) Change {
	t.Helper()
	if len(p.Changes) != 1 {
		t.Fatalf("want one change, got %+v", p.Changes)
	}
	return p.Changes[0]
}

func TestCopyActionStates(t *testing.T) {
	snap := fixtureSnapshot(t)
	b0B := ref(t, snap, "/D/A-v1/RAW#b0", "T2_B")
	copyReq := func(sites ...string) registry.Request {
		return registry.Request{ID: 7, Kind: registry.KindCopy, Items: []string{"/D/A-v1/RAW"}, Sites: sites, Status: registry.StatusActivated, User: "alice"}
	}
	for _, tc := range []struct {
		name       string
		req        registry.Request
		act        fileop.ReplicaActivity
		wantStatus registry.Status
		wantAction string
		wantReason string
		wantDelete bool
	}{
		{"complete everywhere", copyReq("T2_A"), fileop.ReplicaActivity{}, registry.StatusCompleted, registry.ActionCompleted, "", false},
		{"transferring", copyReq("T2_B"), fileop.ReplicaActivity{Active: 1}, registry.StatusActivated, registry.ActionTransferring, "", false},
		{"queued", copyReq("T2_B"), fileop.ReplicaActivity{Queued: 1}, registry.StatusActivated, registry.ActionQueued, "", false},
		{"held is stuck with the note", copyReq("T2_B"), fileop.ReplicaActivity{Held: 1, Queued: 1, Notes: []string{"/store/a/b0/f1: no_source: no ready site holds a complete copy of the file"}},
			registry.StatusActivated, registry.ActionStuck, "1 files held; first: /store/a/b0/f1: no_source", false},
		{"cancelled behind its back", copyReq("T2_B"), fileop.ReplicaActivity{Cancelled: 1, CancelNote: "cancelled by request"},
			registry.StatusCancelled, registry.ActionCancelled, "1 transfers cancelled", true},
		{"a block not placed yet", copyReq("T2_B"), fileop.ReplicaActivity{}, registry.StatusActivated, registry.ActionNew, "waiting for the Dealer", false},
		{"not placed yet", copyReq("T2_C"), fileop.ReplicaActivity{}, registry.StatusActivated, registry.ActionNew, "waiting for the Dealer", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Snapshot: snap, Copies: []registry.Request{tc.req},
				Transfers: map[fileop.ReplicaRef]fileop.ReplicaActivity{b0B: tc.act}}
			p, err := Make(context.Background(), in, allowAll)
			if err != nil {
				t.Fatal(err)
			}
			c := only(t, p)
			if c.Transition.To != tc.wantStatus {
				t.Errorf("status %s, want %s (%q)", c.Transition.To, tc.wantStatus, c.Transition.Reason)
			}
			if len(c.Transition.Actions) != 1 {
				t.Fatalf("actions %+v", c.Transition.Actions)
			}
			a := c.Transition.Actions[0]
			if a.Status != tc.wantAction || !strings.Contains(a.Reason, tc.wantReason) {
				t.Errorf("action %s %q, want %s %q", a.Status, a.Reason, tc.wantAction, tc.wantReason)
			}
			if a.FilesTotal != 4 || a.BytesTotal != 60 {
				t.Errorf("totals %d files %d bytes, want 4 and 60", a.FilesTotal, a.BytesTotal)
			}
			if (len(c.Delete) > 0) != tc.wantDelete || tc.wantDelete && c.Delete[0] != b0B {
				t.Errorf("delete %+v, want the incomplete replica: %v", c.Delete, tc.wantDelete)
			}
		})
	}
	// Progress: the incomplete replica holds 1 file of 10 bytes.
	p, _ := Make(context.Background(), Input{Snapshot: snap, Copies: []registry.Request{copyReq("T2_B")},
		Transfers: map[fileop.ReplicaRef]fileop.ReplicaActivity{b0B: {Active: 1}}}, allowAll)
	if a := only(t, p).Transition.Actions[0]; a.FilesDone != 1 || a.BytesDone != 10 {
		t.Errorf("progress %+v", a)
	}
	// An incomplete replica nothing fills is stuck, not waiting for ever.
	blockReq := copyReq("T2_B")
	blockReq.Items = []string{"/D/A-v1/RAW#b0"}
	p2, _ := Make(context.Background(), Input{Snapshot: snap, Copies: []registry.Request{blockReq}}, allowAll)
	if a := only(t, p2).Transition.Actions[0]; a.Status != registry.ActionStuck || !strings.Contains(a.Reason, "1 files missing and no transfer queued") {
		t.Errorf("dangling replica: %+v", a)
	}
	// A quiet pass changes nothing.
	r := copyReq("T2_B")
	r.Actions = only(t, p).Transition.Actions
	p, _ = Make(context.Background(), Input{Snapshot: snap, Copies: []registry.Request{r},
		Transfers: map[fileop.ReplicaRef]fileop.ReplicaActivity{b0B: {Active: 1}}}, allowAll)
	if len(p.Changes) != 0 {
		t.Errorf("unchanged request rewritten: %+v", p.Changes)
	}
	// Two copies wanted over two sites, one held: a placeholder waits for
	// the Dealer with its recorded refusal.
	r = copyReq("T2_A", "T2_C")
	r.N, r.Reason = 2, "not placed: /D/A-v1/RAW at any listed site: no space"
	p, _ = Make(context.Background(), Input{Snapshot: snap, Copies: []registry.Request{r}}, allowAll)
	acts := only(t, p).Transition.Actions
	if len(acts) != 2 || acts[1].Site != "*" || acts[1].Status != registry.ActionNew || !strings.Contains(acts[1].Reason, "no space") {
		t.Errorf("placeholder: %+v", acts)
	}
}

func TestCancelledCopyCleansUpUnlessAnotherRequestWantsIt(t *testing.T) {
	snap := fixtureSnapshot(t)
	b0B := ref(t, snap, "/D/A-v1/RAW#b0", "T2_B")
	cancelled := registry.Request{ID: 3, Kind: registry.KindCopy, Items: []string{"/D/A-v1/RAW"}, Sites: []string{"T2_B"}, Status: registry.StatusCancelled,
		Reason: "cancelled by alice", Actions: []registry.Action{{Item: "/D/A-v1/RAW", Site: "T2_B", Status: registry.ActionTransferring}}}
	p, _ := Make(context.Background(), Input{Snapshot: snap, Cancelled: []registry.Request{cancelled}}, allowAll)
	c := only(t, p)
	if !c.Cleanup || len(c.Delete) != 1 || c.Delete[0] != b0B || c.Transition.To != registry.StatusCancelled ||
		c.Transition.Actions[0].Status != registry.ActionCancelled {
		t.Fatalf("clean-up: %+v", c)
	}
	other := registry.Request{ID: 4, Kind: registry.KindCopy, Items: []string{"/D/A-v1/RAW"}, Sites: []string{"T2_B"}, Status: registry.StatusActivated}
	p, _ = Make(context.Background(), Input{Snapshot: snap, Cancelled: []registry.Request{cancelled}, Copies: []registry.Request{other},
		Transfers: map[fileop.ReplicaRef]fileop.ReplicaActivity{b0B: {Active: 1}}}, allowAll)
	for _, c := range p.Changes {
		if c.ID == 3 && len(c.Delete) > 0 {
			t.Fatalf("removed a replica another open request wants: %+v", c)
		}
	}
}

func TestDeletionApprovalGuardAndProgress(t *testing.T) {
	snap := fixtureSnapshot(t)
	ctx := context.Background()
	groups := func(u string) []string {
		if u == "alice" {
			return []string{"AnalysisOps"}
		}
		return nil
	}
	del := func(user, item, site string) registry.Request {
		return registry.Request{ID: 9, Kind: registry.KindDeletion, Items: []string{item}, Sites: []string{site}, Status: registry.StatusNew, User: user}
	}
	// Within alice's groups: approved by policy, activated, queued.
	p, err := Make(ctx, Input{Snapshot: snap, Deletions: []registry.Request{del("alice", "/D/A-v1/RAW", "T2_A")}, Groups: groups}, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	c := only(t, p)
	if c.Approve != "policy" || c.Transition.To != registry.StatusActivated || len(c.Delete) != 2 ||
		c.Transition.Actions[0].FilesTotal != 4 || c.Transition.Actions[0].BytesTotal != 60 {
		t.Fatalf("in scope: %+v", c)
	}
	// Outside the groups, or a user of none: waits for an operator.
	for _, r := range []registry.Request{del("alice", "/D/Only-v1/RAW", "T2_A"), del("bob", "/D/A-v1/RAW", "T2_A")} {
		p, _ = Make(ctx, Input{Snapshot: snap, Deletions: []registry.Request{r}, Groups: groups}, allowAll)
		c = only(t, p)
		if c.Approve != "" || len(c.Delete) != 0 || c.Transition.To != registry.StatusNew || !strings.Contains(c.Transition.Reason, "awaiting an operator's approval") {
			t.Fatalf("out of scope (%s): %+v", r.User, c)
		}
	}
	// Approved, but the guard refuses: rejected with the reason, nothing deleted.
	r := del("bob", "/D/Only-v1/RAW", "T2_A")
	r.ApprovedBy = "op"
	lastCopy := guardFunc(func(*inventory.Snapshot, fileop.ReplicaRef) string { return "last copy" })
	p, _ = Make(ctx, Input{Snapshot: snap, Deletions: []registry.Request{r}, Groups: groups}, lastCopy)
	c = only(t, p)
	if c.Transition.To != registry.StatusRejected || len(c.Delete) != 0 || !strings.Contains(c.Transition.Reason, "/D/Only-v1/RAW#b0 at T2_A: last copy") {
		t.Fatalf("refused: %+v", c)
	}
	// Nothing there: completed at once.
	p, _ = Make(ctx, Input{Snapshot: snap, Deletions: []registry.Request{del("alice", "/D/A-v1/RAW", "T2_C")}, Groups: groups}, allowAll)
	if c = only(t, p); c.Transition.To != registry.StatusCompleted || !strings.Contains(c.Transition.Reason, "nothing to delete") {
		t.Fatalf("nothing to delete: %+v", c)
	}
	// Activated, its replicas gone: completed with everything done.
	r = del("alice", "/D/A-v1/RAW", "T2_C")
	r.Status = registry.StatusActivated
	r.Actions = []registry.Action{{Item: "/D/A-v1/RAW", Site: "T2_C", Status: registry.ActionQueued, FilesTotal: 4, BytesTotal: 60}}
	p, _ = Make(ctx, Input{Snapshot: snap, Deletions: []registry.Request{r}}, allowAll)
	if c = only(t, p); c.Transition.To != registry.StatusCompleted || c.Transition.Actions[0].FilesDone != 4 || c.Transition.Actions[0].BytesDone != 60 {
		t.Fatalf("finished deletion: %+v", c)
	}
}
