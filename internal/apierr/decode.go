package apierr

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// DefaultBodyLimit bounds a request body where the server set no limit of
// its own (SetBodyLimit): ample for every JSON body the API takes but an
// injection document.
const DefaultBodyLimit int64 = 1 << 20

const bodyLimitKey = "apierr.bodyLimit"

// SetBodyLimit bounds the request body to n bytes: reading more fails with
// an *http.MaxBytesError, which the mapper answers with 413. The REST
// server calls it for every request with the route's limit.
func SetBodyLimit(c *gin.Context, n int64) {
	c.Set(bodyLimitKey, n)
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
	}
}

// BodyLimit is the request's body limit (DefaultBodyLimit unless the
// server set one).
func BodyLimit(c *gin.Context) int64 {
	if n, ok := c.Get(bodyLimitKey); ok {
		return n.(int64)
	}
	return DefaultBodyLimit
}

func limitedBody(c *gin.Context) io.Reader {
	body := c.Request.Body
	if body == nil {
		return strings.NewReader("")
	}
	if _, set := c.Get(bodyLimitKey); !set {
		body = http.MaxBytesReader(c.Writer, body, DefaultBodyLimit)
	}
	return body
}

// DecodeJSON decodes the request body, which must be one JSON value, into
// v strictly: an empty body, an unknown field, a value of the wrong type,
// invalid JSON or anything after the value is a bad request naming what is
// wrong (a *FieldError where a field is to blame); a body over the limit
// is ErrTooLarge. Hand the error to Abort as is.
func DecodeJSON(c *gin.Context, v any) error { return Decode(limitedBody(c), v, true) }

// DecodeOptionalJSON is DecodeJSON for a route whose body may be left out
// (every field optional): an empty body leaves v as it is.
func DecodeOptionalJSON(c *gin.Context, v any) error { return Decode(limitedBody(c), v, false) }

// NoBody checks that a route that takes no body got none, or an empty
// JSON object: anything else is a bad request, so a client that thinks it
// sent options learns that they were not taken.
func NoBody(c *gin.Context) error {
	var none struct{}
	if err := Decode(limitedBody(c), &none, false); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Code == CodeUnknownField {
			fe.Msg = "unknown field (this route takes no body)"
		}
		return err
	}
	return nil
}

// Decode is DecodeJSON on a reader (a body already read, bounded by the
// caller). required says whether an empty body is an error.
func Decode(r io.Reader, v any, required bool) error {
	// Read the whole body first (it is bounded): a value that refuses
	// itself is then found again by field (blame), and a body over the
	// limit is refused whatever its first bytes say.
	b, err := io.ReadAll(r)
	if err != nil {
		return decodeError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) && !required {
			return nil
		}
		if derr := decodeError(err); !errors.Is(derr, errUnmarshaler) {
			return derr
		}
		if field := blame(b, reflect.TypeOf(v)); field != "" {
			return &FieldError{Field: field, Code: CodeWrongType, Msg: strings.TrimPrefix(err.Error(), "json: ")}
		}
		return &Error{Kind: ErrBadRequest, Code: CodeInvalidValue, Msg: "body: " + strings.TrimPrefix(err.Error(), "json: "), Err: err}
	}
	// A second value, or garbage, after the first: the client sent
	// something other than what it meant (two documents concatenated, a
	// truncated edit); refuse rather than act on half of it.
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return &Error{Kind: ErrBadRequest, Code: CodeTrailingData, Msg: "body: trailing data after the JSON value; send exactly one JSON value"}
	}
	return nil
}

