// Package pki makes a throwaway grid PKI in a directory: a CA (with an
// X509_CERT_DIR-style directory holding it as <hash>.0 and a Globus
// signing_policy), a host credential for localhost and a user credential.
// Tests and `dynamo demo` use it, and so do scripts (`go run
// ./internal/pki/cmd/mkpki DIR`); it needs nothing installed. Subjects are
// grid-style, /DC=org/DC=example/CN=<name>, as with real grid CAs, and the
// Globus signing_policy admits exactly them.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// PKI is a throwaway certificate authority with a host and a user
// credential, written as PEM files in a temp directory.
type PKI struct {
	Dir string
	// CA is the CA certificate (PEM bundle form).
	CA string
	// CertDir is an X509_CERT_DIR-style directory: the CA as <hash>.0 (when
	// openssl is available to compute the subject hash) plus testca.pem and a
	// Globus <hash>.signing_policy.
	CertDir string
	// HostCert/HostKey: CN=localhost, SAN DNS:localhost, IP:127.0.0.1.
	HostCert, HostKey string
	// UserCert/UserKey: CN=Test User, clientAuth.
	UserCert, UserKey string
	// UserCred is UserCert followed by UserKey in one file: the layout of a
	// grid proxy file, usable wherever a proxy is expected.
	UserCred string

	caCert *x509.Certificate
	caKey  crypto.Signer
	serial int64
	opts   Options
}

// Options tune Generate.
type Options struct {
	// RSA makes RSA 2048 keys instead of ECDSA P-256 ones, for grid tools
	// that sign with the credentials (grid-proxy-init, voms-proxy-fake).
	RSA bool
	// Validity is how long the certificates are valid (default 48 hours).
	Validity time.Duration
}

// GridOptions are the options for a PKI that grid tools sign with
// (scripts/mkproxies.sh): RSA keys, valid 30 days.
var GridOptions = Options{RSA: true, Validity: 30 * 24 * time.Hour}

// subject is the grid-style name /DC=org/DC=example/CN=cn.
func subject(cn string) pkix.Name {
	dc := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	return pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: dc, Value: "org"}, {Type: dc, Value: "example"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: cn}}}
}

// DNPrefix is the slash-form DN of every subject the PKI issues, before
// "/CN=<name>".
const DNPrefix = "/DC=org/DC=example"

