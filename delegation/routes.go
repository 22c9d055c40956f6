package delegation

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/caller"
)

// maxUpload bounds an uploaded proxy chain.
const maxUpload = 64 << 10

// Routes mounts the delegation service on rg (dynamo serve mounts it at
// /api/v1/delegation), in the style of GridSite's delegation REST
// interface. Every route needs a caller authenticated by a client
// certificate or proxy over TLS (caller.DN); a delegation id is derived
// from that DN, and an id that is not the caller's is refused (403):
//
//	GET    /                      {"delegation_id", "dn", "delegation": Info or null}
//	GET    /:id/request           a PEM certificate request for a new server-side key
//	PUT    /:id/credential        the signed proxy (PEM: the proxy, then the signer's chain) → Info
//	POST   /:id/credential        the same
//	GET    /:id                   Info (expired ones too, for a while)
//	DELETE /:id                   remove the delegation
//
// v verifies uploaded chains against the same CA directory as the REST
// server's client authentication.
func Routes(rg *gin.RouterGroup, s *Store, v Verifier) {
	rg.GET("", func(c *gin.Context) {
		dn := caller.DN(c)
		if dn == "" {
			apierr.Abort(c, fmt.Errorf("%w: delegating needs a client certificate or proxy (a token names no identity to delegate)", ErrForbidden))
			return
		}
		id := ID(dn)
		out := gin.H{"delegation_id": id, "dn": dn, "max_lifetime": s.cfg.MaxLifetime.String(), "delegation": nil}
		if info, err := s.Get(id, dn); err == nil {
			out["delegation"] = info
		} else if !errors.Is(err, ErrNotFound) {
			apierr.Abort(c, err)
			return
		}
		ok(c, http.StatusOK, out)
	})
	rg.GET("/:id/request", func(c *gin.Context) {
		csr, err := s.Request(c.Param("id"), caller.DN(c))
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.Data(http.StatusOK, "application/x-pem-file", csr)
	})
	put := func(c *gin.Context) {
		id, dn := c.Param("id"), caller.DN(c)
		// Ownership before reading anything: another user's upload is
		// refused whatever it holds.
		if err := owns(id, dn); err != nil {
			apierr.Abort(c, err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxUpload))
		if err != nil {
			apierr.Abort(c, apierr.ReadError(err))
			return
		}
		info, err := s.Put(id, dn, caller.Name(c), body, v)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		ok(c, http.StatusCreated, info)
	}
	rg.PUT("/:id/credential", put)
	rg.POST("/:id/credential", put)
	rg.GET("/:id", func(c *gin.Context) {
		info, err := s.Get(c.Param("id"), caller.DN(c))
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		ok(c, http.StatusOK, info)
	})
	rg.DELETE("/:id", func(c *gin.Context) {
		id := c.Param("id")
		if err := owns(id, caller.DN(c)); err != nil {
			apierr.Abort(c, err)
			return
		}
		if err := apierr.NoBody(c); err != nil {
			apierr.Abort(c, err)
			return
		}
		if err := s.Delete(id, caller.DN(c)); err != nil {
			apierr.Abort(c, err)
			return
		}
		ok(c, http.StatusOK, gin.H{"delegation_id": id})
	})
}

func ok(c *gin.Context, code int, data any) {
	c.JSON(code, gin.H{"status": "success", "data": data})
}
