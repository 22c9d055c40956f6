package gridauth

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// OID of the AC extension carrying the VOMS server's certificate chain.
var oidVOMSCerts = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 8005, 100, 100, 10}

// ErrVOMSUntrusted: an attribute certificate failed verification. Callers
// ignore such an AC (the DN still authenticates); the error says why, for
// logs.
var ErrVOMSUntrusted = errors.New("gridauth: VOMS attribute certificate not trusted")

// VOMSTrust is the trust configuration of VOMS attribute certificates, read
// from a vomsdir in the standard layout (/etc/grid-security/vomsdir):
//
//   - <dir>/<vo>/<host>.lsc: the certificate chain of a VOMS server of VO
//     <vo>, as DN lines, the server's subject first, then its issuer (and
//     further issuers, if any). The AC must carry that server certificate,
//     which must verify against the grid CAs and match the lines;
//   - <dir>/<vo>/*.pem: VOMS server certificates trusted directly for
//     <vo>; <dir>/*.pem: trusted for any VO (the legacy layout).
//
// An AC is accepted when its signature verifies with a trusted server
// certificate whose subject is the AC issuer, it is valid now, its holder
// is a certificate of the client's chain (issuer name, or subject for
// voms-proxy-fake style ACs, plus serial number), and every FQAN it
// carries belongs to the VO the server is trusted for. A VOMSTrust is
// immutable and safe for concurrent use.
type VOMSTrust struct {
	lsc    map[string][][]string // vo -> DN chains
	direct map[string][]*x509.Certificate
	any    []*x509.Certificate
}

// LoadVOMSDir reads a vomsdir. A directory without any .lsc file or
// certificate is an error: VOMS was asked for and nothing could be trusted.
func LoadVOMSDir(dir string) (*VOMSTrust, error) {
	v := &VOMSTrust{lsc: map[string][][]string{}, direct: map[string][]*x509.Certificate{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("gridauth: vomsdir: %w", err)
	}
	n := 0
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			if strings.HasSuffix(e.Name(), ".pem") {
				certs, err := readPEMCerts(p)
				if err != nil {
					return nil, err
				}
				v.any = append(v.any, certs...)
				n += len(certs)
			}
			continue
		}
		vo := e.Name()
		files, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("gridauth: vomsdir: %w", err)
		}
		for _, f := range files {
			fp := filepath.Join(p, f.Name())
			switch {
			case strings.HasSuffix(f.Name(), ".lsc"):
				chain, err := readLSC(fp)
				if err != nil {
					return nil, err
				}
				v.lsc[vo] = append(v.lsc[vo], chain)
				n++
			case strings.HasSuffix(f.Name(), ".pem"):
				certs, err := readPEMCerts(fp)
				if err != nil {
					return nil, err
				}
				v.direct[vo] = append(v.direct[vo], certs...)
				n += len(certs)
			}
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("gridauth: vomsdir %s holds no <vo>/*.lsc file and no VOMS server certificate", dir)
	}
	return v, nil
}

func readLSC(p string) ([]string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("gridauth: vomsdir: %w", err)
	}
	var chain []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if l == "------ NEXT CHAIN ------" {
			break // alternative chains: the first is enough for our layout
		}
		chain = append(chain, l)
	}
	if len(chain) < 2 {
		return nil, fmt.Errorf("gridauth: vomsdir %s: want the server DN and its issuer DN, one per line", p)
	}
	return chain, nil
}

func readPEMCerts(p string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("gridauth: vomsdir: %w", err)
	}
	var out []*x509.Certificate
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
			return nil, fmt.Errorf("gridauth: vomsdir %s: %w", p, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("gridauth: vomsdir %s: no certificate", p)
	}
	return out, nil
}

// attributeCertificate is an RFC 5755 AC.
type attributeCertificate struct {
	Info      asn1.RawValue
	Algorithm pkix.AlgorithmIdentifier
	Signature asn1.BitString
}

type acInfo struct {
	Version    int
	Holder     asn1.RawValue
	Issuer     asn1.RawValue
	Signature  pkix.AlgorithmIdentifier
	Serial     *big.Int
	Validity   struct{ NotBefore, NotAfter time.Time }
	Attributes asn1.RawValue
	IssuerUID  asn1.BitString   `asn1:"optional"`
	Extensions []pkix.Extension `asn1:"optional"`
}

