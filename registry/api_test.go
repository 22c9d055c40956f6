package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

func esc(name string) string { return url.PathEscape(name) }

func TestInventoryReads(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		var sites Page[SiteView]
		e.must("anon", "GET", "/api/v1/sites?site=T2_*", nil, 200, &sites)
		if len(sites.Items) != 2 || sites.Items[0].Name != "T2_A" || sites.Items[1].Name != "T2_B" {
			t.Fatalf("sites T2_*: %+v", sites.Items)
		}
		a := sites.Items[0]
		if a.TotalQuota != 1e12 || a.TotalUsed != 180 || a.Partitions[0].Name != "Default" || a.Partitions[0].Used != 180 {
			t.Errorf("T2_A usage: %+v", a)
		}
		var one SiteView
		e.must("anon", "GET", "/api/v1/sites/T2_B", nil, 200, &one)
		if one.TotalUsed != 10 {
			t.Errorf("T2_B: %+v", one)
		}
		e.must("anon", "GET", "/api/v1/sites/T9_NONE", nil, 404, nil)

		var ds Page[DatasetView]
		e.must("anon", "GET", "/api/v1/datasets?name="+url.QueryEscape("/P/*"), nil, 200, &ds)
		if len(ds.Items) != 2 || ds.Items[0].Name != "/P/R-v1/AOD" || ds.Items[0].Size != 180 || ds.Items[0].NumBlocks != 2 {
			t.Fatalf("datasets /P/*: %+v", ds)
		}
		e.must("anon", "GET", "/api/v1/datasets?name="+url.QueryEscape("*AOD"), nil, 200, &ds)
		if len(ds.Items) != 3 {
			t.Fatalf("datasets *AOD (fnmatch: * crosses /): %+v", ds.Items)
		}
		// Pagination by name.
		e.must("anon", "GET", "/api/v1/datasets?limit=2", nil, 200, &ds)
		if len(ds.Items) != 2 || ds.Next != "/P/R-v2/AOD" {
			t.Fatalf("page 1: %+v", ds)
		}
		next := ds.Next
		ds = Page[DatasetView]{}
		e.must("anon", "GET", "/api/v1/datasets?limit=2&after="+url.QueryEscape(next), nil, 200, &ds)
		if len(ds.Items) != 1 || ds.Items[0].Name != "/Q/R-v1/MINIAOD" || ds.Next != "" {
			t.Fatalf("page 2: %+v", ds)
		}
		// NDJSON streams every match, one per line.
		b := e.must("anon", "GET", "/api/v1/datasets?format=ndjson", nil, 200, nil)
		lines := 0
		for sc := bufio.NewScanner(bytes.NewReader(b)); sc.Scan(); lines++ {
			var v DatasetView
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil || v.Name == "" {
				t.Fatalf("ndjson line %q: %v", sc.Text(), err)
			}
		}
		if lines != 3 {
			t.Errorf("ndjson: %d lines, want 3", lines)
		}

		var det DatasetDetail
		e.must("anon", "GET", "/api/v1/datasets/"+esc("/P/R-v1/AOD"), nil, 200, &det)
		if len(det.Blocks) != 2 || det.Blocks[0].Name != "b1" || len(det.Blocks[0].Replicas) != 1 || det.Blocks[0].Replicas[0].Site != "T2_A" {
			t.Fatalf("dataset detail: %+v", det)
		}
		if len(det.Replicas) != 1 || !det.Replicas[0].Complete || det.Replicas[0].NumBlocks != 2 || det.Replicas[0].Group != "AnalysisOps" {
			t.Fatalf("dataset replicas: %+v", det.Replicas)
		}
		var reps Page[DatasetReplicaView]
		e.must("anon", "GET", "/api/v1/datasets/"+esc("/P/R-v2/AOD")+"/replicas", nil, 200, &reps)
		if len(reps.Items) != 1 || reps.Items[0].Site != "T2_B" || !reps.Items[0].Growing {
			t.Fatalf("replicas: %+v", reps)
		}
		e.must("anon", "GET", "/api/v1/datasets/"+esc("/X/Y/Z"), nil, 404, nil)

		var files struct {
			Items []struct {
				LFN  string `json:"lfn"`
				Size int64  `json:"size"`
			} `json:"items"`
		}
		e.must("anon", "GET", "/api/v1/blocks/"+esc("/P/R-v1/AOD#b1")+"/files", nil, 200, &files)
		if len(files.Items) != 2 || files.Items[0].LFN != "/store/p/1.root" {
			t.Fatalf("files: %+v", files)
		}
		var groups Page[map[string]any]
		e.must("anon", "GET", "/api/v1/groups", nil, 200, &groups)
		if len(groups.Items) != 2 {
			t.Fatalf("groups: %+v", groups)
		}
		for by, want := range map[string]int{"site": 3, "group": 2, "partition": 1} {
			var u Page[UsageRow]
			e.must("anon", "GET", "/api/v1/usage?by="+by, nil, 200, &u)
			if len(u.Items) != want {
				t.Errorf("usage by %s: %+v", by, u.Items)
			}
		}
		e.must("anon", "GET", "/healthz", nil, 200, nil)
		e.must("anon", "GET", "/readyz", nil, 200, nil)
		m := e.must("anon", "GET", "/metrics", nil, 200, nil)
		if !strings.Contains(string(m), `dynamo_api_request_duration_seconds_count{code="200",method="GET",route="/api/v1/sites"}`) {
			t.Errorf("metrics lack the sites route:\n%s", m)
		}
	})
}

