package registry

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// TestAuthorizationMatrix calls every write endpoint as every kind of
// caller over real TLS and checks the status of each cell. anon has no
// credentials (401), mallory has a valid certificate whose DN maps to no
// user (403), untrusted has a certificate from another CA (401), alice and
// bob are users, oscar an operator, ada an admin. Cancelling and unlocking
// act on alice's objects, so bob (a user, not the owner) is refused.
func TestAuthorizationMatrix(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		ctx := context.Background()
		future := time.Now().Add(48 * time.Hour).Unix()
		n := 0
		// Each cell gets fresh objects owned by alice so cells do not interact.
		aliceRequest := func(kind Kind) int64 {
			n++
			r, _, err := e.srv.Store().CreateRequest(ctx, NewRequest{Kind: kind, Items: []string{"/P/R-v1/AOD"}, Sites: []string{fmt.Sprintf("T2_A%d", n)}, Group: "AnalysisOps", N: 1, User: "alice"}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return r.ID
		}
		aliceLock := func() int64 {
			n++
			l, _, err := e.srv.Store().AddLock(ctx, LockSpec{Item: "/P/*/AOD", Expires: future, Service: fmt.Sprint("s", n)}, "alice", "", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return l.ID
		}
		type cell struct {
			name   string
			method string
			path   func() string
			body   func() any
		}
		static := func(p string) func() string { return func() string { return p } }
		lockBody := func() any { return map[string]any{"item": "/P/R-v1/AOD", "expires": future, "comment": fmt.Sprint(n)} }
		copyBody := func() any {
			n++
			return map[string]any{"items": []string{"/P/R-v1/AOD"}, "sites": []string{"T2_*"}, "n": n % 2}
		}
		inject := func() any { return `{"groups": [{"name": "G` + fmt.Sprint(n) + `", "olevel": "block"}]}` }
		cells := []cell{
			{"copy create", "POST", static("/api/v1/copy-requests"), copyBody},
			{"copy cancel", "POST", func() string { return fmt.Sprintf("/api/v1/copy-requests/%d/cancel", aliceRequest(KindCopy)) }, nil},
			{"deletion create", "POST", static("/api/v1/deletion-requests"), func() any {
				n++
				return map[string]any{"items": []string{"/P/R-v1/AOD#b" + fmt.Sprint(1+n%2)}, "sites": []string{"T2_A"}}
			}},
			{"deletion cancel", "POST", func() string { return fmt.Sprintf("/api/v1/deletion-requests/%d/cancel", aliceRequest(KindDeletion)) }, nil},
			{"lock add", "POST", static("/api/v1/locks"), lockBody},
			{"lock delete", "DELETE", func() string { return fmt.Sprintf("/api/v1/locks/%d", aliceLock()) }, nil},
			{"lock unlock", "POST", static("/api/v1/locks/unlock"), func() any { return map[string]any{"lockids": []int64{aliceLock()}, "user": "alice"} }},
			{"lock set", "PUT", static("/api/v1/lock-sets/svc"), func() any { return []any{lockBody()} }},
			{"inject queued", "POST", static("/api/v1/injections"), inject},
			{"inject sync", "POST", static("/api/v1/injections/sync"), inject},
			{"compat copy", "POST", static("/data/request/copy"), func() any {
				n++
				return fmt.Sprintf(`{"item": ["/P/R-v2/AOD"], "site": ["T2_A","T2_B"], "n": %d}`, n%3)
			}},
			{"compat cancelcopy", "POST", func() string { return fmt.Sprintf("/data/request/cancelcopy?request_id=%d", aliceRequest(KindCopy)) }, nil},
			{"compat delete", "POST", static("/data/request/delete"), func() any { return `{"item": ["/P/R-v2/AOD"], "site": ["T2_B"]}` }},
			{"compat lock", "POST", static("/data/detox/lock/lock"), func() any {
				n++
				return fmt.Sprintf(`{"item": "/Q/*", "expires": "2099-01-01", "comment": "c%d"}`, n)
			}},
			{"compat unlock", "POST", func() string { return fmt.Sprintf("/data/detox/lock/unlock?lockid=%d", aliceLock()) }, nil},
			{"compat set", "POST", static("/data/detox/lock/set?service=svc2"), func() any { return `[{"item": "/P/R-v1/AOD", "expires": "2099-01-01"}]` }},
			{"compat inject", "POST", static("/data/inventory/inject"), inject},
		}
		const (
			ok  = 200 // 200 or 201/202: checked as 2xx
			un  = http.StatusUnauthorized
			fb  = http.StatusForbidden
			own = fb // not the owner
		)
		callers := []string{"anon", "untrusted", "mallory", "alice", "alice-proxy", "bob", "oscar", "ada"}
		// Expected status per cell, in the order of callers.
		want := map[string][]int{
			"copy create":       {un, un, fb, ok, ok, ok, ok, ok},
			"copy cancel":       {un, un, fb, ok, ok, own, ok, ok},
			"deletion create":   {un, un, fb, ok, ok, ok, ok, ok},
			"deletion cancel":   {un, un, fb, ok, ok, own, ok, ok},
			"lock add":          {un, un, fb, ok, ok, ok, ok, ok},
			"lock delete":       {un, un, fb, ok, ok, own, ok, ok},
			"lock unlock":       {un, un, fb, ok, ok, own, ok, ok},
			"lock set":          {un, un, fb, ok, ok, ok, ok, ok},
			"inject queued":     {un, un, fb, fb, fb, fb, fb, ok},
			"inject sync":       {un, un, fb, fb, fb, fb, fb, ok},
			"compat copy":       {un, un, fb, ok, ok, ok, ok, ok},
			"compat cancelcopy": {un, un, fb, ok, ok, own, ok, ok},
			"compat delete":     {un, un, fb, ok, ok, ok, ok, ok},
			"compat lock":       {un, un, fb, ok, ok, ok, ok, ok},
			"compat unlock":     {un, un, fb, ok, ok, ok, ok, ok}, // bob's unlock matches none of his locks: 200 with an empty list
			"compat set":        {un, un, fb, ok, ok, ok, ok, ok},
			"compat inject":     {un, un, fb, fb, fb, fb, fb, ok},
		}
		for _, c := range cells {
			exp, found := want[c.name]
			if !found || len(exp) != len(callers) {
				t.Fatalf("no expectations for %q", c.name)
			}
			for i, who := range callers {
				var body any
				if c.body != nil {
					body = c.body()
				}
				path := c.path()
				code, b := e.call(who, c.method, path, body)
				if got2xx := code >= 200 && code < 300; (exp[i] == ok) != got2xx || (exp[i] != ok && code != exp[i]) {
					t.Errorf("%s as %s: %s %s = %d, want %d: %s", c.name, who, c.method, path, code, exp[i], b)
				}
			}
		}
		// The static service token acts as its user.
		e.must("token:s3cret-token", "POST", "/api/v1/locks", lockBody(), http.StatusCreated, nil)
		e.must("token:wrong", "POST", "/api/v1/locks", lockBody(), http.StatusUnauthorized, nil)
		// Reads: anonymous from loopback is allowed by default.
		e.must("anon", "GET", "/api/v1/sites", nil, http.StatusOK, nil)
	})
}

// TestAnonymousPolicy checks that anonymous_read: never refuses reads
// without credentials while authenticated users still read.
func TestAnonymousPolicy(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), func(c *Config) { c.AnonymousRead = AnonNever })
	e.must("anon", "GET", "/api/v1/sites", nil, http.StatusUnauthorized, nil)
	e.must("anon", "GET", "/metrics", nil, http.StatusUnauthorized, nil)
	e.must("anon", "GET", "/healthz", nil, http.StatusOK, nil) // probes need no credentials
	e.must("anon", "GET", "/readyz", nil, http.StatusOK, nil)
	e.must("alice", "GET", "/api/v1/sites", nil, http.StatusOK, nil)
	e.must("mallory", "GET", "/api/v1/sites", nil, http.StatusUnauthorized, nil)
}
