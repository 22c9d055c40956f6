package srm

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// WebDAV XML (RFC 4918 §14): PROPFIND and PROPPATCH request bodies in,
// multistatus out. Dead property values are kept as self-contained XML
// (every element re-encoded with its own namespace declaration), so a value
// means the same wherever it is later written.

const davNS = "DAV:"

// errBadXML: the body is not well-formed or not the expected document.
var errBadXML = errors.New("request body is not a valid WebDAV XML document")

// davProp is a property name with, for PROPPATCH set and dead properties,
// its value.
type davProp struct {
	Name  xml.Name
	Value []byte // inner XML, self-contained
}

// propfindKind is what a PROPFIND asks for.
type propfindKind int

const (
	findAllProp propfindKind = iota
	findPropName
	findProp
)

type propfindReq struct {
	kind  propfindKind
	names []xml.Name // findProp: the properties asked for
}

// xmlDecoder refuses what encoding/xml lets through but XML namespaces
// forbid: an empty prefixed namespace declaration (xmlns:p="").
type xmlDecoder struct{ *xml.Decoder }

func newXMLDecoder(r io.Reader) xmlDecoder {
	d := xml.NewDecoder(io.LimitReader(r, 1<<20))
	d.Strict = true
	return xmlDecoder{d}
}

func (d xmlDecoder) token() (xml.Token, error) {
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	if se, ok := t.(xml.StartElement); ok {
		for _, a := range se.Attr {
			if a.Name.Space == "xmlns" && a.Value == "" {
				return nil, fmt.Errorf("%w: empty namespace for prefix %s", errBadXML, a.Name.Local)
			}
		}
	}
	return t, nil
}

// root returns the document element, skipping the prolog; io.EOF for an
// empty body.
func (d xmlDecoder) root() (xml.StartElement, error) {
	for {
		t, err := d.token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return xml.StartElement{}, errBadXML
			}
		}
	}
}

// children calls f for each child element of the current element, with
// the decoder positioned after the child's start tag; f must consume the
// child up to its end tag.
func (d xmlDecoder) children(f func(xml.StartElement) error) error {
	for {
		t, err := d.token()
		if err != nil {
			return fmt.Errorf("%w: %v", errBadXML, err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			if err := f(t); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: unexpected text", errBadXML)
			}
		}
	}
}

// skip consumes the rest of the current element.
func (d xmlDecoder) skip() error {
	depth := 1
	for depth > 0 {
		t, err := d.token()
		if err != nil {
			return fmt.Errorf("%w: %v", errBadXML, err)
		}
		switch t.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// inner re-encodes the rest of the current element (its content) as
// self-contained XML.
func (d xmlDecoder) inner() ([]byte, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	depth := 1
	for {
		t, err := d.token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadXML, err)
		}
		switch tt := t.(type) {
		case xml.StartElement:
			depth++
			// Namespace declarations are re-derived by the encoder.
			var attrs []xml.Attr
			for _, a := range tt.Attr {
				if a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns") {
					attrs = append(attrs, a)
				}
			}
			tt.Attr = attrs
			t = tt
		case xml.EndElement:
			depth--
			if depth == 0 {
				if err := enc.Flush(); err != nil {
					return nil, err
				}
				return buf.Bytes(), nil
			}
		case xml.Comment, xml.ProcInst, xml.Directive:
			continue
		}
		if err := enc.EncodeToken(xml.CopyToken(t)); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadXML, err)
		}
	}
}

