package soapxml

import (
	"strings"
	"testing"
)

// FuzzDecode: no input panics or hangs the decoder, and whatever it accepts
// is a SOAP 1.1 envelope with an operation.
func FuzzDecode(f *testing.F) {
	f.Add(`<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><s:srmLs xmlns:s="http://srm.lbl.gov/StorageResourceManager"><srmLsRequest><arrayOfSURLs><urlArray>srm://h/x</urlArray></arrayOfSURLs></srmLsRequest></s:srmLs></e:Body></e:Envelope>`)
	f.Add(`<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><srmPing/></Body></Envelope>`)
	f.Fuzz(func(t *testing.T, in string) {
		op, part, err := Decode(strings.NewReader(in))
		if err != nil {
			return
		}
		if op == "" || part == nil {
			t.Fatalf("accepted %q without an operation", in)
		}
		if !strings.Contains(in, NSEnvelope) {
			t.Fatalf("accepted %q outside the SOAP 1.1 namespace", in)
		}
	})
}
