package srm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The libmacaroons/pymacaroons reference vector: our HMAC chain and key
// derivation must match it, or other tools could not attenuate our
// macaroons.
func TestMacaroonReferenceVector(t *testing.T) {
	mi := &macaroonIssuer{key: macHMAC([]byte(macaroonKeyGenerator), []byte("this is our super secret key; only we should know it"))}
	if got := hex.EncodeToString(mi.sign("we used our secret key", nil)); got != "e3d9e02908526c4c0039ae15114115d97fdd68bf2ba379b342aaf0f617d0552f" {
		t.Fatalf("signature %s", got)
	}
	if got := hex.EncodeToString(mi.sign("we used our secret key", []string{"test = caveat"})); got != "197bac7a044af33332865b9266e26d493bdd668a660e44d88ce1a998c23dbd67" {
		t.Fatalf("signature with caveat %s", got)
	}
	m := &macaroon{location: "http://mybank/", identifier: "we used our secret key", caveats: []string{"test = caveat"},
		sig: mi.sign("we used our secret key", []string{"test = caveat"})}
	// pymacaroons' serialization of the same macaroon (standard alphabet).
	const py = "MDAxY2xvY2F0aW9uIGh0dHA6Ly9teWJhbmsvCjAwMjZpZGVudGlmaWVyIHdlIHVzZWQgb3VyIHNlY3JldCBrZXkKMDAxNmNpZCB0ZXN0ID0gY2F2ZWF0CjAwMmZzaWduYXR1cmUgGXusegRK8zMyhluSZuJtSTvdZopmDkTYjOGpmMI9vWcK"
	back, err := parseMacaroon(py)
	if err != nil {
		t.Fatal(err)
	}
	if back.identifier != m.identifier || back.location != m.location || len(back.caveats) != 1 || !strings.EqualFold(hex.EncodeToString(back.sig), hex.EncodeToString(m.sig)) {
		t.Fatalf("parsed %+v", back)
	}
	again, err := parseMacaroon(m.serialize())
	if err != nil || again.identifier != m.identifier {
		t.Fatalf("round trip: %v %+v", err, again)
	}
}

func TestISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"PT180M": 3 * time.Hour, "PT1H30M": 90 * time.Minute, "P1D": 24 * time.Hour, "PT60S": time.Minute} {
		if got, err := parseISODuration(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "P", "PT", "180", "PT-1M", "1H"} {
		if _, err := parseISODuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// tokenEnv is an SE with a token issuer, macaroons and three areas.
type tokenEnv struct {
	se      *testSE
	key     *ecdsa.PrivateKey
	base    string       // https://localhost:PORT
	cert    *http.Client // the test user's proxy
	bare    *http.Client // no client certificate
	secret  string
	tokRoot string
	pubRoot string
}

const testIssuer = "https://issuer.example.org/"

func startTokenSE(t *testing.T) *tokenEnv {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	pad := func(b []byte) string {
		return base64.RawURLEncoding.EncodeToString(append(make([]byte, 32-len(b)), b...))
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "use": "sig", "kid": "k1",
		"x": pad(key.X.Bytes()), "y": pad(key.Y.Bytes())}}})
	must(t, os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o644))
	secret := filepath.Join(dir, "macaroon.secret")
	must(t, os.WriteFile(secret, []byte(strings.Repeat("s3cr3t", 8)), 0o600))
	tokRoot, anonRoot := filepath.Join(dir, "tok"), filepath.Join(dir, "pub")
	must(t, os.Mkdir(tokRoot, 0o755))
	must(t, os.Mkdir(anonRoot, 0o755))
	se := startSE(t, nil, func(c *Config) {
		c.Tokens = TokensConfig{Audiences: []string{"https://localhost"},
			Issuers: []IssuerConfig{{Name: "test", Issuer: testIssuer, JWKSFile: filepath.Join(dir, "jwks.json")}}}
		c.Macaroons = MacaroonConfig{SecretFile: secret}
		c.Areas = append(c.Areas,
			AreaConfig{Name: "tok", Prefix: "/tok", Root: tokRoot, Allow: []Rule{
				{Issuer: "test"}, {Issuer: "test", Group: "/dteam", Ops: []string{OpRead, OpList}}, {DN: "*", Ops: []string{OpList}}}},
			AreaConfig{Name: "pub", Prefix: "/pub", Root: anonRoot, AnonymousRead: true, Allow: []Rule{{DN: "*"}}})
	})
	_, hc, _ := clientFor(t, se)
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(se.PKI, "ca.pem"))
	pool.AppendCertsFromPEM(ca)
	bare := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(bare.CloseIdleConnections)
	return &tokenEnv{se: se, key: key, base: "https://localhost:" + port(se.DataAddr().String()), cert: hc, bare: bare,
		secret: secret, tokRoot: tokRoot, pubRoot: anonRoot}
}

