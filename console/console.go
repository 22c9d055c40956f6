// Package console is the operator console: HTML pages served by `dynamo
// serve` at / (federation, sites, Detox, Dealer, transfers, requests,
// consistency, scheduler), rendered on the server from templates and
// SVG charts embedded in the binary, so it works offline and needs no
// JavaScript toolchain.
//
// The console owns no data and writes nothing itself. It reads through
// the same query functions the REST API uses (narrow interfaces below,
// satisfied by the packages that own the data), and its few actions call
// the same functions the REST routes call. Authentication, authorization
// and CSRF checks are the registry's middleware (registry.MountPages);
// the console only asks it which actions to show. See docs/console.md.
package console

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Inventory gives the current inventory snapshot (*inventory.Store).
type Inventory interface {
	Snapshot() *inventory.Snapshot
}

// DetoxHistory is the Detox cycle history (*detox.History).
type DetoxHistory interface {
	Cycles(ctx context.Context, partition string, limit int) ([]detox.CycleRow, error)
	Cycle(ctx context.Context, id int64) (*detox.CycleRow, error)
	Sites(ctx context.Context, id int64) ([]detox.CycleSiteRow, error)
	Replicas(ctx context.Context, id int64, site, dataset string, limit, offset int) ([]detox.CycleReplicaRow, error)
	SiteHistory(ctx context.Context, site string, limit int) ([]detox.SiteCycle, error)
	DatasetDecisions(ctx context.Context, dataset string, limit int) ([]detox.CycleReplicaRow, error)
}

// Watermarks gives the Detox watermarks of the configured partitions
// (*detox.Runner).
type Watermarks interface {
	Watermarks(snap *inventory.Snapshot, at time.Time) ([]detox.Watermark, error)
}

// DealerHistory is the Dealer cycle history (*dealer.History).
type DealerHistory interface {
	Cycles(ctx context.Context, limit, offset int) ([]dealer.CycleRecord, error)
	Cycle(ctx context.Context, id int64) (dealer.CycleRecord, error)
	Proposals(ctx context.Context, id int64, f dealer.ProposalFilter) ([]dealer.ProposalRecord, error)
}

// Transfers is the file-operation queue (*fileop.API): its queries, and
// the release and cancel actions exactly as POST /api/v1/fileop/release
// and /cancel perform them.
type Transfers interface {
	Status(ctx context.Context) ([]fileop.StatusRow, error)
	Held(ctx context.Context, limit int) ([]fileop.Subscription, error)
	Queue(ctx context.Context) ([]fileop.LinkRow, error)
	Throughput(ctx context.Context, since time.Time, width time.Duration) ([]fileop.ThroughputPoint, error)
	Release(ctx context.Context, ids []int64, reason fileop.HoldReason) (int, error)
	Cancel(ctx context.Context, ids []int64) (int, error)
}

// Requests are the registry's copy and deletion requests (*registry.Store).
type Requests interface {
	ListRequests(ctx context.Context, f registry.RequestFilter) ([]registry.Request, error)
}

// Consistency is the consistency checker (*consistency.Checker).
type Consistency interface {
	SiteStatuses(ctx context.Context) ([]consistency.SiteStatus, error)
	Runs(ctx context.Context, site string, limit int) ([]consistency.RunRecord, error)
}

// Scheduler is the application scheduler (*scheduler.Scheduler).
type Scheduler interface {
	Status(ctx context.Context) (scheduler.Status, error)
	Apps(ctx context.Context) ([]scheduler.AppInfo, error)
	Runs(ctx context.Context, f scheduler.RunFilter) ([]scheduler.Run, error)
}

// Area is a storage area of an embedded storage element.
type Area struct {
	Name, Prefix, Latency, Retention string
	Used                             int64
	Free                             int64 // -1: unlimited
}

// StorageAreas gives the areas of the embedded storage element serving a
// site (none when the site is not one of ours).
type StorageAreas interface {
	StorageAreas(site string) []Area
}

// Access answers whether the caller may send method to a route path: the
// registry's authorization table (*registry.Server).
type Access interface {
	Allowed(c *gin.Context, method, path string) bool
}

// Sources are where the pages read from. Only Inventory is required; a
// page whose source is nil says the component is not running.
type Sources struct {
	Inventory    Inventory
	Detox        DetoxHistory
	Watermarks   Watermarks
	Dealer       DealerHistory
	Transfers    Transfers
	Requests     Requests
	Consistency  Consistency
	Scheduler    Scheduler
	StorageAreas StorageAreas
	PolicyDiff   PolicyDiff
}

// Options are what New needs.
type Options struct {
	Sources
	Access Access
	Log    *logrus.Entry
	Now    func() time.Time
}

// Console serves the pages. Create it with New and mount Routes with
// registry.Server.MountPages.
type Console struct {
	src    Sources
	access Access
	log    *logrus.Entry
	now    func() time.Time
	pages  map[string]*template.Template
	static http.Handler

	// Aggregates the federation page needs that are not in the inventory's
	// per-site counters: kept for a few seconds so that a page load costs
	// one map lookup, not a database scan or a policy parse.
	mu        sync.Mutex
	queue     cached[[]fileop.LinkRow]
	watermark cached[[]detox.Watermark]
}

type cached[T any] struct {
	at      time.Time
	seq     uint64
	val     T
	err     error
	loading bool // a background refresh is running
}

// refreshEvery is how stale the cached aggregates may be.
const refreshEvery = 5 * time.Second

