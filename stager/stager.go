// Package stager adapts callback-style requests (the SAM station's model)
// to the poll-based SRM protocol: get (srmPrepareToGet → transfer URL, a
// pin), ls, mkdir, delete, copy and release. It keeps the SRM request
// tokens in the database, polls with a backoff that starts short, doubles
// up to a cap and honours the server's estimated wait time, times requests
// out, and always releases (or aborts) what it asked the SE for: after
// success when the owner releases or the pin expires, after failures,
// timeouts and aborts, and after a restart (requests are persisted in
// stager_requests and resumed by Run).
//
// Completion is reported to an in-process callback given to Submit, to
// the subscriber of the request's Owner (Subscribe; survives restarts
// because owners re-subscribe), and to an HTTP webhook for external
// callers. See docs/projects.md.
package stager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/srm/client"
)

// Kind is what a request does.
type Kind string

// The request kinds.
const (
	// KindGet: srmPrepareToGet on SURL; ready with a TURL and a pin the
	// owner must Release (or that expires after Config.PinLifetime).
	KindGet Kind = "get"
	// KindLs: srmLs of SURL; done with Result.Entries.
	KindLs Kind = "ls"
	// KindMkdir: srmMkdir of SURL (existing is success).
	KindMkdir Kind = "mkdir"
	// KindDelete: srmRm of SURL (already absent is success).
	KindDelete Kind = "delete"
	// KindCopy: SURL to Dest through a get at the source, a put at the
	// destination and the Mover between the two TURLs.
	KindCopy Kind = "copy"
)

// State is where a request is.
type State string

// The states. Ready, Done and the failure states are notified.
const (
	StateQueued   State = "queued"   // accepted, not yet at the SE
	StatePolling  State = "polling"  // at the SE with a token, being polled
	StateReady    State = "ready"    // get: TURL available, pinned
	StateDone     State = "done"     // ls, mkdir, delete, copy succeeded
	StateReleased State = "released" // get: released by its owner
	StateFailed   State = "failed"   // the SE refused or failed it
	StateTimedOut State = "timedout" // RequestTimeout passed
	StateAborted  State = "aborted"  // aborted by its owner
	StateExpired  State = "expired"  // get: ready but not released within PinLifetime
)

// Final reports whether s is a final state (no further notification).
func (s State) Final() bool {
	switch s {
	case StateDone, StateReleased, StateFailed, StateTimedOut, StateAborted, StateExpired:
		return true
	}
	return false
}

// Errors returned by the stager.
var (
	// ErrBadRequest: the request is invalid (message says which field).
	ErrBadRequest = apierr.New(apierr.ErrBadRequest, "stager: bad request")
	// ErrNotFound: no request with that id.
	ErrNotFound = apierr.New(apierr.ErrNotFound, "stager: no such request")
	// ErrNoMover: a copy was asked but the stager has no Mover.
	ErrNoMover = apierr.New(apierr.ErrBadRequest, "stager: copy needs a mover")
)

