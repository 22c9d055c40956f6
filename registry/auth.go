package registry

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/caller"
	"github.com/dynamo-go/dynamo/internal/gridauth"
)

// Role is a level of trust; each role includes the ones below it.
type Role int

// The roles, lowest first. RoleNone is "no role needed" in a requirement
// and "no role held" in a grant.
const (
	RoleNone Role = iota
	RoleUser
	RoleOperator
	RoleAdmin
)

// String names the role as in the configuration.
func (r Role) String() string {
	return [...]string{"none", "user", "operator", "admin"}[r]
}

// ParseRole parses user, operator or admin ("" or "none" is RoleNone).
func ParseRole(s string) (Role, error) {
	switch s {
	case "", "none":
		return RoleNone, nil
	case "user":
		return RoleUser, nil
	case "operator":
		return RoleOperator, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: want user, operator or admin", s)
}

// Target is what a role applies to.
type Target string

// The targets.
const (
	TargetInventory   Target = "inventory"   // sites, datasets, replicas, injection
	TargetRegistry    Target = "registry"    // copy/deletion requests, detox locks
	TargetPolicy      Target = "policy"      // policy documents
	TargetApplication Target = "application" // scheduled applications (pause, resume, run)
)

// ParseTarget parses a target name.
func ParseTarget(s string) (Target, error) {
	switch t := Target(s); t {
	case TargetInventory, TargetRegistry, TargetPolicy, TargetApplication:
		return t, nil
	}
	return "", fmt.Errorf("target %q: want inventory, registry, policy or application", s)
}

// Need is what one route requires: a role on a target. Role RoleNone means
// anyone the anonymous-read policy admits.
type Need struct {
	Role   Role
	Target Target
	// Public routes skip the anonymous-read policy too (health probes).
	Public bool
	// Writes marks a route that writes whatever its method (Dynamo's
	// aliases treat GET like POST): the write fence applies to it.
	Writes bool
	// ReadOnly marks a route that only reads whatever its method (a POST
	// whose body is a query): the write fence does not apply, so any
	// server answers it.
	ReadOnly bool
}

// Permission gives the requirements of a group of routes: Read for GET
// and HEAD, Write for every other method.
type Permission struct {
	Read, Write Need
}

// Principal is who is calling.
type Principal struct {
	User   string // "" when anonymous or when a certificate DN maps to no user
	DN     string // certificate subject, when authenticated by certificate
	Method string // "anonymous", "x509", "token", "jwt"
	// FQANs are the verified VOMS attributes that granted roles, if any.
	FQANs []string
	roles map[Target]Role
}

// Anonymous reports whether no user is known.
func (p *Principal) Anonymous() bool { return p.User == "" }

// Has reports whether p holds at least role r on target t.
func (p *Principal) Has(r Role, t Target) bool {
	if r == RoleNone {
		return true
	}
	return p.roles[t] >= r || p.roles["*"] >= r
}

// Name is the user for records: the user name, else the DN.
func (p *Principal) Name() string {
	if p.User != "" {
		return p.User
	}
	return p.DN
}

// CertVerifier authenticates a TLS client chain (leaf first, proxies
// allowed): the end-entity DN in slash form and the verified VOMS FQANs.
// gridauth.CAStore implements it through caVerifier.
type CertVerifier interface {
	Verify(chain []*x509.Certificate) (*gridauth.Identity, error)
}

type caVerifier struct{ cas *gridauth.CAStore }

func (v caVerifier) Verify(chain []*x509.Certificate) (*gridauth.Identity, error) {
	return v.cas.Verify(chain, time.Now())
}

// authn resolves credentials to principals; built once from Config.
type authn struct {
	anon    string
	certs   CertVerifier // nil without a CA dir
	byDN    map[string]*UserConfig
	byName  map[string]*UserConfig
	tokens  map[[32]byte]string // sha256(token) -> user
	issuers map[string]jwtIssuer
	fqans   []FQANRole
}

type jwtIssuer struct {
	cfg JWTIssuer
	key crypto.PublicKey
}

// Authentication failures (401).
var (
	ErrBadCredentials = apierr.New(apierr.ErrUnauthenticated, "invalid credentials")
)

func newAuthn(cfg *Config, certs CertVerifier) (*authn, error) {
	a := &authn{anon: cfg.AnonymousRead, certs: certs, byDN: map[string]*UserConfig{},
		byName: map[string]*UserConfig{}, tokens: map[[32]byte]string{}, issuers: map[string]jwtIssuer{}, fqans: cfg.FQANRoles}
	for i := range cfg.Users {
		u := &cfg.Users[i]
		a.byName[u.Name] = u
		for _, dn := range u.DNs {
			a.byDN[dn] = u
		}
	}
	for i, t := range cfg.Tokens {
		tok := t.Token
		if t.TokenFile != "" {
			s, err := readSecret(t.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("registry.tokens[%d].token_file: %w", i, err)
			}
			tok = s
		}
		a.tokens[sha256.Sum256([]byte(tok))] = t.User
	}
	for i, j := range cfg.JWTIssuers {
		b, err := os.ReadFile(j.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("registry.jwt_issuers[%d].key_file: %w", i, err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("registry.jwt_issuers[%d].key_file %s: no PEM block", i, j.KeyFile)
		}
		key, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("registry.jwt_issuers[%d].key_file %s: %w", i, j.KeyFile, err)
		}
		if j.UserClaim == "" {
			j.UserClaim = "sub"
		}
		a.issuers[j.Issuer] = jwtIssuer{cfg: j, key: key}
	}
	return a, nil
}

func (a *authn) principal(user, dn, method string) *Principal {
	p := &Principal{User: user, DN: dn, Method: method, roles: map[Target]Role{}}
	if u := a.byName[user]; u != nil {
		for t, r := range u.Roles {
			p.roles[Target(t)], _ = ParseRole(r)
		}
	}
	return p
}

// grantFQANRoles adds the roles of the fqan_roles rules matching the
// client's verified FQANs (the highest role per target wins).
func (a *authn) grantFQANRoles(p *Principal, fqans []string) {
	for _, rule := range a.fqans {
		if !fqanMatches(rule.FQAN, fqans) {
			continue
		}
		p.FQANs = fqans
		for t, rs := range rule.Roles {
			if r, err := ParseRole(rs); err == nil && r > p.roles[Target(t)] {
				p.roles[Target(t)] = r
			}
		}
	}
}

// fqanMatches: a rule naming a role matches that FQAN exactly (ignoring a
// trailing /Capability=NULL); a rule naming a group matches the group and
// its subgroups, whatever the role.
func fqanMatches(rule string, fqans []string) bool {
	for _, f := range fqans {
		f = strings.TrimSuffix(f, "/Capability=NULL")
		if strings.Contains(rule, "/Role=") {
			if f == strings.TrimSuffix(rule, "/Capability=NULL") {
				return true
			}
			continue
		}
		g, _, _ := strings.Cut(f, "/Role=")
		if g == rule || strings.HasPrefix(g, rule+"/") {
			return true
		}
	}
	return false
}

// authenticate returns the caller: from a bearer token if one is sent (a
// bad token is an error, never a fallback to anonymous), else from a client
// certificate, else anonymous.
//
// On page routes (cookie true) the session cookie stands for the bearer
// token when no Authorization header is sent; it is checked the same way.
func (a *authn) authenticate(r *http.Request, cookie bool) (*Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return nil, fmt.Errorf("%w: Authorization header: want Bearer TOKEN", ErrBadCredentials)
		}
		return a.bearer(strings.TrimSpace(tok))
	}
	if tok := sessionToken(r); cookie && tok != "" {
		p, err := a.bearer(tok)
		if err != nil {
			return nil, fmt.Errorf("%w: the session is no longer valid; sign in again", ErrBadCredentials)
		}
		return p, nil
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if a.certs == nil {
			return nil, fmt.Errorf("%w: client certificates are not accepted (no registry.tls.ca_dir)", ErrBadCredentials)
		}
		id, err := a.certs.Verify(r.TLS.PeerCertificates)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCredentials, err)
		}
		user := ""
		if u := a.byDN[id.DN]; u != nil {
			user = u.Name
		}
		p := a.principal(user, id.DN, "x509")
		a.grantFQANRoles(p, id.FQANs)
		return p, nil
	}
	return a.principal("", "", "anonymous"), nil
}

