package srm

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/gridauth"
)

// Macaroons (Birgisson et al. 2014) in the libmacaroons version-1
// serialization, which dCache and XRootD also hand out: packets of a
// 4-hex-digit length (counting the header) followed by "key value\n";
// keys location, identifier, cid (one per first-party caveat) and
// signature (32 raw bytes); the whole base64url-encoded. The signature
// chains HMAC-SHA256 from a key derived from the SE secret over the
// identifier and each caveat, so a holder can add caveats (attenuate) but
// never remove one.
//
// The identifier carries who the macaroon was minted for (certificate DN
// and verified FQANs, or the token identity): the SE re-applies that
// identity's area rules on every use, so a macaroon never grants more than
// its minter had. Caveats understood: before:<RFC 3339>, path:<site file
// name> (request must be at or below), activity:<A,B,...>. An unknown caveat
// fails verification (a first-party caveat nobody checks would silently
// widen the macaroon).

// macaroonKeyGenerator derives the signing key from the secret, as
// libmacaroons does, so the secret itself never keys an HMAC directly.
const macaroonKeyGenerator = "macaroons-key-generator"

var macaroonActivities = map[string]bool{"DOWNLOAD": true, "UPLOAD": true, "DELETE": true, "MANAGE": true,
	"LIST": true, "READ_METADATA": true, "UPDATE_METADATA": true, "STAGE": true}

// activityAccess is what each activity mainly stands for, to judge
// whether a minter holds it.
var activityAccess = map[string]access{"DOWNLOAD": accRead, "LIST": accList, "READ_METADATA": accList,
	"UPLOAD": accCreate, "MANAGE": accCreate, "DELETE": accDelete, "UPDATE_METADATA": accModify, "STAGE": accStage}

// macaroonIssuer mints and verifies the SE's macaroons; nil when macaroons
// are disabled.
type macaroonIssuer struct {
	key         []byte // derived signing key
	location    string
	maxValidity time.Duration
}

func newMacaroonIssuer(c MacaroonConfig, location string) (*macaroonIssuer, error) {
	if c.SecretFile == "" {
		return nil, nil
	}
	secret, err := os.ReadFile(c.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("macaroons: secret: %w", err)
	}
	secret = bytes.TrimSpace(secret)
	if len(secret) < 32 {
		return nil, errors.New("macaroons: the secret must be at least 32 bytes")
	}
	return &macaroonIssuer{key: macHMAC([]byte(macaroonKeyGenerator), secret), location: location, maxValidity: c.MaxValidity}, nil
}

func macHMAC(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// macaroon is a decoded macaroon.
type macaroon struct {
	location, identifier string
	caveats              []string
	sig                  []byte
}

func (m *macaroon) serialize() string {
	var b bytes.Buffer
	packet := func(k string, v []byte) {
		fmt.Fprintf(&b, "%04x%s %s\n", 4+len(k)+1+len(v)+1, k, v)
	}
	packet("location", []byte(m.location))
	packet("identifier", []byte(m.identifier))
	for _, c := range m.caveats {
		packet("cid", []byte(c))
	}
	packet("signature", m.sig)
	return base64.RawURLEncoding.EncodeToString(b.Bytes())
}

var errNotMacaroon = errors.New("not a macaroon")

func parseMacaroon(s string) (*macaroon, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, errNotMacaroon
		}
	}
	m := &macaroon{}
	for len(raw) > 0 {
		if len(raw) < 4 {
			return nil, errNotMacaroon
		}
		n, err := strconv.ParseUint(string(raw[:4]), 16, 16)
		if err != nil || int(n) > len(raw) || n < 6 {
			return nil, errNotMacaroon
		}
		body := raw[4:n]
		raw = raw[n:]
		if body[len(body)-1] != '\n' {
			return nil, errNotMacaroon
		}
		k, v, ok := bytes.Cut(body[:len(body)-1], []byte(" "))
		if !ok {
			return nil, errNotMacaroon
		}
		switch string(k) {
		case "location":
			m.location = string(v)
		case "identifier":
			m.identifier = string(v)
		case "cid":
			m.caveats = append(m.caveats, string(v))
		case "signature":
			m.sig = append([]byte(nil), v...)
		default: // third-party caveats (vid, cl) are not supported
			return nil, fmt.Errorf("%w: unsupported macaroon packet %q", ErrBadToken, k)
		}
	}
	if m.identifier == "" || len(m.sig) != sha256.Size {
		return nil, errNotMacaroon
	}
	return m, nil
}

func (mi *macaroonIssuer) sign(id string, caveats []string) []byte {
	sig := macHMAC(mi.key, []byte(id))
	for _, c := range caveats {
		sig = macHMAC(sig, []byte(c))
	}
	return sig
}

