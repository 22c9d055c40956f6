package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// pageEnv serves one read page and one action page the way the console
// mounts them, next to the API, over plain HTTP on loopback.
type pageEnv struct {
	t      *testing.T
	srv    *Server
	url    string
	acted  int
	client *http.Client
}

func newPageEnv(t *testing.T, anon string) *pageEnv {
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := DefaultConfig()
	cfg.AnonymousRead = anon
	cfg.Users = []UserConfig{
		{Name: "oscar", Roles: map[string]string{"registry": "operator"}},
		{Name: "alice", Roles: map[string]string{"registry": "user"}},
	}
	cfg.Tokens = []TokenConfig{{User: "oscar", Token: "oscar-token"}, {User: "alice", Token: "alice-token"}}
	srv, err := New(Options{Config: cfg, DB: testdb.SQLite(t), Log: log.WithField("component", "registry")})
	if err != nil {
		t.Fatal(err)
	}
	e := &pageEnv{t: t, srv: srv}
	render := func(c *gin.Context, code int, msg string) { c.String(code, "PAGE ERROR %d: %s", code, msg) }
	srv.MountPages("/", Permission{Write: Need{Role: RoleOperator, Target: TargetRegistry}}, render, func(rg *gin.RouterGroup) {
		rg.GET("/page", func(c *gin.Context) {
			name, _ := Caller(c)
			c.String(http.StatusOK, "user=%s csrf=%s may-act=%v", name, CSRFToken(c), srv.Allowed(c, http.MethodPost, "/act"))
		})
		rg.POST("/act", func(c *gin.Context) {
			e.acted++
			c.String(http.StatusOK, "done")
		})
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e.url = ts.URL
	e.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

func (e *pageEnv) do(method, path, cookie string, form url.Values, header map[string]string) (int, string, *http.Response) {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func (e *pageEnv) csrf(cookie string) string {
	e.t.Helper()
	code, body, _ := e.do("GET", "/page", cookie, nil, nil)
	if code != http.StatusOK {
		e.t.Fatalf("GET /page: %d %s", code, body)
	}
	_, after, _ := strings.Cut(body, "csrf=")
	tok, _, _ := strings.Cut(after, " ")
	return tok
}

func TestPagesSessionAndCSRF(t *testing.T) {
	e := newPageEnv(t, AnonLoopback)

	// Anonymous reads follow the anonymous-read policy; actions need a role.
	code, body, _ := e.do("GET", "/page", "", nil, nil)
	if code != http.StatusOK || !strings.Contains(body, "user= ") || !strings.Contains(body, "may-act=false") {
		t.Fatalf("anonymous page: %d %s", code, body)
	}
	if code, body, _ := e.do("POST", "/act", "", url.Values{}, nil); code != http.StatusUnauthorized || !strings.HasPrefix(body, "PAGE ERROR 401") {
		t.Fatalf("anonymous action: %d %s", code, body)
	}

	// Sign-in checks the token like a bearer token; a bad one sets nothing.
	code, _, resp := e.do("POST", "/session", "", url.Values{"token": {"nope"}, "next": {"/transfers"}}, nil)
	if code != http.StatusSeeOther || len(resp.Cookies()) != 0 || !strings.Contains(resp.Header.Get("Location"), "error=refused") {
		t.Fatalf("bad sign-in: %d %v %v", code, resp.Header, resp.Cookies())
	}
	code, _, resp = e.do("POST", "/session", "", url.Values{"token": {"oscar-token"}, "next": {"//evil.example/x"}}, nil)
	if code != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in must not redirect off-site: %d %q", code, resp.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Value != "oscar-token" {
		t.Fatalf("session cookie: %+v", ck)
	}

	// The operator's page shows the action; the action needs the CSRF token.
	code, body, _ = e.do("GET", "/page", ck.Value, nil, nil)
	if code != http.StatusOK || !strings.Contains(body, "user=oscar") || !strings.Contains(body, "may-act=true") {
		t.Fatalf("operator page: %d %s", code, body)
	}
	tok := e.csrf(ck.Value)
	if tok == "" {
		t.Fatal("no CSRF token on a page route")
	}
	for _, bad := range []url.Values{{}, {CSRFField: {"forged"}}, {CSRFField: {e.csrf("alice-token")}}} {
		if code, body, _ := e.do("POST", "/act", ck.Value, bad, nil); code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Fatalf("action with csrf %v: %d %s", bad, code, body)
		}
	}
	if e.acted != 0 {
		t.Fatal("an action ran without a valid CSRF token")
	}
	if code, body, _ := e.do("POST", "/act", ck.Value, url.Values{CSRFField: {tok}}, nil); code != http.StatusOK || body != "done" {
		t.Fatalf("operator action: %d %s", code, body)
	}
	if code, _, _ := e.do("POST", "/act", ck.Value, url.Values{}, map[string]string{"X-CSRF-Token": tok}); code != http.StatusOK || e.acted != 2 {
		t.Fatalf("operator action with the header: %d (acted %d)", code, e.acted)
	}

	// A user without the role is refused even with its own valid token.
	if code, _, _ := e.do("POST", "/act", "alice-token", url.Values{CSRFField: {e.csrf("alice-token")}}, nil); code != http.StatusForbidden {
		t.Fatalf("user action: %d", code)
	}
	// A session whose token is no longer valid is an error, never anonymous.
	if code, body, _ := e.do("GET", "/page", "revoked", nil, nil); code != http.StatusUnauthorized || !strings.Contains(body, "sign in again") {
		t.Fatalf("stale session: %d %s", code, body)
	}
	// API routes never take the cookie: a cross-site form cannot act there.
	if code, _, _ := e.do("POST", "/api/v1/copy-requests", ck.Value, url.Values{}, nil); code != http.StatusUnauthorized {
		t.Fatalf("API route with only the session cookie: %d", code)
	}
	// Sign-out clears the cookie.
	_, _, resp = e.do("POST", "/session/end", ck.Value, url.Values{}, nil)
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Fatalf("sign-out cookies: %v", cs)
	}
}

func TestPagesFollowAnonymousPolicy(t *testing.T) {
	e := newPageEnv(t, AnonNever)
	if code, body, _ := e.do("GET", "/page", "", nil, nil); code != http.StatusUnauthorized || !strings.HasPrefix(body, "PAGE ERROR 401") {
		t.Fatalf("anonymous page with anonymous_read never: %d %s", code, body)
	}
	if code, body, _ := e.do("GET", "/page", "alice-token", nil, nil); code != http.StatusOK || !strings.Contains(body, "user=alice") {
		t.Fatalf("signed-in page: %d %s", code, body)
	}
}

func TestMountPagesRefusesAPIPrefixes(t *testing.T) {
	e := newPageEnv(t, AnonLoopback)
	for _, p := range []string{"/api/v1/x", "/data/x", "relative"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("MountPages(%q) did not panic", p)
				}
			}()
			e.srv.MountPages(p, Permission{}, nil, func(*gin.RouterGroup) {})
		}()
	}
}

// The console lists the newest requests first, bounded.
func TestListRequestsNewest(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := NewStore(d)
		var ids []int64
		for i := range 3 {
			r, _, err := s.CreateRequest(ctx, NewRequest{Kind: KindCopy, Items: []string{fmt.Sprintf("/P/R-v%d/AOD", i)}, Sites: []string{"T2_A"}, N: 1, User: "alice"}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		got, err := s.ListRequests(ctx, RequestFilter{Kind: KindCopy, Newest: true, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != ids[2] || got[1].ID != ids[1] || got[0].Items[0] != "/P/R-v2/AOD" {
			t.Fatalf("newest two: %+v", got)
		}
	})
}
