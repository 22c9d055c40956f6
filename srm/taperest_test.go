package srm

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/srm/client"
	"github.com/dynamo-go/dynamo/srm/fs"
)

// startTapeSE is an SE with a nearline area /tape holding purged files.
func startTapeSE(t *testing.T, immediate int, files ...string) (*testSE, string) {
	t.Helper()
	var tapeRoot string
	se := startSE(t, nil, func(c *Config) {
		c.Engine.ImmediateMaxFiles = immediate
		tapeRoot = filepath.Join(t.TempDir(), "tape-root")
		must(t, os.Mkdir(tapeRoot, 0o755))
		c.Areas = append(c.Areas, AreaConfig{Name: "tape", Prefix: "/tape", Root: tapeRoot, SpaceToken: "TAPE",
			RetentionPolicy: "CUSTODIAL", AccessLatency: "NEARLINE", Driver: "nearline",
			Nearline: NearlineConfig{RecallDelay: 200 * time.Millisecond}, Allow: []Rule{{DN: "*"}}})
	})
	for _, f := range files {
		must(t, os.WriteFile(filepath.Join(tapeRoot, f), []byte("tape content "+f), 0o644))
		loc, err := se.Namespace().Resolve("/tape/" + f)
		must(t, err)
		st := loc.Area.Driver().(fs.Stager)
		must(t, st.Migrate(context.Background(), loc.Name))
		must(t, st.Purge(context.Background(), loc.Name))
	}
	return se, tapeRoot
}

func TestTapeREST(t *testing.T) {
	se, _ := startTapeSE(t, 0, "a", "b")
	_, hc, _ := clientFor(t, se)
	base := "https://localhost:" + port(se.DataAddr().String())
	post := func(p string, body any) (int, []byte, string) {
		b, _ := json.Marshal(body)
		resp, out := httpDo(t, hc, "POST", base+p, b, "Content-Type", "application/json")
		return resp.StatusCode, out, resp.Header.Get("Content-Type")
	}
	get := func(p string) (int, []byte) {
		resp, out := httpDo(t, hc, "GET", base+p, nil)
		return resp.StatusCode, out
	}

	code, out := get("/.well-known/wlcg-tape-rest-api")
	var disc struct {
		Sitename  string
		Endpoints []struct{ URI, Version string }
	}
	if code != 200 || json.Unmarshal(out, &disc) != nil || len(disc.Endpoints) != 1 || disc.Endpoints[0].Version != "v1" ||
		!strings.HasSuffix(disc.Endpoints[0].URI, "/api/v1") || disc.Sitename == "" {
		t.Fatalf("discovery: %d %s", code, out)
	}

	code, out, ct := post("/api/v1/archiveinfo", map[string]any{"paths": []string{"/tape/a", "//tape/./a", "/tape/nope", "/elsewhere/x"}})
	var infos []struct{ Path, Locality, Error string }
	if code != 200 || json.Unmarshal(out, &infos) != nil || len(infos) != 4 || infos[0].Locality != "TAPE" || infos[1].Locality != "TAPE" ||
		infos[2].Error == "" || infos[3].Error == "" || strings.Contains(string(out), se.Root) {
		t.Fatalf("archiveinfo: %d %s %s", code, ct, out)
	}

	// Bad bodies get RFC 7807 problems.
	for _, body := range []any{map[string]any{}, map[string]any{"files": []any{}}, "not an object", map[string]any{"files": []any{map[string]any{"path": "relative"}}}} {
		if code, out, ct := post("/api/v1/stage", body); code != 400 || ct != "application/problem+json" || !strings.Contains(string(out), `"status":400`) {
			t.Errorf("stage %v: %d %s %s", body, code, ct, out)
		}
	}

	code, out, _ = post("/api/v1/stage", map[string]any{"files": []map[string]any{
		{"path": "/tape/a", "diskLifetime": "PT1H", "targetedMetadata": map[string]any{"x": 1}},
		{"path": "/tape/b"}, {"path": "/tape/missing"}}, "unknown": true})
	var sub struct{ RequestID string }
	if code != 201 || json.Unmarshal(out, &sub) != nil || sub.RequestID == "" {
		t.Fatalf("stage: %d %s", code, out)
	}
	id := sub.RequestID

	// The files are recalled by the engine shared with srmBringOnline.
	type status struct {
		ID          string
		CreatedAt   int64
		CompletedAt *int64
		Files       []struct{ Path, State, Error string }
	}
	var st status
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out = get("/api/v1/stage/" + id)
		st = status{}
		if code != 200 || json.Unmarshal(out, &st) != nil || st.ID != id || len(st.Files) != 3 {
			t.Fatalf("stage status: %d %s", code, out)
		}
		if st.CompletedAt != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling, as a client does
	}
	states := map[string]string{}
	for _, f := range st.Files {
		states[f.Path] = f.State
	}
	if states["/tape/a"] != "COMPLETED" || states["/tape/b"] != "COMPLETED" || states["/tape/missing"] != "FAILED" {
		t.Fatalf("final states %s", out)
	}
	if code, out, _ := post("/api/v1/archiveinfo", map[string]any{"paths": []string{"/tape/a"}}); code != 200 || !strings.Contains(string(out), "DISK_AND_TAPE") {
		t.Errorf("archiveinfo after stage: %s", out)
	}
	// srmStatusOfBringOnlineRequest sees the same request.
	c, _, _ := clientFor(t, se)
	srmReq := &client.Request{Token: id, Type: "srmBringOnline"}
	if err := c.Status(context.Background(), srmReq); err != nil || srmReq.Code != "SRM_PARTIAL_SUCCESS" {
		t.Errorf("the SRM side does not see the stage request: %v %s", err, srmReq.Code)
	}

	// Release and cancel refuse paths outside the request, changing nothing.
	if code, out, _ := post("/api/v1/release/"+id, map[string]any{"paths": []string{"/tape/a", "/tape/zzz"}}); code != 400 || !strings.Contains(string(out), "does not belong") {
		t.Errorf("release with a foreign path: %d %s", code, out)
	}
	if code, _, _ := post("/api/v1/release/"+id, map[string]any{"paths": []string{"/tape/a"}}); code != 200 {
		t.Errorf("release: %d", code)
	}
	if code, _, _ := post("/api/v1/stage/"+id+"/cancel", map[string]any{"paths": []string{"/tape/b"}}); code != 200 {
		t.Errorf("cancel: %d", code)
	}
	// Another client cannot see the request; DELETE removes it.
	if code, _ := get("/api/v1/stage/no-such-id"); code != 404 {
		t.Errorf("unknown id: %d", code)
	}
	if resp, _ := httpDo(t, hc, "DELETE", base+"/api/v1/stage/"+id, nil); resp.StatusCode != 200 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	if code, _ := get("/api/v1/stage/" + id); code != 404 {
		t.Errorf("after delete: %d", code)
	}
	if code, _ := get("/api/v1/nothing"); code != 404 {
		t.Errorf("unknown API path: %d", code)
	}
}