func TestCopyRequestLifecycle(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		body := map[string]any{"items": []string{"/P/R-v1/AOD", "/P/R-v2/AOD#c1"}, "sites": []string{"T2_*"}, "group": "DataOps", "n": 0}
		var r Request
		e.must("alice", "POST", "/api/v1/copy-requests", body, 201, &r)
		if r.Status != StatusNew || r.User != "alice" || len(r.Sites) != 2 || r.N != 0 || r.RequestCount != 1 || r.DN != gridDN("Alice") {
			t.Fatalf("created: %+v", r)
		}
		// The same request again, by someone else, is counted, not duplicated.
		var again Request
		e.must("bob", "POST", "/api/v1/copy-requests", body, 200, &again)
		if again.ID != r.ID || again.RequestCount != 2 {
			t.Fatalf("identical request not reused: %+v", again)
		}
		// The Dealer activates it and records actions; then it completes.
		st := e.srv.Store()
		ctx := context.Background()
		if err := st.UpdateRequest(ctx, KindCopy, r.ID, Transition{From: []Status{StatusNew}, To: StatusActivated, Actor: "dealer",
			Actions: []Action{{Item: "/P/R-v1/AOD", Site: "T2_B", Status: "queued"}}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateRequest(ctx, KindCopy, r.ID, Transition{From: []Status{StatusNew}, To: StatusRejected}, time.Now()); err == nil {
			t.Fatal("compare-and-set from new accepted an activated request")
		}
		news, err := st.ListRequests(ctx, RequestFilter{Kind: KindCopy, Statuses: []Status{StatusNew, StatusActivated}})
		if err != nil || len(news) != 1 || news[0].Actions[0].Status != "queued" {
			t.Fatalf("dealer list: %+v %v", news, err)
		}
		if err := st.UpdateRequest(ctx, KindCopy, r.ID, Transition{From: []Status{StatusActivated}, To: StatusCompleted, Actor: "dealer",
			Actions: []Action{{Item: "/P/R-v1/AOD", Site: "T2_B", Status: "completed"}}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		var got Request
		e.must("anon", "GET", "/api/v1/copy-requests/"+itoa(r.ID), nil, 200, &got)
		if got.Status != StatusCompleted || len(got.Actions) != 1 || got.Actions[0].Status != "completed" {
			t.Fatalf("completed: %+v", got)
		}
		// A finished request cannot be cancelled.
		e.must("alice", "POST", "/api/v1/copy-requests/"+itoa(r.ID)+"/cancel", nil, 409, nil)
		h, _ := st.RequestHistory(ctx, r.ID)
		if len(h) != 3 || h[1].Status != StatusActivated || h[2].Actor != "dealer" {
			t.Fatalf("history: %+v", h)
		}
		// A completed request is not reused: the same body makes a new one.
		var fresh Request
		e.must("alice", "POST", "/api/v1/copy-requests", body, 201, &fresh)
		if fresh.ID == r.ID {
			t.Fatal("completed request reused")
		}
		// Filters and pagination.
		var page Page[Request]
		e.must("anon", "GET", "/api/v1/copy-requests?status=completed", nil, 200, &page)
		if len(page.Items) != 1 || page.Items[0].ID != r.ID {
			t.Fatalf("filter status: %+v", page)
		}
		e.must("anon", "GET", "/api/v1/copy-requests?limit=1", nil, 200, &page)
		if len(page.Items) != 1 || page.Next != itoa(r.ID) {
			t.Fatalf("page: %+v", page)
		}
		e.must("anon", "GET", "/api/v1/copy-requests?site=T2_B&item="+url.QueryEscape("/P/R-v2/AOD#c1")+"&after="+page.Next, nil, 200, &page)
		if len(page.Items) != 1 || page.Items[0].ID != fresh.ID {
			t.Fatalf("filter item/site after: %+v", page)
		}
		// Cancel: bob may not cancel alice's; alice may.
		e.must("bob", "POST", "/api/v1/copy-requests/"+itoa(fresh.ID)+"/cancel", nil, 403, nil)
		e.must("alice", "POST", "/api/v1/copy-requests/"+itoa(fresh.ID)+"/cancel", nil, 200, &got)
		if got.Status != StatusCancelled {
			t.Fatalf("cancel: %+v", got)
		}
		e.must("anon", "GET", "/api/v1/copy-requests/999", nil, 404, nil)
		e.must("anon", "GET", "/api/v1/deletion-requests/"+itoa(r.ID), nil, 404, nil) // kinds do not mix
	})
}

func itoa(n int64) string { return strings.TrimSpace(strings.Replace(jsonString(n), `"`, "", -1)) }

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestLocks(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		ctx := context.Background()
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		var l Lock
		e.must("alice", "POST", "/api/v1/locks", map[string]any{"item": "/P/*/AOD", "expires": exp.Format(time.RFC3339), "sites": []string{"T2_A"}, "service": "svc"}, 201, &l)
		if l.Expires != exp.Unix() || l.User != "alice" || len(l.Sites) != 1 {
			t.Fatalf("lock: %+v", l)
		}
		// The same lock again extends it.
		var l2 Lock
		e.must("alice", "POST", "/api/v1/locks", map[string]any{"item": "/P/*/AOD", "expires": exp.Unix() + 60, "sites": []string{"T2_A"}, "service": "svc"}, 200, &l2)
		if l2.ID != l.ID || l2.Expires != exp.Unix()+60 {
			t.Fatalf("update: %+v", l2)
		}
		var bl Lock
		e.must("bob", "POST", "/api/v1/locks", map[string]any{"item": "/P/R-v1/AOD#b1", "expires": "2099-01-01"}, 201, &bl)

		// Expiry: a lock stops protecting at its expiry.
		st := e.srv.Store()
		act, err := st.ActiveLocks(ctx, time.Now())
		if err != nil || len(act) != 2 {
			t.Fatalf("active now: %+v %v", act, err)
		}
		act, _ = st.ActiveLocks(ctx, time.Unix(exp.Unix()+60, 0))
		if len(act) != 1 || act[0].ID != bl.ID {
			t.Fatalf("active at alice's expiry: %+v", act)
		}

		// Set replaces alice's whole svc set atomically; bob's lock stays.
		var set Page[Lock]
		e.must("alice", "PUT", "/api/v1/lock-sets/svc", []map[string]any{
			{"item": "/Q/R-v1/MINIAOD", "expires": "2099-01-01"}, {"item": "/P/R-v2/AOD", "expires": "2099-01-01", "groups": []string{"DataOps"}}}, 200, &set)
		if len(set.Items) != 2 || set.Items[0].Service != "svc" {
			t.Fatalf("set: %+v", set)
		}
		var list Page[Lock]
		e.must("anon", "GET", "/api/v1/locks?user=alice", nil, 200, &list)
		if len(list.Items) != 2 {
			t.Fatalf("alice's active locks after set: %+v", list.Items)
		}
		e.must("anon", "GET", "/api/v1/locks?user=alice&all=true", nil, 200, &list)
		if len(list.Items) != 3 || list.Items[0].Unlocked == 0 {
			t.Fatalf("history: %+v", list.Items)
		}
		e.must("anon", "GET", "/api/v1/locks?group=DataOps", nil, 200, &list) // bob's lock names no group: it matches every group
		if len(list.Items) != 3 {
			t.Fatalf("group filter: %+v", list.Items)
		}
		// Unlock by filter only touches the caller's locks.
		var un Page[Lock]
		e.must("alice", "POST", "/api/v1/locks/unlock", map[string]any{"item": "/P/R-v1/AOD#b1"}, 200, &un)
		if len(un.Items) != 0 {
			t.Fatalf("alice unlocked bob's lock: %+v", un)
		}
		e.must("oscar", "POST", "/api/v1/locks/unlock", map[string]any{"item": "/P/R-v1/AOD#b1", "user": "bob"}, 200, &un)
		if len(un.Items) != 1 || un.Items[0].ID != bl.ID || un.Items[0].Unlocked == 0 {
			t.Fatalf("operator unlock: %+v", un)
		}
		e.must("alice", "DELETE", "/api/v1/locks/"+itoa(set.Items[0].ID), nil, 200, nil)
		e.must("alice", "DELETE", "/api/v1/locks/"+itoa(set.Items[0].ID), nil, 404, nil)
		act, _ = st.ActiveLocks(ctx, time.Now())
		if len(act) != 1 || act[0].Item != "/P/R-v2/AOD" {
			t.Fatalf("active at end: %+v", act)
		}
	})
}

