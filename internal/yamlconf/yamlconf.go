// Package yamlconf is the one way dynamo reads YAML configuration. A file
// is parsed once into a node tree; every section is decoded from its node
// with Decode, strictly (an unknown key is an error) and with the positions
// of the file, not of the section, in every error. Durations are Go
// durations everywhere (see the Duration rule in Decode).
//
// A component exposes its configuration as
//
//	func DecodeConfig(n *yaml.Node) (Config, error)
//
// (strict decode, defaults, validation); Load and Read turn such a function
// into a loader of a file or a stream holding that section on its own.
package yamlconf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is a configuration error at a place in a file. File is empty until
// InFile names it (a node does not know the file it came from).
type Error struct {
	File         string
	Line, Column int // 1-based; Column 0 when yaml did not say
	Msg          string
}

// Error formats as "file:line:col: msg", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		if e.Column > 0 {
			b.WriteString(strconv.Itoa(e.Column))
			b.WriteByte(':')
		}
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorAt is an error at n's position, for UnmarshalYAML methods.
func ErrorAt(n *yaml.Node, format string, args ...any) *Error {
	return errAt(n, format, args...)
}

func errAt(n *yaml.Node, format string, args ...any) *Error {
	return &Error{Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads one YAML document. Empty input gives nil (every section
// absent); a second document is an error, since it would be ignored.
func Parse(r io.Reader) (*yaml.Node, error) {
	dec := yaml.NewDecoder(r)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fromYAML(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fromYAML(err)
		}
		return nil, errAt(&extra, "a second YAML document: a configuration is one document")
	}
	return &doc, nil
}

// Load reads the file at path and decodes it with decode, naming the file
// in every error.
func Load[T any](path string, decode func(*yaml.Node) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	v, err := Read(f, decode)
	return v, InFile(path, err)
}

// Read parses r and decodes it with decode.
func Read[T any](r io.Reader, decode func(*yaml.Node) (T, error)) (T, error) {
	n, err := Parse(r)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(n)
}

// InFile names path in err: every *Error inside it gets File set, and the
// message, which wrappers (fmt.Errorf) fixed when they were made, shows
// it. An error without any *Error is prefixed with the path. nil stays nil.
func InFile(path string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	found := false
	for _, e := range positioned(err, nil) {
		if e.File != "" {
			found = true
			continue
		}
		before := e.Error()
		e.File = path
		msg = strings.Replace(msg, before, e.Error(), 1)
		found = true
	}
	if !found {
		return fmt.Errorf("%s: %w", path, err)
	}
	return &inFile{msg: msg, err: err}
}

// inFile is an error whose message was rewritten to name its file.
type inFile struct {
	msg string
	err error
}

func (e *inFile) Error() string { return e.msg }
func (e *inFile) Unwrap() error { return e.err }

// positioned lists the *Error values in err's tree.
func positioned(err error, out []*Error) []*Error {
	if e, ok := err.(*Error); ok {
		out = append(out, e)
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, x := range u.Unwrap() {
			out = positioned(x, out)
		}
	case interface{ Unwrap() error }:
		if x := u.Unwrap(); x != nil {
			out = positioned(x, out)
		}
	}
	return out
}

// Lookup returns the value of key in the top-level mapping of doc (a
// document or mapping node), nil when absent.
func Lookup(doc *yaml.Node, key string) *yaml.Node {
	m := content(doc)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// content skips the document node and follows aliases.
func content(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch n.Kind {
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		case yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return nil
}

// Absent reports whether n holds nothing: no node, an empty document or a
// null ("fileop:" with no value).
func Absent(n *yaml.Node) bool {
	c := content(n)
	return c == nil || c.Kind == 0 || (c.Kind == yaml.ScalarNode && c.Tag == "!!null")
}

// Decode decodes n into out (a pointer), over what out already holds. It
// is strict: a key that names no field of the struct it lands in is an
// error naming the key, its line and column, and the keys that exist
// there. A nil or absent n leaves out unchanged.
//
// The duration rule: a time.Duration is written as a Go duration ("90s",
// "1h30m", "0"); a negative duration, or a bare number other than 0 ("90":
// seconds or nanoseconds?), is an error.
//
// Decode may normalise scalars of n (a bare 0 duration is retagged as a
// string so that yaml accepts it).
func Decode(n *yaml.Node, out any) error {
	if Absent(n) {
		return nil
	}
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("yamlconf: Decode needs a non-nil pointer, got %T", out)
	}
	var errs []error
	check(n, v.Type().Elem(), "", &errs, 0)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := n.Decode(out); err != nil {
		return fromYAML(err)
	}
	return nil
}

var (
	durationType  = reflect.TypeOf(time.Duration(0))
	nodeType      = reflect.TypeOf(yaml.Node{})
	unmarshalerT  = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshal = reflect.TypeOf((*interface{ UnmarshalText([]byte) error })(nil)).Elem()
)

// maxDepth bounds recursion through aliases that refer to themselves.
const maxDepth = 100

// check walks n alongside t, reporting unknown keys and bad durations.
func check(n *yaml.Node, t reflect.Type, path string, errs *[]error, depth int) {
	if n == nil || depth > maxDepth {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			check(c, t, path, errs, depth+1)
		}
		return
	case yaml.AliasNode:
		check(n.Alias, t, path, errs, depth+1)
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// Types that decode themselves, raw nodes and interfaces take anything.
	if t == nodeType || t.Kind() == reflect.Interface ||
		reflect.PointerTo(t).Implements(unmarshalerT) || reflect.PointerTo(t).Implements(textUnmarshal) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	switch {
	case t == durationType:
		checkDuration(n, path, errs)
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		checkStruct(n, t, path, errs, depth)
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Tag == "!!merge" {
				checkMerge(n.Content[i+1], t, path, errs, depth)
				continue
			}
			check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), errs, depth+1)
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs, depth+1)
		}
	}
	// Any other mismatch (a list where a number belongs) is yaml's to
	// report, with its line, when the node is decoded.
}

