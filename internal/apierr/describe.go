package apierr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// Problem is the answer chosen for an error: status, body and headers, and
// how loudly to log what the body leaves out.
type Problem struct {
	Status int
	Body   Body
	Header map[string]string
	// LogLevel is the level to log the error at (with its full text), or
	// 0 (logrus.PanicLevel, never used here) for errors the body fully says.
	LogLevel logrus.Level
	LogMsg   string
}

// Describe maps err to its answer. dbTimeout is the per-call database
// deadline the message names when the database did not answer in time.
// It is the one mapping of errors to HTTP of the whole REST API.
func Describe(err error, dbTimeout time.Duration) Problem {
	status, typ := classify(err)
	p := Problem{Status: status, Header: map[string]string{},
		Body: Body{Status: "error", ErrorType: typ, Code: typ, Error: err.Error()}}
	var sent *sentinel
	if errors.As(err, &sent) && sent.code != "" {
		p.Body.Code = sent.code
	}
	var coded *Error
	if errors.As(err, &coded) {
		if coded.Code != "" {
			p.Body.Code = coded.Code
		}
		p.Body.Holder = coded.Holder
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		p.Body.Field = fe.Field
		p.Body.Code = CodeInvalidValue
		if fe.Code != "" {
			p.Body.Code = fe.Code
		}
	}
	var nw *inventory.NotWriterError
	if errors.As(err, &nw) {
		p.Body.Holder, p.Body.HolderAddress = nw.Holder, nw.Address
		p.Header["Retry-After"] = strconv.Itoa(max(1, int(nw.RetryAfter.Seconds()+0.5)))
	}
	switch {
	case status == http.StatusInternalServerError:
		p.LogLevel, p.LogMsg = logrus.ErrorLevel, "request failed"
		p.Body.Error = "internal error; see the server log"
	case db.Unavailable(err):
		p.LogLevel, p.LogMsg = logrus.WarnLevel, "database unavailable"
		switch {
		case errors.Is(err, db.ErrTimeout):
			p.Body.Error = fmt.Sprintf("the database did not answer within %s; retry later", dbTimeout)
		case errors.Is(err, context.DeadlineExceeded):
			// A deadline of the handler's own: the database or another
			// service it waited for.
			p.Body.Error = "the request ran out of time waiting for the database or another service; retry later"
		default:
			p.Body.Error = "the database is unavailable; retry later"
		}
	case db.Retryable(err):
		p.LogLevel, p.LogMsg = logrus.InfoLevel, "database busy"
		p.Body.Error = "the database is busy; retry"
	case db.IsDuplicate(err):
		p.LogLevel, p.LogMsg = logrus.InfoLevel, "database constraint"
		p.Body.Error = "conflicts with an existing record (written at the same time?); retry or check what exists"
	}
	switch {
	case nw != nil:
	case db.Unavailable(err), db.Retryable(err):
		// The database comes back by itself (or an operator is on it):
		// retry soon, not at the inventory-loading pace.
		p.Header["Retry-After"] = "5"
	case status == http.StatusServiceUnavailable:
		p.Header["Retry-After"] = "30"
	case errors.Is(err, inventory.ErrStale):
		// Another process holds the inventory writer: retry once this
		// process has caught up with its changes.
		p.Header["Retry-After"] = "5"
	case status == http.StatusUnauthorized:
		p.Header["WWW-Authenticate"] = `Bearer realm="dynamo"`
	}
	return p
}

// classify maps an error to its HTTP status and errorType.
func classify(err error) (int, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, inventory.ErrNotWriter):
		return http.StatusServiceUnavailable, TypeNotWriter
	// A database error decides the answer whatever wraps it: it says why
	// the request failed, and its text is the driver's, not ours.
	case db.Unavailable(err), db.Retryable(err):
		return http.StatusServiceUnavailable, TypeUnavailable
	case db.IsDuplicate(err):
		return http.StatusConflict, TypeConflict
	case db.FromDatabase(err):
		return http.StatusInternalServerError, TypeInternal
	case errors.Is(err, ErrTooLarge), errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, TypeTooLarge
	case errors.Is(err, ErrBadRequest), errors.Is(err, inventory.ErrInvalid):
		return http.StatusBadRequest, TypeBadRequest
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized, TypeUnauthenticated
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, TypeForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, TypeNotFound
	case errors.Is(err, ErrConflict), errors.Is(err, inventory.ErrStale):
		return http.StatusConflict, TypeConflict
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, TypeUnavailable
	}
	return http.StatusInternalServerError, TypeInternal
}

// Log logs what the body leaves out, if anything.
func (p Problem) Log(log *logrus.Entry, err error, path string) {
	if p.LogMsg == "" || log == nil {
		return
	}
	log.WithError(err).WithField("path", path).Log(p.LogLevel, p.LogMsg)
}

// SetHeaders sets the problem's headers that the handler did not set
// itself (a handler may know a better Retry-After).
func (p Problem) SetHeaders(c *gin.Context) {
	for k, v := range p.Header {
		if c.Writer.Header().Get(k) == "" {
			c.Header(k, v)
		}
	}
}

// Middleware is the error mapper for a component's routes served on a
// bare gin engine (its own tests, a tool). The REST server installs its
// own, which uses Describe too and also renders pages.
func Middleware(log *logrus.Entry, dbTimeout time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		err := c.Errors.Last().Err
		p := Describe(err, dbTimeout)
		p.Log(log, err, c.Request.URL.Path)
		p.SetHeaders(c)
		c.JSON(p.Status, p.Body)
	}
}
