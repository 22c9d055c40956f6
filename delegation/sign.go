package delegation

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/dynamo-go/dynamo/internal/gridauth"
)

// oidPolicyInheritAll is RFC 3820's id-ppl-inheritAll: the proxy carries
// all the rights of its issuer.
var oidPolicyInheritAll = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 21, 1}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// SignRequest is the user's side of a delegation: it makes an RFC 3820
// proxy (inheritAll) for the public key of csrPEM, signed by signer (the
// user's certificate or proxy with its chain), valid for lifetime but
// never beyond the signer's own validity. It returns the new proxy
// followed by the signer's chain, in PEM: the body of the upload.
func SignRequest(csrPEM []byte, signer tls.Certificate, lifetime time.Duration, now time.Time) ([]byte, *x509.Certificate, error) {
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, nil, errors.New("delegation: the server's answer is not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("delegation: certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("delegation: certificate request: %w", err)
	}
	if len(signer.Certificate) == 0 {
		return nil, nil, errors.New("delegation: no signing certificate")
	}
	issuer, err := x509.ParseCertificate(signer.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("delegation: signing certificate: %w", err)
	}
	key, ok := signer.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("delegation: the signing key cannot sign")
	}
	if lifetime <= 0 {
		return nil, nil, fmt.Errorf("delegation: lifetime %v must be positive", lifetime)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	subject, err := proxySubject(issuer.RawSubject, serial.String())
	if err != nil {
		return nil, nil, err
	}
	info, err := asn1.Marshal(struct {
		Policy struct{ Language asn1.ObjectIdentifier }
	}{Policy: struct{ Language asn1.ObjectIdentifier }{oidPolicyInheritAll}})
	if err != nil {
		return nil, nil, err
	}
	notBefore := now.Add(-5 * time.Minute)
	if notBefore.Before(issuer.NotBefore) {
		notBefore = issuer.NotBefore
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(issuer.NotAfter) {
		notAfter = issuer.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		RawSubject:      subject,
		NotBefore:       notBefore,
		NotAfter:        notAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtraExtensions: []pkix.Extension{{Id: gridauth.OIDProxyCertInfo, Critical: true, Value: info}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, csr.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("delegation: signing the proxy: %w", err)
	}
	proxy, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for _, c := range signer.Certificate {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	return out, proxy, nil
}

// proxySubject is the issuer's subject with one more RDN, CN=cn, keeping
// the issuer's encoding byte for byte (RFC 3820 3.4).
func proxySubject(issuerRaw []byte, cn string) ([]byte, error) {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(issuerRaw, &seq); err != nil || len(rest) > 0 {
		return nil, errors.New("delegation: the signing certificate's subject is malformed")
	}
	// Re-marshalling the parsed RDNs could change string types; append the
	// new RDN to the raw sequence contents instead.
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(issuerRaw, &outer); err != nil {
		return nil, err
	}
	rdn, err := asn1.Marshal(pkix.RelativeDistinguishedNameSET{{Type: oidCommonName, Value: cn}})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true,
		Bytes: append(append([]byte{}, outer.Bytes...), rdn...)})
}
