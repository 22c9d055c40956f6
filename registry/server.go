// Package registry is dynamo's REST API: the inventory read endpoints, copy
// and deletion requests, detox locks and injection under /api/v1, Dynamo's
// /data/... compatibility aliases, health, metrics and the OpenAPI
// document; authentication by X.509 (with RFC 3820 proxies), static tokens
// and JWTs; authorization by (role, target) in one middleware. It also
// owns the registry tables (requests, locks, queued injections) and their
// Go API for the Dealer and Detox (Store).
//
// Other components add routes with Server.Mount. See docs/api.md.
package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/gridauth"
	"github.com/dynamo-go/dynamo/inventory"
)

// Options are what New needs.
type Options struct {
	Config Config        // validated
	DB     *db.DB        // the registry tables (migrated)
	Log    *logrus.Entry // with a "component" field
	// Inventory may be nil: inventory reads and all writes then answer
	// 503 (not ready) rather than failing on a missing store.
	Inventory *inventory.Store
	// Certs overrides the client-certificate verifier built from
	// Config.TLS.CADir (tests).
	Certs CertVerifier
	// Metrics is the registry to register the API's metrics in and serve
	// at /metrics; New creates one when nil.
	Metrics *prometheus.Registry
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
	// MayWrite, when set, says whether this process may write now; a
	// write route (any method but GET and HEAD) is refused with its error,
	// before its handler runs. `dynamo serve` sets it to the scheduler's
	// writer-lease fence, so a standby answers every write with 503
	// not_writer, the holder's name and Retry-After.
	MayWrite func() error
}

// Server is the REST API. Create it with New, add routes with Mount, then
// Run it (or serve Handler yourself).
type Server struct {
	cfg   Config
	log   *logrus.Entry
	store *Store
	inv   atomic.Pointer[inventory.Store]
	// appLocks serves Dynamo's applock routes (SetAppLocks).
	appLocks atomic.Pointer[AppLocker]
	engine   *gin.Engine
	authn    *authn
	metrics  *prometheus.Registry
	now      func() time.Time
	tlsCfg   *tls.Config

	mayWrite func() error

	mu      sync.RWMutex
	mounted map[string]bool // prefixes given to Mount
	needs   map[string]Need // "METHOD path" -> requirement
	docs    []routeDoc      // for the OpenAPI document

	// dbTimeout bounds each database call of a request (Config.DBTimeout).
	dbTimeout time.Duration
	pages     map[string]PageErrorFunc // page route path -> its error renderer (MountPages)
	csrfKey   [32]byte

	usage    usageCache
	snapResp snapResponses
	reqs     *prometheus.HistogramVec
}

// New builds the server and registers every route.
func New(o Options) (*Server, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = logrus.NewEntry(logrus.New()).WithField("component", "registry")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.NewRegistry()
	}
	certs := o.Certs
	if certs == nil && o.Config.TLS.CADir != "" {
		cas, err := gridauth.LoadCADir(o.Config.TLS.CADir)
		if err != nil {
			return nil, fmt.Errorf("registry.tls.ca_dir: %w", err)
		}
		if o.Config.TLS.VOMSDir != "" {
			trust, err := gridauth.LoadVOMSDir(o.Config.TLS.VOMSDir)
			if err != nil {
				return nil, fmt.Errorf("registry.tls.voms_dir: %w", err)
			}
			cas.SetVOMSTrust(trust)
		}
		certs = caVerifier{cas}
	}
	a, err := newAuthn(&o.Config, certs)
	if err != nil {
		return nil, err
	}
	dbTimeout := o.Config.dbTimeout()
	s := &Server{cfg: o.Config, log: o.Log, store: NewStore(o.DB), authn: a, metrics: o.Metrics, now: o.Now,
		needs: map[string]Need{}, mounted: map[string]bool{}, dbTimeout: dbTimeout, mayWrite: o.MayWrite, csrfKey: newCSRFKey()}
	if o.Inventory != nil {
		s.inv.Store(o.Inventory)
	}
	if o.Config.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(o.Config.TLS.Cert, o.Config.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("registry.tls: %w", err)
		}
		// RequestClientCert, not RequireAndVerify: Go cannot verify RFC 3820
		// proxies, so the auth middleware verifies chains with gridauth,
		// and clients without certificates may still use tokens.
		s.tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}
	}
	s.reqs = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dynamo_api_request_duration_seconds", Help: "REST API request latency by route, method and status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route", "method", "code"})
	if err := s.metrics.Register(s.reqs); err != nil {
		return nil, fmt.Errorf("registry metrics: %w", err)
	}

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	// Dataset and block names contain '/' and '#': clients escape them in
	// path segments (%2F, %23) and gin matches on the raw path.
	e.UseRawPath = true
	e.UnescapePathValues = true
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	// Client addresses are the TCP peers: the anonymous-read policy must
	// not be talked into "loopback" by an X-Forwarded-For header.
	_ = e.SetTrustedProxies(nil)
	// Order matters: metrics see the final status; errorMiddleware maps
	// what everything inside it records, including recovered panics.
	e.Use(s.metricsMiddleware, s.errorMiddleware, s.recoverMiddleware, s.limitMiddleware, s.dbDeadlineMiddleware, s.authMiddleware)
	s.engine = e
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.engine }

