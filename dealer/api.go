package dealer

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
)

// Routes mounts the Dealer's read-only REST API on rg (the lead mounts it
// at /api/v1/dealer):
//
//	GET cycles?limit=&offset=                      recorded cycles, newest first
//	GET cycles/:id                                 one cycle, with its seed and configuration
//	GET cycles/:id/proposals?plugin=&reason=&limit=&offset=
//	                                               proposals in merged order, with decisions
//	GET cycles/:id/rejections?plugin=&reason=&limit=&offset=
//	                                               rejected proposals only
//	GET cycles/:id/reasons                         rejection counts per reason
//	GET reasons                                    every reason the Dealer can give
//
// Responses are JSON; errors are the API's one envelope (package apierr)
// with 400 for bad parameters, 404 for an unknown cycle and 500 otherwise.
func Routes(rg *gin.RouterGroup, h *History) {
	rg.GET("/cycles", func(c *gin.Context) {
		limit, offset, ok := paging(c)
		if !ok {
			return
		}
		cs, err := h.Cycles(c.Request.Context(), limit, offset)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"cycles": cs})
	})
	rg.GET("/cycles/:id", func(c *gin.Context) {
		id, ok := cycleID(c)
		if !ok {
			return
		}
		cy, err := h.Cycle(c.Request.Context(), id)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, cy)
	})
	proposals := func(rejected bool) gin.HandlerFunc {
		return func(c *gin.Context) {
			id, ok := cycleID(c)
			if !ok {
				return
			}
			limit, offset, ok := paging(c)
			if !ok {
				return
			}
			ps, err := h.Proposals(c.Request.Context(), id, ProposalFilter{Plugin: c.Query("plugin"), Reason: c.Query("reason"),
				Rejected: rejected, Limit: limit, Offset: offset})
			if err != nil {
				apierr.Abort(c, err)
				return
			}
			c.JSON(http.StatusOK, gin.H{"cycle": id, "proposals": ps})
		}
	}
	rg.GET("/cycles/:id/proposals", proposals(false))
	rg.GET("/cycles/:id/rejections", proposals(true))
	rg.GET("/cycles/:id/reasons", func(c *gin.Context) {
		id, ok := cycleID(c)
		if !ok {
			return
		}
		counts, err := h.ReasonCounts(c.Request.Context(), id)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"cycle": id, "reasons": counts})
	})
	rg.GET("/reasons", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"reasons": AllReasons}) })
}

// AllReasons lists every Reason, for clients and documentation.
var AllReasons = []Reason{ReasonUnknownItem, ReasonDatasetStatus, ReasonDuplicate, ReasonCycleVolume, ReasonPluginVolume,
	ReasonRequestVolume, ReasonNoSource, ReasonReplicaExists, ReasonNotTarget, ReasonPlacement, ReasonDestinationFull,
	ReasonNoDestination, ReasonUnknownGroup, ReasonNoTargetSites, ReasonRequestTooLarge, ReasonNoItems, ReasonStale,
	ReasonNothingToReplace}

func cycleID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		apierr.Abort(c, &apierr.FieldError{Field: "id", Msg: "cycle id " + strconv.Quote(c.Param("id")) + " is not a positive integer"})
		return 0, false
	}
	return id, true
}

func paging(c *gin.Context) (limit, offset int, ok bool) {
	limit, offset = 100, 0
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			apierr.Abort(c, &apierr.FieldError{Field: "limit", Msg: strconv.Quote(v) + " is not in 1..10000"})
			return 0, 0, false
		}
		limit = n
	}
	if v := c.Query("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			apierr.Abort(c, &apierr.FieldError{Field: "offset", Msg: strconv.Quote(v) + " is not a non-negative integer"})
			return 0, 0, false
		}
		offset = n
	}
	return limit, offset, true
}
