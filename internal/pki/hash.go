package pki

import (
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
)

// SubjectHash returns OpenSSL's subject name hash of a certificate (what
// `openssl x509 -hash` prints), the name grid tools expect for a CA file in
// an X509_CERT_DIR: the first four bytes, little-endian, of the SHA-1 of
// the name's canonical encoding. OpenSSL canonicalizes every string value
// to UTF8String, lower-cased, with leading and trailing spaces removed and
// inner runs of spaces collapsed, and hashes the DER of the RDN sets
// without the outer SEQUENCE.
func SubjectHash(c *x509.Certificate) (string, error) {
	var rdns asn1.RawValue
	if _, err := asn1.Unmarshal(c.RawSubject, &rdns); err != nil {
		return "", fmt.Errorf("subject hash: %w", err)
	}
	var canon []byte
	rest := rdns.Bytes
	for len(rest) > 0 {
		var set []struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}
		var err error
		if rest, err = asn1.UnmarshalWithParams(rest, &set, "set"); err != nil {
			return "", fmt.Errorf("subject hash: %w", err)
		}
		var atvs []byte
		for _, atv := range set {
			val := atv.Value.FullBytes
			if isString(atv.Value.Tag) {
				b, err := asn1.MarshalWithParams(canonicalString(string(atv.Value.Bytes)), "utf8")
				if err != nil {
					return "", err
				}
				val = b
			}
			oid, err := asn1.Marshal(atv.Type)
			if err != nil {
				return "", err
			}
			atvs = append(atvs, der(0x30, append(oid, val...))...)
		}
		canon = append(canon, der(0x31, atvs)...)
	}
	sum := sha1.Sum(canon)
	return fmt.Sprintf("%08x", binary.LittleEndian.Uint32(sum[:4])), nil
}

func isString(tag int) bool {
	switch tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagT61String, 28 /* Universal */, 30 /* BMP */ :
		return true
	}
	return false
}

func canonicalString(s string) string {
	return strings.ToLower(strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " "))
}

// der encodes one TLV with a definite length.
func der(tag byte, content []byte) []byte {
	n := len(content)
	switch {
	case n < 0x80:
		return append([]byte{tag, byte(n)}, content...)
	case n < 0x100:
		return append([]byte{tag, 0x81, byte(n)}, content...)
	default:
		return append([]byte{tag, 0x82, byte(n >> 8), byte(n)}, content...)
	}
}
