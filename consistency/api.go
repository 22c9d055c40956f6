package consistency

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
)

// Routes mounts the consistency endpoints on rg (the lead mounts them at
// /api/v1/consistency; authentication is applied around the group):
//
//	GET /sites                     configured sites, each with its last run
//	GET /runs?site=NAME&limit=N    runs, newest first
//	GET /runs/:id                  one run: counts, volumes, actions taken, and the list names
//	GET /runs/:id/lists/:list      a list as NDJSON (missing, orphans, size_mismatch,
//	                               checksum_mismatch, stalled, empty_dirs, actions)
//
// Runs are started by the scheduler (application consistency:<site>) or
// `dynamo consistency run`, not here. Success bodies are {"status":
// "success", "data": ...}; errors are the API's one envelope (package
// apierr) with 400, 404 or 500.
func Routes(rg *gin.RouterGroup, c *Checker) {
	rg.GET("/sites", c.hSites)
	rg.GET("/runs", c.hRuns)
	rg.GET("/runs/:id", c.hRun)
	rg.GET("/runs/:id/lists/:list", c.hList)
}

// SiteStatus is an entry of GET /sites.
type SiteStatus struct {
	Site    string     `json:"site"`
	Paths   []string   `json:"paths"`
	LastRun *RunRecord `json:"last_run,omitempty"`
}

// RunDetail is the body of GET /runs/:id.
type RunDetail struct {
	RunRecord
	Lists []string `json:"lists"`
}

func apiOK(c *gin.Context, data any) { c.JSON(http.StatusOK, gin.H{"status": "success", "data": data}) }

// SiteStatuses returns every configured site with its last run: the body
// of GET /sites, and the console's consistency page.
func (ch *Checker) SiteStatuses(ctx context.Context) ([]SiteStatus, error) {
	names := make([]string, 0, len(ch.cfg.Sites))
	for n := range ch.cfg.Sites {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]SiteStatus, 0, len(names))
	for _, n := range names {
		st := SiteStatus{Site: n, Paths: ch.cfg.Sites[n].Paths}
		runs, err := ListRuns(ctx, ch.db, n, 1)
		if err != nil {
			return nil, err
		}
		if len(runs) > 0 {
			st.LastRun = &runs[0]
		}
		out = append(out, st)
	}
	return out, nil
}

// Runs lists runs of a site ("" any), newest first.
func (ch *Checker) Runs(ctx context.Context, site string, limit int) ([]RunRecord, error) {
	return ListRuns(ctx, ch.db, site, limit)
}

func (ch *Checker) hSites(c *gin.Context) {
	out, err := ch.SiteStatuses(c.Request.Context())
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	apiOK(c, out)
}

func (ch *Checker) hRuns(c *gin.Context) {
	limit := 100
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			apierr.Abort(c, &apierr.FieldError{Field: "limit", Msg: fmt.Sprintf("want 1..1000, got %q", s)})
			return
		}
		limit = n
	}
	runs, err := ListRuns(c.Request.Context(), ch.db, c.Query("site"), limit)
	if err != nil {
		apierr.Abort(c, err)
		return
	}
	apiOK(c, runs)
}

func (ch *Checker) runParam(c *gin.Context) (RunRecord, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		apierr.Abort(c, &apierr.FieldError{Field: "id", Msg: fmt.Sprintf("run id %q is not a number", c.Param("id"))})
		return RunRecord{}, false
	}
	r, err := GetRun(c.Request.Context(), ch.db, id)
	if err != nil {
		apierr.Abort(c, err)
		return r, false
	}
	return r, true
}

func (ch *Checker) hRun(c *gin.Context) {
	r, ok := ch.runParam(c)
	if !ok {
		return
	}
	d := RunDetail{RunRecord: r, Lists: []string{}}
	for _, l := range Lists {
		if _, err := os.Stat(filepath.Join(r.WorkDir, "report", l+".ndjson")); err == nil {
			d.Lists = append(d.Lists, l)
		}
	}
	apiOK(c, d)
}

func (ch *Checker) hList(c *gin.Context) {
	list := c.Param("list")
	if !slices.Contains(Lists, list) {
		apierr.Abort(c, &apierr.FieldError{Field: "list", Msg: fmt.Sprintf("%q: want one of %v", list, Lists)})
		return
	}
	r, ok := ch.runParam(c)
	if !ok {
		return
	}
	p := filepath.Join(r.WorkDir, "report", list+".ndjson")
	if _, err := os.Stat(p); err != nil {
		apierr.Abort(c, fmt.Errorf("%w: run %d has no %s list (not reached, or pruned)", apierr.ErrNotFound, r.ID, list))
		return
	}
	c.Header("Content-Type", "application/x-ndjson")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="consistency-%d-%s.ndjson"`, r.ID, list))
	c.File(p)
}
