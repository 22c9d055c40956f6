// Package apierr lets a component's REST handlers hand an error they do
// not map themselves to the REST server's one error mapper
// (registry/errors.go), which logs it and answers without showing what it
// is made of: 503 with Retry-After for a database that is unreachable,
// stalled or busy, 500 "see the server log" for anything else.
package apierr

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// Unmapped records err for the server's error mapper and stops the
// handler chain. Nothing is written here: the mapper writes the answer.
// Without one (a component served on its own), the status stays 500 with
// an empty body, still without the error's text.
func Unmapped(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Status(http.StatusInternalServerError)
	c.Abort()
}
