package registry

import (
	"context"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// Deletion requests: an operator's is approved when made; a user's waits
// for the tracker's policy or an operator, whom only operators may be;
// approval is for new requests only; progress recorded with actions is
// returned with them; an activated deletion cannot be cancelled while an
// activated copy can.
func TestDeletionApprovalAndProgress(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		body := map[string]any{"items": []string{"/P/R-v1/AOD"}, "sites": []string{"T2_A"}}
		var byOp Request
		e.must("oscar", "POST", "/api/v1/deletion-requests", body, 201, &byOp)
		if byOp.ApprovedBy != "oscar" {
			t.Fatalf("operator's request approved by %q", byOp.ApprovedBy)
		}
		e.must("oscar", "POST", "/api/v1/deletion-requests/"+itoa(byOp.ID)+"/cancel", nil, 200, nil)

		var r Request
		e.must("alice", "POST", "/api/v1/deletion-requests", body, 201, &r)
		if r.ApprovedBy != "" || r.ID == byOp.ID {
			t.Fatalf("user's request: %+v", r)
		}
		e.must("alice", "POST", "/api/v1/deletion-requests/"+itoa(r.ID)+"/approve", nil, 403, nil)
		e.must("anon", "POST", "/api/v1/deletion-requests/"+itoa(r.ID)+"/approve", nil, 401, nil)
		e.must("oscar", "POST", "/api/v1/deletion-requests/abc/approve", nil, 400, nil)
		e.must("oscar", "POST", "/api/v1/deletion-requests/999/approve", nil, 404, nil)
		var ok Request
		e.must("oscar", "POST", "/api/v1/deletion-requests/"+itoa(r.ID)+"/approve", nil, 200, &ok)
		if ok.ApprovedBy != "oscar" {
			t.Fatalf("approved by %q", ok.ApprovedBy)
		}
		// Idempotent: the first approver stays.
		e.must("ada", "POST", "/api/v1/deletion-requests/"+itoa(r.ID)+"/approve", nil, 200, &ok)
		if ok.ApprovedBy != "oscar" {
			t.Fatalf("re-approved by %q", ok.ApprovedBy)
		}
		st := e.srv.Store()
		ctx := context.Background()
		act := Action{Item: "/P/R-v1/AOD", Site: "T2_A", Status: ActionQueued, FilesTotal: 4, BytesTotal: 400, FilesDone: 1, BytesDone: 100}
		if err := st.UpdateRequest(ctx, KindDeletion, r.ID, Transition{From: []Status{StatusNew}, To: StatusActivated, Actor: "tracker",
			Actions: []Action{act}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		var got Request
		e.must("anon", "GET", "/api/v1/deletion-requests/"+itoa(r.ID), nil, 200, &got)
		if len(got.Actions) != 1 || got.Actions[0].FilesDone != 1 || got.Actions[0].FilesTotal != 4 || got.Actions[0].BytesDone != 100 || got.Actions[0].BytesTotal != 400 {
			t.Fatalf("progress: %+v", got.Actions)
		}
		e.must("oscar", "POST", "/api/v1/deletion-requests/"+itoa(r.ID)+"/approve", nil, 409, nil)
		e.must("alice", "POST", "/api/v1/deletion-requests/"+itoa(r.ID)+"/cancel", nil, 409, nil)

		// Drop removes an action and its progress.
		if err := st.UpdateRequest(ctx, KindDeletion, r.ID, Transition{From: []Status{StatusActivated}, To: StatusActivated,
			Drop: []Action{act}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		e.must("anon", "GET", "/api/v1/deletion-requests/"+itoa(r.ID), nil, 200, &got)
		if len(got.Actions) != 0 {
			t.Fatalf("dropped action still there: %+v", got.Actions)
		}

		// An activated copy request can be cancelled; the tracker finds it
		// among the cancelled ones with unfinished actions.
		var cp Request
		e.must("alice", "POST", "/api/v1/copy-requests", map[string]any{"items": []string{"/P/R-v1/AOD"}, "sites": []string{"T2_B"}}, 201, &cp)
		if err := st.UpdateRequest(ctx, KindCopy, cp.ID, Transition{From: []Status{StatusNew}, To: StatusActivated,
			Actions: []Action{{Item: "/P/R-v1/AOD", Site: "T2_B", Status: ActionTransferring}}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		e.must("alice", "POST", "/api/v1/copy-requests/"+itoa(cp.ID)+"/cancel", nil, 200, nil)
		un, err := st.UnfinishedCancelled(ctx, KindCopy)
		if err != nil || len(un) != 1 || un[0].ID != cp.ID {
			t.Fatalf("unfinished cancelled: %+v %v", un, err)
		}
	})
}
