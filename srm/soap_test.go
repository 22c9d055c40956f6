package srm

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

// A request as gfal2 sends it (INTEROP §3.3): qualified operation,
// unqualified parts, xsi:nil for absent optionals, xsi:type attributes.
const gfalLs = `<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:srm2="http://srm.lbl.gov/StorageResourceManager">
<SOAP-ENV:Body SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><srm2:srmLs><srmLsRequest>
<arrayOfSURLs><urlArray>srm://localhost/dteam</urlArray><urlArray xsi:type="xsd:anyURI">srm://localhost/x</urlArray></arrayOfSURLs>
<storageSystemInfo xsi:nil="true"/><fullDetailedList>true</fullDetailedList><numOfLevels xsi:nil="true"/><offset>5</offset>
</srmLsRequest></srm2:srmLs></SOAP-ENV:Body></SOAP-ENV:Envelope>`

func TestDecodeEnvelope(t *testing.T) {
	op, req, err := decodeEnvelope(strings.NewReader(gfalLs))
	if err != nil {
		t.Fatal(err)
	}
	if op != "srmLs" {
		t.Errorf("op = %q", op)
	}
	if got := req.Strings("arrayOfSURLs", "urlArray"); len(got) != 2 || got[1] != "srm://localhost/x" {
		t.Errorf("urls = %q", got)
	}
	if req.Has("storageSystemInfo") || req.Has("numOfLevels") {
		t.Error("xsi:nil elements must read as absent")
	}
	if n, _ := req.Int("numOfLevels", 1); n != 1 {
		t.Errorf("nil numOfLevels = %d, want the default", n)
	}
	if n, _ := req.Int("offset", 0); n != 5 {
		t.Errorf("offset = %d", n)
	}
	if b, _ := req.Bool("fullDetailedList", false); !b {
		t.Error("fullDetailedList")
	}
	// Fully qualified inner elements decode the same.
	q := strings.ReplaceAll(strings.ReplaceAll(gfalLs, "<arrayOfSURLs>", "<srm2:arrayOfSURLs>"), "</arrayOfSURLs>", "</srm2:arrayOfSURLs>")
	if _, req, err := decodeEnvelope(strings.NewReader(q)); err != nil || len(req.Strings("arrayOfSURLs", "urlArray")) != 2 {
		t.Errorf("qualified: %v", err)
	}
	// Empty request part (srmPing as gfal2 sends it).
	ping := `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><s:srmPing xmlns:s="x"/></e:Body></e:Envelope>`
	if op, req, err := decodeEnvelope(strings.NewReader(ping)); err != nil || op != "srmPing" || req == nil {
		t.Errorf("ping: %q %v", op, err)
	}
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	for name, body := range map[string]string{
		"empty":       "",
		"not xml":     "hello",
		"truncated":   gfalLs[:200],
		"no envelope": `<a><Body><srmLs/></Body></a>`,
		"empty body":  `<e:Envelope xmlns:e="x"><e:Body></e:Body></e:Envelope>`,
		"deep":        `<Envelope><Body><srmLs>` + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + `</srmLs></Body></Envelope>`,
		"two roots":   `<Envelope><Body><x/></Body></Envelope><Envelope/>`,
	} {
		if _, _, err := decodeEnvelope(strings.NewReader(body)); !errors.Is(err, ErrBadSOAP) {
			t.Errorf("%s: err = %v, want ErrBadSOAP", name, err)
		}
	}
	_, req, _ := decodeEnvelope(strings.NewReader(strings.Replace(gfalLs, "<offset>5", "<offset>five", 1)))
	if _, err := req.Int("offset", 0); err == nil || !strings.Contains(err.Error(), "offset") {
		t.Errorf("bad integer: %v", err)
	}
}

func TestEncodeResponseDoubleWrapped(t *testing.T) {
	var b bytes.Buffer
	if err := encodeResponse(&b, "srmMkdir", returnOnly{rs(SRM_DUPLICATION_ERROR, "File exists")}); err != nil {
		t.Fatal(err)
	}
	var env struct {
		Body struct {
			Outer struct {
				XMLName xml.Name
				Inner   struct {
					XMLName      xml.Name
					ReturnStatus TReturnStatus `xml:"returnStatus"`
				} `xml:"srmMkdirResponse"`
			} `xml:",any"`
		}
	}
	if err := xml.Unmarshal(b.Bytes(), &env); err != nil {
		t.Fatal(err)
	}
	o := env.Body.Outer
	if o.XMLName.Space != NSSRM || o.XMLName.Local != "srmMkdirResponse" || o.Inner.XMLName.Space != "" {
		t.Errorf("wrappers: outer %v inner %v", o.XMLName, o.Inner.XMLName)
	}
	if o.Inner.ReturnStatus.StatusCode != "SRM_DUPLICATION_ERROR" || o.Inner.ReturnStatus.Explanation != "File exists" {
		t.Errorf("status = %+v", o.Inner.ReturnStatus)
	}
}

func TestStatusCodesMatchWSDLOrder(t *testing.T) {
	// StoRM's database stores the enum index; spot-check the documented ones.
	for code, idx := range map[StatusCode]int{SRM_SUCCESS: 0, SRM_INVALID_PATH: 5, SRM_NO_FREE_SPACE: 10, SRM_TOO_MANY_RESULTS: 13,
		SRM_NOT_SUPPORTED: 16, SRM_REQUEST_QUEUED: 17, SRM_FILE_PINNED: 22, SRM_SPACE_AVAILABLE: 24, SRM_LAST_COPY: 29, SRM_CUSTOM_STATUS: 33} {
		if int(code) != idx {
			t.Errorf("%s = %d, want %d", code, int(code), idx)
		}
		if back, ok := ParseStatusCode(code.String()); !ok || back != code {
			t.Errorf("round trip of %s", code)
		}
	}
}

func TestDecodeEnvelopeNesting(t *testing.T) {
	for name, body := range map[string]string{
		"mismatched end": `<e:Envelope xmlns:e="x"><e:Body><a><b></a></b></e:Body></e:Envelope>`,
		"unclosed":       `<e:Envelope xmlns:e="x"><e:Body><a>`,
		"prefix swap":    `<e:Envelope xmlns:e="x"><e:Body></f:Body></e:Envelope>`,
	} {
		if _, _, err := decodeEnvelope(strings.NewReader(body)); !errors.Is(err, ErrBadSOAP) {
			t.Errorf("%s: err = %v, want ErrBadSOAP", name, err)
		}
	}
}
