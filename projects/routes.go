package projects

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/caller"
)

// Routes mounts the project protocol on rg (the lead mounts it at
// /api/v1/projects):
//
//	GET    /                                  list of project summaries
//	POST   /                                  start: JSON StartRequest → 201 Summary
//	GET    /:name                             summary (also /:name/summary)
//	GET    /:name/recovery                    {"files": [LFNs not consumed]}
//	POST   /:name/end                         end → Summary
//	POST   /:name/processes                   establish: {"name": "..."} → 201 {"cpid": N}
//	POST   /:name/processes/:cpid/next        getNextFile: 200 URL (text: "URL\nLFN\n";
//	                                          JSON with Accept: application/json),
//	                                          202 + Retry-After, 204 no more
//	POST   /:name/processes/:cpid/files       updateFileStatus: {"filename", "status": consumed|skipped}
//	POST   /:name/processes/:cpid/end         endProcess: {"status": completed|bad}
//
// A project belongs to the user who started it: only that user or an
// operator may end it, attach processes to it or take and mark its files
// (403 otherwise); anyone may read its summary.
//
// Bodies may also be HTML forms (samweb clients send forms). JSON answers
// are {"status": "success", "data": ...} (as the other dynamo APIs); errors
// are the API's one envelope (package apierr); JSON and form bodies are
// decoded strictly (an unknown field is 400).
func Routes(rg *gin.RouterGroup, m *Manager) {
	rg.GET("", func(c *gin.Context) { okJSON(c, http.StatusOK, m.List(c.Request.Context())) })
	rg.POST("", func(c *gin.Context) {
		var r StartRequest
		if !bind(c, &r, true) {
			return
		}
		r.Owner = caller.Name(c)
		s, err := m.Start(c.Request.Context(), r)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		c.Header("Location", strings.TrimRight(c.Request.URL.Path, "/")+"/"+s.Name)
		okJSON(c, http.StatusCreated, s)
	})
	summary := func(c *gin.Context) {
		s, err := m.Summary(c.Request.Context(), c.Param("name"))
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		okJSON(c, http.StatusOK, s)
	}
	rg.GET("/:name", summary)
	rg.GET("/:name/summary", summary)
	rg.GET("/:name/recovery", func(c *gin.Context) {
		s, err := m.Summary(c.Request.Context(), c.Param("name"))
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		okJSON(c, http.StatusOK, gin.H{"project": s.Name, "files": s.Recovery})
	})
	rg.POST("/:name/end", func(c *gin.Context) {
		if !noBody(c) || !mayUse(c, m) {
			return
		}
		s, err := m.End(c.Request.Context(), c.Param("name"))
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		okJSON(c, http.StatusOK, s)
	})
	rg.POST("/:name/processes", func(c *gin.Context) {
		// The body is checked first: bad input is 400 whoever asks.
		var r struct {
			Name string `json:"name" form:"name"`
		}
		if !bind(c, &r, false) || !mayUse(c, m) {
			return
		}
		id, err := m.EstablishProcess(c.Request.Context(), c.Param("name"), r.Name)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		okJSON(c, http.StatusCreated, gin.H{"cpid": id})
	})
	rg.POST("/:name/processes/:cpid/next", func(c *gin.Context) {
		cpid, valid := cpidParam(c)
		if !valid || !noBody(c) || !mayUse(c, m) {
			return
		}
		d, err := m.NextFile(c.Request.Context(), c.Param("name"), cpid)
		if err != nil {
			apierr.Abort(c, err)
			return
		}
		switch d.Status {
		case Delivered:
			if strings.Contains(c.GetHeader("Accept"), "application/json") {
				okJSON(c, http.StatusOK, d)
				return
			}
			c.String(http.StatusOK, "%s\n%s\n", d.URL, d.LFN)
		case Wait:
			secs := int(d.RetryAfter.Seconds())
			c.Header("Retry-After", strconv.Itoa(secs))
			c.String(http.StatusAccepted, "no file is ready yet; retry after:%d\n", secs)
		default:
			c.Status(http.StatusNoContent)
		}
	})
	rg.POST("/:name/processes/:cpid/files", func(c *gin.Context) {
		cpid, valid := cpidParam(c)
		if !valid {
			return
		}
		var r struct {
			Filename string `json:"filename" form:"filename"`
			Status   string `json:"status" form:"status"`
		}
		if !bind(c, &r, true) || !mayUse(c, m) {
			return
		}
		if err := m.UpdateFileStatus(c.Request.Context(), c.Param("name"), cpid, r.Filename, r.Status); err != nil {
			apierr.Abort(c, err)
			return
		}
		okJSON(c, http.StatusOK, gin.H{"filename": r.Filename, "status": r.Status})
	})
	rg.POST("/:name/processes/:cpid/end", func(c *gin.Context) {
		cpid, valid := cpidParam(c)
		if !valid {
			return
		}
		var r struct {
			Status string `json:"status" form:"status"`
		}
		if !bind(c, &r, false) || !mayUse(c, m) {
			return
		}
		if err := m.EndProcess(c.Request.Context(), c.Param("name"), cpid, r.Status); err != nil {
			apierr.Abort(c, err)
			return
		}
		okJSON(c, http.StatusOK, gin.H{"cpid": cpid, "status": r.Status})
	})
}

// mayUse answers 404 or 403 unless the caller may act on the project of
// the route: the user who started it, or an operator. Projects started
// without an authenticated user are the system's, for operators.
func mayUse(c *gin.Context, m *Manager) bool {
	s, err := m.Summary(c.Request.Context(), c.Param("name"))
	if err != nil {
		apierr.Abort(c, err)
		return false
	}
	if !caller.May(c, s.Owner) {
		owner := "the system"
		if s.Owner != "" {
			owner = "user " + s.Owner
		}
		apierr.Abort(c, fmt.Errorf("%w: project %s belongs to %s; only its owner or an operator may use it", apierr.ErrForbidden, s.Name, owner))
		return false
	}
	return true
}

func okJSON(c *gin.Context, code int, data any) {
	c.JSON(code, gin.H{"status": "success", "data": data})
}

// bind decodes a JSON or form body strictly (apierr.DecodeBody); required
// says whether an empty body is an error.
func bind(c *gin.Context, v any, required bool) bool {
	if err := apierr.DecodeBody(c, v, required); err != nil {
		apierr.Abort(c, err)
		return false
	}
	return true
}

// noBody refuses a body on a route that takes none.
func noBody(c *gin.Context) bool {
	if err := apierr.NoBody(c); err != nil {
		apierr.Abort(c, err)
		return false
	}
	return true
}

func cpidParam(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("cpid"), 10, 64)
	if err != nil || id <= 0 {
		apierr.Abort(c, &apierr.FieldError{Field: "cpid", Msg: "want a positive integer, got " + strconv.Quote(c.Param("cpid"))})
		return 0, false
	}
	return id, true
}
