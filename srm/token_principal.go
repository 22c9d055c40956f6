package srm

import (
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/gridauth"
)

// access is what a data-endpoint request does to a path. It maps onto the
// area rule operations, the WLCG token scopes and the macaroon activities,
// so one request is judged the same way whatever credential it carries.
type access int

const (
	accRead   access = iota // GET
	accList                 // HEAD, PROPFIND, archiveinfo
	accCreate               // PUT of a new file, MKCOL, COPY/MOVE target
	accModify               // PUT over an existing file, PROPPATCH
	accDelete               // DELETE, MOVE source
	accStage                // Tape REST stage and release
)

var accessNames = [...]string{"read", "list", "create", "modify", "delete", "stage"}

func (a access) String() string { return accessNames[a] }

// op is the area rule operation that admits a.
func (a access) op() string {
	switch a {
	case accRead, accStage:
		return OpRead // as srmBringOnline
	case accList:
		return OpList
	case accCreate, accModify:
		return OpWrite
	default:
		return OpDelete
	}
}

// scopes are the WLCG storage scopes that grant a; storage.modify implies
// storage.create.
func (a access) scopes() []string {
	switch a {
	case accRead, accList:
		return []string{scopeRead}
	case accCreate:
		return []string{scopeCreate, scopeModify}
	case accModify, accDelete:
		return []string{scopeModify}
	default:
		return []string{scopeStage}
	}
}

// activities are the macaroon activities that grant a (dCache's names,
// which gfal2 and FTS request).
func (a access) activities() []string {
	switch a {
	case accRead:
		return []string{"DOWNLOAD"}
	case accList:
		return []string{"LIST", "READ_METADATA", "DOWNLOAD"}
	case accCreate:
		return []string{"UPLOAD", "MANAGE"}
	case accModify:
		return []string{"UPLOAD", "UPDATE_METADATA"}
	case accDelete:
		return []string{"DELETE", "MANAGE"}
	default:
		return []string{"STAGE"}
	}
}

// principal is who a data-endpoint request acts for: a certificate client,
// a bearer-token holder, or anyone (no credential). A macaroon is the
// identity it was minted for plus the macaroon's own restrictions.
type principal struct {
	cert *gridauth.Identity
	tok  *tokenIdentity
	mac  *macaroonLimits
	// alt is the TLS client certificate when a bearer token came too: the
	// request may do what either credential allows (gfal2 sends both, and
	// walks up a mkdir -p with a macaroon scoped to the leaf).
	alt *principal
}

// anonymous reports whether the client presented no credential.
func (p *principal) anonymous() bool { return p.cert == nil && p.tok == nil }

// name identifies the principal as the owner of requests it submits.
// Certificate DNs always start with "/", token names never do, so the two
// can never be confused (the engine relies on it, see call.preauthorized).
func (p *principal) name() string {
	switch {
	case p.cert != nil:
		return p.cert.DN
	case p.tok != nil:
		return "token:" + p.tok.Issuer + "#" + p.tok.Subject
	}
	return "anonymous"
}

// fqans are the VOMS attributes stored with requests (certificates only).
func (p *principal) fqans() []string {
	if p.cert != nil {
		return p.cert.FQANs
	}
	return nil
}

// permits reports whether p may do acc on loc, under loc's area rules, the
// token's scopes and the macaroon's caveats together.
func (p *principal) permits(loc *Location, acc access) bool {
	if p.alt != nil && p.alt.permits(loc, acc) {
		return true
	}
	if p.mac != nil && !p.mac.allows(loc.StFN, acc) {
		return false
	}
	switch {
	case p.cert != nil:
		return loc.Area.Authorize(p.cert, acc.op())
	case p.tok != nil:
		return authorizeToken(loc.Area, p.tok, loc.StFN, acc)
	}
	return loc.Area.Config.AnonymousRead && (acc == accRead || acc == accList)
}

// authorizeToken applies the area's token rules (those naming an issuer):
// a rule with a group admits members of that wlcg.groups group (narrowed by
// the token's storage scopes when it has any); a rule without a group admits
// what the token's storage scopes grant.
func authorizeToken(a *Area, t *tokenIdentity, stfn string, acc access) bool {
	op := acc.op()
	for _, r := range a.Config.Allow {
		if r.Issuer == "" || (r.Issuer != "*" && r.Issuer != t.Issuer) {
			continue
		}
		if len(r.Ops) > 0 && !contains(r.Ops, op) {
			continue
		}
		if r.Group != "" {
			if !contains(t.Groups, r.Group) {
				continue
			}
			if !t.hasStorageScopes() || t.scopeGrants(acc, stfn) {
				return true
			}
			continue
		}
		if t.scopeGrants(acc, stfn) {
			return true
		}
	}
	return false
}

// authenticate works out the principal of a data-endpoint request. A bearer
// token (Authorization header, or dCache's ?authz= query parameter) wins
// over the client certificate, and an invalid one fails the request even
// when a certificate was presented: the client meant the token.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	raw := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, v, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, fmt.Errorf("%w: only Bearer authorization is supported", ErrBadToken)
		}
		raw = strings.TrimSpace(v)
	} else if v := r.URL.Query().Get("authz"); v != "" {
		raw = strings.TrimPrefix(v, "Bearer ")
	}
	if raw == "" {
		if id := identityFrom(r.Context()); id != nil {
			return &principal{cert: id}, nil
		}
		return &principal{}, nil
	}
	now := time.Now()
	var p *principal
	if looksLikeJWT(raw) {
		t, err := s.tokens.verify(raw, now)
		if err != nil {
			return nil, err
		}
		p = &principal{tok: t}
	} else {
		var err error
		if p, err = s.macaroons.verify(raw, now); err != nil {
			return nil, err
		}
	}
	if id := identityFrom(r.Context()); id != nil {
		p.alt = &principal{cert: id}
	}
	return p, nil
}

// looksLikeJWT: three dot-separated base64url parts, the first a JSON
// object ("eyJ" is base64 for `{"`). Macaroons contain no dots.
func looksLikeJWT(raw string) bool {
	return strings.Count(raw, ".") == 2 && strings.HasPrefix(raw, "eyJ")
}

// cleanHTTPPath turns a request path into a site file name: percent-decoded
// by net/http already, then cleaned so "..", "." and "//" cannot climb out.
func cleanHTTPPath(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", false
	}
	return path.Clean(p), true
}
