package registry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// Browser pages (the operator console) are served by the same engine and
// the same auth middleware as the API. Two things differ for them, and
// only for routes registered with MountPages:
//
//   - A browser cannot attach a bearer token to a link it follows, so the
//     token may also come from the session cookie that POST /session sets
//     after checking the token exactly as a bearer token is checked. API
//     routes never read the cookie: a cross-site form can make a browser
//     send cookies, never an Authorization header.
//   - Because a cookie (or a client certificate) is sent by the browser on
//     its own, every page route that changes something requires the
//     caller's CSRF token (form field csrf_token or header X-CSRF-Token),
//     checked here in the one middleware, so no page handler can forget it.

// SessionCookie holds a console user's token.
const SessionCookie = "dynamo_session"

// CSRFField is the form field (and, as X-CSRF-Token, the header) carrying
// the CSRF token on page routes that change something.
const CSRFField = "csrf_token"

// PageErrorFunc renders an error page for a page route (401, 403, 404...).
type PageErrorFunc func(c *gin.Context, code int, msg string)

// MountPages adds browser page routes under prefix ("/" allowed, unlike
// Mount, but never under /api/ or /data/). Permissions are as for Mount;
// errors on these routes are rendered by render instead of JSON. Like
// Mount it must be called before Run, and a second call for the same
// prefix is ignored (false).
func (s *Server) MountPages(prefix string, perm Permission, render PageErrorFunc, routes func(*gin.RouterGroup)) bool {
	if strings.HasPrefix(prefix, "/api/") || strings.HasPrefix(prefix, "/data/") || !strings.HasPrefix(prefix, "/") {
		panic(fmt.Sprintf("registry: MountPages(%q): pages live outside /api/ and /data/", prefix))
	}
	s.mu.Lock()
	dup := s.mounted["pages:"+prefix]
	s.mounted["pages:"+prefix] = true
	s.mu.Unlock()
	if dup {
		s.log.WithField("prefix", prefix).Warn("pages already mounted; ignoring the second MountPages")
		return false
	}
	before := map[string]bool{}
	for _, r := range s.engine.Routes() {
		before[r.Method+" "+r.Path] = true
	}
	routes(s.engine.Group(prefix))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pages == nil {
		s.pages = map[string]PageErrorFunc{}
	}
	for _, r := range s.engine.Routes() {
		if before[r.Method+" "+r.Path] {
			continue
		}
		need := perm.Write
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			need = perm.Read
		}
		s.needs[r.Method+" "+r.Path] = need
		s.pages[r.Path] = render
	}
	return true
}

// pageRoute returns the error renderer of a page route (ok false for API
// routes and unmatched paths).
func (s *Server) pageRoute(path string) (PageErrorFunc, bool) {
	if path == "" {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.pages[path]
	return r, ok
}

// sessionRoutes are POST /session (form: token, next) and POST
// /session/end. They live here, not in the console, because the token is
// checked by this package's authenticator and nowhere else.
func (s *Server) sessionRoutes(h func(method, path, tag, summary string, need Need, query []string, body string, fn gin.HandlerFunc)) {
	h(http.MethodPost, "/session", "session", "Browser sign-in: check a token as a bearer token and keep it in an HttpOnly session cookie", public, nil, "form: token, next", s.startSession)
	h(http.MethodPost, "/session/end", "session", "Browser sign-out: clear the session cookie", public, nil, "", s.endSession)
}

func (s *Server) startSession(c *gin.Context) {
	tok := strings.TrimSpace(c.PostForm("token"))
	next := localPath(c.PostForm("next"))
	if tok == "" {
		c.Redirect(http.StatusSeeOther, "/login?error=empty&next="+url.QueryEscape(next))
		return
	}
	p, err := s.authn.bearer(tok)
	if err != nil || p.Anonymous() {
		s.log.WithField("client", c.ClientIP()).Info("console sign-in refused")
		c.Redirect(http.StatusSeeOther, "/login?error=refused&next="+url.QueryEscape(next))
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: SessionCookie, Value: tok, Path: "/", HttpOnly: true,
		Secure: c.Request.TLS != nil, SameSite: http.SameSiteStrictMode})
	s.log.WithField("user", p.Name()).Info("console sign-in")
	c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) endSession(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: c.Request.TLS != nil, SameSite: http.SameSiteStrictMode})
	c.Redirect(http.StatusSeeOther, "/")
}

// localPath keeps a redirect target on this server: only absolute paths,
// never "//host" or a scheme, so sign-in cannot bounce a user elsewhere.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

// csrfToken is the caller's CSRF token: a MAC over who the caller is and
// how they authenticated, keyed with a secret drawn at start. A page of
// this server can embed it; another site cannot read or compute it.
func (s *Server) csrfToken(p *Principal, sessionTok string) string {
	m := hmac.New(sha256.New, s.csrfKey[:])
	fmt.Fprintf(m, "%s\x00%s\x00%s\x00", p.Method, p.Name(), p.DN)
	// A new sign-in (another token for the same user) gets a new CSRF token.
	sum := sha256.Sum256([]byte(sessionTok))
	m.Write(sum[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func newCSRFKey() [32]byte {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		panic("registry: no randomness for the CSRF key: " + err.Error())
	}
	return k
}

func (s *Server) checkCSRF(c *gin.Context, p *Principal) error {
	got := c.GetHeader("X-CSRF-Token")
	if got == "" {
		got = c.PostForm(CSRFField)
	}
	want := s.csrfToken(p, sessionToken(c.Request))
	if got == "" || !hmac.Equal([]byte(got), []byte(want)) {
		return fmt.Errorf("%w: missing or stale CSRF token; reload the page and try again", ErrForbidden)
	}
	return nil
}

func sessionToken(r *http.Request) string {
	if ck, err := r.Cookie(SessionCookie); err == nil {
		return ck.Value
	}
	return ""
}

const ctxCSRF = "registry.csrf"

// CSRFToken returns the token a page must put in the forms it renders
// (field CSRFField); "" outside page routes.
func CSRFToken(c *gin.Context) string { return c.GetString(ctxCSRF) }

// Caller returns who is calling as the auth middleware resolved it: name
// ("" when anonymous) and how they authenticated.
func Caller(c *gin.Context) (name, method string) {
	p := principalOf(c)
	return p.Name(), p.Method
}

// Allowed reports whether the caller may send method to path (a route
// path as registered, e.g. "/transfers/release"), by the same table and
// rules the auth middleware applies: pages use it to show only the
// actions the user may take.
func (s *Server) Allowed(c *gin.Context, method, path string) bool {
	need, ok := s.needFor(method, path)
	if !ok {
		return false
	}
	p := principalOf(c)
	switch {
	case need.Public:
		return true
	case need.Role == RoleNone:
		return !p.Anonymous() || s.authn.anonymousAllowed(c.Request)
	case p.Anonymous() && p.DN == "":
		return false
	}
	return p.Has(need.Role, need.Target)
}
