package stager

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/caller"
)

// Routes mounts the stager for external callers on rg (the lead mounts it
// at /api/v1/stager):
//
//	POST   /requests               submit a JSON Request (give "webhook" to be called back) → 202 {"id": N}
//	GET    /requests/:id           the current Result
//	POST   /requests/:id/release   release a get's pin (or abort a request in progress)
//	DELETE /requests/:id           abort
//
// A request belongs to who submitted it (owner "user:NAME"); requests the
// projects component submits are the system's. Only the owner or an
// operator may look at, release or abort one (403 otherwise).
//
// Answers are {"status": "success", "data": ...}; errors are the API's
// one envelope (package apierr); bodies are decoded strictly.
func Routes(rg *gin.RouterGroup, s *Stager) {
	rg.POST("/requests", func(c *gin.Context) {
		var r Request
		if err := apierr.DecodeJSON(c, &r); err != nil {
			apierr.Abort(c, err)
			return
		}
		// The owner is who calls, never what the body says: it decides who
		// may look at, release or abort the request.
		if r.Owner != "" {
			apierr.Abort(c, &apierr.FieldError{Field: "owner", Msg: "set by the server to the authenticated caller; leave it out"})
			return
		}
		if name := caller.Name(c); name != "" {
			r.Owner = UserOwnerPrefix + name
		}
		id, err := s.Submit(c.Request.Context(), r, nil)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		ok(c, http.StatusAccepted, gin.H{"id": id})
	})
	withID := func(fn func(c *gin.Context, id int64)) gin.HandlerFunc {
		return func(c *gin.Context) {
			id, err := strconv.ParseInt(c.Param("id"), 10, 64)
			if err != nil || id <= 0 {
				apierr.Abort(c, &apierr.FieldError{Field: "id", Msg: "want a positive integer, got " + strconv.Quote(c.Param("id"))})
				return
			}
			fn(c, id)
		}
	}
	// owned answers 404 or 403 unless the caller may act on request id.
	owned := func(c *gin.Context, id int64) (Result, bool) {
		r, err := s.Lookup(c.Request.Context(), id)
		if err != nil {
			apierr.Abort(c, err)
			return r, false
		}
		if !caller.May(c, OwnerUser(r.Owner)) {
			apierr.Abort(c, fmt.Errorf("%w: stager request %d belongs to %s; only its owner or an operator may use it", apierr.ErrForbidden, id, ownerText(r.Owner)))
			return r, false
		}
		return r, true
	}
	rg.GET("/requests/:id", withID(func(c *gin.Context, id int64) {
		if r, valid := owned(c, id); valid {
			ok(c, http.StatusOK, r)
		}
	}))
	end := func(release bool) gin.HandlerFunc {
		return withID(func(c *gin.Context, id int64) {
			if err := apierr.NoBody(c); err != nil {
				apierr.Abort(c, err)
				return
			}
			if _, valid := owned(c, id); !valid {
				return
			}
			var err error
			if release {
				err = s.Release(c.Request.Context(), id)
			} else {
				err = s.Abort(c.Request.Context(), id)
			}
			if err != nil {
				apierr.Abort(c, err)
				return
			}
			ok(c, http.StatusOK, gin.H{"id": id})
		})
	}
	rg.POST("/requests/:id/release", end(true))
	rg.DELETE("/requests/:id", end(false))
}

func ok(c *gin.Context, code int, data any) {
	c.JSON(code, gin.H{"status": "success", "data": data})
}

// UserOwnerPrefix marks the owner of a request a user submitted through the
// REST API; other owners (projects) are the system's.
const UserOwnerPrefix = "user:"

// OwnerUser is the user owning a request with owner, "" for the system's.
func OwnerUser(owner string) string {
	if u, ok := strings.CutPrefix(owner, UserOwnerPrefix); ok {
		return u
	}
	return ""
}

func ownerText(owner string) string {
	if u := OwnerUser(owner); u != "" {
		return "user " + u
	}
	if owner == "" {
		return "the system"
	}
	return "the " + owner + " component"
}
