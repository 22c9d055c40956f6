package gridauth

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// shortNames are the OpenSSL short names used in slash-form DNs.
var shortNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "title",
	"2.5.4.42":                   "GN",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.2.840.113549.1.9.1":       "emailAddress",
}

func rdns(raw []byte) (pkix.RDNSequence, error) {
	var seq pkix.RDNSequence
	rest, err := asn1.Unmarshal(raw, &seq)
	if err != nil {
		return nil, fmt.Errorf("malformed distinguished name: %v", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("trailing data after distinguished name")
	}
	return seq, nil
}

// DN returns the subject of c in OpenSSL slash form, in certificate order:
// "/DC=org/DC=example/CN=Test User". Multi-valued RDNs are joined with "+".
// Unknown attribute types are printed as their dotted OID.
func DN(c *x509.Certificate) string { return RawDN(c.RawSubject) }

// RawDN formats a DER-encoded Name in OpenSSL slash form ("" if malformed).
func RawDN(raw []byte) string {
	seq, err := rdns(raw)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, rdn := range seq {
		b.WriteByte('/')
		for k, atv := range rdn {
			if k > 0 {
				b.WriteByte('+')
			}
			name, ok := shortNames[atv.Type.String()]
			if !ok {
				name = atv.Type.String()
			}
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(fmt.Sprint(atv.Value))
		}
	}
	return b.String()
}