// Routes lists every route registered on the engine: this package's,
// mounted components' and pages.
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }

// TLSConfig returns the server's TLS configuration (nil for plain HTTP).
func (s *Server) TLSConfig() *tls.Config { return s.tlsCfg }

// Store returns the registry tables' Go API (requests, locks, injections)
// for other components.
func (s *Server) Store() *Store { return s.store }

// Metrics returns the Prometheus registry served at /metrics; other
// components register their collectors in it.
func (s *Server) Metrics() *prometheus.Registry { return s.metrics }

// SetWriteFence sets Options.MayWrite (for a caller that builds the
// writer after the server). Call it before Run.
func (s *Server) SetWriteFence(mayWrite func() error) { s.mayWrite = mayWrite }

func (s *Server) snapshot() (*inventory.Snapshot, error) {
	st := s.inv.Load()
	if st == nil {
		return nil, fmt.Errorf("%w: the inventory is still loading", ErrNotReady)
	}
	return st.Snapshot(), nil
}

// routeDoc describes one route for the OpenAPI document.
type routeDoc struct {
	Method, Path, Summary, Tag string
	Need                       Need
	Query                      []string // query parameter names
	Body                       string   // request body description, "" for none
}

// handle registers a route with its requirement and documentation. Every
// route of this package goes through here, so the OpenAPI document and the
// authorization table cannot miss one.
func (s *Server) handle(d routeDoc, h gin.HandlerFunc) {
	s.mu.Lock()
	s.needs[d.Method+" "+d.Path] = d.Need
	s.docs = append(s.docs, d)
	s.mu.Unlock()
	s.engine.Handle(d.Method, d.Path, h)
}

func (s *Server) needFor(method, path string) (Need, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.needs[method+" "+path]
	if !ok && method == http.MethodHead {
		n, ok = s.needs[http.MethodGet+" "+path]
	}
	return n, ok
}

// MarkReadOnly declares that a mounted route only reads although its
// method is not GET (a POST whose body is a query, such as a policy
// diff): it keeps its permission but the write fence does not apply, so
// a server that is not the inventory writer answers it too. It reports
// false for a route that is not registered. Call it after Mount or
// MountPages and before Run.
func (s *Server) MarkReadOnly(method, path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.needs[method+" "+path]
	if !ok {
		return false
	}
	n.ReadOnly = true
	s.needs[method+" "+path] = n
	return true
}

// DescribeRoute sets the OpenAPI summary and body description of a
// mounted route (Mount documents them generically). It reports false for
// a route that is not registered.
func (s *Server) DescribeRoute(method, path, summary, body string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.docs {
		if d := &s.docs[i]; d.Method == method && d.Path == path {
			d.Summary, d.Body = summary, body
			return true
		}
	}
	return false
}

