package stager

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/setest"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// Requests a user owns run with UserAccess (their own credential), the
// system's with the station's Resolver; a user without a usable
// credential gets their request failed with UserAccess's reason, and the
// station's access is never used in its place.
func TestUserRequestsRunWithTheUsersAccess(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	f := se.Put(t, "/disk-u1", []byte("user data"), false)
	station := NewClientPool(se.ClientOptions(t))
	user := NewClientPool(se.ClientOptions(t))
	var mu sync.Mutex
	used := map[string]int{}
	count := func(who string, r Resolver) Resolver {
		return func(surl string) (SRM, error) {
			mu.Lock()
			used[who]++
			mu.Unlock()
			return r(surl)
		}
	}
	noCred := errors.New("delegated credential for /CN=bob expired at 2026-01-01T00:00:00Z; run dynamo delegate")
	s, err := New(fastConfig(), testdb.SQLite(t), testLog(t), Options{Resolver: count("station", station.Resolve),
		UserAccess: func(u string) (Access, error) {
			if u != "alice" {
				return Access{}, noCred
			}
			return Access{Resolver: count("alice", user.Resolve)}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	var rs results
	ctx := context.Background()
	submit := func(owner string) int64 {
		id, err := s.Submit(ctx, Request{Kind: KindGet, SURL: f, Owner: owner}, rs.add)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	alice := rs.wait(t, submit(UserOwnerPrefix+"alice"), StateReady, 10*time.Second)
	mu.Lock()
	if used["alice"] == 0 || used["station"] != 0 {
		t.Errorf("alice's get used %v", used)
	}
	mu.Unlock()
	bob := rs.wait(t, submit(UserOwnerPrefix+"bob"), StateFailed, 10*time.Second)
	if !strings.Contains(bob.Error, noCred.Error()) {
		t.Errorf("bob's get failed with %q", bob.Error)
	}
	mu.Lock()
	if used["station"] != 0 {
		t.Errorf("the station's access stood in for bob: %v", used)
	}
	mu.Unlock()
	rs.wait(t, submit("projects"), StateReady, 10*time.Second)
	mu.Lock()
	if used["station"] == 0 {
		t.Errorf("the system's get did not use the station's access: %v", used)
	}
	mu.Unlock()
	if err := s.Release(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
}