func (a *authn) bearer(tok string) (*Principal, error) {
	sum := sha256.Sum256([]byte(tok))
	for k, user := range a.tokens {
		if subtle.ConstantTimeCompare(k[:], sum[:]) == 1 {
			return a.principal(user, "", "token"), nil
		}
	}
	if strings.Count(tok, ".") != 2 || len(a.issuers) == 0 {
		return nil, fmt.Errorf("%w: unknown token", ErrBadCredentials)
	}
	var iss jwtIssuer
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		name, _ := claims.GetIssuer()
		i, ok := a.issuers[name]
		if !ok {
			return nil, fmt.Errorf("issuer %q is not configured", name)
		}
		iss = i
		return i.key, nil
	}, jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA", "PS256"}),
		jwt.WithExpirationRequired(), jwt.WithLeeway(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w: JWT: %w", ErrBadCredentials, err)
	}
	if iss.cfg.Audience != "" {
		aud, _ := claims.GetAudience()
		found := false
		for _, x := range aud {
			found = found || x == iss.cfg.Audience
		}
		if !found {
			return nil, fmt.Errorf("%w: JWT: audience %q not in %v", ErrBadCredentials, iss.cfg.Audience, aud)
		}
	}
	user, _ := claims[iss.cfg.UserClaim].(string)
	if user == "" {
		return nil, fmt.Errorf("%w: JWT: claim %q missing", ErrBadCredentials, iss.cfg.UserClaim)
	}
	return a.principal(user, "", "jwt"), nil
}

