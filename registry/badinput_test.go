package registry

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/testdb"
)

// TestBadInput sends malformed input to every endpoint that takes any and
// checks the status and that the error names the field.
func TestBadInput(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), func(c *Config) { c.BodyLimit, c.InjectBodyLimit = 4096, 16384 })
	big := `{"items": ["` + strings.Repeat("x", 5000) + `"], "sites": ["T2_A"]}`
	cases := []struct {
		name, method, path string
		body               any
		code               int
		field              string // expected ErrorBody.Field ("" = not checked)
		contains           string
	}{
		{"copy unknown field", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_A"], "nn": 1}`, 400, "nn", "unknown field"},
		{"copy missing items", "POST", "/api/v1/copy-requests", `{"sites": ["T2_A"]}`, 400, "items", "at least one"},
		{"copy missing sites", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"]}`, 400, "sites", "at least one"},
		{"copy bad dataset name", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD", "not a dataset"], "sites": ["T2_A"]}`, 400, "items[1]", ""},
		{"copy unknown dataset", "POST", "/api/v1/copy-requests", `{"items": ["/X/Y/Z"], "sites": ["T2_A"]}`, 400, "items[0]", "no dataset"},
		{"copy unknown block", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD#zz"], "sites": ["T2_A"]}`, 400, "items[0]", "no block"},
		{"copy bad site glob", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_[A"]}`, 400, "sites[0]", "not closed"},
		{"copy glob matches nothing", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T3_*"]}`, 400, "sites[0]", "matches no site"},
		{"copy unknown site", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_A", "T2_Z"]}`, 400, "sites[1]", "no site"},
		{"copy unknown group", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_A"], "group": "Nobody"}`, 400, "group", "no group"},
		{"copy n too large", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_A"], "n": 2}`, 400, "n", ""},
		{"copy negative n", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_A"], "n": -1}`, 400, "n", ""},
		{"copy wrong type", "POST", "/api/v1/copy-requests", `{"items": "/P/R-v1/AOD", "sites": ["T2_A"]}`, 400, "items", ""},
		{"copy not json", "POST", "/api/v1/copy-requests", `items=/P/R-v1/AOD`, 400, "", "invalid JSON"},
		{"copy empty body", "POST", "/api/v1/copy-requests", nil, 400, "", "empty"},
		{"copy trailing brace", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_A"]}}`, 400, "", "trailing"},
		{"copy trailing data", "POST", "/api/v1/copy-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_A"]} {}`, 400, "", "trailing"},
		{"copy oversize", "POST", "/api/v1/copy-requests", big, 413, "", "exceeds the limit of 4096 bytes"},
		{"deletion unknown field", "POST", "/api/v1/deletion-requests", `{"items": ["/P/R-v1/AOD"], "sites": ["T2_A"], "group": "x"}`, 400, "group", "unknown field"},
		{"deletion missing sites", "POST", "/api/v1/deletion-requests", `{"items": ["/P/R-v1/AOD"]}`, 400, "sites", ""},
		{"cancel bad id", "POST", "/api/v1/copy-requests/abc/cancel", nil, 400, "id", "positive integer"},
		{"cancel missing", "POST", "/api/v1/copy-requests/12345/cancel", nil, 404, "", "copy request 12345"},
		{"list bad status", "GET", "/api/v1/copy-requests?status=done", nil, 400, "status", "want new"},
		{"list bad limit", "GET", "/api/v1/copy-requests?limit=0", nil, 400, "limit", ""},
		{"list bad after", "GET", "/api/v1/deletion-requests?after=x", nil, 400, "after", ""},
		{"datasets bad glob", "GET", "/api/v1/datasets?name=/P/[x", nil, 400, "name", "not closed"},
		{"datasets bad format", "GET", "/api/v1/datasets?format=xml", nil, 400, "format", ""},
		{"datasets limit too big", "GET", "/api/v1/datasets?limit=100000", nil, 400, "limit", ""},
		{"dataset bad name", "GET", "/api/v1/datasets/notadataset", nil, 400, "name", "%2F"},
		{"block bad name", "GET", "/api/v1/blocks/" + esc("/P/R-v1/AOD") + "/files", nil, 400, "name", ""},
		{"sites bad glob", "GET", "/api/v1/sites?site=[", nil, 400, "site", ""},
		{"usage bad by", "GET", "/api/v1/usage?by=dataset", nil, 400, "by", ""},
		{"lock missing item", "POST", "/api/v1/locks", `{"expires": "2099-01-01"}`, 400, "item", "missing"},
		{"lock missing expires", "POST", "/api/v1/locks", `{"item": "/P/*"}`, 400, "expires", "missing"},
		{"lock past expiry", "POST", "/api/v1/locks", `{"item": "/P/*", "expires": "2001-01-01"}`, 400, "expires", "not in the future"},
		{"lock bad expiry", "POST", "/api/v1/locks", `{"item": "/P/*", "expires": "tomorrow"}`, 400, "", "RFC 3339"},
		{"lock relative item", "POST", "/api/v1/locks", `{"item": "P/*", "expires": "2099-01-01"}`, 400, "item", ""},
		{"lock bad glob", "POST", "/api/v1/locks", `{"item": "/P/[", "expires": "2099-01-01"}`, 400, "item", "not closed"},
		{"lock bad block", "POST", "/api/v1/locks", `{"item": "/P/R/AOD#", "expires": "2099-01-01"}`, 400, "item", ""},
		{"lock bad site", "POST", "/api/v1/locks", `{"item": "/P/*", "expires": "2099-01-01", "sites": ["T2 A"]}`, 400, "sites[0]", ""},
		{"lock unknown field", "POST", "/api/v1/locks", `{"item": "/P/*", "expires": "2099-01-01", "site": ["T2_A"]}`, 400, "site", "unknown field"},
		{"unlock no filter", "POST", "/api/v1/locks/unlock", `{}`, 400, "lockids", "at least one filter"},
		{"lock delete bad id", "DELETE", "/api/v1/locks/-3", nil, 400, "id", ""},
		{"lock set not a list", "PUT", "/api/v1/lock-sets/svc", `{"item": "/P/*"}`, 400, "", ""},
		{"lock set bad element", "PUT", "/api/v1/lock-sets/svc", `[{"item": "/P/*", "expires": "2099-01-01"}, {"item": "/P/*"}]`, 400, "[1].expires", "missing"},
		{"lock set other service", "PUT", "/api/v1/lock-sets/svc", `[{"item": "/P/*", "expires": "2099-01-01", "service": "x"}]`, 400, "[0].service", ""},
		{"locks bad time filter", "GET", "/api/v1/locks?expires_before=soon", nil, 400, "expires_before", ""},
		{"locks bad all", "GET", "/api/v1/locks?all=yes", nil, 400, "all", ""},
		{"inject unknown field", "POST", "/api/v1/injections", `{"sitez": []}`, 400, "", "sitez"},
		{"inject bad name", "POST", "/api/v1/injections", `{"datasets": [{"name": "bad", "status": "valid", "data_type": "mc"}]}`, 202, "", ""}, // names are checked when applied: queued
		{"inject sync bad name", "POST", "/api/v1/injections/sync", `{"datasets": [{"name": "bad", "status": "valid", "data_type": "mc"}]}`, 400, "", "bad"},
		{"inject empty", "POST", "/api/v1/injections", nil, 400, "", "empty"},
		{"inject oversize", "POST", "/api/v1/injections/sync", `{"groups": [` + strings.Repeat(`{"name": "G", "olevel": "block"},`, 600) + `{"name": "G", "olevel": "block"}]}`, 413, "", "16384 bytes"},
		// Over body_limit but within inject_body_limit: decoded (and
		// refused for its duplicate group, not its size).
		{"inject over body_limit", "POST", "/api/v1/injections/sync", `{"groups": [` + strings.Repeat(`{"name": "G", "olevel": "block"},`, 200) + `{"name": "G", "olevel": "block"}]}`, 400, "", "listed twice"},
		{"injection bad id", "GET", "/api/v1/injections/x", nil, 400, "id", ""},
		{"unknown route", "GET", "/api/v1/nothing", nil, 404, "", ""},
		{"wrong method", "DELETE", "/api/v1/sites", nil, 405, "", ""},
	}
	code, b := e.call("alice", "POST", "/api/v1/locks/unlock", `{"user": "bob"}`)
	if code != 403 || !strings.Contains(string(b), "only operators") {
		t.Errorf("a user unlocking another's locks: %d %s", code, b)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := c.code
			code, b := e.call("ada", c.method, c.path, c.body)
			if code != want {
				t.Fatalf("%s %s: %d, want %d: %s", c.method, c.path, code, want, b)
			}
			if code < 400 || code == 404 && c.field == "" && c.contains == "" || code == 405 {
				return
			}
			var eb ErrorBody
			if err := json.Unmarshal(b, &eb); err != nil || eb.Status != "error" || eb.ErrorType == "" {
				t.Fatalf("error body %s: %v", b, err)
			}
			if c.field != "" && eb.Field != c.field {
				t.Errorf("field %q, want %q (%s)", eb.Field, c.field, eb.Error)
			}
			if !strings.Contains(eb.Error, c.contains) {
				t.Errorf("error %q lacks %q", eb.Error, c.contains)
			}
		})
	}
}

// TestOpenAPICoversRoutes fails when a route is registered without
// appearing in the OpenAPI document, including routes added by Mount.
func TestOpenAPICoversRoutes(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	e.srv.Mount("/api/v1/apps", Permission{Read: Need{}, Write: Need{Role: RoleOperator, Target: TargetApplication}}, func(rg *gin.RouterGroup) {
		rg.GET("", func(c *gin.Context) { c.JSON(200, []string{"detox"}) })
		rg.POST("/:app/pause", func(c *gin.Context) { c.JSON(200, gin.H{"paused": c.Param("app"), "by": c.GetString(UserKey)}) })
	})
	if e.srv.Mount("/api/v1/apps", Permission{}, func(rg *gin.RouterGroup) { rg.GET("", nil) }) {
		t.Fatal("second Mount of a prefix accepted")
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	e.must("anon", "GET", "/api/v1/openapi.json", nil, 200, &doc)
	n := 0
	for _, r := range e.srv.engine.Routes() {
		p := pathParam.ReplaceAllString(r.Path, "{$1}")
		if _, ok := doc.Paths[p][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s is not in the OpenAPI document", r.Method, r.Path)
		}
		n++
	}
	if n < 40 {
		t.Fatalf("only %d routes registered", n)
	}
	// Mounted routes get the permission by method from the one middleware.
	e.must("anon", "GET", "/api/v1/apps", nil, 200, nil)
	e.must("alice", "POST", "/api/v1/apps/detox/pause", nil, 403, nil)
	e.must("anon", "POST", "/api/v1/apps/detox/pause", nil, 401, nil)
	var paused map[string]string
	e.must("oscar", "POST", "/api/v1/apps/detox/pause", nil, 200, &paused)
	if paused["by"] != "oscar" {
		t.Fatalf("mounted handler did not see the caller: %v", paused)
	}
}

// TestFailClosed: a route registered behind the server's back (not via
// handle or Mount) has no declared permission and is refused.
func TestFailClosed(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	e.srv.engine.GET("/api/v1/sneaky", func(c *gin.Context) { c.String(200, "leak") })
	e.must("ada", "GET", "/api/v1/sneaky", nil, http.StatusForbidden, nil)
}

// TestPanicIsMappedOnce: a panicking handler answers a 500 in the error
// shape (mapped by errorMiddleware) and the server keeps serving.
func TestPanicIsMappedOnce(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	e.srv.Mount("/api/v1/boom", Permission{}, func(rg *gin.RouterGroup) {
		rg.GET("", func(c *gin.Context) { panic("kaboom") })
	})
	var eb ErrorBody
	e.must("anon", "GET", "/api/v1/boom", nil, 500, &eb)
	if eb.ErrorType != "internal" || strings.Contains(eb.Error, "kaboom") {
		t.Fatalf("panic body: %+v", eb)
	}
	var eb2 envelope
	e.must("anon", "GET", "/data/inventory/datasets", nil, 400, &eb2) // still serving; compat shape
	if eb2.Result != "Bad Request" {
		t.Fatalf("after panic: %+v", eb2)
	}
}