// New parses the embedded templates.
func New(o Options) (*Console, error) {
	if o.Inventory == nil {
		return nil, fmt.Errorf("console: no inventory")
	}
	if o.Access == nil {
		return nil, fmt.Errorf("console: no access table")
	}
	if o.Log == nil {
		o.Log = logrus.NewEntry(logrus.New())
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{src: o.Sources, access: o.Access, log: o.Log, now: o.Now, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		c.pages[n[len("templates/"):len(n)-len(".html")]] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	return c, nil
}

// Action paths, as registered; pages ask Access about them.
const (
	pathRelease = "/transfers/release"
	pathCancel  = "/transfers/cancel"
)

// Routes registers the pages on rg, the root group of MountPages("/").
// GET routes need the registry's read permission; the POST actions the
// write permission MountPages was given (the one fileop's REST routes
// have).
func (c *Console) Routes(rg *gin.RouterGroup) {
	rg.GET("/", c.federation)
	rg.GET("/sites/:site", c.site)
	detox := c.running(c.src.Detox != nil, "detox", "Detox", "Detox")
	dealer := c.running(c.src.Dealer != nil, "dealer", "Dealer", "The Dealer")
	transfers := c.running(c.src.Transfers != nil, "transfers", "Transfers", "The file-operation daemon")
	rg.GET("/detox", detox(c.detoxCycles))
	rg.GET("/detox/cycles/:id", detox(c.detoxCycle))
	rg.GET("/detox/explain", c.running(c.src.Detox != nil, "detox_explain", "Detox", "Detox")(c.detoxExplain))
	diff := c.running(c.src.PolicyDiff != nil, "detox_diff", "Detox", "Detox")
	rg.GET(PathDiff, diff(c.detoxDiff))
	rg.POST(PathDiff, diff(c.detoxDiff))
	rg.GET("/dealer", dealer(c.dealerCycles))
	rg.GET("/dealer/cycles/:id", dealer(c.dealerCycle))
	rg.GET("/transfers", transfers(c.transfers))
	rg.POST(pathRelease, transfers(c.release))
	rg.POST(pathCancel, transfers(c.cancel))
	rg.GET("/requests", c.running(c.src.Requests != nil, "requests", "Requests", "The request registry")(c.requests))
	rg.GET("/consistency", c.running(c.src.Consistency != nil, "consistency", "Consistency", "The consistency checker")(c.consistency))
	rg.GET("/scheduler", c.running(c.src.Scheduler != nil, "scheduler", "Scheduler", "The scheduler")(c.scheduler))
	rg.GET("/login", c.login)
	rg.GET("/static/*file", func(g *gin.Context) {
		g.Header("Cache-Control", "public, max-age=3600")
		c.static.ServeHTTP(g.Writer, g.Request)
	})
	// Where operators used to look for a dashboard.
	for _, p := range []string{"/ui", "/dashboard", "/web"} {
		rg.GET(p, func(g *gin.Context) { g.Redirect(http.StatusMovedPermanently, "/") })
	}
}

// page is what every template gets.
type page struct {
	Title  string
	Nav    string
	User   string
	CSRF   string
	Path   string
	Notice string
	Data   any
}

func (c *Console) render(g *gin.Context, code int, name, title string, data any) {
	c.renderAs(g, code, name, name, title, data)
}

// renderAs renders template name with the navigation of page nav.
func (c *Console) renderAs(g *gin.Context, code int, name, nav, title string, data any) {
	t, ok := c.pages[name]
	if !ok {
		c.RenderError(g, http.StatusInternalServerError, "no template "+name)
		return
	}
	user, _ := registry.Caller(g)
	p := page{Title: title, Nav: nav, User: user, CSRF: registry.CSRFToken(g), Path: g.Request.URL.RequestURI(), Data: data}
	g.Header("Content-Type", "text/html; charset=utf-8")
	g.Header("X-Frame-Options", "DENY")
	g.Header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	g.Status(code)
	if err := t.Execute(g.Writer, p); err != nil {
		c.log.WithError(err).WithField("page", name).Error("render page")
	}
}

// RenderError renders an error page; the registry calls it for page
// routes (401, 403, 404, 500...). Internal errors show no detail.
func (c *Console) RenderError(g *gin.Context, code int, msg string) {
	t, ok := c.pages["error"]
	if !ok {
		g.String(code, msg)
		return
	}
	g.Header("Content-Type", "text/html; charset=utf-8")
	g.Status(code)
	data := struct {
		Code   int
		Status string
		Msg    string
		SignIn bool
	}{code, http.StatusText(code), msg, code == http.StatusUnauthorized || code == http.StatusForbidden}
	user, _ := registry.Caller(g)
	if err := t.Execute(g.Writer, page{Title: http.StatusText(code), User: user, Path: g.Request.URL.RequestURI(), Data: data}); err != nil {
		c.log.WithError(err).Error("render error page")
	}
}

// fail renders err as an error page: the console's own errors (a source
// failing) are 500s whose detail goes to the log, not the browser.
func (c *Console) fail(g *gin.Context, code int, err error) {
	if code >= 500 {
		c.log.WithError(err).WithField("path", g.Request.URL.Path).Error("console page failed")
		c.RenderError(g, code, "internal error; see the server log")
		return
	}
	c.RenderError(g, code, err.Error())
}

func (c *Console) login(g *gin.Context) {
	data := struct {
		Next, Error string
	}{localPath(g.Query("next")), ""}
	switch g.Query("error") {
	case "empty":
		data.Error = "Enter a token."
	case "refused":
		data.Error = "That token was not accepted."
	}
	c.render(g, http.StatusOK, "login", "Sign in", data)
}

func localPath(p string) string {
	if len(p) == 0 || p[0] != '/' || (len(p) > 1 && (p[1] == '/' || p[1] == '\\')) {
		return "/"
	}
	return p
}
