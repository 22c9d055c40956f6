package detox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"

	"github.com/dynamo-go/dynamo/internal/db"
)

// Routes mounts the Detox REST API on rg (the lead mounts it, e.g. under
// /api/v1/detox). Bodies are JSON, decoded strictly; answers use Dynamo's
// envelope {"result": "OK", "message": ..., "data": ...}, errors the API's
// one envelope (package apierr).
//
//	POST /access                       record accesses: one Access or an array
//	GET  /cycles?partition=P&limit=N   cycles, newest first
//	GET  /cycles/:id                   one cycle with its policy text
//	GET  /cycles/:id/sites             per-site summary of a cycle
//	GET  /cycles/:id/replicas?site=S&dataset=D&limit=N&offset=M
//	                                   per-replica decisions with line and reason
//
// Bad input is 400 naming the field; an unknown cycle is 404.
func Routes(rg *gin.RouterGroup, d *db.DB) {
	a := &restAPI{d: d, h: NewHistory(d)}
	rg.POST("/access", a.recordAccess)
	rg.GET("/cycles", a.cycles)
	rg.GET("/cycles/:id", a.cycle)
	rg.GET("/cycles/:id/sites", a.sites)
	rg.GET("/cycles/:id/replicas", a.replicas)
}

type restAPI struct {
	d *db.DB
	h *History
}

func ok(c *gin.Context, data any) {
	c.JSON(http.StatusOK, gin.H{"result": "OK", "message": "", "data": data})
}

func intParam(c *gin.Context, name string, def int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, &apierr.FieldError{Field: name, Msg: "want a non-negative integer, got " + strconv.Quote(v)}
	}
	return n, nil
}

func cycleID(c *gin.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &apierr.FieldError{Field: "id", Msg: "cycle id: want a positive integer, got " + strconv.Quote(c.Param("id"))}
	}
	return id, nil
}

// accessBody is one access as posted; at is RFC 3339 and defaults to now.
type accessBody struct {
	Dataset string `json:"dataset"`
	Site    string `json:"site"`
	Count   int64  `json:"count"`
	At      string `json:"at"`
}

func (a *restAPI) recordAccess(c *gin.Context) {
	// One access or an array of them: one JSON value either way.
	var raw json.RawMessage
	if err := apierr.DecodeJSON(c, &raw); err != nil {
		apierr.Abort(c, err)
		return
	}
	var bodies []accessBody
	var err error
	if raw[0] == '[' {
		err = apierr.Decode(bytes.NewReader(raw), &bodies, true)
	} else {
		var one accessBody
		err = apierr.Decode(bytes.NewReader(raw), &one, true)
		bodies = []accessBody{one}
	}
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	accs := make([]Access, len(bodies))
	for i, b := range bodies {
		accs[i] = Access{Dataset: b.Dataset, Site: b.Site, Count: b.Count, At: time.Now()}
		if accs[i].Count == 0 {
			accs[i].Count = 1
		}
		if b.At != "" {
			t, err := time.Parse(time.RFC3339, b.At)
			if err != nil {
				field := "at"
				if raw[0] == '[' {
					field = "[" + strconv.Itoa(i) + "].at"
				}
				apierr.Abort(c, &apierr.FieldError{Field: field, Msg: "want RFC 3339, got " + strconv.Quote(b.At)})
				return
			}
			accs[i].At = t
		}
	}
	if err := RecordAccess(c.Request.Context(), a.d, accs...); err != nil {
		apierr.Abort(c, err)
		return
	}
	ok(c, gin.H{"recorded": len(accs)})
}

func (a *restAPI) cycles(c *gin.Context) {
	limit, err := intParam(c, "limit", 100)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	cs, err := a.h.Cycles(c.Request.Context(), c.Query("partition"), limit)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	ok(c, cs)
}

func (a *restAPI) cycle(c *gin.Context) {
	id, err := cycleID(c)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	cy, err := a.h.Cycle(c.Request.Context(), id)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	ok(c, cy)
}

func (a *restAPI) sites(c *gin.Context) {
	id, err := cycleID(c)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	if _, err := a.h.Cycle(c.Request.Context(), id); err != nil {
		apierr.Abort(c, err)
		return
	}
	ss, err := a.h.Sites(c.Request.Context(), id)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	ok(c, ss)
}

func (a *restAPI) replicas(c *gin.Context) {
	id, err := cycleID(c)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	limit, err := intParam(c, "limit", 1000)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	offset, err := intParam(c, "offset", 0)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	rs, err := a.h.Replicas(c.Request.Context(), id, c.Query("site"), c.Query("dataset"), limit, offset)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	ok(c, rs)
}

// DiffRoutes mounts POST /diff on rg: a DiffRequest body planned on the
// current snapshot, answered with the DiffReport. It only reads (nothing
// is recorded or deleted), so any server answers it, writer or not.
func (r *Runner) DiffRoutes(rg *gin.RouterGroup) {
	rg.POST("/diff", func(c *gin.Context) {
		var req DiffRequest
		if err := apierr.DecodeJSON(c, &req); err != nil {
			apierr.Abort(c, err)
			return
		}
		rep, err := r.DiffTexts(c.Request.Context(), r.Store.Snapshot(), req)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, rep)
	})
}