// VerifyAC verifies one DER attribute certificate for a client whose chain
// (leaf first) is holders, against roots (the grid CAs), at now. It returns
// the VO and FQANs, or an error wrapping ErrVOMSUntrusted.
func (v *VOMSTrust) VerifyAC(der []byte, holders []*x509.Certificate, roots *x509.CertPool, now time.Time) (string, []string, error) {
	bad := func(format string, a ...any) (string, []string, error) {
		return "", nil, fmt.Errorf("%w: "+format, append([]any{ErrVOMSUntrusted}, a...)...)
	}
	var ac attributeCertificate
	if rest, err := asn1.Unmarshal(der, &ac); err != nil || len(rest) > 0 {
		return bad("malformed")
	}
	var info acInfo
	if _, err := asn1.Unmarshal(ac.Info.FullBytes, &info); err != nil {
		return bad("malformed info: %v", err)
	}
	if now.Before(info.Validity.NotBefore) || now.After(info.Validity.NotAfter) {
		return bad("not valid at %s (valid %s to %s)", now.UTC().Format(time.RFC3339),
			info.Validity.NotBefore.UTC().Format(time.RFC3339), info.Validity.NotAfter.UTC().Format(time.RFC3339))
	}
	if !holderMatches(info.Holder, holders) {
		return bad("its holder is not the client's certificate")
	}
	issuer, ok := v2FormIssuer(info.Issuer)
	if !ok {
		return bad("no issuer name")
	}
	fqans, _, _, err := parseAC(der)
	if err != nil || len(fqans) == 0 {
		return bad("no FQANs")
	}
	vo := voOf(fqans[0])
	for _, f := range fqans {
		if voOf(f) != vo {
			return bad("FQAN %s is not of VO %s", f, vo)
		}
	}
	alg := signatureAlgorithm(ac.Algorithm.Algorithm)
	if alg == x509.UnknownSignatureAlgorithm {
		return bad("unsupported signature algorithm %v", ac.Algorithm.Algorithm)
	}
	checkSig := func(c *x509.Certificate) bool {
		return c.CheckSignature(alg, ac.Info.FullBytes, ac.Signature.RightAlign()) == nil
	}
	// Directly trusted server certificates, for this VO or any.
	for _, c := range append(append([]*x509.Certificate(nil), v.direct[vo]...), v.any...) {
		if bytes.Equal(c.RawSubject, issuer) && !now.Before(c.NotBefore) && !now.After(c.NotAfter) && checkSig(c) {
			return vo, fqans, nil
		}
	}
	// .lsc: the server certificate travels in the AC and must verify
	// against the CAs and match one of the VO's DN chains.
	chains := v.lsc[vo]
	if len(chains) == 0 {
		return bad("no VOMS server of VO %s is trusted here", vo)
	}
	acCerts := certsOf(info.Extensions)
	inter := x509.NewCertPool()
	for _, c := range acCerts {
		inter.AddCert(c)
	}
	for _, c := range acCerts {
		if !bytes.Equal(c.RawSubject, issuer) {
			continue
		}
		verified, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			continue
		}
		for _, vc := range verified {
			for _, want := range chains {
				if lscMatches(want, vc) && checkSig(c) {
					return vo, fqans, nil
				}
			}
		}
	}
	return bad("not signed by a VOMS server the vomsdir trusts for VO %s", vo)
}

// lscMatches compares an .lsc DN chain with a verified chain (leaf first):
// each line names one certificate's subject, the last line may name the
// issuer of the last certificate listed.
func lscMatches(want []string, chain []*x509.Certificate) bool {
	for i, dn := range want {
		switch {
		case i < len(chain) && DN(chain[i]) == dn:
		case i > 0 && i-1 < len(chain) && issuerDN(chain[i-1]) == dn && i == len(want)-1:
		default:
			return false
		}
	}
	return true
}

// issuerDN is the issuer of c in OpenSSL slash form.
func issuerDN(c *x509.Certificate) string { return RawDN(c.RawIssuer) }