// Request is what a caller asks for.
type Request struct {
	Kind Kind   `json:"kind"`
	SURL string `json:"surl"`
	// Dest is the copy target SURL.
	Dest string `json:"dest,omitempty"`
	// Owner names the subscriber notified (Subscribe); optional.
	Owner string `json:"owner,omitempty"`
	// Webhook is an http(s) URL POSTed the Result as JSON; optional.
	Webhook string `json:"webhook,omitempty"`
	// Protocols for a get's TURL; default Config.Protocols.
	Protocols []string `json:"protocols,omitempty"`
	// Timeout overrides Config.RequestTimeout when positive.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Validate checks the request, naming the bad field.
func (r *Request) Validate() error {
	switch r.Kind {
	case KindGet, KindLs, KindMkdir, KindDelete, KindCopy:
	default:
		return fmt.Errorf("%w: kind %q is not one of get, ls, mkdir, delete, copy", ErrBadRequest, r.Kind)
	}
	if err := checkSURL("surl", r.SURL); err != nil {
		return err
	}
	if r.Kind == KindCopy {
		if err := checkSURL("dest", r.Dest); err != nil {
			return err
		}
	} else if r.Dest != "" {
		return fmt.Errorf("%w: dest is only for copy", ErrBadRequest)
	}
	if r.Webhook != "" {
		u, err := url.Parse(r.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: webhook %q is not an http(s) URL", ErrBadRequest, r.Webhook)
		}
	}
	if len(r.Owner) > 64 {
		return fmt.Errorf("%w: owner is longer than 64 bytes", ErrBadRequest)
	}
	if r.Timeout < 0 {
		return fmt.Errorf("%w: timeout %v is negative", ErrBadRequest, r.Timeout)
	}
	for i, p := range r.Protocols {
		if p == "" || strings.Contains(p, ",") {
			return fmt.Errorf("%w: protocols[%d] %q is not a protocol name", ErrBadRequest, i, p)
		}
	}
	return nil
}

func checkSURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "srm" || u.Host == "" || len(s) > 2048 {
		return fmt.Errorf("%w: %s %q is not an srm:// URL", ErrBadRequest, field, s)
	}
	return nil
}

// Result is what a callback, a webhook and Lookup get.
type Result struct {
	ID    int64  `json:"id"`
	Kind  Kind   `json:"kind"`
	Owner string `json:"owner,omitempty"`
	SURL  string `json:"surl"`
	Dest  string `json:"dest,omitempty"`
	State State  `json:"state"`
	// TURL is the transfer URL of a ready get.
	TURL string `json:"turl,omitempty"`
	// Token is the SRM request token (a get's, or a copy's source get).
	Token string `json:"token,omitempty"`
	// Error explains a failed, timed-out, aborted or expired request.
	Error string `json:"error,omitempty"`
	// Entries is an ls result.
	Entries []client.Entry `json:"entries,omitempty"`
}

// Callback receives a Result. It is called from the stager's goroutines and
// must not block for long; it must not call back into the stager
// synchronously with an operation that waits on the same request.
type Callback func(Result)

// SRM is the part of an SRM client the stager uses; *client.Client
// implements it.
type SRM interface {
	Stat(ctx context.Context, surl string) (client.Entry, error)
	List(ctx context.Context, surl string, pageSize int) ([]client.Entry, error)
	Mkdir(ctx context.Context, surl string) error
	Rm(ctx context.Context, surls ...string) ([]client.FileStatus, error)
	PrepareToGet(ctx context.Context, surls []string, protocols []string, pin time.Duration) (*client.Request, error)
	PrepareToPut(ctx context.Context, files []client.PutFile, protocols []string, overwrite bool) (*client.Request, error)
	Status(ctx context.Context, r *client.Request) error
	PutDone(ctx context.Context, token string, surls ...string) ([]client.FileStatus, error)
	ReleaseFiles(ctx context.Context, token string, surls ...string) ([]client.FileStatus, error)
	AbortRequest(ctx context.Context, token string) error
}

var _ SRM = (*client.Client)(nil)

// Resolver returns the SRM endpoint serving a SURL.
type Resolver func(surl string) (SRM, error)

// Single is a Resolver for one endpoint.
func Single(c SRM) Resolver { return func(string) (SRM, error) { return c, nil } }

// ClientPool is a Resolver making one client per srm://host:port, all with
// the same credential options. Safe for concurrent use.
type ClientPool struct {
	opts client.Options
	mu   sync.Mutex
	m    map[string]*client.Client
}

// NewClientPool returns a pool using opts for every endpoint.
func NewClientPool(opts client.Options) *ClientPool {
	return &ClientPool{opts: opts, m: map[string]*client.Client{}}
}

// Resolve returns the client for the SURL's host and port.
func (p *ClientPool) Resolve(surl string) (SRM, error) {
	u, err := url.Parse(surl)
	if err != nil || u.Scheme != "srm" || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not an srm:// URL", ErrBadRequest, surl)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.m[u.Host]; c != nil {
		return c, nil
	}
	c, err := client.New("srm://"+u.Host, p.opts)
	if err != nil {
		return nil, fmt.Errorf("stager: SRM client for %s: %w", u.Host, err)
	}
	p.m[u.Host] = c
	return c, nil
}

