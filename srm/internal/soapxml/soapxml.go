// Package soapxml decodes SOAP 1.1 rpc/encoded messages tolerantly into a
// small element tree, for the SRM server and client: element names compare
// by local name (qualified or not), xsi:type is ignored, and xsi:nil
// elements read as absent.
package soapxml

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrMalformed is wrapped by every decoding failure.
var ErrMalformed = errors.New("malformed SOAP message")

// NSEnvelope is the SOAP 1.1 envelope namespace, the only one accepted: a
// SOAP 1.2 or namespace-less envelope is refused, not guessed at.
const NSEnvelope = "http://schemas.xmlsoap.org/soap/envelope/"

// nsOf resolves the prefix of name with the declarations of the given
// elements' attributes, innermost first.
func nsOf(name xml.Name, scopes ...[]xml.Attr) string {
	for _, attrs := range scopes {
		for _, a := range attrs {
			if (name.Space == "" && a.Name.Space == "" && a.Name.Local == "xmlns") ||
				(name.Space != "" && a.Name.Space == "xmlns" && a.Name.Local == name.Space) {
				return a.Value
			}
		}
	}
	return ""
}

// Decoding limits: a request body is already bounded in bytes; these bound
// the tree built from it.
const (
	maxDepth = 32
)

// Node is an element of a decoded SOAP body. RPC/encoded messages are
// decoded tolerantly: element names compare by local name (qualified or
// not), xsi:type is ignored, and elements with xsi:nil="true" are dropped
// as if absent.
type Node struct {
	Name string
	text string
	kids []*Node
}

// Child returns the first child with the given local name, or nil.
func (n *Node) Child(name string) *Node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// All returns every child with the given local name.
func (n *Node) All(name string) []*Node {
	if n == nil {
		return nil
	}
	var out []*Node
	for _, k := range n.kids {
		if k.Name == name {
			out = append(out, k)
		}
	}
	return out
}

// Str returns the trimmed text of the named child ("" if absent).
func (n *Node) Str(name string) string {
	c := n.Child(name)
	if c == nil {
		return ""
	}
	return strings.TrimSpace(c.text)
}

// Has reports whether the named child is present (and not nil).
func (n *Node) Has(name string) bool { return n.Child(name) != nil }

// Int returns the named child as an int64, def when absent; a present
// but malformed value is an error naming the element.
func (n *Node) Int(name string, def int64) (int64, error) {
	c := n.Child(name)
	if c == nil {
		return def, nil
	}
	v, err := strconv.ParseInt(strings.TrimSpace(c.text), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: <%s> %q is not an integer", ErrMalformed, name, c.text)
	}
	return v, nil
}

// Bool returns the named child as a bool, def when absent.
func (n *Node) Bool(name string, def bool) (bool, error) {
	c := n.Child(name)
	if c == nil {
		return def, nil
	}
	switch strings.TrimSpace(c.text) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%w: <%s> %q is not a boolean", ErrMalformed, name, c.text)
}

// Strings returns the texts of the repeated item elements inside the named
// wrapper (ArrayOfAnyURI{urlArray*}, ArrayOfString{stringArray*}, ...).
func (n *Node) Strings(wrapper, item string) []string {
	var out []string
	for _, k := range n.Child(wrapper).All(item) {
		out = append(out, strings.TrimSpace(k.text))
	}
	return out
}

// Decode parses a SOAP envelope and returns the operation element
// (the first child of Body) with its request part (the operation element's
// first child, "srmLsRequest"); the part may be nil for operations sent
// with an empty part.
func Decode(r io.Reader) (op string, part *Node, err error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	var stack []*Node
	var names []xml.Name // open elements, to check nesting (RawToken does not)
	var root *Node
	var rootAttrs []xml.Attr
	for {
		// RawToken skips namespace resolution, which this decoder never
		// needs (names compare by local name) and which costs a quarter
		// of the decoding time; element nesting is checked below instead.
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return "", nil, fmt.Errorf("%w: nesting deeper than %d", ErrMalformed, maxDepth)
			}
			n := &Node{Name: t.Name.Local}
			names = append(names, t.Name)
			for _, a := range t.Attr {
				// Prefixes are not resolved: any "nil" attribute counts
				// (only XML Schema instance defines one).
				if a.Name.Local == "nil" && strings.TrimSpace(a.Value) == "true" {
					n.Name = "" // nil element: kept only to balance the stack
				}
			}
			// The namespace is checked where it decides what the message
			// is: the Envelope and its direct children (Header, Body).
			switch len(stack) {
			case 0:
				if ns := nsOf(t.Name, t.Attr); ns != NSEnvelope {
					return "", nil, fmt.Errorf("%w: the Envelope is not in the SOAP 1.1 namespace %s", ErrMalformed, NSEnvelope)
				}
				rootAttrs = t.Attr
			case 1:
				if ns := nsOf(t.Name, t.Attr, rootAttrs); ns != NSEnvelope {
					return "", nil, fmt.Errorf("%w: <%s> is not in the SOAP 1.1 namespace", ErrMalformed, t.Name.Local)
				}
			}
			if len(stack) == 0 {
				if root != nil {
					return "", nil, fmt.Errorf("%w: more than one root element", ErrMalformed)
				}
				root = n
			} else if n.Name != "" && stack[len(stack)-1].Name != "" {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(names) == 0 || names[len(names)-1] != t.Name {
				return "", nil, fmt.Errorf("%w: unexpected end element </%s>", ErrMalformed, t.Name.Local)
			}
			names = names[:len(names)-1]
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.text += string(t)
			}
		}
	}
	if len(names) > 0 {
		return "", nil, fmt.Errorf("%w: unexpected end of document inside <%s>", ErrMalformed, names[len(names)-1].Local)
	}
	if root == nil || root.Name != "Envelope" {
		return "", nil, fmt.Errorf("%w: no SOAP Envelope", ErrMalformed)
	}
	body := root.Child("Body")
	if body == nil || len(body.kids) == 0 {
		return "", nil, fmt.Errorf("%w: empty SOAP Body", ErrMalformed)
	}
	opn := body.kids[0]
	if len(opn.kids) > 0 {
		part = opn.kids[0]
	} else {
		part = &Node{Name: opn.Name + "Request"}
	}
	return opn.Name, part, nil
}