func TestInjection(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		doc := `{"sites": [{"name": "T2_NEW", "storage_type": "disk", "status": "ready"}]}`
		var in Injection
		e.must("ada", "POST", "/api/v1/injections", doc, 202, &in)
		if in.Status != InjectQueued {
			t.Fatalf("queued: %+v", in)
		}
		bad := `{"sites": [{"name": "T2_BAD", "storage_type": "disk", "status": "ready", "quotas": {"NoSuchPartition": 5}}]}`
		var badIn Injection
		e.must("ada", "POST", "/api/v1/injections", bad, 202, &badIn)
		if _, ok := e.inv.Snapshot().SiteByName("T2_NEW"); ok {
			t.Fatal("queued injection applied before a writer ran")
		}
		log := logrus.New()
		log.SetOutput(io.Discard)
		n, err := ApplyQueuedInjections(context.Background(), e.inv, log.WithField("component", "test"), 0)
		if err != nil || n != 1 {
			t.Fatalf("apply: %d %v", n, err)
		}
		if _, ok := e.inv.Snapshot().SiteByName("T2_NEW"); !ok {
			t.Fatal("queued injection not applied")
		}
		e.must("anon", "GET", "/api/v1/injections/"+itoa(in.ID), nil, 200, &in)
		e.must("anon", "GET", "/api/v1/injections/"+itoa(badIn.ID), nil, 200, &badIn)
		if in.Status != InjectApplied || badIn.Status != InjectFailed || !strings.Contains(badIn.Result, "NoSuchPartition") {
			t.Fatalf("states: %+v %+v", in, badIn)
		}
		if n, _ := ApplyQueuedInjections(context.Background(), e.inv, log.WithField("component", "test"), 0); n != 0 {
			t.Fatalf("re-applied %d", n)
		}
		var res InjectResult
		e.must("ada", "POST", "/api/v1/injections/sync", `{"groups": [{"name": "NewGroup", "olevel": "block"}]}`, 200, &res)
		if res.Updates != 1 {
			t.Fatalf("sync: %+v", res)
		}
		if _, ok := e.inv.Snapshot().GroupByName("NewGroup"); !ok {
			t.Fatal("sync injection not visible")
		}
		e.must("ada", "POST", "/api/v1/injections/sync", bad, 400, nil)
	})
}

