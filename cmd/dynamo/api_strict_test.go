package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/setest"
)

const strictToken = "strict-op-token"

// Small limits, so an oversized body is cheap to send.
const (
	strictBodyLimit   = 4096
	strictInjectLimit = 32768
)

// strictServer runs `dynamo serve` as the command builds it (newServer,
// run) with every component that mounts REST routes enabled, and returns
// it with its API base URL once it holds the writer lease.
func strictServer(t *testing.T) (*server, string) {
	t.Helper()
	pki := setest.PKI(t)
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "T2_A"), 0o755))
	cfg := fmt.Sprintf(`database: "sqlite:%s"
scheduler: {lease_period: 3s, heartbeat: 1s}
registry:
  listen: "127.0.0.1:0"
  body_limit: %d
  inject_body_limit: %d
  inject_interval: "0"
  users:
    - {name: op, roles: {"*": admin}}
  tokens:
    - {user: op, token: %q}
projects:
  sites: {T2_M: {surl_prefix: "srm://localhost:1/store"}}
  credential: {cert: %q, ca_dir: %q}
consistency:
  work_dir: %q
  sites:
    T2_A: {url: %q, paths: [/store]}
`, filepath.Join(dir, "dynamo.db"), strictBodyLimit, strictInjectLimit, strictToken,
		filepath.Join(pki, "proxy.pem"), filepath.Join(pki, "certificates"), filepath.Join(dir, "consistency"),
		"file://"+filepath.Join(dir, "T2_A"))
	path := filepath.Join(dir, "dynamo.yaml")
	must(t, os.WriteFile(path, []byte(cfg), 0o644))
	var logBuf lockedBuffer
	g := &globalOptions{configPath: path, logFormat: "text", logLevel: "warn", stdout: io.Discard, stderr: &logBuf}
	e, err := g.configure()
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := newServer(ctx, e, serveOptions{})
	if err != nil {
		cancel()
		t.Fatalf("serve: %v", err)
	}
	api := "http://" + srv.ln.rest.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.run(ctx, time.Now(), 10*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.close()
		if t.Failed() {
			t.Logf("serve log:\n%s", tail(logBuf.String(), 60))
		}
	})
	// Writes are refused (503 not_writer) until the scheduler holds the
	// writer lease; an empty injection is a write that changes nothing.
	waitUntil(t, "the writer lease", 30*time.Second, func() bool {
		code, _ := strictCall(t, api, http.MethodPost, "/api/v1/injections/sync", "{}")
		return code == http.StatusOK
	})
	return srv, api
}

func strictCall(t *testing.T, api, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, api+path, strings.NewReader(body))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strictToken)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, b
}

// envelope decodes b as the one error envelope, refusing any other shape.
func envelope(t *testing.T, what string, b []byte) apierr.Body {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var body apierr.Body
	if err := dec.Decode(&body); err != nil || body.Status != "error" || body.ErrorType == "" || body.Code == "" || body.Error == "" {
		t.Fatalf("%s: not the error envelope (%v): %s", what, err, b)
	}
	return body
}

var routeParam = regexp.MustCompile(`[:*][A-Za-z_]+`)

