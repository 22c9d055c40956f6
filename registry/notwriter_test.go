package registry

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// On a server that is not the inventory writer every write route answers
// 503 not_writer with the holder, its address and Retry-After, before its
// handler runs; reads are served.
func TestStandbyRefusesEveryWrite(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	e.srv.SetWriteFence(func() error {
		return &inventory.NotWriterError{Holder: "db1:4242", Address: "https://db1.example:8443", RetryAfter: 7 * time.Second}
	})
	e.must("ada", "GET", "/api/v1/sites", nil, http.StatusOK, nil)
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/api/v1/injections/sync", `{"sites": [{"name": "T2_NEW", "storage_type": "disk", "status": "ready"}]}`},
		{"POST", "/api/v1/injections", `{"sites": [{"name": "T2_NEW", "storage_type": "disk", "status": "ready"}]}`},
		{"POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_A"]}`},
	} {
		req, err := http.NewRequest(w.method, e.url+w.path, strings.NewReader(w.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		tc := tlsFor(e)
		tc.Certificates = []tls.Certificate{e.certs["ada"]}
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		cl.CloseIdleConnections()
		if resp.StatusCode != http.StatusServiceUnavailable || body.ErrorType != "not_writer" || body.Holder != "db1:4242" ||
			body.HolderAddress != "https://db1.example:8443" || resp.Header.Get("Retry-After") != "7" || !strings.Contains(body.Error, "db1:4242") {
			t.Errorf("%s %s on a standby: %d Retry-After %q %+v", w.method, w.path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if _, ok := e.inv.Snapshot().SiteByName("T2_NEW"); ok {
		t.Error("the standby applied the injection")
	}
}

// Dynamo's aliases take GET like POST: a GET that writes is refused on a
// standby as the POST is, and the reads among them are still served.
func TestStandbyRefusesDynamoWritesByGET(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	e.srv.SetWriteFence(func() error {
		return &inventory.NotWriterError{Holder: "db1:4242", RetryAfter: 7 * time.Second}
	})
	e.compat("anon", "GET", "/data/inventory/groups", nil, http.StatusOK)
	e.compat("anon", "GET", "/data/request/pollcopy", nil, http.StatusOK)
	for _, p := range []string{"/data/request/copy?item=/P/R-v1/AOD&site=T2_A", "/data/detox/lock/lock?item=/P/R-v1/AOD&expires=2099-01-01"} {
		if env := e.compat("ada", "GET", p, nil, http.StatusServiceUnavailable); !strings.Contains(env.Message, "db1:4242") {
			t.Errorf("GET %s on a standby: %+v", p, env)
		}
	}
	env := e.compat("anon", "GET", "/data/request/pollcopy", nil, http.StatusOK)
	if string(env.Data) != "[]" {
		t.Fatalf("the standby created a request by GET: %s", env.Data)
	}
}

// A mounted POST that only reads (MarkReadOnly) is answered by a standby;
// the same route unmarked is refused.
func TestStandbyAnswersReadOnlyPosts(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	e.srv.SetWriteFence(func() error { return &inventory.NotWriterError{Holder: "db1:4242", RetryAfter: time.Second} })
	perm := Permission{Write: Need{Role: RoleUser, Target: TargetRegistry}}
	e.srv.Mount("/api/v1/test", perm, func(rg *gin.RouterGroup) {
		for _, p := range []string{"/query", "/write"} {
			rg.POST(p, func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) })
		}
	})
	if !e.srv.MarkReadOnly(http.MethodPost, "/api/v1/test/query") || e.srv.MarkReadOnly(http.MethodPost, "/api/v1/test/none") {
		t.Fatal("MarkReadOnly reports the wrong routes")
	}
	e.must("alice", "POST", "/api/v1/test/query", `{}`, http.StatusOK, nil)
	e.must("alice", "POST", "/api/v1/test/write", `{}`, http.StatusServiceUnavailable, nil)
	// Read-only keeps the route's permission.
	e.must("anon", "POST", "/api/v1/test/query", `{}`, http.StatusUnauthorized, nil)
}
