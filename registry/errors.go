package registry

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
)

// Error kinds: the API's one set (package apierr), under the names this
// package's handlers and callers have always used.
var (
	ErrBadRequest      = apierr.ErrBadRequest
	ErrUnauthenticated = apierr.ErrUnauthenticated
	ErrForbidden       = apierr.ErrForbidden
	ErrNotFound        = apierr.ErrNotFound
	ErrConflict        = apierr.ErrConflict
	ErrTooLarge        = apierr.ErrTooLarge
	// ErrNotReady: the inventory is still loading.
	ErrNotReady = apierr.New(apierr.ErrUnavailable, "inventory not ready")
)

// FieldError is a validation error naming the offending field, as a JSON
// path ("items[2]", "expires"). It is a bad request.
type FieldError = apierr.FieldError

// ErrorBody is the JSON body of every /api/v1 error (apierr.Body).
type ErrorBody = apierr.Body

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// abort records err for errorMiddleware and stops the chain.
func (s *Server) abort(c *gin.Context, err error) { apierr.Abort(c, err) }

// errorMiddleware writes the response for the last error a handler or
// middleware recorded, as apierr.Describe decides: the one mapping of
// errors to HTTP, for this package's routes and every mounted
// component's. Page routes render it as a page, /data/ and /registry/
// routes in Dynamo's envelope, everything else as apierr.Body.
func (s *Server) errorMiddleware(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	err := c.Errors.Last().Err
	p := apierr.Describe(err, s.dbTimeout)
	p.Log(s.log, err, c.Request.URL.Path)
	p.SetHeaders(c)
	if render, ok := s.pageRoute(c.FullPath()); ok && render != nil {
		render(c, p.Status, p.Body.Error)
		return
	}
	if path := c.Request.URL.Path; strings.HasPrefix(path, "/data/") || strings.HasPrefix(path, "/registry/") {
		c.JSON(p.Status, gin.H{"result": dynamoResult(p.Status), "message": p.Body.Error, "data": nil})
		return
	}
	c.JSON(p.Status, p.Body)
}

// dynamoResult is the "result" of Dynamo's envelope for an error status.
func dynamoResult(status int) string {
	if status == http.StatusRequestEntityTooLarge {
		return http.StatusText(http.StatusBadRequest)
	}
	return http.StatusText(status)
}

// decodeJSON decodes a JSON body strictly (apierr.Decode): unknown fields,
// wrong types, trailing data and an empty body are errors naming what is
// wrong; the body size limit is enforced by the server.
func decodeJSON(r io.Reader, v any) error { return apierr.Decode(r, v, true) }
