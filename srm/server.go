// Package srm is the embedded SRM v2.2 storage element: an httpg (TLS + GSI
// flag byte) SOAP endpoint at /srm/managerv2 speaking to real gfal2 clients,
// storage areas over filesystem drivers (srm/fs), an asynchronous request
// engine on the project database in StoRM's design (requests queued in the
// DB, a picker, bounded worker pools, expiry agents), and an HTTPS data
// endpoint serving the TURLs.
//
// Files by concern: config.go, transport.go (listener), soap.go (codec),
// types.go (response shapes), surl.go, namespace.go (areas, containment,
// authz), methods_*.go (SRM operations), engine*.go (async requests),
// data.go (TURL endpoint).
package srm

import (
	"bytes"
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/gridauth"
	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/nearline"
	"github.com/dynamo-go/dynamo/srm/fs/posixfs"
)

// WSDL is the published SRM v2.2 interface, served on GET.
//
//go:embed srm.v2.2.wsdl
var WSDL []byte

// Server is the storage element. Create it with New and start it with Run.
type Server struct {
	cfg     *Config
	db      *db.DB
	log     *logrus.Entry
	ns      *Namespace
	cas     *gridauth.CAStore
	cert    tls.Certificate
	engine  *engine
	metrics *seMetrics

	tpcOnce  sync.Once
	tpc      *http.Client  // third-party copies, see data_tpc.go
	tpcSlots chan struct{} // bounds running third-party copies

	tokens    *tokenVerifier  // WLCG JWT bearer tokens (token_jwt.go)
	macaroons *macaroonIssuer // nil when macaroons are off (token_macaroon.go)

	ready    chan struct{}
	mu       sync.Mutex
	srmAddr  net.Addr
	dataAddr net.Addr
}

// New builds a storage element from a validated configuration and an open,
// migrated database (the srm_* tables of migrations 0600-0699). It loads
// the host credential and CA directory and measures each area's used space;
// nothing listens until Run.
func New(cfg *Config, d *db.DB, log *logrus.Entry) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("srm: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("srm: host credential: %w", err)
	}
	cas, err := gridauth.LoadCADir(cfg.CADir)
	if err != nil {
		return nil, fmt.Errorf("srm: %w", err)
	}
	if cfg.VOMSDir != "" {
		trust, err := gridauth.LoadVOMSDir(cfg.VOMSDir)
		if err != nil {
			return nil, fmt.Errorf("srm: voms_dir: %w", err)
		}
		cas.SetVOMSTrust(trust)
	}
	ns, err := NewNamespace(context.Background(), cfg.Areas, newDriver)
	if err != nil {
		return nil, fmt.Errorf("srm: %w", err)
	}
	tv, err := newTokenVerifier(cfg.Tokens)
	if err != nil {
		return nil, fmt.Errorf("srm: %w", err)
	}
	mi, err := newMacaroonIssuer(cfg.Macaroons, "https://"+cfg.Hostname)
	if err != nil {
		return nil, fmt.Errorf("srm: %w", err)
	}
	s := &Server{cfg: cfg, db: d, log: log, ns: ns, cas: cas, cert: cert, ready: make(chan struct{}),
		tokens: tv, macaroons: mi, tpcSlots: make(chan struct{}, cfg.TPC.MaxConcurrent)}
	s.engine = newEngine(s)
	s.metrics = newSEMetrics(s)
	return s, nil
}

// sweep removes what an interrupted process left in the areas: writes in
// progress, and staged data of uploads no longer held. Failing to sweep is
// not fatal (the leftovers are hidden and take only space), but logged.
func (s *Server) sweep(ctx context.Context) {
	// Kept by last element: staging names are unique per upload, and an
	// area whose root holds another area's root sees that area's names
	// under a longer path.
	keep := s.engine.heldStages()
	for _, a := range s.ns.Areas() {
		sw, ok := a.drv.(fs.Sweeper)
		if !ok {
			continue
		}
		n, err := sw.Sweep(ctx, func(name string) bool { return keep[path.Base(name)] })
		if err != nil {
			s.log.WithError(err).WithField("area", a.Config.Name).Warn("sweeping interrupted writes")
		}
		if n > 0 {
			s.log.WithField("area", a.Config.Name).WithField("removed", n).Info("removed interrupted writes")
		}
	}
}

func newDriver(c AreaConfig) (fs.Driver, error) {
	switch c.Driver {
	case "posix", "":
		return posixfs.New(c.Root)
	case "nearline":
		return nearline.New(c.Root, c.Nearline.TapeDir, c.Nearline.RecallDelay)
	}
	return nil, fmt.Errorf("unknown driver %q", c.Driver)
}

// Namespace returns the storage areas (for tests and tools).
func (s *Server) Namespace() *Namespace { return s.ns }