// macaroonIdentity is the JSON identifier: who it was minted for.
type macaroonIdentity struct {
	Nonce string         `json:"n"`
	DN    string         `json:"dn,omitempty"`
	FQANs []string       `json:"fqans,omitempty"`
	VO    string         `json:"vo,omitempty"`
	Token *tokenIdentity `json:"tok,omitempty"`
}

// macaroonLimits are a verified macaroon's caveats.
type macaroonLimits struct {
	paths      []string   // each must contain the request path
	activities [][]string // each must list one of the access's activities
	before     time.Time
}

// allows reports whether the caveats admit acc on stfn.
func (l *macaroonLimits) allows(stfn string, acc access) bool {
	for _, p := range l.paths {
		if !under(stfn, p, "/") {
			return false
		}
	}
	want := acc.activities()
	for _, set := range l.activities {
		ok := false
		for _, a := range set {
			if contains(want, a) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// verify checks a bearer string as one of our macaroons and returns the
// principal it stands for.
func (mi *macaroonIssuer) verify(raw string, now time.Time) (*principal, error) {
	m, err := parseMacaroon(raw)
	if err != nil {
		if errors.Is(err, errNotMacaroon) {
			return nil, fmt.Errorf("%w: neither a JWT nor a macaroon", ErrBadToken)
		}
		return nil, err
	}
	if mi == nil {
		return nil, fmt.Errorf("%w: this storage element does not accept macaroons", ErrBadToken)
	}
	if !hmac.Equal(mi.sign(m.identifier, m.caveats), m.sig) {
		return nil, fmt.Errorf("%w: macaroon signature does not verify (not issued here, or altered)", ErrBadToken)
	}
	var who macaroonIdentity
	idb, err := base64.RawURLEncoding.DecodeString(m.identifier)
	if err != nil || json.Unmarshal(idb, &who) != nil || (who.DN == "" && who.Token == nil) {
		return nil, fmt.Errorf("%w: macaroon identifier is not ours", ErrBadToken)
	}
	lim := &macaroonLimits{}
	hasExpiry := false
	for _, c := range m.caveats {
		k, v, _ := strings.Cut(c, ":")
		switch k {
		case "before":
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, fmt.Errorf("%w: macaroon caveat %q", ErrBadToken, c)
			}
			if !now.Before(t) {
				return nil, fmt.Errorf("%w: macaroon expired at %s", ErrBadToken, t.UTC().Format(time.RFC3339))
			}
			hasExpiry = true
			if lim.before.IsZero() || t.Before(lim.before) {
				lim.before = t
			}
		case "path":
			p, ok := cleanHTTPPath(v)
			if !ok {
				return nil, fmt.Errorf("%w: macaroon caveat %q", ErrBadToken, c)
			}
			lim.paths = append(lim.paths, p)
		case "activity":
			acts := strings.Split(v, ",")
			for _, a := range acts {
				if !macaroonActivities[a] {
					return nil, fmt.Errorf("%w: macaroon caveat %q: unknown activity %q", ErrBadToken, c, a)
				}
			}
			lim.activities = append(lim.activities, acts)
		default:
			return nil, fmt.Errorf("%w: macaroon caveat %q is not understood here", ErrBadToken, c)
		}
	}
	if !hasExpiry {
		return nil, fmt.Errorf("%w: macaroon has no expiry", ErrBadToken)
	}
	p := &principal{mac: lim}
	if who.Token != nil {
		p.tok = who.Token
	} else {
		p.cert = &gridauth.Identity{DN: who.DN, FQANs: who.FQANs, VO: who.VO}
	}
	return p, nil
}

// macaroonRequest is the body gfal2, FTS and davix POST.
type macaroonRequest struct {
	Caveats  []string `json:"caveats"`
	Validity string   `json:"validity"`
}

// isoDuration parses the ISO 8601 durations clients send ("PT180M",
// "PT1H30M", "P1D", "PT60S").
var isoDurationRE = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)

func parseISODuration(s string) (time.Duration, error) {
	m := isoDurationRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(s)))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration like PT60M", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, err)
		}
		d += time.Duration(n) * unit
	}
	return d, nil
}

