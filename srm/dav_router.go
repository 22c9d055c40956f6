package srm

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strings"
)

type principalKey struct{}

// principalFrom returns the principal serveHTTP authenticated.
func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	if p == nil {
		return &principal{}
	}
	return p
}

// serveHTTP is the data endpoint's front door: the reserved paths (Tape
// REST discovery and API, SRR) first, then macaroon requests, then WebDAV
// on the storage areas. Every request is authenticated once here.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/.well-known/wlcg-tape-rest-api" {
		s.serveTapeDiscovery(w, r)
		return
	}
	pr, err := s.authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		if under(p, "/api", "/") {
			problem(w, http.StatusUnauthorized, "Unauthorized", err.Error())
			return
		}
		httpError(w, http.StatusUnauthorized, err.Error())
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), principalKey{}, pr))
	switch {
	case p == "/api/v1/srr":
		s.serveSRR(w, r)
		return
	case under(p, "/api/v1", "/") || under(p, "/.well-known", "/") || under(p, "/api", "/"):
		if s.serveTapeREST(w, r, pr) {
			return
		}
		problem(w, http.StatusNotFound, "Not found", "no such API endpoint")
		return
	}
	if r.Method == http.MethodPost && isMacaroonRequest(r.Header.Get("Content-Type")) {
		stfn, ok := cleanHTTPPath(p)
		if !ok {
			httpError(w, http.StatusBadRequest, "bad path")
			return
		}
		s.serveMacaroonRequest(w, r, pr, stfn)
		return
	}
	s.serveData(w, r)
}

func isMacaroonRequest(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && strings.EqualFold(mt, "application/macaroon-request")
}

// errForbidden is what a refused data request answers; which credential
// failed is not said, so probing learns nothing about the rules.
var errForbidden = errors.New("permission denied")
