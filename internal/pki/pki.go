// Package pki makes a throwaway grid PKI in a directory: a CA (with an
// X509_CERT_DIR-style directory holding it as <hash>.0 and a Globus
// signing_policy), a host credential for localhost and a user credential.
// Tests and `dynamo demo` use it; it needs nothing installed (openssl, when
// present, only supplies the exact subject hash for the CA file name).
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
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
	caKey  *ecdsa.PrivateKey
	serial int64
}

// User is one more user credential of the PKI (see NewUser).
type User struct {
	DN              string // OpenSSL slash form, "/O=dynamo-go test/CN=<cn>"
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
	u := &User{DN: "/O=dynamo-go test/CN=" + cn, Cert: filepath.Join(p.Dir, name+"cert.pem"),
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
func Generate(dir string) (*PKI, error) {
	p := &PKI{
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
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caName := pkix.Name{Organization: []string{"dynamo-go test"}, CommonName: "Test CA"}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: caName, NotBefore: now, NotAfter: now.Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
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
	policy := "access_id_CA   X509   '/O=dynamo-go test/CN=Test CA'\npos_rights     globus CA:sign\ncond_subjects  globus '\"/O=dynamo-go test/*\"'\n"
	if err := os.WriteFile(filepath.Join(p.CertDir, h+".signing_policy"), []byte(policy), 0o644); err != nil {
		return err
	}
	return nil
}

// leaf issues an end-entity certificate from the CA: PEM certificate and
// PEM PKCS#8 key.
func (p *PKI) leaf(serial int64, cn string, eku []x509.ExtKeyUsage, host bool) ([]byte, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	notBefore := p.caCert.NotBefore
	tm := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{Organization: []string{"dynamo-go test"}, CommonName: cn},
		NotBefore: notBefore, NotAfter: p.caCert.NotAfter, ExtKeyUsage: eku,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if host {
		tm.DNSNames = []string{"localhost"}
		tm.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tm, p.caCert, &k.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", kder), nil
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
