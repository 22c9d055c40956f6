package srm

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// XML namespaces of SOAP 1.1 and SRM v2.2.
const (
	nsSOAPEnv = "http://schemas.xmlsoap.org/soap/envelope/"
	nsXSI     = "http://www.w3.org/2001/XMLSchema-instance"
	NSSRM     = "http://srm.lbl.gov/StorageResourceManager"
)

// Decoding limits: a request body is already bounded in bytes; these bound
// the tree built from it.
const (
	maxDepth = 32
)

// ErrBadSOAP is wrapped by every decoding failure.
var ErrBadSOAP = errors.New("malformed SOAP request")

// node is an element of a decoded SOAP body. RPC/encoded messages are
// decoded tolerantly: element names compare by local name (qualified or
// not), xsi:type is ignored, and elements with xsi:nil="true" are dropped
// as if absent.
type node struct {
	name string
	text string
	kids []*node
}

// child returns the first child with the given local name, or nil.
func (n *node) child(name string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// all returns every child with the given local name.
func (n *node) all(name string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.name == name {
			out = append(out, k)
		}
	}
	return out
}

// str returns the trimmed text of the named child ("" if absent).
func (n *node) str(name string) string {
	c := n.child(name)
	if c == nil {
		return ""
	}
	return strings.TrimSpace(c.text)
}

// has reports whether the named child is present (and not nil).
func (n *node) has(name string) bool { return n.child(name) != nil }

// integer returns the named child as an int64, def when absent; a present
// but malformed value is an error naming the element.
func (n *node) integer(name string, def int64) (int64, error) {
	c := n.child(name)
	if c == nil {
		return def, nil
	}
	v, err := strconv.ParseInt(strings.TrimSpace(c.text), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: <%s> %q is not an integer", ErrBadSOAP, name, c.text)
	}
	return v, nil
}

// boolean returns the named child as a bool, def when absent.
func (n *node) boolean(name string, def bool) (bool, error) {
	c := n.child(name)
	if c == nil {
		return def, nil
	}
	switch strings.TrimSpace(c.text) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%w: <%s> %q is not a boolean", ErrBadSOAP, name, c.text)
}

// strings returns the texts of the repeated item elements inside the named
// wrapper (ArrayOfAnyURI{urlArray*}, ArrayOfString{stringArray*}, ...).
func (n *node) strings(wrapper, item string) []string {
	var out []string
	for _, k := range n.child(wrapper).all(item) {
		out = append(out, strings.TrimSpace(k.text))
	}
	return out
}

// decodeEnvelope parses a SOAP envelope and returns the operation element
// (the first child of Body) with its request part (the operation element's
// first child, "srmLsRequest"); the part may be nil for operations sent
// with an empty part.
func decodeEnvelope(r io.Reader) (op string, part *node, err error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("%w: %v", ErrBadSOAP, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return "", nil, fmt.Errorf("%w: nesting deeper than %d", ErrBadSOAP, maxDepth)
			}
			n := &node{name: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Local == "nil" && (a.Name.Space == nsXSI || a.Name.Space == "xsi") && strings.TrimSpace(a.Value) == "true" {
					n.name = "" // nil element: kept only to balance the stack
				}
			}
			if len(stack) == 0 {
				if root != nil {
					return "", nil, fmt.Errorf("%w: more than one root element", ErrBadSOAP)
				}
				root = n
			} else if n.name != "" && stack[len(stack)-1].name != "" {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.text += string(t)
			}
		}
	}
	if root == nil || root.name != "Envelope" {
		return "", nil, fmt.Errorf("%w: no SOAP Envelope", ErrBadSOAP)
	}
	body := root.child("Body")
	if body == nil || len(body.kids) == 0 {
		return "", nil, fmt.Errorf("%w: empty SOAP Body", ErrBadSOAP)
	}
	opn := body.kids[0]
	if len(opn.kids) > 0 {
		part = opn.kids[0]
	} else {
		part = &node{name: opn.name + "Request"}
	}
	return opn.name, part, nil
}

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
