package srm

import (
	"bytes"
	"encoding/xml"
	"io"

	"github.com/dynamo-go/dynamo/srm/internal/soapxml"
)

// node is a decoded SOAP element.
type node = soapxml.Node

// ErrBadSOAP is wrapped by every decoding failure.
var ErrBadSOAP = soapxml.ErrMalformed

// decodeEnvelope returns the operation name and its request part.
func decodeEnvelope(r io.Reader) (string, *node, error) { return soapxml.Decode(r) }

// XML namespaces of SOAP 1.1 and SRM v2.2.
const (
	nsSOAPEnv = "http://schemas.xmlsoap.org/soap/envelope/"
	NSSRM     = "http://srm.lbl.gov/StorageResourceManager"
)

var (
	envHead = []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:srm="http://srm.lbl.gov/StorageResourceManager">` +
		`<SOAP-ENV:Body SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">`)
	envTail = []byte(`</SOAP-ENV:Body></SOAP-ENV:Envelope>`)
)

// encodeResponse writes the RPC response for op: the WSDL's double wrapper
// <srm:opResponse><opResponse>…</opResponse></srm:opResponse>, with the
// inner elements unqualified. v is marshalled as the inner part.
func encodeResponse(w *bytes.Buffer, op string, v any) error {
	w.Write(envHead)
	w.WriteString("<srm:" + op + "Response>")
	enc := xml.NewEncoder(w)
	if err := enc.EncodeElement(v, xml.StartElement{Name: xml.Name{Local: op + "Response"}}); err != nil {
		return err
	}
	if err := enc.Flush(); err != nil {
		return err
	}
	w.WriteString("</srm:" + op + "Response>")
	w.Write(envTail)
	return nil
}

// encodeFault writes a SOAP 1.1 fault.
func encodeFault(w *bytes.Buffer, code, msg string) {
	w.Write(envHead)
	w.WriteString("<SOAP-ENV:Fault><faultcode>SOAP-ENV:" + code + "</faultcode><faultstring>")
	_ = xml.EscapeText(w, []byte(msg))
	w.WriteString("</faultstring></SOAP-ENV:Fault>")
	w.Write(envTail)
}
