// Package gridauth authenticates grid clients from their X.509 certificate
// chains: end-entity certificates (EEC) issued by a CA in a grid CA directory,
// and RFC 3820 proxy certificates derived from them, optionally carrying VOMS
// attribute certificates. It is shared by the SRM storage element and the
// REST API.
//
// Go's crypto/x509 does not understand proxy certificates (a proxy is signed
// by a non-CA end-entity certificate), so Verify splits the presented chain:
// the leading proxies are checked here, one by one, and the EEC they lead to
// is verified with crypto/x509 against the CA directory.
package gridauth

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"time"
)

// Errors returned by Verify, wrapped with details; test with errors.Is.
var (
	ErrNoCertificate = errors.New("gridauth: no client certificate")
	ErrBadProxy      = errors.New("gridauth: invalid proxy certificate")
	ErrUntrusted     = errors.New("gridauth: certificate not trusted")
	ErrNoCAs         = errors.New("gridauth: no CA certificates found")
)

// OIDs of the RFC 3820 proxyCertInfo extension and its policy languages.
var (
	OIDProxyCertInfo   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 14}
	oidPolicyInherit   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 21, 1}
	oidPolicyIndepend  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 21, 2}
	oidPolicyLimited   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3536, 1, 1, 1, 9}
	oidCommonName      = asn1.ObjectIdentifier{2, 5, 4, 3}
	hashedCAFileRegexp = regexp.MustCompile(`^[0-9a-f]{8}\.[0-9]+$`)
)

// Identity is an authenticated client.
type Identity struct {
	// DN is the end-entity subject in OpenSSL slash form, e.g.
	// "/DC=org/DC=example/CN=Test User". Proxies never change it.
	DN string
	// FQANs are the VOMS attributes of the first VOMS AC in the proxy
	// chain that verifies against the store's VOMS trust (see VOMSTrust),
	// in the order issued (the first is the primary FQAN); nil without a
	// verified AC.
	FQANs []string
	// VOMSIgnored says why ACs the client presented were ignored (nil
	// when none was, or one verified): for logs, never for decisions.
	VOMSIgnored error
	// VO is the VOMS VO name, "" without VOMS.
	VO string
	// Proxies counts the proxy certificates in front of the EEC.
	Proxies int
	// Limited is true when any proxy in the chain is a limited proxy.
	Limited bool
	// EEC is the verified end-entity certificate.
	EEC *x509.Certificate
}

// Groups returns the VOMS groups of the identity: each FQAN's part before
// "/Role=", deduplicated in order.
func (id *Identity) Groups() []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range id.FQANs {
		g := f
		if i := bytes.Index([]byte(f), []byte("/Role=")); i >= 0 {
			g = f[:i]
		}
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}

// CAStore holds the trusted CAs of a grid CA directory. It is safe for
// concurrent use; Reload swaps the pool atomically.
type CAStore struct {
	dir  string
	pool atomic.Pointer[x509.CertPool]
	voms atomic.Pointer[VOMSTrust]
}

// SetVOMSTrust makes Verify accept VOMS attribute certificates that verify
// against v; nil (the default) accepts none, so FQANs are only ever
// verified ones.
func (s *CAStore) SetVOMSTrust(v *VOMSTrust) { s.voms.Store(v) }

// LoadCADir reads a CA directory in the grid hashed layout (X509_CERT_DIR):
// every file named <8 hex digits>.<n> holding PEM certificates. Other files
// (.signing_policy, .crl_url, .namespaces, .r0 CRLs, plain names) are ignored.
// Signing policies are not enforced: the CA directory is trusted as a whole.
func LoadCADir(dir string) (*CAStore, error) {
	s := &CAStore{dir: dir}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the CA directory; on error the previous pool stays.
func (s *CAStore) Reload() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("gridauth: CA directory %s: %w", s.dir, err)
	}
	pool := x509.NewCertPool()
	n := 0
	for _, e := range ents {
		if !hashedCAFileRegexp.MatchString(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return fmt.Errorf("gridauth: CA file %s: %w", filepath.Join(s.dir, e.Name()), err)
		}
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return fmt.Errorf("gridauth: CA file %s: %w", filepath.Join(s.dir, e.Name()), err)
			}
			pool.AddCert(c)
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%w in %s (want <hash>.0 files)", ErrNoCAs, s.dir)
	}
	s.pool.Store(pool)
	return nil
}

// Pool returns the current CA pool (for TLS client configurations).
func (s *CAStore) Pool() *x509.CertPool { return s.pool.Load() }

