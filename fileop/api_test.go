package fileop_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

func TestRESTHeldReleaseStatusHistory(t *testing.T) {
	gin.SetMode(gin.TestMode)
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 2, 10)
		ctx := context.Background()
		if err := os.Remove(filepath.Join(e.fed.SrcDir, e.fed.Files[0].LFN)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, testConfig(), fileop.Options{}, 20*time.Second)
		woken := 0
		r := gin.New()
		r.Use(apierr.Middleware(nil, time.Second))
		(&fileop.API{DB: d, Wake: func() { woken++ }}).Routes(r.Group("/api/v1/fileop"))
		call := func(method, path, body string) (int, map[string]any) {
			w := httptest.NewRecorder()
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			r.ServeHTTP(w, req)
			var out map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, w.Body)
			}
			return w.Code, out
		}
		code, out := call("GET", "/api/v1/fileop/held", "")
		held, _ := out["data"].([]any)
		if code != 200 || len(held) != 1 {
			t.Fatalf("held: %d %v", code, out)
		}
		id := int64(held[0].(map[string]any)["id"].(float64))
		// What an operator reads: the failed source and why, never the
		// site's physical path.
		if m, _ := held[0].(map[string]any)["message"].(string); !strings.Contains(m, "from T2_SRC:") || !strings.Contains(m, "not found") || strings.Contains(m, e.fed.SrcDir) {
			t.Fatalf("held message %q", m)
		}
		code, out = call("GET", "/api/v1/fileop/history?subscription="+itoa(id), "")
		if h, _ := out["data"].([]any); code != 200 || len(h) != 1 || h[0].(map[string]any)["outcome"] != "failed" {
			t.Fatalf("history: %d %v", code, out)
		}
		code, out = call("GET", "/api/v1/fileop/status", "")
		if code != 200 || !strings.Contains(mustJSON(out), `"state":"held"`) {
			t.Fatalf("status: %d %v", code, out)
		}
		if code, out = call("POST", "/api/v1/fileop/release", `{"ids":[`+itoa(id)+`]}`); code != 200 || out["data"].(map[string]any)["released"].(float64) != 1 || woken != 1 {
			t.Fatalf("release: %d %v (woken %d)", code, out, woken)
		}
		if code, out = call("POST", "/api/v1/fileop/cancel", `{"ids":[`+itoa(id)+`]}`); code != 200 || out["data"].(map[string]any)["cancelled"].(float64) != 1 {
			t.Fatalf("cancel: %d %v", code, out)
		}
		if code, out = call("GET", "/api/v1/fileop/subscriptions/"+itoa(id), ""); code != 200 || out["data"].(map[string]any)["state"] != "cancelled" {
			t.Fatalf("get: %d %v", code, out)
		}
		if code, out = call("GET", "/api/v1/fileop/subscriptions/999999", ""); code != 404 || out["errorType"] != "not_found" {
			t.Fatalf("missing: %d %v", code, out)
		}
		if code, out = call("POST", "/api/v1/fileop/release", `{"ids":"x"}`); code != 400 || out["errorType"] != "bad_request" || out["code"] != "wrong_type" || out["field"] != "ids" {
			t.Fatalf("bad body: %d %v", code, out)
		}
	})
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
