package gridauth

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"
)

// OIDs of the VOMS AC extension (in the proxy) and the FQAN attribute (in the AC).
var (
	OIDVOMSExtension = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 8005, 100, 100, 5}
	oidVOMSAttribute = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 8005, 100, 100, 4}
)

// ErrNoVOMS is returned by VOMSFromCert for a certificate without a VOMS AC.
var ErrNoVOMS = errors.New("gridauth: no VOMS attribute certificate")

func voOf(fqan string) string {
	s := strings.TrimPrefix(fqan, "/")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}

// parseAC walks an RFC 5755 AttributeCertificate and returns the FQANs of
// its VOMS attribute and its validity period.
func parseAC(der []byte) (fqans []string, notBefore, notAfter time.Time, err error) {
	var ac struct {
		Info      asn1.RawValue
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &ac); err != nil {
		return nil, notBefore, notAfter, fmt.Errorf("gridauth: malformed VOMS AC: %w", err)
	}
	var fields []asn1.RawValue
	if _, err := asn1.Unmarshal(ac.Info.FullBytes, &fields); err != nil {
		return nil, notBefore, notAfter, fmt.Errorf("gridauth: malformed VOMS AC info: %w", err)
	}
	for _, f := range fields {
		if f.Class != asn1.ClassUniversal || f.Tag != asn1.TagSequence {
			continue
		}
		// attrCertValidityPeriod: SEQUENCE { GeneralizedTime, GeneralizedTime }
		var period struct{ NotBefore, NotAfter time.Time }
		if _, err := asn1.UnmarshalWithParams(f.FullBytes, &period, ""); err == nil && !period.NotAfter.IsZero() {
			notBefore, notAfter = period.NotBefore, period.NotAfter
			continue
		}
		// attributes: SEQUENCE OF Attribute { type OID, values SET }
		var attrs []struct {
			Type   asn1.ObjectIdentifier
			Values asn1.RawValue `asn1:"set"`
		}
		if _, err := asn1.Unmarshal(f.FullBytes, &attrs); err != nil {
			continue
		}
		for _, a := range attrs {
			if !a.Type.Equal(oidVOMSAttribute) {
				continue
			}
			fqans = append(fqans, ietfAttrOctets(a.Values.Bytes)...)
		}
	}
	return fqans, notBefore, notAfter, nil
}

// ietfAttrOctets returns the OCTET STRING values of the IetfAttrSyntax
// elements in a SET: SEQUENCE { policyAuthority [0] OPTIONAL, values SEQUENCE OF CHOICE }.
func ietfAttrOctets(set []byte) []string {
	var out []string
	for len(set) > 0 {
		var syn asn1.RawValue
		rest, err := asn1.Unmarshal(set, &syn)
		if err != nil {
			return out
		}
		set = rest
		inner := syn.Bytes
		for len(inner) > 0 {
			var el asn1.RawValue
			r, err := asn1.Unmarshal(inner, &el)
			if err != nil {
				break
			}
			inner = r
			if el.Class != asn1.ClassUniversal || el.Tag != asn1.TagSequence {
				continue
			}
			vals := el.Bytes
			for len(vals) > 0 {
				var v asn1.RawValue
				r, err := asn1.Unmarshal(vals, &v)
				if err != nil {
					break
				}
				vals = r
				if v.Class == asn1.ClassUniversal && v.Tag == asn1.TagOctetString {
					out = append(out, string(v.Bytes))
				}
			}
		}
	}
	return out
}