// parsePropfind reads a PROPFIND body; an empty body is allprop.
func parsePropfind(r io.Reader) (propfindReq, error) {
	d := newXMLDecoder(r)
	root, err := d.root()
	if err == io.EOF {
		return propfindReq{kind: findAllProp}, nil
	}
	if err != nil || root.Name != (xml.Name{Space: davNS, Local: "propfind"}) {
		return propfindReq{}, errBadXML
	}
	req := propfindReq{kind: -1}
	err = d.children(func(c xml.StartElement) error {
		if c.Name.Space != davNS {
			return d.skip() // extensions are ignored
		}
		switch c.Name.Local {
		case "allprop":
			req.kind = findAllProp
			return d.skip()
		case "propname":
			req.kind = findPropName
			return d.skip()
		case "include":
			return d.skip()
		case "prop":
			req.kind = findProp
			return d.children(func(p xml.StartElement) error {
				req.names = append(req.names, p.Name)
				return d.skip()
			})
		}
		return d.skip()
	})
	if err != nil || req.kind < 0 {
		return propfindReq{}, errBadXML
	}
	return req, nil
}

// patchOp is one set or remove of a PROPPATCH, in document order.
type patchOp struct {
	remove bool
	prop   davProp
}

// parseProppatch reads a PROPPATCH body.
func parseProppatch(r io.Reader) ([]patchOp, error) {
	d := newXMLDecoder(r)
	root, err := d.root()
	if err != nil || root.Name != (xml.Name{Space: davNS, Local: "propertyupdate"}) {
		return nil, errBadXML
	}
	var ops []patchOp
	err = d.children(func(c xml.StartElement) error {
		if c.Name.Space != davNS || (c.Name.Local != "set" && c.Name.Local != "remove") {
			return d.skip()
		}
		remove := c.Name.Local == "remove"
		return d.children(func(pe xml.StartElement) error {
			if pe.Name != (xml.Name{Space: davNS, Local: "prop"}) {
				return d.skip()
			}
			return d.children(func(p xml.StartElement) error {
				op := patchOp{remove: remove, prop: davProp{Name: p.Name}}
				if remove {
					ops = append(ops, op)
					return d.skip()
				}
				v, err := d.inner()
				op.prop.Value = v
				ops = append(ops, op)
				return err
			})
		})
	})
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, errBadXML
	}
	return ops, nil
}

// multistatus builds a 207 body.
type multistatus struct {
	buf bytes.Buffer
	ns  map[string]string // namespace -> prefix
}

func newMultistatus() *multistatus {
	m := &multistatus{ns: map[string]string{davNS: "D"}}
	m.buf.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<D:multistatus xmlns:D="DAV:">`)
	return m
}

func davXMLEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// propstat is one status group of a response.
type propstat struct {
	status int
	props  []davProp // Value nil: name only
}

// response adds one resource: href (already escaped) and its propstats.
func (m *multistatus) response(href string, stats ...propstat) {
	m.buf.WriteString("<D:response><D:href>" + davXMLEscape(href) + "</D:href>")
	for _, ps := range stats {
		if len(ps.props) == 0 {
			continue
		}
		m.buf.WriteString("<D:propstat><D:prop>")
		for _, p := range ps.props {
			m.prop(p)
		}
		fmt.Fprintf(&m.buf, "</D:prop><D:status>HTTP/1.1 %d %s</D:status></D:propstat>", ps.status, statusText(ps.status))
	}
	m.buf.WriteString("</D:response>")
}

func (m *multistatus) prop(p davProp) {
	var open string
	switch {
	case p.Name.Space == davNS:
		open = "D:" + p.Name.Local
		m.buf.WriteString("<" + open)
	case p.Name.Space == "":
		open = p.Name.Local
		m.buf.WriteString("<" + open + ` xmlns=""`)
	default:
		open = "p:" + p.Name.Local
		m.buf.WriteString("<" + open + ` xmlns:p="` + davXMLEscape(p.Name.Space) + `"`)
	}
	if len(p.Value) == 0 {
		m.buf.WriteString("/>")
		return
	}
	m.buf.WriteString(">")
	m.buf.Write(p.Value)
	m.buf.WriteString("</" + open + ">")
}

func (m *multistatus) bytes() []byte {
	m.buf.WriteString("</D:multistatus>\n")
	return m.buf.Bytes()
}

func statusText(code int) string {
	switch code {
	case 207:
		return "Multi-Status"
	case 424:
		return "Failed Dependency"
	case 507:
		return "Insufficient Storage"
	}
	return http.StatusText(code)
}
