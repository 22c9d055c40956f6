package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/adler32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/registry"
)

// reqHarness is a `dynamo serve` with three file:// sites holding real
// files, driven through its REST API as alice (a user acting for
// AnalysisOps), bob (a user of no group) and op (an operator).
type reqHarness struct {
	t     *testing.T
	api   string
	roots map[string]string // site -> directory
	lfns  map[string][]string
}

var reqTokens = map[string]string{"alice": "alice-secret-token", "bob": "bob-secret-token", "op": "op-secret-token"}

func (h *reqHarness) do(who, method, path string, body any) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		must(h.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.api+path, rd)
	must(h.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+reqTokens[who])
	}
	resp, err := http.DefaultClient.Do(req)
	must(h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(h.t, err)
	return resp.StatusCode, b
}

func (h *reqHarness) create(who, kind string, body any) registry.Request {
	h.t.Helper()
	code, b := h.do(who, http.MethodPost, "/api/v1/"+kind+"-requests", body)
	if code != http.StatusCreated {
		h.t.Fatalf("create %s request: %d %s", kind, code, b)
	}
	var r registry.Request
	must(h.t, json.Unmarshal(b, &r))
	return r
}

func (h *reqHarness) get(kind string, id int64) registry.Request {
	h.t.Helper()
	code, b := h.do("op", http.MethodGet, fmt.Sprintf("/api/v1/%s-requests/%d", kind, id), nil)
	if code != http.StatusOK {
		h.t.Fatalf("get %s request %d: %d %s", kind, id, code, b)
	}
	var r registry.Request
	must(h.t, json.Unmarshal(b, &r))
	return r
}