func TestTapeRESTCancelInFlight(t *testing.T) {
	se, _ := startTapeSE(t, 10, "c")
	_, hc, _ := clientFor(t, se)
	base := "https://localhost:" + port(se.DataAddr().String())
	b, _ := json.Marshal(map[string]any{"files": []map[string]any{{"path": "/tape/c"}}})
	resp, out := httpDo(t, hc, "POST", base+"/api/v1/stage", b, "Content-Type", "application/json")
	var sub struct{ RequestID string }
	if resp.StatusCode != 201 || json.Unmarshal(out, &sub) != nil {
		t.Fatalf("stage: %d %s", resp.StatusCode, out)
	}
	// Immediate processing: the recall is running (200ms delay).
	b, _ = json.Marshal(map[string]any{"paths": []string{"/tape/c"}})
	if resp, out := httpDo(t, hc, "POST", base+"/api/v1/stage/"+sub.RequestID+"/cancel", b, "Content-Type", "application/json"); resp.StatusCode != 200 {
		t.Fatalf("cancel: %d %s", resp.StatusCode, out)
	}
	resp, out = httpDo(t, hc, "GET", base+"/api/v1/stage/"+sub.RequestID, nil)
	if !bytes.Contains(out, []byte(`"CANCELLED"`)) {
		t.Fatalf("after cancel: %d %s", resp.StatusCode, out)
	}
}

func TestSRR(t *testing.T) {
	se, _ := startTapeSE(t, 0, "a")
	_, hc, _ := clientFor(t, se)
	resp, out := httpDo(t, hc, "GET", "https://localhost:"+port(se.DataAddr().String())+"/api/v1/srr", nil)
	var rep SRR
	if resp.StatusCode != 200 || json.Unmarshal(out, &rep) != nil {
		t.Fatalf("srr: %d %s", resp.StatusCode, out)
	}
	s := rep.StorageService
	if s.Implementation != "dynamo" || len(s.StorageShares) != 2 || len(s.StorageEndpoints) != 3 || s.StorageCapacity.Nearline == nil {
		t.Fatalf("srr: %s", out)
	}
	var tape SRRShare
	for _, sh := range s.StorageShares {
		if sh.Name == "tape" {
			tape = sh
		}
	}
	if tape.AccessLatency != "nearline" || tape.RetentionPolicy != "custodial" || tape.Path[0] != "/tape" || tape.TotalSize <= 0 || tape.VOs == nil {
		t.Errorf("tape share %+v", tape)
	}
	// Live usage: a file written through the SE shows up.
	before := s.StorageCapacity.Online.UsedSize
	c, _, _ := clientFor(t, se)
	turl, tok, err := c.PutTURL(context.Background(), "srm://localhost/x/f", 12345, false)
	must(t, err)
	if resp, out := httpDo(t, hc, "PUT", turl, make([]byte, 12345)); resp.StatusCode != 201 {
		t.Fatalf("put: %d %s", resp.StatusCode, out)
	}
	_, err = c.PutDone(context.Background(), tok, "srm://localhost/x/f")
	must(t, err)
	if got := se.Report(time.Now()).StorageService.StorageCapacity.Online.UsedSize; got != before+12345 {
		t.Errorf("used after upload %d, want %d", got, before+12345)
	}

	// The file form, for sites that publish one.
	file := filepath.Join(t.TempDir(), "srr.json")
	must(t, WriteReport(context.Background(), se.cfg, file))
	data, err := os.ReadFile(file)
	must(t, err)
	var rep2 SRR
	if json.Unmarshal(data, &rep2) != nil || len(rep2.StorageService.StorageShares) != 2 {
		t.Fatalf("report file: %s", data)
	}
}
