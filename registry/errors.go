package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// Error kinds. Everything the API returns wraps one of them (or
// inventory.ErrInvalid); writeError maps them to HTTP statuses, and is the
// only place that does.
var (
	ErrBadRequest      = errors.New("bad request")
	ErrUnauthenticated = errors.New("authentication required")
	ErrForbidden       = errors.New("forbidden")
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrTooLarge        = errors.New("request body too large")
	ErrNotReady        = errors.New("inventory not ready")
)

// FieldError is a validation error naming the offending field, as a JSON
// path ("items[2]", "expires"). It is a bad request.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes FieldError a bad request.
func (e *FieldError) Unwrap() error { return ErrBadRequest }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ErrorBody is the JSON body of every /api/v1 error.
type ErrorBody struct {
	Status    string `json:"status"`    // always "error"
	ErrorType string `json:"errorType"` // bad_request, unauthenticated, forbidden, not_found, conflict, too_large, unavailable, internal
	Error     string `json:"error"`
	Field     string `json:"field,omitempty"` // the offending field of a validation error
	// Holder and HolderAddress name the inventory writer when this server
	// refused a write because it is not the writer (errorType not_writer).
	Holder        string `json:"holder,omitempty"`
	HolderAddress string `json:"holder_address,omitempty"`
}

// classify maps an error to (HTTP status, error type, Dynamo result text).
func classify(err error) (int, string, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, inventory.ErrNotWriter):
		return http.StatusServiceUnavailable, "not_writer", "Service Unavailable"
	// A database error decides the answer whatever wraps it: it says why
	// the request failed, and its text is the driver's, not ours.
	case db.Unavailable(err), db.Retryable(err):
		return http.StatusServiceUnavailable, "unavailable", "Service Unavailable"
	case db.IsDuplicate(err):
		return http.StatusConflict, "conflict", "Conflict"
	case db.FromDatabase(err):
		return http.StatusInternalServerError, "internal", "Internal Server Error"
	case errors.Is(err, ErrTooLarge), errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "too_large", "Bad Request"
	case errors.Is(err, ErrBadRequest), errors.Is(err, inventory.ErrInvalid):
		return http.StatusBadRequest, "bad_request", "Bad Request"
	case errors.Is(err, ErrBadCredentials), errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized, "unauthenticated", "Unauthorized"
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, "forbidden", "Forbidden"
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "not_found", "Not Found"
	case errors.Is(err, ErrConflict), errors.Is(err, inventory.ErrStale):
		return http.StatusConflict, "conflict", "Conflict"
	case errors.Is(err, ErrNotReady):
		return http.StatusServiceUnavailable, "unavailable", "Service Unavailable"
	}
	return http.StatusInternalServerError, "internal", "Internal Server Error"
}

// abort records err for errorMiddleware and stops the chain.
func (s *Server) abort(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}

// errorMiddleware writes the response for the last error a handler or
// middleware recorded: the one mapping of errors to HTTP. /data/ and
// /registry/ routes get Dynamo's envelope, everything else ErrorBody.
func (s *Server) errorMiddleware(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	err := c.Errors.Last().Err
	code, typ, result := classify(err)
	msg := err.Error()
	switch {
	case code == http.StatusInternalServerError:
		s.log.WithError(err).WithField("path", c.Request.URL.Path).Error("request failed")
		msg = "internal error; see the server log"
	case db.Unavailable(err):
		s.log.WithError(err).WithField("path", c.Request.URL.Path).Warn("database unavailable")
		switch {
		case errors.Is(err, db.ErrTimeout):
			msg = fmt.Sprintf("the database did not answer within %s; retry later", s.dbTimeout)
		case errors.Is(err, context.DeadlineExceeded):
			// A deadline of the handler's own: the database or another
			// service it waited for.
			msg = "the request ran out of time waiting for the database or another service; retry later"
		default:
			msg = "the database is unavailable; retry later"
		}
	case db.Retryable(err):
		s.log.WithError(err).WithField("path", c.Request.URL.Path).Info("database busy")
		msg = "the database is busy; retry"
	case db.IsDuplicate(err):
		s.log.WithError(err).WithField("path", c.Request.URL.Path).Info("database constraint")
		msg = "conflicts with an existing record (written at the same time?); retry or check what exists"
	}
	var nw *inventory.NotWriterError
	switch {
	case errors.As(err, &nw):
		c.Header("Retry-After", strconv.Itoa(max(1, int(nw.RetryAfter.Seconds()+0.5))))
	case db.Unavailable(err), db.Retryable(err):
		// The database comes back by itself (or an operator is on it):
		// retry soon, not at the inventory-loading pace.
		c.Header("Retry-After", "5")
	case code == http.StatusServiceUnavailable:
		c.Header("Retry-After", "30")
	case errors.Is(err, inventory.ErrStale):
		// Another process holds the inventory writer: retry once this
		// process has caught up with its changes.
		c.Header("Retry-After", "5")
	case code == http.StatusUnauthorized:
		c.Header("WWW-Authenticate", `Bearer realm="dynamo"`)
	}
	if render, ok := s.pageRoute(c.FullPath()); ok && render != nil {
		render(c, code, msg)
		return
	}
	if p := c.Request.URL.Path; strings.HasPrefix(p, "/data/") || strings.HasPrefix(p, "/registry/") {
		c.JSON(code, gin.H{"result": result, "message": msg, "data": nil})
		return
	}
	body := ErrorBody{Status: "error", ErrorType: typ, Error: msg}
	if nw != nil {
		body.Holder, body.HolderAddress = nw.Holder, nw.Address
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		body.Field = fe.Field
	}
	c.JSON(code, body)
}

// decodeJSON decodes a JSON body strictly: unknown fields, trailing data
// and an empty body are errors naming what is wrong; the body size limit
// is enforced by the server.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err)
		}
		return fmt.Errorf("%w: body: trailing data after the JSON value", ErrBadRequest)
	}
	return nil
}

func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return fmt.Errorf("%w: body exceeds %d bytes", ErrTooLarge, mbe.Limit)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: body: empty; a JSON object is required", ErrBadRequest)
	case errors.As(err, &ute):
		return fieldErr(ute.Field, "want %s, got JSON %s", ute.Type, ute.Value)
	case errors.As(err, &se):
		return fmt.Errorf("%w: body: invalid JSON at offset %d: %v", ErrBadRequest, se.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldErr(f, "unknown field")
	}
	return fmt.Errorf("%w: body: %v", ErrBadRequest, err)
}