func (e *tokenEnv) jwt(t *testing.T, key *ecdsa.PrivateKey, mutate func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": testIssuer, "sub": "user1", "aud": "https://localhost", "iat": now.Unix(),
		"nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "storage.read:/"}
	if mutate != nil {
		mutate(c)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(key)
	must(t, err)
	return s
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func TestBearerTokens(t *testing.T) {
	e := startTokenSE(t)
	must(t, os.MkdirAll(filepath.Join(e.tokRoot, "a"), 0o755))
	must(t, os.WriteFile(filepath.Join(e.tokRoot, "a", "f"), []byte("token data"), 0o644))
	url := e.base + "/tok/a/f"
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		name   string
		tok    string
		want   int
		reason string
	}{
		{"read scope at the root of the issuer", e.jwt(t, e.key, nil), 200, ""},
		{"read scope on the directory", e.jwt(t, e.key, func(c jwt.MapClaims) { c["scope"] = "openid storage.read:/tok/a" }), 200, ""},
		{"group rule without scopes", e.jwt(t, e.key, func(c jwt.MapClaims) { delete(c, "scope"); c["wlcg.groups"] = []string{"/dteam"} }), 200, ""},
		{"audience list", e.jwt(t, e.key, func(c jwt.MapClaims) { c["aud"] = []string{"x", "https://localhost"} }), 200, ""},
		{"wrong path", e.jwt(t, e.key, func(c jwt.MapClaims) { c["scope"] = "storage.read:/tok/b" }), 403, ""},
		{"sibling prefix is not a parent", e.jwt(t, e.key, func(c jwt.MapClaims) { c["scope"] = "storage.read:/tok/a/f2" }), 403, ""},
		{"write scope does not read", e.jwt(t, e.key, func(c jwt.MapClaims) { c["scope"] = "storage.create:/" }), 403, ""},
		{"no scope, wrong group", e.jwt(t, e.key, func(c jwt.MapClaims) { delete(c, "scope"); c["wlcg.groups"] = []string{"/atlas"} }), 403, ""},
		{"expired", e.jwt(t, e.key, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), 401, "expired"},
		{"not yet valid", e.jwt(t, e.key, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), 401, "not valid yet"},
		{"no expiry", e.jwt(t, e.key, func(c jwt.MapClaims) { delete(c, "exp") }), 401, "exp"},
		{"wrong issuer", e.jwt(t, e.key, func(c jwt.MapClaims) { c["iss"] = "https://evil.example.org/" }), 401, "not trusted"},
		{"wrong audience", e.jwt(t, e.key, func(c jwt.MapClaims) { c["aud"] = "https://other-se.example.org" }), 401, "audience"},
		{"forged signature", e.jwt(t, other, nil), 401, "signature"},
		{"garbage", "eyJhbGciOiJub25lIn0.e30.", 401, ""},
		{"not a token at all", "hello", 401, "neither"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := httpDo(t, e.bare, "GET", url, nil, bearer(c.tok)...)
			if resp.StatusCode != c.want || !strings.Contains(string(body), c.reason) {
				t.Fatalf("status %d (want %d): %s", resp.StatusCode, c.want, body)
			}
			if c.want == 200 && string(body) != "token data" {
				t.Fatalf("body %q", body)
			}
		})
	}
	// A token also fails on a certificate connection: the client meant it.
	if resp, _ := httpDo(t, e.cert, "GET", url, nil, bearer(e.jwt(t, other, nil))...); resp.StatusCode != 401 {
		t.Errorf("bad token with a certificate: %d", resp.StatusCode)
	}
	// The certificate alone may only list /tok.
	if resp, _ := httpDo(t, e.cert, "GET", url, nil); resp.StatusCode != 403 {
		t.Errorf("certificate read of a token-only area: %d", resp.StatusCode)
	}
	// No credential: 401, except on the anonymous-read area.
	if resp, _ := httpDo(t, e.bare, "GET", url, nil); resp.StatusCode != 401 {
		t.Errorf("anonymous read: %d", resp.StatusCode)
	}
	must(t, os.WriteFile(filepath.Join(e.pubRoot, "p"), []byte("public"), 0o644))
	if resp, body := httpDo(t, e.bare, "GET", e.base+"/pub/p", nil); resp.StatusCode != 200 || string(body) != "public" {
		t.Errorf("anonymous read of an anonymous_read area: %d %s", resp.StatusCode, body)
	}
}