// Ready is closed once both endpoints listen and the engine state is
// loaded; it is never closed when Run fails before that (select on Run's
// result too).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// SRMAddr returns the SRM endpoint address once Ready is closed (nil before).
func (s *Server) SRMAddr() net.Addr { s.mu.Lock(); defer s.mu.Unlock(); return s.srmAddr }

// DataAddr returns the HTTPS data endpoint address once Ready is closed.
func (s *Server) DataAddr() net.Addr { s.mu.Lock(); defer s.mu.Unlock(); return s.dataAddr }

// Run listens on both endpoints and serves until ctx is cancelled, then
// shuts down gracefully (in-flight calls get 10 s). It returns nil after a
// clean shutdown, or the first listener/engine error.
func (s *Server) Run(ctx context.Context) error {
	srmLn, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("srm: listen %s: %w", s.cfg.Listen, err)
	}
	dataLn, err := net.Listen("tcp", s.cfg.DataListen)
	if err != nil {
		srmLn.Close()
		return fmt.Errorf("srm: data listen %s: %w", s.cfg.DataListen, err)
	}
	return s.Serve(ctx, srmLn, dataLn)
}

// Serve is Run on listeners the caller bound (`dynamo serve` binds every
// listener before it touches a database); it closes them.
func (s *Server) Serve(ctx context.Context, srmLn, dataLn net.Listener) error {
	s.mu.Lock()
	s.srmAddr, s.dataAddr = srmLn.Addr(), dataLn.Addr()
	s.mu.Unlock()
	tcfg := serverTLS(s.cert)
	dataTLS := tcfg.Clone()
	dataTLS.ClientAuth = tls.RequestClientCert
	errLog := s.log.WriterLevel(logrus.DebugLevel)
	defer errLog.Close()
	var fresh preRequestConns
	srmSrv := &http.Server{
		Handler:           http.HandlerFunc(s.serveSRM),
		ConnContext:       connContext,
		ConnState:         fresh.track,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          logger(errLog),
	}
	dataSrv := &http.Server{
		Handler:           s.auditData(http.HandlerFunc(s.serveHTTP)),
		ConnContext:       connContext,
		ConnState:         fresh.track,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          logger(errLog),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Engine state and reservations are loaded before anything is served:
	// calls allocate request ids from the loaded counter.
	if err := s.engine.loadState(ctx); err != nil {
		srmLn.Close()
		dataLn.Close()
		return err
	}
	if err := s.loadSpaces(ctx); err != nil {
		srmLn.Close()
		dataLn.Close()
		return err
	}
	s.sweep(ctx)
	s.engine.runCtx = ctx // before any call can start a recall
	errc := make(chan error, 3)
	go func() {
		errc <- srmSrv.Serve(&gsiListener{Listener: srmLn, tls: tcfg, cas: s.cas, flag: true, slots: make(chan struct{}, s.cfg.MaxConnections)})
	}()
	go func() {
		errc <- dataSrv.Serve(&gsiListener{Listener: dataLn, tls: dataTLS, cas: s.cas, certOptional: true, slots: make(chan struct{}, s.cfg.MaxConnections)})
	}()
	// Every goroutine started here is waited for before Run returns: the
	// caller may close the database right after.
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); s.reloadCAs(ctx) }()
	go func() { defer bg.Done(); errc <- s.engine.run(ctx) }()
	close(s.ready)
	s.log.WithField("srm", srmLn.Addr().String()).WithField("data", dataLn.Addr().String()).Info("storage element listening")
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	shut, reaped := make(chan struct{}), make(chan struct{})
	go func() { defer close(reaped); fresh.reapWhile(shut) }()
	_ = srmSrv.Shutdown(sctx)
	_ = dataSrv.Shutdown(sctx)
	close(shut)
	<-reaped
	bg.Wait()
	s.engine.wait()
	if errors.Is(first, http.ErrServerClosed) || errors.Is(first, context.Canceled) {
		first = nil
	}
	return first
}

// call is one SRM invocation.
type call struct {
	ctx context.Context
	id  *gridauth.Identity
	// preauthorized: the request was authorized when accepted, with a
	// bearer token the SE does not store (Tape REST stage by a token
	// client), so the worker cannot and need not re-check it.
	preauthorized bool
}

type method func(s *Server, c *call, req *node) (any, error)

// methods maps body element names to implementations; everything else gets
// SRM_NOT_SUPPORTED.
var methods map[string]method