// waitRequest polls a request until cond holds and returns it.
func (h *reqHarness) waitRequest(kind string, id int64, what string, cond func(registry.Request) bool) registry.Request {
	h.t.Helper()
	var last registry.Request
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if last = h.get(kind, id); cond(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", " ")
	h.t.Fatalf("%s request %d: never %s; last:\n%s", kind, id, what, b)
	return last
}

// replicaSites returns the sites holding a replica of the dataset, as the
// inventory says.
func (h *reqHarness) replicaSites(ds string) map[string]registry.DatasetReplicaView {
	h.t.Helper()
	code, b := h.do("op", http.MethodGet, "/api/v1/datasets/"+url.PathEscape(ds)+"/replicas", nil)
	if code != http.StatusOK {
		h.t.Fatalf("replicas of %s: %d %s", ds, code, b)
	}
	var page registry.Page[registry.DatasetReplicaView]
	must(h.t, json.Unmarshal(b, &page))
	out := map[string]registry.DatasetReplicaView{}
	for _, r := range page.Items {
		out[r.Site] = r
	}
	return out
}

// onDisk counts the dataset's files present under a site's root.
func (h *reqHarness) onDisk(site, ds string) int {
	n := 0
	for _, lfn := range h.lfns[ds] {
		if _, err := os.Stat(filepath.Join(h.roots[site], lfn)); err == nil {
			n++
		}
	}
	return n
}

// startRequestServer writes the sites, their files and the configuration,
// starts `dynamo serve` in-process and injects the inventory. Datasets:
// name -> sites holding it (every file written there), plus broken ones
// whose files are missing from their only site.
func startRequestServer(t *testing.T) *reqHarness {
	dir := t.TempDir()
	h := &reqHarness{t: t, roots: map[string]string{}, lfns: map[string][]string{}}
	h.api = fmt.Sprintf("http://127.0.0.1:%d", testservers.FreePort(t))
	var sites []map[string]any
	for _, s := range []string{"T2_A", "T2_B", "T2_C"} {
		h.roots[s] = filepath.Join(dir, s)
		must(t, os.MkdirAll(h.roots[s], 0o755))
		sites = append(sites, map[string]any{"name": s, "host": "localhost", "storage_type": "disk", "status": "ready",
			"backend": "file://" + h.roots[s], "quotas": map[string]int64{"Default": 1 << 30}})
	}
	placement := map[string][]string{
		"/Req/Two-v1/AOD":     {"T2_A", "T2_B"},
		"/Req/Last-v1/AOD":    {"T2_B"},
		"/Req/Locked-v1/AOD":  {"T2_A", "T2_B"},
		"/Req/Copy-v1/AOD":    {"T2_A"},
		"/Req/Broken-v1/AOD":  {"T2_A"},
		"/Req/Broken-v2/AOD":  {"T2_A"},
		"/Req/Foreign-v1/AOD": {"T2_A", "T2_B"},
	}
	var dss, reps []map[string]any
	for ds, at := range placement {
		var blocks []map[string]any
		for bi := range 2 {
			var files []map[string]any
			for fi := range 2 {
				lfn := fmt.Sprintf("/store/req%s/b%d/f%d.root", strings.ReplaceAll(strings.ToLower(ds), "/", "_"), bi, fi)
				content := bytes.Repeat([]byte(lfn), 100+bi*10+fi)
				files = append(files, map[string]any{"lfn": lfn, "size": len(content), "adler32": fmt.Sprintf("%08x", adler32.Checksum(content))})
				h.lfns[ds] = append(h.lfns[ds], lfn)
				if strings.HasPrefix(ds, "/Req/Broken") {
					continue // listed in the inventory, missing on disk: transfers fail
				}
				for _, s := range at {
					p := filepath.Join(h.roots[s], lfn)
					must(t, os.MkdirAll(filepath.Dir(p), 0o755))
					must(t, os.WriteFile(p, content, 0o644))
				}
			}
			blocks = append(blocks, map[string]any{"name": fmt.Sprintf("b%d", bi), "files": files})
		}
		dss = append(dss, map[string]any{"name": ds, "status": "valid", "data_type": "data", "blocks": blocks})
		group := "AnalysisOps"
		if ds == "/Req/Foreign-v1/AOD" {
			group = "DataOps"
		}
		for _, s := range at {
			reps = append(reps, map[string]any{"dataset": ds, "site": s, "group": group})
		}
	}
	cfg := fmt.Sprintf(`database: "sqlite:%s"
log: {level: debug, format: text}
serve: {shutdown_grace: 10s}
scheduler: {lease_period: 3s, heartbeat: 1s, retry_delay: 100ms}
registry:
  listen: %q
  inject_interval: "0"
  request_interval: 500ms
  users:
    - {name: alice, roles: {registry: user}, groups: [AnalysisOps]}
    - {name: bob, roles: {registry: user}}
    - {name: op, roles: {"*": admin}}
  tokens:
    - {user: alice, token: %q}
    - {user: bob, token: %q}
    - {user: op, token: %q}
fileop:
  interval: 100ms
  max_tries: 2
  retry_base: 50ms
  retry_max: 100ms
  native: {workers: 2}
dealer:
  max_pending_fraction: 0.9
`, filepath.Join(dir, "dynamo.db"), strings.TrimPrefix(h.api, "http://"), reqTokens["alice"], reqTokens["bob"], reqTokens["op"])
	cfgPath := filepath.Join(dir, "dynamo.yaml")
	must(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))

	ctx, cancel := context.WithCancel(context.Background())
	var logBuf lockedBuffer
	done := make(chan error, 1)
	go func() {
		root := newRootCmd(&logBuf, &logBuf)
		root.SetArgs([]string{"serve", "--config", cfgPath})
		done <- root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", tail(logBuf.String(), 80))
		}
	})
	waitUntil(t, "the REST API", 30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, tail(logBuf.String(), 40))
		default:
		}
		resp, err := http.Get(h.api + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	doc := map[string]any{"sites": sites, "groups": []map[string]any{{"name": "AnalysisOps", "olevel": "dataset"}, {"name": "DataOps", "olevel": "dataset"}},
		"datasets": dss, "dataset_replicas": reps}
	// Ready serves reads; writes wait for the writer lease (503 not_writer
	// until the scheduler has taken it).
	waitUntil(t, "the inventory injected", 30*time.Second, func() bool {
		code, b := h.do("op", http.MethodPost, "/api/v1/injections/sync", doc)
		if code != http.StatusOK && !strings.Contains(string(b), "not_writer") {
			t.Fatalf("inject: %d %s", code, b)
		}
		return code == http.StatusOK
	})
	return h
}