func (p *PKI) newKey() (crypto.Signer, error) {
	if p.opts.RSA {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// User is one more user credential of the PKI (see NewUser).
type User struct {
	DN              string // OpenSSL slash form, DNPrefix+"/CN=<cn>"
	Cert, Key, Cred string // as PKI.UserCert, UserKey and UserCred
}

// NewUser issues a user certificate with CN cn (clientAuth, 48 hours)
// signed by the PKI's CA, written as <name>cert.pem, <name>key.pem and
// <name>cred.pem where name is cn without spaces, lower-cased. Only a PKI
// made by Generate in this process can issue.
func (p *PKI) NewUser(cn string) (*User, error) {
	if p.caKey == nil {
		return nil, fmt.Errorf("pki: the CA key of %s is not in this process", p.Dir)
	}
	name := strings.ToLower(strings.ReplaceAll(cn, " ", ""))
	p.serial++
	c, k, err := p.leaf(p.serial, cn, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, false)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	u := &User{DN: DNPrefix + "/CN=" + cn, Cert: filepath.Join(p.Dir, name+"cert.pem"),
		Key: filepath.Join(p.Dir, name+"key.pem"), Cred: filepath.Join(p.Dir, name+"cred.pem")}
	for f, b := range map[string][]byte{u.Cert: c, u.Key: k, u.Cred: append(append([]byte{}, c...), k...)} {
		mode := os.FileMode(0o600)
		if f == u.Cert {
			mode = 0o644
		}
		if err := os.WriteFile(f, b, mode); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	return u, nil
}

// Generate creates a PKI in dir (which must exist). Keys are ECDSA P-256:
// fast to generate, and Apache, XRootD and Go all accept them.
func Generate(dir string) (*PKI, error) { return GenerateWith(dir, Options{}) }

// GenerateWith is Generate with options.
func GenerateWith(dir string, o Options) (*PKI, error) {
	if o.Validity <= 0 {
		o.Validity = 48 * time.Hour
	}
	p := &PKI{opts: o,
		Dir: dir, CA: filepath.Join(dir, "ca.pem"), CertDir: filepath.Join(dir, "certificates"),
		HostCert: filepath.Join(dir, "hostcert.pem"), HostKey: filepath.Join(dir, "hostkey.pem"),
		UserCert: filepath.Join(dir, "usercert.pem"), UserKey: filepath.Join(dir, "userkey.pem"),
		UserCred: filepath.Join(dir, "usercred.pem"),
	}
	if err := p.generate(); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return p, nil
}

func (p *PKI) generate() error {
	now := time.Now().Add(-time.Hour)
	caKey, err := p.newKey()
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: subject("Test CA"), NotBefore: now, NotAfter: now.Add(p.opts.Validity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	p.caCert, _ = x509.ParseCertificate(caDER)
	p.caKey, p.serial = caKey, 3
	leaf := p.leaf
	hc, hk, err := leaf(2, "localhost", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, true)
	if err != nil {
		return err
	}
	uc, uk, err := leaf(3, "Test User", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, false)
	if err != nil {
		return err
	}
	caPEM := pemOf("CERTIFICATE", caDER)
	files := map[string][]byte{p.CA: caPEM, p.HostCert: hc, p.HostKey: hk, p.UserCert: uc, p.UserKey: uk,
		p.UserCred: append(append([]byte{}, uc...), uk...)}
	for f, b := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(f, "key.pem") || strings.HasSuffix(f, "cred.pem") {
			mode = 0o600
		}
		if err := os.WriteFile(f, b, mode); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(p.CertDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.CertDir, "testca.pem"), caPEM, 0o644); err != nil {
		return err
	}
	// The OpenSSL subject hash is a digest of OpenSSL's canonical DN
	// encoding; asking openssl is simpler and exact. Go clients do not need
	// the link (they load every PEM file), only OpenSSL/Globus ones do.
	h, err := SubjectHash(p.caCert)
	if err != nil {
		return err
	}
	if err := os.Symlink("testca.pem", filepath.Join(p.CertDir, h+".0")); err != nil {
		return err
	}
	policy := "access_id_CA   X509   '" + DNPrefix + "/CN=Test CA'\npos_rights     globus CA:sign\ncond_subjects  globus '\"" + DNPrefix + "/*\"'\n"
	if err := os.WriteFile(filepath.Join(p.CertDir, h+".signing_policy"), []byte(policy), 0o644); err != nil {
		return err
	}
	return nil
}

// leaf issues an end-entity certificate from the CA: PEM certificate and
// PEM PKCS#8 key.
func (p *PKI) leaf(serial int64, cn string, eku []x509.ExtKeyUsage, host bool) ([]byte, []byte, error) {
	k, err := p.newKey()
	if err != nil {
		return nil, nil, err
	}
	notBefore := p.caCert.NotBefore
	tm := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: subject(cn),
		NotBefore: notBefore, NotAfter: p.caCert.NotAfter, ExtKeyUsage: eku,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	// A subject key identifier on every certificate, as OpenSSL adds one:
	// voms-proxy-fake refuses to sign with a credential that has none.
	if tm.SubjectKeyId, err = keyID(k.Public()); err != nil {
		return nil, nil, err
	}
	if host {
		tm.DNSNames = []string{"localhost"}
		tm.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tm, p.caCert, k.Public(), p.caKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", kder), nil
}

// keyID is the RFC 5280 method 1 key identifier: the SHA-1 of the
// subjectPublicKey bits.
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algo      pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
