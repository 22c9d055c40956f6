package scheduler

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
)

// UserKey is the gin context key under which the authentication layer
// (the registry, around the route group) is expected to store the caller's
// name; pause and run-now record it. Without it the request body's "by"
// field, then the client address, is used.
const UserKey = "user"

// Routes mounts the application endpoints on rg (the lead mounts them at
// /api/v1/apps; authentication and authorization are applied around the
// group, not here):
//
//	GET  ""              status (server, leader, lease) and every app with schedules, pause and last run
//	GET  /runs           run history: ?app= &status= &since= &until= (RFC 3339 or unix seconds) &before=ID &limit=N
//	GET  /runs/:id       one run
//	GET  /:name          one app
//	GET  /:name/runs     the app's runs (same filters)
//	POST /:name/pause    {"reason": "...", "by": "..."}: pause (scheduled runs are skipped and recorded)
//	POST /:name/resume   lift the pause
//	POST /:name/run      {"args": [...], "timeout": "10m", "read_only": false, "wait": false}: run now;
//	                     202 with the queued run, or 200 with the ended run when wait is true
//
// Success bodies are {"status": "success", "data": ...}; errors are the
// API's one envelope (package apierr) with 400 (bad input), 404 (unknown
// app or run), 409 (code paused, or code not_leader: the holder is named,
// retry there), 503 (shutting down), 500 otherwise. Bodies are decoded
// strictly; every body field is optional.
func (s *Scheduler) Routes(rg *gin.RouterGroup) {
	rg.GET("", s.hList)
	rg.GET("/runs", s.hRuns)
	rg.GET("/runs/:id", s.hRun)
	rg.GET("/:name", s.hApp)
	rg.GET("/:name/runs", s.hRuns)
	rg.POST("/:name/pause", s.hPause)
	rg.POST("/:name/resume", s.hResume)
	rg.POST("/:name/run", s.hRunNow)
}

// ListResponse is the body of GET "" (inside data).
type ListResponse struct {
	Status
	Apps []AppInfo `json:"apps"`
}

// RunsResponse is the body of the run listings (inside data). NextBefore,
// when non-zero, is the ?before= value of the next page.
type RunsResponse struct {
	Runs       []Run `json:"runs"`
	NextBefore int64 `json:"next_before,omitempty"`
}

func ok(c *gin.Context, code int, data any) {
	c.JSON(code, gin.H{"status": "success", "data": data})
}

// failErr records err for the REST server's one error mapper (package
// apierr); a run-now on a standby names the lead to retry at.
func (s *Scheduler) failErr(c *gin.Context, err error) {
	if errors.Is(err, ErrNotLeader) {
		st, _ := s.Status(c.Request.Context())
		c.Header("Retry-After", strconv.Itoa(int(s.cfg.Heartbeat.Seconds())+1))
		err = &apierr.Error{Kind: apierr.ErrConflict, Code: "not_leader", Msg: err.Error() + "; the holder is " + st.Lease.Holder,
			Holder: st.Lease.Holder, Err: err}
	}
	apierr.Abort(c, err)
}

func badQuery(c *gin.Context, field, msg string) {
	apierr.Abort(c, &apierr.FieldError{Field: field, Msg: msg})
}

func (s *Scheduler) hList(c *gin.Context) {
	ctx := c.Request.Context()
	st, err := s.Status(ctx)
	if err != nil {
		s.failErr(c, err)
		return
	}
	apps, err := s.Apps(ctx)
	if err != nil {
		s.failErr(c, err)
		return
	}
	ok(c, http.StatusOK, ListResponse{Status: st, Apps: apps})
}

func (s *Scheduler) hApp(c *gin.Context) {
	name := c.Param("name")
	if _, err := s.lookup(name); err != nil {
		s.failErr(c, err)
		return
	}
	apps, err := s.Apps(c.Request.Context())
	if err != nil {
		s.failErr(c, err)
		return
	}
	for _, a := range apps {
		if a.Name == name {
			ok(c, http.StatusOK, a)
			return
		}
	}
	s.failErr(c, ErrUnknownApp)
}

// parseTime accepts RFC 3339 or unix seconds.
func parseTime(v string) (time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Parse(time.RFC3339, v)
}