// CloseIdle closes the kept-alive connections of every client.
func (p *ClientPool) CloseIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.m {
		c.CloseIdle()
	}
}

// Mover moves the bytes of a copy from a source TURL to a destination TURL.
type Mover interface {
	Move(ctx context.Context, srcTURL, dstTURL string) error
}

// Access is how requests reach the SEs under one principal: SRM clients
// by SURL, and the mover of copies.
type Access struct {
	Resolver Resolver
	// Mover moves copies' bytes; nil refuses copies.
	Mover Mover
}

// UserAccess returns the SE access acting for the user named user (the
// owner of requests submitted as "user:NAME"), with that user's own
// credential. Its error says why there is none (no delegation, or an
// expired one, and what to do); the request fails with it.
type UserAccess func(user string) (Access, error)

// Options are the stager's collaborators. Resolver is required.
type Options struct {
	// Resolver reaches the SEs as the station itself: for the requests of
	// the system (projects), and for every request without UserAccess.
	Resolver Resolver
	// Mover enables KindCopy; nil refuses copies with ErrNoMover.
	Mover Mover
	// UserAccess, when set, carries out the requests users own with their
	// own delegated credentials (the SAM security model: the station is
	// its own principal only to stage, copy and remove for the
	// experiment; what a user gets is prepared for the identity that
	// will read it). Nil: users' requests use the station's access too.
	UserAccess UserAccess
	// Metrics, when non-nil, receives the stager's collectors.
	Metrics *Metrics
	// Now is the clock; default time.Now (tests move it).
	Now func() time.Time
}

// Stager is the request adapter. Create it with New, start Run once.
// All methods are safe for concurrent use.
type Stager struct {
	cfg  Config
	d    *db.DB
	log  *logrus.Entry
	opt  Options
	now  func() time.Time
	wake chan struct{}
	// webhooks delivers callbacks, refusing internal addresses.
	webhooks *http.Client

	mu      sync.Mutex
	reqs    map[int64]*req // every request not yet final, cleaned up and notified
	cbs     map[int64]Callback
	subs    map[string]Callback
	running bool
	wg      sync.WaitGroup // workers and webhook deliveries
}

// New returns a stager on d (migrated) with cfg (defaults applied and
// validated here).
func New(cfg Config, d *db.DB, log *logrus.Entry, opt Options) (*Stager, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.Resolver == nil {
		return nil, errors.New("stager: Options.Resolver is required")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Stager{cfg: cfg, d: d, log: log, opt: opt, now: opt.Now, wake: make(chan struct{}, 1), webhooks: cfg.Webhook.webhookClient(),
		reqs: map[int64]*req{}, cbs: map[int64]Callback{}, subs: map[string]Callback{}}, nil
}

// Config returns the effective configuration.
func (s *Stager) Config() Config { return s.cfg }

// access is the principal q runs as: its owner's delegated credential for
// a user's request (when UserAccess is set), else the station's.
func (s *Stager) access(q *req) (Access, error) {
	if u := OwnerUser(q.Owner); u != "" && s.opt.UserAccess != nil {
		return s.opt.UserAccess(u)
	}
	return Access{Resolver: s.opt.Resolver, Mover: s.opt.Mover}, nil
}

// resolve returns the SRM client for surl under q's principal.
func (s *Stager) resolve(q *req, surl string) (SRM, error) {
	a, err := s.access(q)
	if err != nil {
		return nil, err
	}
	return a.Resolver(surl)
}

// Subscribe sets the callback for requests whose Owner is owner (nil
// removes it). Owners subscribe before Run so that requests resumed after a
// restart reach them.
func (s *Stager) Subscribe(owner string, cb Callback) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cb == nil {
		delete(s.subs, owner)
		return
	}
	s.subs[owner] = cb
}