func TestNotReady(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	e.srv.inv.Store(nil)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/readyz", ""},
		{"GET", "/api/v1/sites", ""},
		{"POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_A"]}`},
		{"POST", "/api/v1/locks", `{"item": "/P/R-v1/AOD", "expires": "2099-01-01"}`},
		{"POST", "/api/v1/injections", `{}`},
	} {
		req, _ := http.NewRequest(c.method, e.url+c.path, strings.NewReader(c.body))
		_ = req
		code, b := e.call("ada", c.method, c.path, nilIfEmpty(c.body))
		if c.path == "/api/v1/locks" {
			// Locks do not depend on the inventory.
			if code != 201 {
				t.Errorf("%s while loading: %d %s", c.path, code, b)
			}
			continue
		}
		if code != 503 {
			t.Errorf("%s %s while loading: %d, want 503: %s", c.method, c.path, code, b)
		}
	}
	// Retry-After is set.
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tlsFor(e)}}).Get(e.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestInjectWhileAnotherWriterIsAhead: when another process has written
// the inventory since this one loaded it, a synchronous injection is a 409
// with Retry-After, not a 500, and nothing is written.
func TestInjectWhileAnotherWriterIsAhead(t *testing.T) {
	d := testdb.SQLite(t)
	e := newEnv(t, d, nil)
	log := logrus.New()
	log.SetOutput(io.Discard)
	other, err := inventory.Load(context.Background(), d, log.WithField("component", "other"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := inventory.DecodeInjectDoc(strings.NewReader(`{"groups": [{"name": "Other", "olevel": "block"}]}`))
	if _, err := other.Inject(context.Background(), time.Now(), doc); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.url+"/api/v1/injections/sync", strings.NewReader(`{"groups": [{"name": "Mine", "olevel": "block"}]}`))
	tc := tlsFor(e)
	tc.Certificates = []tls.Certificate{e.certs["ada"]}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 409 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("stale writer: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if _, ok := e.inv.Snapshot().GroupByName("Mine"); ok {
		t.Fatal("written despite the conflict")
	}
}
