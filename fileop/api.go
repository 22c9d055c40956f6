package fileop

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"

	"github.com/dynamo-go/dynamo/internal/db"
)

// API serves the queue over REST. Mount with Routes.
type API struct {
	DB *db.DB
	// Wake, if set, is called after releases so the daemon looks at once.
	Wake func()
	Now  func() time.Time
}

// Routes registers, under rg (the lead mounts it at /api/v1/fileop):
//
//	GET  /status                        counts by op, state, hold reason
//	GET  /held?limit=N                  held subscriptions
//	POST /release {"ids":[..],"reason":""}  held -> new (empty ids: all)
//	POST /cancel  {"ids":[..]}          pending -> cancelled
//	GET  /subscriptions/:id             one subscription
//	GET  /history?subscription=ID&limit=N  attempts, newest first
//
// Errors are {"status":"error","errorType":...,"error":...}.
func (a *API) Routes(rg *gin.RouterGroup) {
	now := a.Now
	if now == nil {
		now = time.Now
	}
	rg.GET("/status", func(c *gin.Context) {
		rows, err := Status(c, a.DB)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": rows})
	})
	rg.GET("/held", func(c *gin.Context) {
		limit, _ := strconv.Atoi(c.Query("limit"))
		rows, err := Held(c, a.DB, limit)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": rows})
	})
	rg.POST("/release", func(c *gin.Context) {
		var req struct {
			IDs    []int64    `json:"ids"`
			Reason HoldReason `json:"reason"`
		}
		if err := c.ShouldBindJSON(&req); err != nil {
			fail(c, errors.Join(ErrInvalid, err))
			return
		}
		n, err := Release(c, a.DB, now(), req.IDs, req.Reason)
		if err != nil {
			fail(c, err)
			return
		}
		if a.Wake != nil {
			a.Wake()
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"released": n}})
	})
	rg.POST("/cancel", func(c *gin.Context) {
		var req struct {
			IDs []int64 `json:"ids" binding:"required"`
		}
		if err := c.ShouldBindJSON(&req); err != nil {
			fail(c, errors.Join(ErrInvalid, err))
			return
		}
		n, err := Cancel(c, a.DB, now(), req.IDs)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"cancelled": n}})
	})
	rg.GET("/subscriptions/:id", func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil {
			fail(c, errors.Join(ErrInvalid, err))
			return
		}
		s, err := Get(c, a.DB, id)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": s})
	})
	rg.GET("/history", func(c *gin.Context) {
		sub, _ := strconv.ParseInt(c.Query("subscription"), 10, 64)
		limit, _ := strconv.Atoi(c.Query("limit"))
		rows, err := History(c, a.DB, sub, limit)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": rows})
	})
}

// fail maps an error to a status code and the JSON error body.
func fail(c *gin.Context, err error) {
	code, typ := http.StatusInternalServerError, "internal"
	switch {
	case errors.Is(err, ErrInvalid):
		code, typ = http.StatusBadRequest, "bad_data"
	case errors.Is(err, ErrNotFound):
		code, typ = http.StatusNotFound, "not_found"
	case errors.Is(err, ErrConflict):
		code, typ = http.StatusConflict, "conflict"
	default:
		apierr.Unmapped(c, err)
		return
	}
	c.JSON(code, gin.H{"status": "error", "errorType": typ, "error": err.Error()})
}