// TestEveryWriteRouteDecodesStrictly goes over every POST, PUT and PATCH
// route registered on the REST engine of `dynamo serve`: an unknown field
// is 400 naming it and a body over the limit is 413, in the one error
// envelope on /api/ routes. A route added without the strict decoder
// fails here.
func TestEveryWriteRouteDecodesStrictly(t *testing.T) {
	srv, api := strictServer(t)
	// Browser form posts of the console's sign-in, which read form
	// fields and answer with redirects: not JSON routes.
	forms := map[string]bool{"POST /session": true, "POST /session/end": true}
	injection := map[string]bool{"/api/v1/injections": true, "/api/v1/injections/sync": true, "/data/inventory/inject": true}
	const unknown = "zz_not_a_field"
	tested := 0
	// The OpenAPI document: every operation's errors are the one schema,
	// and the write routes list 400 and 413.
	code, b := strictCall(t, api, http.MethodGet, "/api/v1/openapi.json", "")
	if code != http.StatusOK {
		t.Fatalf("openapi: %d %s", code, b)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	must(t, json.Unmarshal(b, &doc))
	errorRef := func(method, path, status string) bool {
		op, ok := doc.Paths[routeParam.ReplaceAllStringFunc(path, func(p string) string { return "{" + p[1:] + "}" })][strings.ToLower(method)]
		return ok && op.Responses[status].Content["application/json"].Schema.Ref == "#/components/schemas/Error"
	}
	for _, r := range srv.registry.Routes() {
		if strings.HasPrefix(r.Path, "/api/") && !errorRef(r.Method, r.Path, "default") {
			t.Errorf("%s %s: the OpenAPI document does not give its errors as the Error schema", r.Method, r.Path)
		}
		if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
			continue
		}
		if forms[r.Method+" "+r.Path] {
			continue
		}
		page := !strings.HasPrefix(r.Path, "/api/") && !strings.HasPrefix(r.Path, "/data/") && !strings.HasPrefix(r.Path, "/registry/")
		if page {
			// Console page actions: forms with a CSRF token, answered as
			// pages; covered by the console's tests.
			continue
		}
		// Path parameters get a value every route accepts as syntax (ids
		// are numbers); the body is refused before anything is looked up.
		if !errorRef(r.Method, r.Path, "400") || !errorRef(r.Method, r.Path, "413") {
			t.Errorf("%s %s: the OpenAPI document does not give its errors as the Error schema", r.Method, r.Path)
		}
		path := routeParam.ReplaceAllString(r.Path, "1")
		name := r.Method + " " + r.Path
		tested++
		t.Run(name, func(t *testing.T) {
			compat := !strings.HasPrefix(r.Path, "/api/")
			check := func(what string, code int, b []byte, wantCode int, wantBodyCode, wantField string) {
				t.Helper()
				if code != wantCode {
					t.Fatalf("%s: %d, want %d: %s", what, code, wantCode, b)
				}
				if compat {
					// Dynamo's envelope, kept for its clients.
					var d struct {
						Result, Message string
					}
					if err := json.Unmarshal(b, &d); err != nil || !strings.Contains(d.Message, wantField) {
						t.Fatalf("%s: %v %s", what, err, b)
					}
					return
				}
				body := envelope(t, what, b)
				if body.Code != wantBodyCode || body.Field != wantField {
					t.Fatalf("%s: code %q field %q, want %q %q: %s", what, body.Code, body.Field, wantBodyCode, wantField, b)
				}
			}
			code, b := strictCall(t, api, r.Method, path, `{"`+unknown+`": 1}`)
			if code == http.StatusBadRequest && !compat && envelope(t, "unknown field", b).Code == apierr.CodeWrongType {
				// A route taking a JSON array: the unknown field in its
				// element.
				code, b = strictCall(t, api, r.Method, path, `[{"`+unknown+`": 1}]`)
			}
			check("unknown field", code, b, http.StatusBadRequest, apierr.CodeUnknownField, unknown)

			big := `{"` + unknown + `": "` + strings.Repeat("x", strictBodyLimit) + `"}`
			if injection[r.Path] {
				// Injection documents have their own, larger limit.
				code, b = strictCall(t, api, r.Method, path, big)
				if code == http.StatusRequestEntityTooLarge {
					t.Fatalf("a body under inject_body_limit: 413: %s", b)
				}
				big = `{"` + unknown + `": "` + strings.Repeat("x", strictInjectLimit) + `"}`
			}
			code, b = strictCall(t, api, r.Method, path, big)
			check("oversized", code, b, http.StatusRequestEntityTooLarge, apierr.CodeBodyTooLarge, "")
		})
	}
	// The components mount their write routes only when wired: fewer
	// means one was not mounted and this test covers less than it says.
	if tested < 40 {
		t.Fatalf("only %d write routes registered", tested)
	}
}