// Submit persists r and queues it; the poller (Run) carries it out. cb,
// when non-nil, is called on the request's completion (and, for a get, on
// a later expiry) in this process only: it is not persisted.
func (s *Stager) Submit(ctx context.Context, r Request, cb Callback) (int64, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	if r.Kind == KindCopy && s.opt.Mover == nil {
		return 0, ErrNoMover
	}
	if r.Webhook != "" {
		u, _ := url.Parse(r.Webhook)
		if !s.cfg.Webhook.webhookAllowed(u.Hostname()) {
			return 0, fmt.Errorf("%w: webhook host %q is not in webhook.allow_hosts", ErrBadRequest, u.Hostname())
		}
		if err := s.cfg.Webhook.checkWebhookHost(u.Hostname()); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	now := s.now()
	timeout := s.cfg.RequestTimeout
	if r.Timeout > 0 {
		timeout = r.Timeout
	}
	protos := r.Protocols
	if len(protos) == 0 {
		protos = s.cfg.Protocols
	}
	q := &req{Kind: r.Kind, Owner: r.Owner, SURL: r.SURL, Dest: r.Dest, Protocols: strings.Join(protos, ","),
		State: StateQueued, Created: now.UnixNano(), Deadline: now.Add(timeout).UnixNano(), NextPoll: now.UnixNano(),
		PinLifetime: int64(s.cfg.PinLifetime), Webhook: r.Webhook, Notified: 1, Updated: now.UnixNano()}
	if err := s.insert(ctx, q); err != nil {
		return 0, err
	}
	id := q.ID // q belongs to the poller once published
	s.mu.Lock()
	// Run's start-up load may have read the new row already (and the
	// poller may be working on that copy): there must be one copy only.
	if _, loaded := s.reqs[id]; !loaded {
		s.reqs[id] = q
	}
	if cb != nil {
		s.cbs[id] = cb
	}
	s.mu.Unlock()
	s.opt.Metrics.submitted(r.Kind)
	s.kick()
	return id, nil
}

// Lookup returns the current result of request id, or ErrNotFound.
func (s *Stager) Lookup(ctx context.Context, id int64) (Result, error) {
	s.mu.Lock()
	if q := s.reqs[id]; q != nil {
		res := q.result()
		s.mu.Unlock()
		return res, nil
	}
	s.mu.Unlock()
	q, err := s.load(ctx, id)
	if err != nil {
		return Result{}, err
	}
	return q.result(), nil
}

// Release ends a get: a ready pin is released at the SE (asynchronously,
// retried until the SE confirms), a get still in progress is aborted.
// Other kinds are aborted if still in progress. Releasing a final request
// is a no-op. The release is persisted before Release returns, so it
// survives a restart.
func (s *Stager) Release(ctx context.Context, id int64) error { return s.end(ctx, id, StateReleased) }

// Abort aborts request id at the SE (state aborted); like Release for a
// ready get, but notified.
func (s *Stager) Abort(ctx context.Context, id int64) error { return s.end(ctx, id, StateAborted) }

func (s *Stager) end(ctx context.Context, id int64, to State) error {
	s.mu.Lock()
	q := s.reqs[id]
	if q == nil {
		s.mu.Unlock()
		if _, err := s.load(ctx, id); err != nil {
			return err
		}
		return nil // final already
	}
	if q.State.Final() {
		s.mu.Unlock()
		return nil
	}
	q.want = to // due() picks it up at once
	s.mu.Unlock()
	// Persist the intent: a ready get's pin_until in the past makes the
	// poller release it even if this process dies now.
	if _, err := s.d.ExecContext(ctx, "UPDATE stager_requests SET pin_until = 1 WHERE id = ? AND state = ?", id, StateReady); err != nil {
		return fmt.Errorf("stager: persisting release of %d: %w", id, err)
	}
	s.kick()
	return nil
}

// Active returns the number of requests the stager still tracks (not
// final, or holding something at the SE, or owing a webhook).
func (s *Stager) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func (s *Stager) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