// serveMacaroonRequest mints a macaroon for the authenticated client,
// scoped to the request path (and any narrower path the client asks for),
// the requested activities and the requested validity (bounded by
// macaroons.max_validity and, for a token client, by the token's expiry).
func (s *Server) serveMacaroonRequest(w http.ResponseWriter, r *http.Request, p *principal, stfn string) {
	mi := s.macaroons
	if mi == nil {
		httpError(w, http.StatusForbidden, "this storage element does not issue macaroons (macaroons.secret_file is not set)")
		return
	}
	if p.anonymous() {
		httpError(w, http.StatusUnauthorized, "a macaroon is issued only to an authenticated client")
		return
	}
	var req macaroonRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "macaroon request: body must be JSON like {\"caveats\":[\"activity:DOWNLOAD\"],\"validity\":\"PT60M\"}")
		return
	}
	validity := time.Hour
	if req.Validity != "" {
		d, err := parseISODuration(req.Validity)
		if err != nil || d <= 0 {
			httpError(w, http.StatusBadRequest, "macaroon request: validity: "+errString(err, "must be positive"))
			return
		}
		validity = d
	}
	validity = min(validity, mi.maxValidity)
	now := time.Now()
	expires := now.Add(validity)
	if p.tok != nil && !p.tok.Expires.IsZero() && p.tok.Expires.Before(expires) {
		expires = p.tok.Expires
	}
	if p.mac != nil && p.mac.before.Before(expires) {
		expires = p.mac.before
	}
	caveats := []string{"path:" + stfn}
	var acts []string
	for _, c := range req.Caveats {
		k, v, _ := strings.Cut(c, ":")
		switch k {
		case "activity":
			for _, a := range strings.Split(v, ",") {
				if !macaroonActivities[a] {
					httpError(w, http.StatusBadRequest, "macaroon request: unknown activity "+strconv.Quote(a))
					return
				}
				acts = append(acts, a)
			}
			caveats = append(caveats, "activity:"+v)
		case "path":
			pp, ok := cleanHTTPPath(v)
			if !ok || !under(pp, stfn, "/") {
				httpError(w, http.StatusBadRequest, "macaroon request: a path caveat must lie at or below the request path")
				return
			}
			caveats = append(caveats, "path:"+pp)
		case "before":
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				httpError(w, http.StatusBadRequest, "macaroon request: before: want RFC 3339 time")
				return
			}
			if t.Before(expires) {
				expires = t
			}
		default:
			httpError(w, http.StatusBadRequest, "macaroon request: unsupported caveat "+strconv.Quote(c))
			return
		}
	}
	if len(acts) == 0 {
		httpError(w, http.StatusBadRequest, "macaroon request: at least one activity caveat is required")
		return
	}
	// Refuse a macaroon for nothing: the minter must hold at least one
	// requested activity here (the others are re-checked at use anyway).
	loc, err := s.ns.Resolve(stfn)
	if err != nil {
		httpError(w, http.StatusNotFound, "no storage area serves this path")
		return
	}
	granted := false
	for _, a := range acts {
		if p.permits(loc, activityAccess[a]) {
			granted = true
		}
	}
	if !granted {
		httpError(w, http.StatusForbidden, "permission denied: none of the requested activities is allowed here")
		return
	}
	// Inherited limits of a macaroon used to mint this one.
	if p.mac != nil {
		for _, pp := range p.mac.paths {
			caveats = append(caveats, "path:"+pp)
		}
		for _, set := range p.mac.activities {
			caveats = append(caveats, "activity:"+strings.Join(set, ","))
		}
	}
	caveats = append(caveats, "before:"+expires.UTC().Format(time.RFC3339))
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	who := macaroonIdentity{Nonce: hex.EncodeToString(nonce[:])}
	if p.tok != nil {
		who.Token = p.tok
	} else {
		who.DN, who.FQANs, who.VO = p.cert.DN, p.cert.FQANs, p.cert.VO
	}
	idb, _ := json.Marshal(who)
	id := base64.RawURLEncoding.EncodeToString(idb)
	m := &macaroon{location: mi.location, identifier: id, caveats: caveats, sig: mi.sign(id, caveats)}
	tok := m.serialize()
	target := s.publicURL(r, stfn)
	resp := map[string]any{
		"macaroon":   tok,
		"expires_in": int64(time.Until(expires) / time.Second),
		"uri": map[string]string{
			"target":             target,
			"targetWithMacaroon": target + "?authz=" + url.QueryEscape(tok),
			"base":               s.publicURL(r, "/"),
			"baseWithMacaroon":   s.publicURL(r, "/") + "?authz=" + url.QueryEscape(tok),
		},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// publicURL is the https URL of a site file name on this data endpoint, as
// the client addressed it.
func (s *Server) publicURL(r *http.Request, stfn string) string {
	host := r.Host
	if host == "" {
		host = s.cfg.Hostname
	}
	return "https://" + host + (&url.URL{Path: path.Clean(stfn)}).EscapedPath()
}

func errString(err error, def string) string {
	if err != nil {
		return err.Error()
	}
	return def
}

// httpError writes a short plain-text error. Messages never carry physical
// paths or driver internals.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}