// Verify authenticates a client chain as presented in TLS (leaf first:
// proxies, then the EEC, then optional intermediates) at time now. It checks
// each proxy (RFC 3820: signed by the next certificate, issuer name equal to
// that certificate's subject, subject = issuer subject + one CN, valid at
// now, path length constraints, not an independent proxy), then verifies the
// EEC with crypto/x509 against the CA pool, and extracts VOMS FQANs.
func (s *CAStore) Verify(chain []*x509.Certificate, now time.Time) (*Identity, error) {
	if len(chain) == 0 {
		return nil, ErrNoCertificate
	}
	id := &Identity{}
	i := 0
	// minRemaining tracks the tightest path length constraint seen so far,
	// counted in proxies still allowed below the constraining proxy.
	for ; i < len(chain) && isProxy(chain[i]); i++ {
		c := chain[i]
		if i+1 >= len(chain) {
			return nil, fmt.Errorf("%w: proxy %q has no issuer in the chain", ErrBadProxy, DN(c))
		}
		iss := chain[i+1]
		info, err := parseProxyCertInfo(c)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrBadProxy, DN(c), err)
		}
		switch {
		case info.Policy.Language.Equal(oidPolicyIndepend):
			return nil, fmt.Errorf("%w: %q is an independent proxy (no identity to inherit)", ErrBadProxy, DN(c))
		case info.Policy.Language.Equal(oidPolicyLimited):
			id.Limited = true
		case info.Policy.Language.Equal(oidPolicyInherit):
		default:
			return nil, fmt.Errorf("%w: %q has unknown policy language %v", ErrBadProxy, DN(c), info.Policy.Language)
		}
		// A proxy with pathlen n may have at most n proxies below it; the
		// proxies below chain[i] are chain[0..i-1].
		if info.PathLen >= 0 && i > info.PathLen {
			return nil, fmt.Errorf("%w: %q allows %d proxies below it, chain has %d", ErrBadProxy, DN(c), info.PathLen, i)
		}
		if !bytes.Equal(c.RawIssuer, iss.RawSubject) {
			return nil, fmt.Errorf("%w: %q: issuer name is not the subject of the next certificate", ErrBadProxy, DN(c))
		}
		if err := checkProxySubject(c, iss); err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrBadProxy, DN(c), err)
		}
		// CheckSignatureFrom refuses non-CA issuers, which every proxy
		// issuer is; check the signature itself.
		if err := iss.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
			return nil, fmt.Errorf("%w: %q: signature: %v", ErrBadProxy, DN(c), err)
		}
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return nil, fmt.Errorf("%w: %q is not valid at %s (valid %s to %s)", ErrBadProxy, DN(c),
				now.UTC().Format(time.RFC3339), c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	id.Proxies = i
	eec := chain[i]
	if eec.IsCA {
		return nil, fmt.Errorf("%w: %q is a CA certificate, not a user or host certificate", ErrUntrusted, DN(eec))
	}
	inter := x509.NewCertPool()
	for _, c := range chain[i+1:] {
		inter.AddCert(c)
	}
	_, err := eec.Verify(x509.VerifyOptions{
		Roots:         s.Pool(),
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrUntrusted, DN(eec), err)
	}
	id.EEC = eec
	id.DN = DN(eec)
	id.VO, id.FQANs, id.VOMSIgnored = s.verifiedVOMS(chain[:i], chain[:i+1], now)
	return id, nil
}

// verifiedVOMS returns the VO and FQANs of the first AC carried by a proxy
// that verifies; an AC that fails is ignored (the DN still authenticates)
// and the last failure is returned for logs. Each AC's holder must be a
// certificate below the proxy carrying it (towards the EEC).
func (s *CAStore) verifiedVOMS(proxies, chain []*x509.Certificate, now time.Time) (string, []string, error) {
	trust := s.voms.Load()
	var last error
	for i, p := range proxies {
		for _, der := range rawACs(p) {
			if trust == nil {
				return "", nil, fmt.Errorf("%w: no vomsdir is configured", ErrVOMSUntrusted)
			}
			vo, fqans, err := trust.VerifyAC(der, chain[i+1:], s.Pool(), now)
			if err == nil {
				return vo, fqans, nil
			}
			last = err
		}
	}
	return "", nil, last
}

func isProxy(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDProxyCertInfo) {
			return true
		}
	}
	return false
}

type proxyPolicy struct {
	Language asn1.ObjectIdentifier
	Policy   []byte `asn1:"optional"`
}

type proxyCertInfo struct {
	PathLen int // -1 = unlimited
	Policy  proxyPolicy
}

func parseProxyCertInfo(c *x509.Certificate) (*proxyCertInfo, error) {
	for _, e := range c.Extensions {
		if !e.Id.Equal(OIDProxyCertInfo) {
			continue
		}
		// ProxyCertInfo ::= SEQUENCE { pCPathLenConstraint INTEGER OPTIONAL,
		//                              proxyPolicy ProxyPolicy }
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(e.Value, &seq); err != nil || len(rest) > 0 || seq.Tag != asn1.TagSequence {
			return nil, fmt.Errorf("malformed proxyCertInfo")
		}
		info := &proxyCertInfo{PathLen: -1}
		rest := seq.Bytes
		var first asn1.RawValue
		r2, err := asn1.Unmarshal(rest, &first)
		if err != nil {
			return nil, fmt.Errorf("malformed proxyCertInfo: %v", err)
		}
		if first.Tag == asn1.TagInteger {
			var n int
			if _, err := asn1.Unmarshal(first.FullBytes, &n); err != nil || n < 0 {
				return nil, fmt.Errorf("malformed proxyCertInfo path length")
			}
			info.PathLen = n
			rest = r2
		}
		if r, err := asn1.Unmarshal(rest, &info.Policy); err != nil || len(r) > 0 {
			return nil, fmt.Errorf("malformed proxyPolicy")
		}
		return info, nil
	}
	return nil, fmt.Errorf("no proxyCertInfo extension")
}

// checkProxySubject enforces RFC 3820 3.4: the proxy subject is the issuer
// subject with exactly one more RDN, a single CommonName.
func checkProxySubject(c, iss *x509.Certificate) error {
	sub, err := rdns(c.RawSubject)
	if err != nil {
		return err
	}
	isub, err := rdns(iss.RawSubject)
	if err != nil {
		return err
	}
	if len(sub) != len(isub)+1 {
		return fmt.Errorf("subject must be the issuer subject plus one CN")
	}
	for k := range isub {
		a, _ := asn1.Marshal(isub[k])
		b, _ := asn1.Marshal(sub[k])
		if !bytes.Equal(a, b) {
			return fmt.Errorf("subject does not extend the issuer subject")
		}
	}
	last := sub[len(sub)-1]
	if len(last) != 1 || !last[0].Type.Equal(oidCommonName) {
		return fmt.Errorf("last subject RDN must be a single CN")
	}
	return nil
}
