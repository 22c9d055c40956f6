package registry

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// TestConcurrentIdenticalRequests: identical requests created at the same
// time end up as one request counted once per call, never as duplicates.
func TestConcurrentIdenticalRequests(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		st := NewStore(d)
		ctx := context.Background()
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := st.CreateRequest(ctx, NewRequest{Kind: KindCopy, Items: []string{"/A/B/C", "/A/B/D"}, Sites: []string{"T2_B", "T2_A"},
					Group: "G", N: 1, User: []string{"u1", "u2"}[i%2]}, time.Now())
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		rs, err := st.ListRequests(ctx, RequestFilter{Kind: KindCopy})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].RequestCount != n || len(rs[0].Items) != 2 || rs[0].Sites[0] != "T2_A" {
			t.Fatalf("requests: %+v", rs)
		}
		// Order of items and sites does not make a request different.
		r, reused, err := st.CreateRequest(ctx, NewRequest{Kind: KindCopy, Items: []string{"/A/B/D", "/A/B/C"}, Sites: []string{"T2_A", "T2_B"}, Group: "G", N: 1, User: "u3"}, time.Now())
		if err != nil || !reused || r.RequestCount != n+1 {
			t.Fatalf("reordered: %+v %v %v", r, reused, err)
		}
		// A different n, or a deletion of the same items, is another request.
		if _, reused, _ := st.CreateRequest(ctx, NewRequest{Kind: KindCopy, Items: []string{"/A/B/C", "/A/B/D"}, Sites: []string{"T2_A", "T2_B"}, Group: "G", N: 2, User: "u3"}, time.Now()); reused {
			t.Fatal("different n reused")
		}
		if _, reused, _ := st.CreateRequest(ctx, NewRequest{Kind: KindDeletion, Items: []string{"/A/B/C", "/A/B/D"}, Sites: []string{"T2_A", "T2_B"}, Group: "G", N: 1, User: "u3"}, time.Now()); reused {
			t.Fatal("deletion reused a copy request")
		}
	})
}

// TestActiveLocksAtTime: Detox asks for the locks in force at a time t;
// locks created after t, unlocked before t or expired by t do not count.
func TestActiveLocksAtTime(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		st := NewStore(d)
		ctx := context.Background()
		t0 := time.Unix(1_800_000_000, 0)
		mk := func(item string, at time.Time, exp int64) Lock {
			l, _, err := st.AddLock(ctx, LockSpec{Item: item, Expires: exp}, "u", "", at)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		a := mk("/A/*", t0, t0.Unix()+100)
		b := mk("/B/*", t0.Add(50*time.Second), t0.Unix()+1000)
		c := mk("/C/*", t0, t0.Unix()+1000)
		if _, err := st.Unlock(ctx, LockFilter{IDs: []int64{c.ID}}, t0.Add(20*time.Second)); err != nil {
			t.Fatal(err)
		}
		ids := func(at int64) []int64 {
			ls, err := st.ActiveLocks(ctx, time.Unix(at, 0))
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, l := range ls {
				out = append(out, l.ID)
			}
			return out
		}
		for at, want := range map[int64][]int64{
			t0.Unix() + 10:  {a.ID, c.ID},
			t0.Unix() + 60:  {a.ID, b.ID},
			t0.Unix() + 100: {b.ID}, // expiry is exclusive
			t0.Unix() + 999: {b.ID},
		} {
			if got := ids(at); len(got) != len(want) || (len(got) > 0 && (got[0] != want[0] || got[len(got)-1] != want[len(want)-1])) {
				t.Errorf("at t0+%d: %v, want %v", at-t0.Unix(), got, want)
			}
		}
	})
}