// Mount lets another component add routes under prefix (e.g. "/api/v1/apps"):
// routes receives a router group for the prefix. Every route added gets
// perm.Read if its method is GET or HEAD and perm.Write otherwise, checked
// by the one authorization middleware, and appears in the OpenAPI document
// (tagged with the prefix). Handlers find the caller's name under the gin
// context key UserKey, decode bodies with apierr.DecodeJSON (bounded by
// body_limit) and record errors with apierr.Abort: the server answers
// them in the one error envelope. Mount must be called before Run; it panics on a
// prefix outside /api/ (component routes are versioned API routes). A
// second Mount of the same prefix is ignored (and reported false), so two
// places wiring the same component cannot crash the server.
func (s *Server) Mount(prefix string, perm Permission, routes func(rg *gin.RouterGroup)) bool {
	if !strings.HasPrefix(prefix, "/api/") {
		panic(fmt.Sprintf("registry: Mount(%q): prefix must start with /api/", prefix))
	}
	s.mu.Lock()
	dup := s.mounted[prefix]
	s.mounted[prefix] = true
	s.mu.Unlock()
	if dup {
		s.log.WithField("prefix", prefix).Warn("routes already mounted; ignoring the second Mount")
		return false
	}
	before := map[string]bool{}
	for _, r := range s.engine.Routes() {
		before[r.Method+" "+r.Path] = true
	}
	routes(s.engine.Group(prefix))
	for _, r := range s.engine.Routes() {
		if before[r.Method+" "+r.Path] {
			continue
		}
		need := perm.Write
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			need = perm.Read
		}
		s.mu.Lock()
		s.needs[r.Method+" "+r.Path] = need
		s.docs = append(s.docs, routeDoc{Method: r.Method, Path: r.Path, Need: need, Tag: prefix,
			Summary: "Mounted by the component serving " + prefix})
		s.mu.Unlock()
	}
	return true
}

// Run serves on the configured address until ctx ends, then shuts down
// gracefully: new connections are refused and requests in flight get up
// to 10 seconds to finish.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener (tests use 127.0.0.1:0).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// The writer is a pipe drained by a goroutine of its own: closed when
	// the server is done with it, or every Serve leaves one behind.
	errLog := s.log.WriterLevel(logrus.DebugLevel)
	defer errLog.Close()
	srv := &http.Server{Handler: s.engine, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		TLSConfig: s.tlsCfg, ErrorLog: stdlog.New(errLog, "", 0)}
	s.log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "tls": s.tlsCfg != nil}).Info("REST API listening")
	errc := make(chan error, 1)
	go func() {
		if s.tlsCfg != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	s.log.Info("REST API stopped")
	return nil
}

// limitMiddleware bounds every request body (apierr.SetBodyLimit): the
// injection routes by inject_body_limit, every other route, mounted ones
// included, by body_limit.
func (s *Server) limitMiddleware(c *gin.Context) {
	limit := s.cfg.BodyLimit
	if injectRoutes[c.FullPath()] {
		limit = s.cfg.InjectBodyLimit
	}
	apierr.SetBodyLimit(c, limit)
	c.Next()
}

// dbDeadlineMiddleware bounds every database call the request makes,
// in this package and in mounted components alike (see db.WithCallTimeout):
// a stalled database fails the request with 503 instead of holding it.
func (s *Server) dbDeadlineMiddleware(c *gin.Context) {
	ctx, cancel := db.WithCallTimeout(c.Request.Context(), s.dbTimeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// ready answers /readyz: the inventory is loaded and the database answers
// a probe query within the request deadline.
func (s *Server) ready(c *gin.Context) {
	snap, err := s.snapshot()
	if err != nil {
		s.abort(c, err)
		return
	}
	if err := s.store.Probe(c.Request.Context()); err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "seq": snap.Seq()})
}

func (s *Server) metricsMiddleware(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.reqs.WithLabelValues(route, c.Request.Method, fmt.Sprint(c.Writer.Status())).Observe(time.Since(start).Seconds())
}

// recoverMiddleware turns a handler panic into an internal error for
// errorMiddleware instead of a dropped connection.
func (s *Server) recoverMiddleware(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				panic(p)
			}
			s.abort(c, fmt.Errorf("handler panicked: %v", p))
		}
	}()
	c.Next()
}