func checkMerge(v *yaml.Node, t reflect.Type, path string, errs *[]error, depth int) {
	v = content(v)
	if v != nil && v.Kind == yaml.SequenceNode {
		for _, c := range v.Content {
			check(c, t, path, errs, depth+1)
		}
		return
	}
	check(v, t, path, errs, depth+1)
}

func checkStruct(n *yaml.Node, t reflect.Type, path string, errs *[]error, depth int) {
	fields, inlineMap := structFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			checkMerge(v, t, path, errs, depth)
			continue
		}
		if ft, ok := fields[k.Value]; ok {
			check(v, ft, join(path, k.Value), errs, depth+1)
			continue
		}
		if inlineMap != nil {
			check(v, inlineMap.Elem(), join(path, k.Value), errs, depth+1)
			continue
		}
		names := make([]string, 0, len(fields))
		for name := range fields {
			names = append(names, name)
		}
		sort.Strings(names)
		*errs = append(*errs, errAt(k, "%s: unknown key (known here: %s)", join(path, k.Value), strings.Join(names, ", ")))
	}
}

// structFields lists the keys yaml.v3 maps onto t's fields, inline
// structs included, and the inline map that takes every other key.
func structFields(t reflect.Type) (map[string]reflect.Type, reflect.Type) {
	fields := map[string]reflect.Type{}
	var inlineMap reflect.Type
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.PkgPath != "" && !f.Anonymous {
				continue // unexported
			}
			tag := f.Tag.Get("yaml")
			if tag == "" && !strings.Contains(string(f.Tag), ":") {
				tag = string(f.Tag)
			}
			if tag == "-" {
				continue
			}
			name, flags, _ := strings.Cut(tag, ",")
			if strings.Contains(","+flags+",", ",inline,") {
				ft := f.Type
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				switch ft.Kind() {
				case reflect.Struct:
					walk(ft)
				case reflect.Map:
					inlineMap = ft
				}
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = f.Type
		}
	}
	walk(t)
	return fields, inlineMap
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkDuration applies the duration rule to a scalar; yaml reports
// anything else.
func checkDuration(n *yaml.Node, path string, errs *[]error) {
	if n.Kind != yaml.ScalarNode {
		return
	}
	d, err := ParseDuration(n.Value)
	if err != nil {
		*errs = append(*errs, errAt(n, "%s: %v", path, err))
		return
	}
	if d == 0 && n.Tag == "!!int" {
		n.Tag = "!!str" // yaml.v3 refuses integers for durations; 0 is unambiguous
	}
}

// ParseDuration is the duration rule of every configuration: a Go
// duration, not negative. A bare number is refused unless it is 0, since
// "90" could mean seconds or nanoseconds.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Errorf("%q needs a unit: a duration such as %ss or %sm", s, s, s)
		}
		return 0, fmt.Errorf("%q is not a duration such as 90s, 30m or 1h30m", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// yamlLine matches the position yaml.v3 puts in front of its messages.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// fromYAML turns yaml.v3's errors into *Error values with their line.
func fromYAML(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]error, 0, len(te.Errors))
		for _, s := range te.Errors {
			out = append(out, lineError(s))
		}
		return errors.Join(out...)
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return lineError(err.Error())
}

func lineError(s string) *Error {
	if m := yamlLine.FindStringSubmatch(s); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: m[2]}
	}
	return &Error{Msg: strings.TrimPrefix(s, "yaml: ")}
}