func decodeError(err error) error {
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return &Error{Kind: ErrTooLarge, Code: CodeBodyTooLarge, Msg: fmt.Sprintf("body exceeds the limit of %d bytes", mbe.Limit), Err: err}
	case errors.Is(err, io.EOF):
		return &Error{Kind: ErrBadRequest, Code: CodeEmptyBody, Msg: "body: empty; this route needs a JSON body"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Kind: ErrBadRequest, Code: CodeInvalidJSON, Msg: "body: invalid JSON: unexpected end of input"}
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			field = "body"
		}
		return &FieldError{Field: field, Code: CodeWrongType, Msg: fmt.Sprintf("want %s, got JSON %s", jsonType(ute.Type), ute.Value)}
	case errors.As(err, &se):
		return &Error{Kind: ErrBadRequest, Code: CodeInvalidJSON, Msg: fmt.Sprintf("body: invalid JSON at offset %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &FieldError{Field: strings.Trim(f, `"`), Code: CodeUnknownField, Msg: "unknown field"}
	}
	// A type's own UnmarshalJSON refused its value (a time, a duration,
	// an enumeration): its message says what it wants; Decode looks for
	// the field.
	return errUnmarshaler
}

var errUnmarshaler = errors.New("a value refused by its own decoder")

// blame finds the top-level field of a struct body whose value alone
// fails to decode, for errors that encoding/json reports without a field
// (those of a type's own UnmarshalJSON). "" when it cannot tell.
func blame(body []byte, t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		for k, raw := range fields {
			// encoding/json matches keys case-insensitively.
			if strings.EqualFold(k, name) && json.Unmarshal(raw, reflect.New(f.Type).Interface()) != nil {
				return k
			}
		}
	}
	return ""
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// jsonType names the JSON a Go type decodes from, for people writing the
// body (not "int64" or "[]fileop.HoldReason").
func jsonType(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) || t.Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonType(t.Elem())
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return "a base64 string"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonType(t.Elem()), "a "), "an ") + "s"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a different type"
}

// ReadError is the error for a failed read of a request body a handler
// reads itself: ErrTooLarge over the limit, a bad request otherwise.
func ReadError(err error) error { return decodeError(err) }

// DecodeBody is DecodeJSON (required) or DecodeOptionalJSON for a route
// that also takes HTML forms (samweb clients post forms): a form body is
// decoded into v's `form`-tagged fields (string, []string, integer,
// boolean) with the same rules: an unknown key or a value that does not
// convert is a bad request naming the key.
func DecodeBody(c *gin.Context, v any, required bool) error {
	ct := c.ContentType()
	if ct != "application/x-www-form-urlencoded" && ct != "multipart/form-data" {
		return Decode(limitedBody(c), v, required)
	}
	if _, set := c.Get(bodyLimitKey); !set && c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, DefaultBodyLimit)
	}
	if err := c.Request.ParseMultipartForm(BodyLimit(c)); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return &Error{Kind: ErrBadRequest, Code: CodeInvalidValue, Msg: "form body: " + err.Error()}
	}
	form := c.Request.PostForm
	if len(form) == 0 {
		if required {
			return decodeError(io.EOF)
		}
		return nil
	}
	return decodeForm(form, v)
}

func decodeForm(form map[string][]string, v any) error {
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	fields := map[string]reflect.Value{}
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("form"), ",")
		if name != "" && name != "-" {
			fields[name] = rv.Field(i)
		}
	}
	for key, vals := range form {
		f, ok := fields[key]
		if !ok {
			return &FieldError{Field: key, Code: CodeUnknownField, Msg: "unknown field"}
		}
		if f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String {
			f.Set(reflect.ValueOf(append([]string(nil), vals...)))
			continue
		}
		if len(vals) != 1 {
			return &FieldError{Field: key, Code: CodeWrongType, Msg: fmt.Sprintf("want one value, got %d", len(vals))}
		}
		val := vals[0]
		switch f.Kind() {
		case reflect.String:
			f.SetString(val)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(val, 10, f.Type().Bits())
			if err != nil {
				return &FieldError{Field: key, Code: CodeWrongType, Msg: "want an integer, got " + strconv.Quote(val)}
			}
			f.SetInt(n)
		case reflect.Bool:
			b, err := strconv.ParseBool(val)
			if err != nil {
				return &FieldError{Field: key, Code: CodeWrongType, Msg: "want true or false, got " + strconv.Quote(val)}
			}
			f.SetBool(b)
		default:
			return &FieldError{Field: key, Code: CodeWrongType, Msg: "cannot be given in a form; send JSON"}
		}
	}
	return nil
}
