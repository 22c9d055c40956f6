package registry

import (
	"context"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// A copy request waits for placement while new, and once activated while
// one of its copies is still to be placed; deletions never count.
func TestCopiesWaiting(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		st := NewStore(d)
		waiting := func() bool {
			t.Helper()
			w, err := st.CopiesWaiting(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		if waiting() {
			t.Fatal("waiting without a request")
		}
		if _, _, err := st.CreateRequest(ctx, NewRequest{Kind: KindDeletion, Items: []string{"/A/B/C"}, Sites: []string{"T2_A"}, N: 1, User: "u"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if waiting() {
			t.Fatal("a deletion request counted as a copy waiting")
		}
		r, _, err := st.CreateRequest(ctx, NewRequest{Kind: KindCopy, Items: []string{"/A/B/C"}, Sites: []string{"T2_A", "T2_B"}, Group: "G", N: 2, User: "u"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !waiting() {
			t.Fatal("a new copy request does not wait")
		}
		activate := func(second string) {
			t.Helper()
			err := st.UpdateRequest(ctx, KindCopy, r.ID, Transition{From: []Status{StatusNew, StatusActivated}, To: StatusActivated,
				Actions: []Action{{Item: "/A/B/C", Site: "T2_A", Status: ActionQueued}, {Item: "/A/B/C", Site: "T2_B", Status: second}}}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
		}
		activate(ActionNew)
		if !waiting() {
			t.Fatal("an activated request with a copy still to place does not wait")
		}
		activate(ActionQueued)
		if waiting() {
			t.Fatal("an activated request with every copy placed still waits")
		}
	})
}