// anonymousAllowed applies the anonymous-read policy to a request.
func (a *authn) anonymousAllowed(r *http.Request) bool {
	switch a.anon {
	case AnonAlways:
		return true
	case AnonLoopback:
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return false
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

const ctxPrincipal = "registry.principal"

// UserKey is the gin context key under which the auth middleware stores
// the caller's name (Principal.Name) for authenticated callers, so mounted
// components can record who acted without importing this package's types.
const UserKey = caller.UserKey

// principalOf returns the caller set by the auth middleware.
func principalOf(c *gin.Context) *Principal {
	if p, ok := c.Get(ctxPrincipal); ok {
		return p.(*Principal)
	}
	return &Principal{Method: "anonymous"}
}

// authMiddleware is the ONE place where authentication and authorization
// happen: it resolves the caller, looks up what the matched route needs
// (s.needs, filled by route and Mount) and answers 401/403 before any
// handler runs. Routes nobody declared a need for are refused (fail closed).
func (s *Server) authMiddleware(c *gin.Context) {
	path := c.FullPath()
	_, page := s.pageRoute(path)
	p, err := s.authn.authenticate(c.Request, page)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Set(ctxPrincipal, p)
	if path == "" { // no route matched: let gin answer 404/405
		caller.Set(c, p.Name(), false)
		c.Next()
		return
	}
	need, ok := s.needFor(c.Request.Method, path)
	if !ok {
		s.abort(c, fmt.Errorf("%w: %s %s declares no permission", ErrForbidden, c.Request.Method, path))
		return
	}
	// Mounted components decide ownership themselves (stager requests,
	// projects): they learn who calls and whether that caller is an
	// operator for the route's target (reads name none: the registry's).
	target := need.Target
	if target == "" {
		target = TargetRegistry
	}
	caller.Set(c, p.Name(), p.Has(RoleOperator, target))
	if p.Method == "x509" {
		caller.SetDN(c, p.DN)
	}
	switch {
	case need.Public:
	case need.Role == RoleNone:
		if p.Anonymous() && !s.authn.anonymousAllowed(c.Request) {
			s.abort(c, fmt.Errorf("%w: anonymous access is not allowed from %s; authenticate with a certificate or token", ErrUnauthenticated, c.ClientIP()))
			return
		}
	case p.Anonymous() && p.DN == "":
		s.abort(c, fmt.Errorf("%w: %s %s needs role %s on %s", ErrUnauthenticated, c.Request.Method, path, need.Role, need.Target))
		return
	case !p.Has(need.Role, need.Target):
		s.abort(c, fmt.Errorf("%w: %s %s needs role %s on %s; %q has none", ErrForbidden, c.Request.Method, path, need.Role, need.Target, p.Name()))
		return
	}
	if page {
		if m := c.Request.Method; m != http.MethodGet && m != http.MethodHead && !need.Public {
			if err := s.checkCSRF(c, p); err != nil {
				s.abort(c, err)
				return
			}
		}
		c.Set(ctxCSRF, s.csrfToken(p, sessionToken(c.Request)))
	}
	writeMethod := c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead
	if (need.Writes || writeMethod && !need.ReadOnly) && !need.Public && s.mayWrite != nil {
		if err := s.mayWrite(); err != nil {
			s.abort(c, err)
			return
		}
	}
	c.Next()
}