// holderMatches reports whether the AC holder (baseCertificateID) names a
// certificate of the client chain: its serial, and its issuer name (RFC
// 5755) or its subject (what voms-proxy-fake writes).
func holderMatches(h asn1.RawValue, chain []*x509.Certificate) bool {
	rest := h.Bytes
	for len(rest) > 0 {
		var el asn1.RawValue
		r, err := asn1.Unmarshal(rest, &el)
		if err != nil {
			return false
		}
		rest = r
		if el.Class != asn1.ClassContextSpecific || el.Tag != 0 {
			continue
		}
		var names asn1.RawValue
		r2, err := asn1.Unmarshal(el.Bytes, &names)
		if err != nil {
			return false
		}
		var serial *big.Int
		if _, err := asn1.Unmarshal(r2, &serial); err != nil {
			return false
		}
		for _, dn := range directoryNames(names.Bytes) {
			for _, c := range chain {
				if c.SerialNumber.Cmp(serial) == 0 && (bytes.Equal(dn, c.RawIssuer) || bytes.Equal(dn, c.RawSubject)) {
					return true
				}
			}
		}
	}
	return false
}

// directoryNames returns the DER names of the directoryName entries of a
// GeneralNames body.
func directoryNames(gn []byte) [][]byte {
	var out [][]byte
	for len(gn) > 0 {
		var n asn1.RawValue
		r, err := asn1.Unmarshal(gn, &n)
		if err != nil {
			return out
		}
		gn = r
		if n.Class == asn1.ClassContextSpecific && n.Tag == 4 {
			out = append(out, n.Bytes)
		}
	}
	return out
}

// v2FormIssuer returns the DER issuer name of an AttCertIssuer v2Form.
func v2FormIssuer(iss asn1.RawValue) ([]byte, bool) {
	if iss.Class != asn1.ClassContextSpecific || iss.Tag != 0 {
		return nil, false
	}
	var names asn1.RawValue
	if _, err := asn1.Unmarshal(iss.Bytes, &names); err != nil {
		return nil, false
	}
	dns := directoryNames(names.Bytes)
	if len(dns) != 1 {
		return nil, false
	}
	return dns[0], true
}

// certsOf returns the certificates of the VOMS certs AC extension.
func certsOf(exts []pkix.Extension) []*x509.Certificate {
	var out []*x509.Certificate
	for _, e := range exts {
		if !e.Id.Equal(oidVOMSCerts) {
			continue
		}
		var outer asn1.RawValue
		if _, err := asn1.Unmarshal(e.Value, &outer); err != nil {
			return nil
		}
		body := outer.Bytes
		// Some writers nest the list once more.
		var first asn1.RawValue
		if _, err := asn1.Unmarshal(body, &first); err == nil && first.Tag == asn1.TagSequence {
			if _, err := x509.ParseCertificate(first.FullBytes); err != nil {
				body = first.Bytes
			}
		}
		for len(body) > 0 {
			var c asn1.RawValue
			r, err := asn1.Unmarshal(body, &c)
			if err != nil {
				break
			}
			body = r
			if cert, err := x509.ParseCertificate(c.FullBytes); err == nil {
				out = append(out, cert)
			}
		}
	}
	return out
}

var sigAlgs = []struct {
	oid asn1.ObjectIdentifier
	alg x509.SignatureAlgorithm
}{
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}, x509.SHA1WithRSA},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, x509.SHA256WithRSA},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}, x509.SHA384WithRSA},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}, x509.SHA512WithRSA},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, x509.ECDSAWithSHA256},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, x509.ECDSAWithSHA384},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, x509.ECDSAWithSHA512},
}

func signatureAlgorithm(oid asn1.ObjectIdentifier) x509.SignatureAlgorithm {
	for _, s := range sigAlgs {
		if s.oid.Equal(oid) {
			return s.alg
		}
	}
	return x509.UnknownSignatureAlgorithm
}

// rawACs returns the DER attribute certificates in c's VOMS extension.
func rawACs(c *x509.Certificate) [][]byte {
	var out [][]byte
	for _, e := range c.Extensions {
		if !e.Id.Equal(OIDVOMSExtension) {
			continue
		}
		var outer []asn1.RawValue
		if _, err := asn1.Unmarshal(e.Value, &outer); err != nil {
			return out
		}
		for _, ol := range outer {
			var acs []asn1.RawValue
			if _, err := asn1.Unmarshal(ol.FullBytes, &acs); err != nil {
				continue
			}
			for _, ac := range acs {
				out = append(out, ac.FullBytes)
			}
		}
	}
	return out
}
