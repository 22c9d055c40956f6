package scheduler

import (
	"context"
	"errors"
	"testing"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// Dynamo's application lock is a queue: the oldest entry's user and
// service hold it, their further entries deepen it, others wait; while any
// entry is queued the application is not run.
func TestAppLockQueueAndSkip(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		s := newScheduler(t, d, fastConfig("a"), nil)
		ctx := context.Background()
		note := "migrating"
		st, err := s.LockApp(ctx, AppTestCounter, "alice", "", &note)
		must(t, err)
		if st == nil || st.User != "alice" || st.Depth != 1 || st.Note == nil || *st.Note != note {
			t.Fatalf("first lock: %+v", st)
		}
		st, err = s.LockApp(ctx, AppTestCounter, "bob", "svc", nil)
		must(t, err)
		if st.User != "alice" || st.Depth != 1 {
			t.Fatalf("bob must wait behind alice: %+v", st)
		}
		st, err = s.LockApp(ctx, AppTestCounter, "alice", "", nil)
		must(t, err)
		if st.User != "alice" || st.Depth != 2 {
			t.Fatalf("alice's second lock deepens hers: %+v", st)
		}
		start(t, s)
		waitLeader(t, s)
		r, err := s.RunNow(ctx, RunRequest{App: AppTestCounter, Wait: true})
		if !errors.Is(err, ErrPaused) || r.Status != StatusSkipped {
			t.Fatalf("run of an app-locked app: %+v, %v; want a recorded skip", r, err)
		}
		apps, err := s.Apps(ctx)
		must(t, err)
		for _, a := range apps {
			if a.Name == AppTestCounter && (a.AppLock == nil || a.AppLock.User != "alice") {
				t.Fatalf("app list does not show the application lock: %+v", a.AppLock)
			}
		}
		// Unlocking someone else's entry is a no-op for the holder.
		st, err = s.UnlockApp(ctx, AppTestCounter, "mallory", "")
		must(t, err)
		if st.User != "alice" || st.Depth != 2 {
			t.Fatalf("mallory's unlock changed the holder: %+v", st)
		}
		for range 2 {
			st, err = s.UnlockApp(ctx, AppTestCounter, "alice", "")
			must(t, err)
		}
		if st == nil || st.User != "bob" || st.Service != "svc" || st.Depth != 1 {
			t.Fatalf("after alice unlocked twice, bob (svc) holds: %+v", st)
		}
		st, err = s.UnlockApp(ctx, AppTestCounter, "bob", "svc")
		must(t, err)
		if st != nil {
			t.Fatalf("queue empty, still held: %+v", st)
		}
		r, err = s.RunNow(ctx, RunRequest{App: AppTestCounter, Wait: true})
		if err != nil || r.Status != StatusOK {
			t.Fatalf("run after the lock is free: %+v, %v", r, err)
		}
		if _, err := s.LockApp(ctx, "nope", "alice", "", nil); !errors.Is(err, ErrUnknownApp) {
			t.Fatalf("lock of an unknown app: %v", err)
		}
	})
}
