package fileop

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// API serves the queue over REST. Mount with Routes.
type API struct {
	DB *db.DB
	// Inventory is the store replica flags are read from and written to
	// (its Write is the lease-fenced writer in dynamo serve). Without it
	// the /replicas routes and /retry-from answer 501.
	Inventory *inventory.Store
	// Wake, if set, is called after releases so the daemon looks at once.
	Wake func()
	Now  func() time.Time
}

// Routes registers, under rg (the lead mounts it at /api/v1/fileop):
//
//	GET  /status                        counts by op, state, hold reason
//	GET  /held?limit=N                  held subscriptions
//	POST /release {"ids":[..],"hold_reason":"","comment":""}  held -> new (empty ids: all)
//	POST /cancel  {"ids":[..]}          pending -> cancelled
//	GET  /subscriptions/:id             one subscription
//	GET  /history?subscription=ID&limit=N  attempts, newest first
//	GET  /replicas                      replicas with checksum mismatches or flagged suspicious
//	POST /replicas/mark {"block":"ds#b","site":"S","bad":true,"reason":"..."}
//	                                    declare a replica bad (bad: false clears the flag)
//	POST /retry-from {"id":N,"source":"S"}  retry a held transfer from a named source
//
// Errors are the API's one envelope (package apierr); bodies are decoded
// strictly.
//
// Handlers hand the request's context, never the *gin.Context, to the
// database: gin reuses its Context for the next request as soon as the
// handler returns, while database/sql still watches a query's context
// from a goroutine of its own.
func (a *API) Routes(rg *gin.RouterGroup) {
	rg.GET("/status", func(c *gin.Context) {
		rows, err := Status(c.Request.Context(), a.DB)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": rows})
	})
	rg.GET("/held", func(c *gin.Context) {
		limit, err := queryInt(c, "limit")
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		rows, err := Held(c.Request.Context(), a.DB, limit)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": rows})
	})
	rg.POST("/release", func(c *gin.Context) {
		var req struct {
			IDs        []int64    `json:"ids"`
			HoldReason HoldReason `json:"hold_reason"`
			Reason     HoldReason `json:"reason"` // older name of hold_reason
			Comment    string     `json:"comment"`
		}
		if err := apierr.DecodeJSON(c, &req); err != nil {
			apierr.Abort(c, err)
			return
		}
		if req.HoldReason == "" {
			req.HoldReason = req.Reason
		}
		n, err := a.ReleaseWith(c.Request.Context(), ReleaseOptions{IDs: req.IDs, HoldReason: req.HoldReason, Comment: req.Comment, By: c.GetString("user")})
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"released": n}})
	})
	rg.POST("/cancel", func(c *gin.Context) {
		var req struct {
			IDs []int64 `json:"ids"`
		}
		if err := apierr.DecodeJSON(c, &req); err != nil {
			apierr.Abort(c, err)
			return
		}
		if len(req.IDs) == 0 {
			apierr.Abort(c, &apierr.FieldError{Field: "ids", Msg: "required: the subscriptions to cancel"})
			return
		}
		n, err := a.Cancel(c.Request.Context(), req.IDs)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"cancelled": n}})
	})
	rg.GET("/subscriptions/:id", func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id <= 0 {
			apierr.Abort(c, &apierr.FieldError{Field: "id", Msg: "want a positive integer, got " + strconv.Quote(c.Param("id"))})
			return
		}
		s, err := Get(c.Request.Context(), a.DB, id)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": s})
	})
	rg.GET("/replicas", func(c *gin.Context) {
		if a.Inventory == nil {
			apierr.Abort(c, errNoInventory)
			return
		}
		rows, err := ReplicaHealthList(c.Request.Context(), a.DB, a.Inventory.Snapshot())
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": rows})
	})
	rg.POST("/replicas/mark", func(c *gin.Context) {
		var req struct {
			Block  string `json:"block"`
			Site   string `json:"site"`
			Bad    *bool  `json:"bad"`
			Reason string `json:"reason"`
		}
		if err := apierr.DecodeJSON(c, &req); err != nil {
			apierr.Abort(c, err)
			return
		}
		switch {
		case req.Block == "":
			apierr.Abort(c, &apierr.FieldError{Field: "block", Msg: "required: dataset#block"})
			return
		case req.Site == "":
			apierr.Abort(c, &apierr.FieldError{Field: "site", Msg: "required"})
			return
		case req.Bad == nil:
			apierr.Abort(c, &apierr.FieldError{Field: "bad", Msg: "required: true to flag the replica, false to clear the flag"})
			return
		case a.Inventory == nil:
			apierr.Abort(c, errNoInventory)
			return
		}
		if err := MarkReplica(c.Request.Context(), a.Inventory, a.DB, a.Inventory.Snapshot(), req.Block, req.Site, *req.Bad, req.Reason, a.now()); err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"block": req.Block, "site": req.Site, "suspicious": *req.Bad}})
	})
	rg.POST("/retry-from", func(c *gin.Context) {
		var req struct {
			ID     int64  `json:"id"`
			Source string `json:"source"`
		}
		if err := apierr.DecodeJSON(c, &req); err != nil {
			apierr.Abort(c, err)
			return
		}
		switch {
		case req.ID <= 0:
			apierr.Abort(c, &apierr.FieldError{Field: "id", Msg: "required: a subscription id"})
			return
		case req.Source == "":
			apierr.Abort(c, &apierr.FieldError{Field: "source", Msg: "required: the site to copy from"})
			return
		case a.Inventory == nil:
			apierr.Abort(c, errNoInventory)
			return
		}
		if err := RetryFromSource(c.Request.Context(), a.DB, a.Inventory.Snapshot(), a.now(), req.ID, req.Source); err != nil {
			apierr.Abort(c, err)
			return
		}
		if a.Wake != nil {
			a.Wake()
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"id": req.ID, "source": req.Source}})
	})
	rg.GET("/history", func(c *gin.Context) {
		sub, err := queryInt(c, "subscription")
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		limit, err := queryInt(c, "limit")
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		rows, err := History(c.Request.Context(), a.DB, int64(sub), limit)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": rows})
	})
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Release moves held subscriptions back to new (see the package function
// Release) and wakes the daemon: what POST /release does, for the
// console's release and retry-from-source buttons too.
func (a *API) Release(ctx context.Context, ids []int64, reason HoldReason) (int, error) {
	n, err := Release(ctx, a.DB, a.now(), ids, reason)
	if err == nil && n > 0 && a.Wake != nil {
		a.Wake()
	}
	return n, err
}

// ReleaseWith is Release with a comment and who released (ReleaseOptions).
func (a *API) ReleaseWith(ctx context.Context, o ReleaseOptions) (int, error) {
	n, err := ReleaseWith(ctx, a.DB, a.now(), o)
	if err == nil && n > 0 && a.Wake != nil {
		a.Wake()
	}
	return n, err
}

// Cancel cancels pending subscriptions: what POST /cancel does.
func (a *API) Cancel(ctx context.Context, ids []int64) (int, error) {
	return Cancel(ctx, a.DB, a.now(), ids)
}

// Status, Held, Queue and Throughput are the package's queries on a.DB,
// for readers holding an API (the console).
func (a *API) Status(ctx context.Context) ([]StatusRow, error) { return Status(ctx, a.DB) }

// Held lists held subscriptions, oldest first.
func (a *API) Held(ctx context.Context, limit int) ([]Subscription, error) {
	return Held(ctx, a.DB, limit)
}

// Queue counts live subscriptions by op, link and state.
func (a *API) Queue(ctx context.Context) ([]LinkRow, error) { return Queue(ctx, a.DB) }

// Throughput sums successful transfer bytes per link and time bucket.
func (a *API) Throughput(ctx context.Context, since time.Time, width time.Duration) ([]ThroughputPoint, error) {
	return Throughput(ctx, a.DB, since, width)
}

// errNoInventory: the API was built without an inventory store.
var errNoInventory = apierr.New(apierr.ErrUnavailable, "replica flags need the inventory; not wired here")

// queryInt is an optional non-negative integer query parameter (0 when
// absent).
func queryInt(c *gin.Context, name string) (int, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, &apierr.FieldError{Field: name, Msg: "want a non-negative integer, got " + strconv.Quote(v)}
	}
	return n, nil
}