func (s *Scheduler) hRuns(c *gin.Context) {
	f := RunFilter{App: c.Query("app"), Status: c.Query("status")}
	if name := c.Param("name"); name != "" {
		if _, err := s.lookup(name); err != nil {
			s.failErr(c, err)
			return
		}
		f.App = name
	}
	for _, p := range []struct {
		key string
		dst *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := c.Query(p.key); v != "" {
			t, err := parseTime(v)
			if err != nil {
				badQuery(c, p.key, "want RFC 3339 or unix seconds, got "+strconv.Quote(v))
				return
			}
			*p.dst = t
		}
	}
	for _, p := range []struct {
		key string
		dst *int64
	}{{"before", &f.BeforeID}} {
		if v := c.Query(p.key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				badQuery(c, p.key, "want a run id, got "+strconv.Quote(v))
				return
			}
			*p.dst = n
		}
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxRunsPage {
			badQuery(c, "limit", "want 1.."+strconv.Itoa(MaxRunsPage)+", got "+strconv.Quote(v))
			return
		}
		f.Limit = n
	}
	switch f.Status {
	case "", StatusQueued, StatusRunning, StatusOK, StatusFailed, StatusTimeout, StatusCancelled, StatusSkipped, StatusAbandoned:
	default:
		badQuery(c, "status", "unknown value "+strconv.Quote(f.Status))
		return
	}
	runs, err := s.Runs(c.Request.Context(), f)
	if err != nil {
		s.failErr(c, err)
		return
	}
	resp := RunsResponse{Runs: runs}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	if len(runs) == limit {
		resp.NextBefore = runs[len(runs)-1].ID
	}
	ok(c, http.StatusOK, resp)
}

func (s *Scheduler) hRun(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		badQuery(c, "id", "want a run id, got "+strconv.Quote(c.Param("id")))
		return
	}
	r, err := s.GetRun(c.Request.Context(), id)
	if err != nil {
		s.failErr(c, err)
		return
	}
	ok(c, http.StatusOK, r)
}

func caller(c *gin.Context, body string) string {
	if u := c.GetString(UserKey); u != "" {
		return u
	}
	if body != "" {
		return body
	}
	return c.ClientIP()
}

// PauseRequest is the body of POST /:name/pause.
type PauseRequest struct {
	Reason string `json:"reason"`
	By     string `json:"by"`
}

func (s *Scheduler) hPause(c *gin.Context) {
	var req PauseRequest
	if err := apierr.DecodeOptionalJSON(c, &req); err != nil {
		apierr.Abort(c, err)
		return
	}
	l, err := s.Pause(c.Request.Context(), c.Param("name"), caller(c, req.By), req.Reason)
	if err != nil {
		s.failErr(c, err)
		return
	}
	ok(c, http.StatusOK, l)
}

func (s *Scheduler) hResume(c *gin.Context) {
	if err := apierr.NoBody(c); err != nil {
		apierr.Abort(c, err)
		return
	}
	was, err := s.Resume(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	ok(c, http.StatusOK, gin.H{"app": c.Param("name"), "was_paused": was})
}

// RunNowRequest is the body of POST /:name/run.
type RunNowRequest struct {
	Args     []string `json:"args"`
	Timeout  string   `json:"timeout"` // Go duration; "" for the app's
	ReadOnly bool     `json:"read_only"`
	Wait     bool     `json:"wait"`
	By       string   `json:"by"`
}

func (s *Scheduler) hRunNow(c *gin.Context) {
	var req RunNowRequest
	if err := apierr.DecodeOptionalJSON(c, &req); err != nil {
		apierr.Abort(c, err)
		return
	}
	var timeout time.Duration
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			badQuery(c, "timeout", "want a positive duration such as 10m, got "+strconv.Quote(req.Timeout))
			return
		}
		timeout = d
	}
	r, err := s.RunNow(c.Request.Context(), RunRequest{App: c.Param("name"), Args: req.Args, Timeout: timeout,
		ReadOnly: req.ReadOnly, By: caller(c, req.By), Wait: req.Wait})
	if err != nil {
		if errors.Is(err, ErrPaused) && r.ID != 0 {
			err = fmt.Errorf("%w (recorded as skipped run %d)", err, r.ID)
		}
		s.failErr(c, err)
		return
	}
	code := http.StatusAccepted
	if r.Ended != nil {
		code = http.StatusOK
	}
	ok(c, code, r)
}
