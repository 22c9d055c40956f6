package srm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrBadToken is wrapped by every bearer-token rejection.
var ErrBadToken = errors.New("invalid bearer token")

// WLCG storage scopes (WLCG Common JWT Profile) and what they grant.
const (
	scopeRead   = "storage.read"
	scopeCreate = "storage.create"
	scopeModify = "storage.modify"
	scopeStage  = "storage.stage"
)

// tokenIdentity is a verified WLCG JWT.
type tokenIdentity struct {
	Issuer  string   `json:"iss"` // the configured issuer name, not the URL
	Subject string   `json:"sub"`
	Groups  []string `json:"groups,omitempty"`
	// Scopes are the storage.* scopes with their paths made absolute
	// (issuer base path joined), e.g. "storage.read:/dteam/data".
	Scopes []string `json:"scopes,omitempty"`
	// Expires is the token's exp, so macaroons minted for it end no later.
	Expires time.Time `json:"-"`
}

// hasStorageScopes reports whether the token carries capabilities.
func (t *tokenIdentity) hasStorageScopes() bool { return len(t.Scopes) > 0 }

// scopeGrants reports whether one of the token's scopes grants acc on
// stfn. storage.modify implies storage.create (WLCG profile).
func (t *tokenIdentity) scopeGrants(acc access, stfn string) bool {
	want := acc.scopes()
	for _, sc := range t.Scopes {
		name, p, _ := strings.Cut(sc, ":")
		if !contains(want, name) {
			continue
		}
		if under(stfn, p, "/") {
			return true
		}
	}
	return false
}

// jwtIssuer is a configured issuer with its loaded keys.
type jwtIssuer struct {
	cfg  IssuerConfig
	keys []jwt.VerificationKey
}

// tokenVerifier verifies WLCG JWTs against the configured issuers.
type tokenVerifier struct {
	issuers   map[string]*jwtIssuer // by iss claim
	audiences []string
	leeway    time.Duration
}

// newTokenVerifier loads every issuer's keys; a missing or unreadable key
// file is a startup error.
func newTokenVerifier(c TokensConfig) (*tokenVerifier, error) {
	v := &tokenVerifier{issuers: map[string]*jwtIssuer{}, audiences: c.Audiences, leeway: c.Leeway}
	for _, ic := range c.Issuers {
		is := &jwtIssuer{cfg: ic}
		if ic.JWKSFile != "" {
			keys, err := loadJWKS(ic.JWKSFile)
			if err != nil {
				return nil, fmt.Errorf("tokens: issuer %s: %w", ic.Name, err)
			}
			is.keys = keys
		}
		for _, f := range ic.PublicKeys {
			k, err := loadPEMPublicKey(f)
			if err != nil {
				return nil, fmt.Errorf("tokens: issuer %s: %w", ic.Name, err)
			}
			is.keys = append(is.keys, k)
		}
		if len(is.keys) == 0 {
			return nil, fmt.Errorf("tokens: issuer %s: no usable keys", ic.Name)
		}
		v.issuers[ic.Issuer] = is
	}
	return v, nil
}

// wlcgClaims are the claims of the WLCG profile we use.
type wlcgClaims struct {
	jwt.RegisteredClaims
	Scope  string   `json:"scope"`
	Groups []string `json:"wlcg.groups"`
}

// verify checks signature, issuer, audience, exp/nbf/iat and returns the
// identity. Errors wrap ErrBadToken and say what was wrong, never echoing
// key material.
func (v *tokenVerifier) verify(raw string, now time.Time) (*tokenIdentity, error) {
	if v == nil || len(v.issuers) == 0 {
		return nil, fmt.Errorf("%w: this storage element trusts no token issuer", ErrBadToken)
	}
	var is *jwtIssuer
	var claims wlcgClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		is = v.issuers[iss]
		if is == nil {
			return nil, fmt.Errorf("issuer %q is not trusted", iss)
		}
		return jwt.VerificationKeySet{Keys: is.keys}, nil
	}, jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"}),
		jwt.WithLeeway(v.leeway), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadToken, trimJWTError(err))
	}
	if !v.audienceOK(claims.Audience) {
		return nil, fmt.Errorf("%w: audience %v is not accepted here", ErrBadToken, []string(claims.Audience))
	}
	id := &tokenIdentity{Issuer: is.cfg.Name, Subject: claims.Subject, Groups: claims.Groups}
	if claims.ExpiresAt != nil {
		id.Expires = claims.ExpiresAt.Time
	}
	for _, sc := range strings.Fields(claims.Scope) {
		name, p, ok := strings.Cut(sc, ":")
		switch name {
		case scopeRead, scopeCreate, scopeModify, scopeStage:
		default:
			continue // openid, offline_access, compute.*: not ours
		}
		if !ok || !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("%w: scope %q has no absolute path", ErrBadToken, sc)
		}
		id.Scopes = append(id.Scopes, name+":"+path.Join(is.cfg.BasePath, path.Clean(p)))
	}
	return id, nil
}

func (v *tokenVerifier) audienceOK(aud jwt.ClaimStrings) bool {
	for _, a := range aud {
		if contains(v.audiences, a) {
			return true
		}
	}
	return false
}

// trimJWTError keeps the library's reason without its "token is
// unverifiable:" chain noise.
func trimJWTError(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token is expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature is invalid"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	}
	return err.Error()
}

// loadJWKS reads RSA and EC public keys from a JSON Web Key Set file; keys
// of other types or uses are skipped.
func loadJWKS(file string) ([]jwt.VerificationKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading JWKS: %w", err)
	}
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Use string `json:"use"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", file, err)
	}
	b64 := func(s string) (*big.Int, error) {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil || len(b) == 0 {
			return nil, errors.New("bad base64url number")
		}
		return new(big.Int).SetBytes(b), nil
	}
	var keys []jwt.VerificationKey
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err1 := b64(k.N)
			e, err2 := b64(k.E)
			if err := errors.Join(err1, err2); err != nil || !e.IsInt64() {
				return nil, fmt.Errorf("JWKS %s: key %d: bad RSA parameters", file, i)
			}
			keys = append(keys, &rsa.PublicKey{N: n, E: int(e.Int64())})
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				continue
			}
			x, err1 := b64(k.X)
			y, err2 := b64(k.Y)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("JWKS %s: key %d: bad EC parameters", file, i)
			}
			keys = append(keys, &ecdsa.PublicKey{Curve: curve, X: x, Y: y})
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS %s: no RSA or EC signing keys", file)
	}
	return keys, nil
}

// loadPEMPublicKey reads a PEM "PUBLIC KEY" (PKIX) or a certificate.
func loadPEMPublicKey(file string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM block", file)
	}
	switch b.Type {
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return c.PublicKey, nil
	default:
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return k, nil
	}
}