func init() {
	methods = map[string]method{
		"srmPing":                       (*Server).ping,
		"srmGetTransferProtocols":       (*Server).getTransferProtocols,
		"srmLs":                         (*Server).ls,
		"srmMkdir":                      (*Server).mkdir,
		"srmRmdir":                      (*Server).rmdir,
		"srmRm":                         (*Server).rm,
		"srmMv":                         (*Server).mv,
		"srmSetPermission":              (*Server).setPermission,
		"srmCheckPermission":            (*Server).checkPermission,
		"srmGetPermission":              (*Server).getPermission,
		"srmPrepareToGet":               (*Server).prepareToGet,
		"srmStatusOfGetRequest":         (*Server).statusOfGet,
		"srmPrepareToPut":               (*Server).prepareToPut,
		"srmStatusOfPutRequest":         (*Server).statusOfPut,
		"srmBringOnline":                (*Server).bringOnline,
		"srmStatusOfBringOnlineRequest": (*Server).statusOfBringOnline,
		"srmPutDone":                    (*Server).putDone,
		"srmReleaseFiles":               (*Server).releaseFiles,
		"srmAbortRequest":               (*Server).abortRequest,
		"srmAbortFiles":                 (*Server).abortFiles,
		"srmExtendFileLifeTime":         (*Server).extendFileLifeTime,
		"srmGetRequestTokens":           (*Server).getRequestTokens,
		"srmGetRequestSummary":          (*Server).getRequestSummary,
		"srmGetSpaceTokens":             (*Server).getSpaceTokens,
		"srmGetSpaceMetaData":           (*Server).getSpaceMetaData,
		"srmPurgeFromSpace":             (*Server).purgeFromSpace,
		"srmReserveSpace":               (*Server).reserveSpace,
		"srmReleaseSpace":               (*Server).releaseSpace,
	}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// WSDLPath is where the SRM port serves the WSDL on GET (also as
// <WSDLPath>?wsdl); every other GET is 404.
const WSDLPath = "/srm/managerv2.wsdl"

// serveSRM handles the SOAP endpoint: GET of the WSDL paths returns the
// WSDL, POST dispatches on the body's operation element (never on
// SOAPAction).
func (s *Server) serveSRM(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if r.URL.Path == "/metrics" {
			s.serveMetrics(w, r)
			return
		}
		if r.URL.Path != WSDLPath && (r.URL.Path != "/srm/managerv2" || r.URL.RawQuery != "wsdl") {
			http.Error(w, "not found: the WSDL is at "+WSDLPath, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(WSDL)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "use POST for SOAP or GET "+WSDLPath+" for the WSDL", http.StatusMethodNotAllowed)
		return
	}
	out := bufPool.Get().(*bytes.Buffer)
	out.Reset()
	defer bufPool.Put(out)
	id := identityFrom(r.Context())
	start := time.Now()
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	op, req, err := decodeEnvelope(body)
	status := http.StatusOK
	var resp any
	defer func() {
		if op == "" {
			op = "(malformed)"
		}
		s.auditCall(id, op, req, resp, out.Len(), time.Since(start))
	}()
	switch {
	case err != nil:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = fmt.Errorf("request body larger than %d bytes", s.cfg.MaxBodyBytes)
		}
		s.log.WithError(err).Debug("bad SOAP request")
		encodeFault(out, "Client", err.Error())
		status = http.StatusInternalServerError // SOAP 1.1 faults travel with 500
	case id == nil:
		encodeFault(out, "Client", "no authenticated client")
		status = http.StatusInternalServerError
	default:
		_, _ = io.Copy(io.Discard, body)
		resp, err = s.dispatch(&call{ctx: r.Context(), id: id}, op, req)
		if err != nil {
			resp = nil
			encodeFault(out, "Client", err.Error())
			status = http.StatusInternalServerError
			break
		}
		if err := encodeResponse(out, op, resp); err != nil {
			s.log.WithError(err).WithField("op", op).Error("encoding SRM response")
			out.Reset()
			encodeFault(out, "Server", "internal error encoding the response")
			status = http.StatusInternalServerError
		}
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(out.Bytes())
}

func (s *Server) dispatch(c *call, op string, req *node) (any, error) {
	m, ok := methods[op]
	if !ok {
		if !strings.HasPrefix(op, "srm") {
			return nil, fmt.Errorf("%w: unknown operation <%s>", ErrBadSOAP, op)
		}
		return returnOnly{rs(SRM_NOT_SUPPORTED, op+" is not implemented by this storage element")}, nil
	}
	return m(s, c, req)
}

// reloadCAs re-reads the CA directory every CAReloadInterval, so CA and
// certificate updates (fetch-crl style) need no restart.
func (s *Server) reloadCAs(ctx context.Context) {
	tick := time.NewTicker(s.cfg.CAReloadInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := s.cas.Reload(); err != nil {
				s.log.WithError(err).Warn("reloading the CA directory failed; keeping the previous CAs")
			}
		}
	}
}