// Requests through `dynamo serve` with real files on file:// sites, on the
// defaults but a short tracker interval: copies run to completed with
// per-item progress, deletions to completed with the files gone from disk
// and inventory, deletions of a last copy or a locked replica are
// rejected with the reason, a deletion outside its requester's groups waits
// for an operator, stuck copies say why, and cancelled copies (by their
// owner, or by an operator cancelling their transfers) end cancelled
// leaving no incomplete replica behind.
func TestServeCarriesRequestsToTheirEnd(t *testing.T) {
	h := startRequestServer(t)

	// A copy: placed by the tracker's Dealer pass, transferred, completed.
	cp := h.create("alice", "copy", map[string]any{"items": []string{"/Req/Copy-v1/AOD"}, "sites": []string{"T2_C"}})
	done := h.waitRequest("copy", cp.ID, "completed", func(r registry.Request) bool { return r.Status == registry.StatusCompleted })
	if len(done.Actions) != 1 || done.Actions[0].Site != "T2_C" || done.Actions[0].Status != registry.ActionCompleted ||
		done.Actions[0].FilesDone != 4 || done.Actions[0].FilesTotal != 4 || done.Actions[0].BytesDone != done.Actions[0].BytesTotal || done.Actions[0].BytesTotal == 0 {
		t.Fatalf("completed copy's actions: %+v", done.Actions)
	}
	if n := h.onDisk("T2_C", "/Req/Copy-v1/AOD"); n != 4 {
		t.Fatalf("%d of 4 files copied to T2_C", n)
	}

	// A deletion within alice's group: approved by policy, executed,
	// completed; the files are gone from disk and from the inventory.
	del := h.create("alice", "deletion", map[string]any{"items": []string{"/Req/Two-v1/AOD"}, "sites": []string{"T2_A"}})
	done = h.waitRequest("deletion", del.ID, "completed", func(r registry.Request) bool { return r.Status == registry.StatusCompleted })
	if done.ApprovedBy != "policy" || len(done.Actions) != 1 || done.Actions[0].FilesDone != 4 || done.Actions[0].FilesTotal != 4 {
		t.Fatalf("completed deletion: %+v", done)
	}
	waitUntil(t, "the files gone from T2_A", 10*time.Second, func() bool { return h.onDisk("T2_A", "/Req/Two-v1/AOD") == 0 })
	if reps := h.replicaSites("/Req/Two-v1/AOD"); len(reps) != 1 || !reps["T2_B"].Complete {
		t.Fatalf("replicas after the deletion: %+v", reps)
	}

	// The last copy: rejected by the guard, nothing deleted.
	last := h.create("alice", "deletion", map[string]any{"items": []string{"/Req/Last-v1/AOD"}, "sites": []string{"T2_B"}})
	done = h.waitRequest("deletion", last.ID, "rejected", func(r registry.Request) bool { return r.Status != registry.StatusNew })
	if done.Status != registry.StatusRejected || !strings.Contains(done.Reason, "last copy") || !strings.Contains(done.Reason, "/Req/Last-v1/AOD#b0 at T2_B: last copy") {
		t.Fatalf("last-copy deletion: %s %q", done.Status, done.Reason)
	}

	// A locked replica: rejected with the lock named as the reason.
	if code, b := h.do("op", http.MethodPost, "/api/v1/locks", map[string]any{"item": "/Req/Locked-v1/AOD", "sites": []string{"T2_B"},
		"expires": time.Now().Add(time.Hour).Unix()}); code != http.StatusCreated {
		t.Fatalf("lock: %d %s", code, b)
	}
	locked := h.create("alice", "deletion", map[string]any{"items": []string{"/Req/Locked-v1/AOD"}, "sites": []string{"T2_B"}})
	done = h.waitRequest("deletion", locked.ID, "rejected", func(r registry.Request) bool { return r.Status != registry.StatusNew })
	if done.Status != registry.StatusRejected || !strings.Contains(done.Reason, "locked") {
		t.Fatalf("locked deletion: %s %q", done.Status, done.Reason)
	}
	if h.onDisk("T2_B", "/Req/Last-v1/AOD") != 4 || h.onDisk("T2_B", "/Req/Locked-v1/AOD") != 4 {
		t.Fatal("a rejected deletion removed files")
	}

	// Outside the requester's groups: held for an operator, then done.
	foreign := h.create("alice", "deletion", map[string]any{"items": []string{"/Req/Foreign-v1/AOD"}, "sites": []string{"T2_A"}})
	held := h.waitRequest("deletion", foreign.ID, "awaiting approval", func(r registry.Request) bool {
		return strings.Contains(r.Reason, "awaiting an operator's approval")
	})
	if held.Status != registry.StatusNew || !strings.Contains(held.Reason, "owned by DataOps") {
		t.Fatalf("foreign deletion: %s %q", held.Status, held.Reason)
	}
	if code, b := h.do("alice", http.MethodPost, fmt.Sprintf("/api/v1/deletion-requests/%d/approve", foreign.ID), nil); code != http.StatusForbidden {
		t.Fatalf("a user approved: %d %s", code, b)
	}
	if code, b := h.do("op", http.MethodPost, fmt.Sprintf("/api/v1/deletion-requests/%d/approve", foreign.ID), nil); code != http.StatusOK {
		t.Fatalf("approve: %d %s", code, b)
	}
	done = h.waitRequest("deletion", foreign.ID, "completed", func(r registry.Request) bool { return r.Status == registry.StatusCompleted })
	if done.ApprovedBy != "op" {
		t.Fatalf("approved by %q", done.ApprovedBy)
	}
	waitUntil(t, "the foreign files gone from T2_A", 10*time.Second, func() bool { return h.onDisk("T2_A", "/Req/Foreign-v1/AOD") == 0 })

	// A copy whose source files are missing: stuck, naming the failed
	// source; its owner cancels it: the transfers are cancelled and the
	// incomplete replica is removed.
	stuck := h.create("alice", "copy", map[string]any{"items": []string{"/Req/Broken-v1/AOD"}, "sites": []string{"T2_C"}})
	got := h.waitRequest("copy", stuck.ID, "stuck", func(r registry.Request) bool {
		return len(r.Actions) == 1 && r.Actions[0].Status == registry.ActionStuck
	})
	if a := got.Actions[0]; got.Status != registry.StatusActivated || !strings.Contains(got.Reason, "stuck") || !strings.Contains(a.Reason, "T2_A") ||
		a.FilesTotal != 4 || a.FilesDone != 0 || a.BytesTotal == 0 {
		t.Fatalf("stuck copy: %s %q %+v", got.Status, got.Reason, got.Actions)
	}
	if strings.Contains(got.Reason, h.roots["T2_A"]) || strings.Contains(got.Actions[0].Reason, "/tmp") {
		t.Fatalf("the reason reveals a physical path: %q", got.Reason)
	}
	if code, b := h.do("bob", http.MethodPost, fmt.Sprintf("/api/v1/copy-requests/%d/cancel", stuck.ID), nil); code != http.StatusForbidden {
		t.Fatalf("another user cancelled: %d %s", code, b)
	}
	if code, b := h.do("alice", http.MethodPost, fmt.Sprintf("/api/v1/copy-requests/%d/cancel", stuck.ID), nil); code != http.StatusOK {
		t.Fatalf("cancel: %d %s", code, b)
	}
	got = h.waitRequest("copy", stuck.ID, "cleaned up", func(r registry.Request) bool {
		return r.Status == registry.StatusCancelled && len(r.Actions) == 1 && r.Actions[0].Status == registry.ActionCancelled
	})
	waitUntil(t, "the incomplete replica removed", 10*time.Second, func() bool { _, ok := h.replicaSites("/Req/Broken-v1/AOD")["T2_C"]; return !ok })
	h.noLiveTransfers()

	// An operator cancels the transfers of a stuck copy (fileop cancel):
	// the request ends cancelled instead of staying activated for ever.
	stuck2 := h.create("alice", "copy", map[string]any{"items": []string{"/Req/Broken-v2/AOD"}, "sites": []string{"T2_C"}})
	h.waitRequest("copy", stuck2.ID, "stuck", func(r registry.Request) bool {
		return len(r.Actions) == 1 && r.Actions[0].Status == registry.ActionStuck && r.Actions[0].Reason != ""
	})
	var heldSubs struct {
		Data []struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	code, b := h.do("op", http.MethodGet, "/api/v1/fileop/held", nil)
	if code != http.StatusOK {
		t.Fatalf("held: %d %s", code, b)
	}
	must(t, json.Unmarshal(b, &heldSubs))
	var ids []int64
	for _, s := range heldSubs.Data {
		ids = append(ids, s.ID)
	}
	if code, b := h.do("op", http.MethodPost, "/api/v1/fileop/cancel", map[string]any{"ids": ids}); code != http.StatusOK {
		t.Fatalf("fileop cancel: %d %s", code, b)
	}
	got = h.waitRequest("copy", stuck2.ID, "cancelled", func(r registry.Request) bool { return r.Status == registry.StatusCancelled })
	if !strings.Contains(got.Reason, "transfers cancelled") {
		t.Fatalf("reason %q", got.Reason)
	}
	waitUntil(t, "the second incomplete replica removed", 10*time.Second, func() bool { _, ok := h.replicaSites("/Req/Broken-v2/AOD")["T2_C"]; return !ok })
}

// noLiveTransfers checks that the file-operation queue holds nothing
// pending (the cancelled request left no transfer behind).
func (h *reqHarness) noLiveTransfers() {
	h.t.Helper()
	waitUntil(h.t, "no live transfer", 10*time.Second, func() bool {
		code, b := h.do("op", http.MethodGet, "/api/v1/fileop/status", nil)
		if code != http.StatusOK {
			h.t.Fatalf("fileop status: %d %s", code, b)
		}
		var rows struct {
			Data []struct {
				Op    string `json:"op"`
				State string `json:"state"`
				N     int    `json:"count"`
			} `json:"data"`
		}
		must(h.t, json.Unmarshal(b, &rows))
		for _, r := range rows.Data {
			if r.Op == "transfer" && r.State != "done" && r.State != "cancelled" && r.N > 0 {
				return false
			}
		}
		return true
	})
}