// mintMacaroon asks the SE for a macaroon on url with the given client.
func mintMacaroon(t testing.TB, hc *http.Client, url string, hdr []string, caveats ...string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"caveats": caveats, "validity": "PT30M"})
	resp, out := httpDo(t, hc, "POST", url, body, append([]string{"Content-Type", "application/macaroon-request"}, hdr...)...)
	if resp.StatusCode != 200 {
		return resp.StatusCode, string(out)
	}
	var m struct {
		Macaroon string `json:"macaroon"`
		URI      struct {
			Target string `json:"targetWithMacaroon"`
		} `json:"uri"`
	}
	must(t, json.Unmarshal(out, &m))
	if m.Macaroon == "" || !strings.Contains(m.URI.Target, "authz=") {
		t.Fatalf("macaroon response %s", out)
	}
	return 200, m.Macaroon
}

func TestMacaroons(t *testing.T) {
	e := startTokenSE(t)
	must(t, os.MkdirAll(filepath.Join(e.se.Root, "dteam"), 0o755))
	must(t, os.WriteFile(filepath.Join(e.se.Root, "dteam", "f"), []byte("file f"), 0o644))
	must(t, os.WriteFile(filepath.Join(e.se.Root, "dteam", "g"), []byte("file g"), 0o644))
	f := e.base + "/dteam/f"

	if code, _ := mintMacaroon(t, e.bare, f, nil, "activity:DOWNLOAD"); code != 401 {
		t.Errorf("anonymous macaroon request: %d", code)
	}
	if code, msg := mintMacaroon(t, e.cert, f, nil, "activity:FLY"); code != 400 {
		t.Errorf("unknown activity: %d %s", code, msg)
	}
	if code, msg := mintMacaroon(t, e.cert, f, nil, "activity:DOWNLOAD", "path:/dteam/g"); code != 400 {
		t.Errorf("path caveat outside the request path: %d %s", code, msg)
	}
	// The user may only list /tok: a DOWNLOAD macaroon there is refused.
	if code, msg := mintMacaroon(t, e.cert, e.base+"/tok/x", nil, "activity:DOWNLOAD"); code != 403 {
		t.Errorf("macaroon for what the minter may not do: %d %s", code, msg)
	}
	code, mac := mintMacaroon(t, e.cert, f, nil, "activity:DOWNLOAD,LIST")
	if code != 200 {
		t.Fatalf("minting: %d %s", code, mac)
	}
	if resp, body := httpDo(t, e.bare, "GET", f, nil, bearer(mac)...); resp.StatusCode != 200 || string(body) != "file f" {
		t.Fatalf("GET with the macaroon: %d %s", resp.StatusCode, body)
	}
	if resp, body := httpDo(t, e.bare, "GET", f+"?authz="+mac, nil); resp.StatusCode != 200 || string(body) != "file f" {
		t.Fatalf("GET with ?authz=: %d %s", resp.StatusCode, body)
	}
	if resp, _ := httpDo(t, e.bare, "GET", e.base+"/dteam/g", nil, bearer(mac)...); resp.StatusCode != 403 {
		t.Errorf("macaroon used on another path: %d", resp.StatusCode)
	}
	if resp, _ := httpDo(t, e.bare, "PUT", f, []byte("x"), bearer(mac)...); resp.StatusCode != 403 {
		t.Errorf("DOWNLOAD macaroon used to upload: %d", resp.StatusCode)
	}
	// Attenuation by the holder: a LIST-only caveat added without the
	// secret is honoured; removing a caveat breaks the signature.
	m, err := parseMacaroon(mac)
	must(t, err)
	narrowed := &macaroon{location: m.location, identifier: m.identifier, caveats: append(append([]string{}, m.caveats...), "activity:LIST"),
		sig: macHMAC(m.sig, []byte("activity:LIST"))}
	if resp, _ := httpDo(t, e.bare, "GET", f, nil, bearer(narrowed.serialize())...); resp.StatusCode != 403 {
		t.Errorf("attenuated (LIST only) macaroon still downloads: %d", resp.StatusCode)
	}
	if resp, _ := httpDo(t, e.bare, "HEAD", f, nil, bearer(narrowed.serialize())...); resp.StatusCode != 200 {
		t.Errorf("attenuated macaroon cannot stat: %d", resp.StatusCode)
	}
	widened := &macaroon{location: m.location, identifier: m.identifier, caveats: m.caveats[1:], sig: m.sig}
	if resp, body := httpDo(t, e.bare, "GET", e.base+"/dteam/g", nil, bearer(widened.serialize())...); resp.StatusCode != 401 {
		t.Errorf("macaroon with its path caveat removed: %d %s", resp.StatusCode, body)
	}
	// Expiry, checked at a later clock.
	if _, err := e.se.macaroons.verify(mac, time.Now().Add(31*time.Minute)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired macaroon: %v", err)
	}
	// Another SE (another secret) does not accept it.
	otherSecret := filepath.Join(t.TempDir(), "s")
	must(t, os.WriteFile(otherSecret, []byte(strings.Repeat("other!", 8)), 0o600))
	other, err := newMacaroonIssuer(MacaroonConfig{SecretFile: otherSecret, MaxValidity: time.Hour}, "x")
	must(t, err)
	if _, err := other.verify(mac, time.Now()); err == nil {
		t.Error("a macaroon of another SE verified")
	}
	// A token client can mint too; the macaroon never outlives the token
	// nor exceeds its scopes.
	tok := e.jwt(t, e.key, func(c jwt.MapClaims) {
		c["scope"] = "storage.read:/tok/a"
		c["exp"] = time.Now().Add(10 * time.Minute).Unix()
	})
	must(t, os.MkdirAll(filepath.Join(e.tokRoot, "a"), 0o755))
	must(t, os.WriteFile(filepath.Join(e.tokRoot, "a", "f"), []byte("tok f"), 0o644))
	code, tmac := mintMacaroon(t, e.bare, e.base+"/tok/a/f", bearer(tok), "activity:DOWNLOAD")
	if code != 200 {
		t.Fatalf("token client minting: %d %s", code, tmac)
	}
	if resp, body := httpDo(t, e.bare, "GET", e.base+"/tok/a/f", nil, bearer(tmac)...); resp.StatusCode != 200 || string(body) != "tok f" {
		t.Errorf("macaroon of a token client: %d %s", resp.StatusCode, body)
	}
	if _, err := e.se.macaroons.verify(tmac, time.Now().Add(11*time.Minute)); err == nil {
		t.Error("macaroon outlives the token it was minted for")
	}
}
