// Package apierr is the one error envelope of the REST API (every /api/v1
// route, whichever component serves it) and the one strict JSON body
// decoder.
//
// Handlers record what went wrong with Abort and return; the server's one
// error mapper (Describe, installed by the registry's middleware, or
// Middleware for a component served on its own) chooses the status and
// writes Body. An error says what it is by wrapping one of the kind
// sentinels below (directly, through New for a package's own sentinels,
// or as a *FieldError or *Error); anything else is an internal error,
// logged and answered without its text, so physical paths and driver
// messages never reach a client.
package apierr

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Kinds. Each maps to one HTTP status and errorType (see Describe).
var (
	ErrBadRequest      = errors.New("bad request")
	ErrUnauthenticated = errors.New("authentication required")
	ErrForbidden       = errors.New("forbidden")
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrTooLarge        = errors.New("request body too large")
	// ErrUnavailable: the service cannot answer now but will (loading,
	// shutting down, a dependency not wired); 503 with Retry-After.
	ErrUnavailable = errors.New("unavailable")
)

// errorType values: the class of an error, one per kind. They are part of
// the API and never change meaning.
const (
	TypeBadRequest      = "bad_request"
	TypeUnauthenticated = "unauthenticated"
	TypeForbidden       = "forbidden"
	TypeNotFound        = "not_found"
	TypeConflict        = "conflict"
	TypeTooLarge        = "too_large"
	TypeUnavailable     = "unavailable"
	TypeNotWriter       = "not_writer"
	TypeInternal        = "internal"
)

// Codes more specific than the errorType, set by this package's decoder
// and by components (with Error.Code or FieldError.Code). A body without a
// more specific cause carries its errorType as its code.
const (
	CodeUnknownField = "unknown_field" // a JSON field or form key the route does not take
	CodeWrongType    = "wrong_type"    // a JSON value of the wrong type
	CodeInvalidJSON  = "invalid_json"  // not JSON at all
	CodeTrailingData = "trailing_data" // more after the one JSON value
	CodeEmptyBody    = "empty_body"    // a required body is missing
	CodeBodyTooLarge = "body_too_large"
	CodeInvalidValue = "invalid_value" // a field whose value is not acceptable
)

// Body is the JSON body of every /api/v1 error.
type Body struct {
	Status    string `json:"status"`    // always "error"
	ErrorType string `json:"errorType"` // the class: one of the Type constants
	Code      string `json:"code"`      // the specific cause, stable; errorType when there is none more specific
	Error     string `json:"error"`     // for people: what is wrong and, where it helps, what to do
	Field     string `json:"field,omitempty"`
	// Holder and HolderAddress name who holds the inventory writer lease
	// or the scheduler's lead (errorType not_writer, code not_leader):
	// retry there.
	Holder        string `json:"holder,omitempty"`
	HolderAddress string `json:"holder_address,omitempty"`
}

// FieldError is a bad request naming the offending field as a JSON path
// ("items[2]", "expires") or a query or form parameter.
type FieldError struct {
	Field string
	Msg   string
	Code  string // "" for invalid_value
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes FieldError a bad request.
func (e *FieldError) Unwrap() error { return ErrBadRequest }

// Error is an error of a kind with a specific code and the details the
// body has room for. Msg is shown to the client as is.
type Error struct {
	Kind   error  // one of the kind sentinels
	Code   string // "" for the kind's errorType
	Msg    string
	Holder string // see Body.Holder
	Err    error  // the cause, for errors.Is/As; its text is not shown unless Msg quotes it
}

func (e *Error) Error() string { return e.Msg }

// Unwrap exposes both the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// New returns a sentinel error reading msg that is also of kind (one of
// the kind sentinels): what a component declares its own errors with, so
// that errors.Is(err, pkg.ErrX) keeps working and the mapper knows the
// status without a mapping table of the component's.
func New(kind error, msg string) error { return &sentinel{msg: msg, kind: kind} }

// NewCoded is New with a specific code for the body (see Body.Code).
func NewCoded(kind error, code, msg string) error {
	return &sentinel{msg: msg, kind: kind, code: code}
}

type sentinel struct {
	msg  string
	kind error
	code string
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.kind }

// Abort records err for the server's error mapper and stops the handler
// chain. Nothing is written here: the mapper writes the answer. Without a
// mapper (a bare gin engine) the status stays 500 with an empty body,
// still without the error's text.
func Abort(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Status(http.StatusInternalServerError)
	c.Abort()
}
