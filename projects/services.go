package projects

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/dynamo-go/dynamo/delegation"
	"github.com/dynamo-go/dynamo/estimator"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/gridauth"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/srm/client"
	"github.com/dynamo-go/dynamo/stager"
)

// CredentialConfig is the X.509 credential (the station's "sam"
// principal) the stager and estimator present at the SEs.
type CredentialConfig struct {
	// Cert is a proxy or certificate PEM; default $X509_USER_PROXY.
	Cert string `yaml:"cert"`
	// Key is its key; default Cert (a proxy holds both).
	Key string `yaml:"key"`
	// CADir is the grid CA directory; default $X509_CERT_DIR, then
	// /etc/grid-security/certificates.
	CADir string `yaml:"ca_dir"`
}

func (c CredentialConfig) resolved() CredentialConfig {
	if c.Cert == "" {
		c.Cert = os.Getenv("X509_USER_PROXY")
	}
	if c.CADir == "" {
		c.CADir = os.Getenv("X509_CERT_DIR")
	}
	if c.CADir == "" {
		c.CADir = "/etc/grid-security/certificates"
	}
	return c
}

// Services are the stager, the estimator and the project manager wired
// together, as `dynamo serve` runs them.
type Services struct {
	Stager    *stager.Stager
	Estimator *estimator.Estimator
	Manager   *Manager
	// Delegations are the users' delegated proxies (the REST API's
	// delegation routes write them, the stager reads them).
	Delegations *delegation.Store

	log *logrus.Entry
}

// NewServices builds the three from cfg: SRM clients with cfg.Credential
// (one per SE endpoint), an HTTPS mover for copies, the estimator over
// srmLs, the manager over the inventory store (dataset files and site
// backends). reg may be nil; unreg may be nil.
func NewServices(cfg Config, d *db.DB, store *inventory.Store, log *logrus.Entry, reg prometheus.Registerer, unreg Unregisterer) (*Services, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cred := cfg.Credential.resolved()
	if cred.Cert == "" {
		return nil, errors.New("projects: no credential: set credential.cert or X509_USER_PROXY")
	}
	cert, err := client.LoadCredential(cred.Cert, cred.Key)
	if err != nil {
		return nil, fmt.Errorf("projects: credential: %w", err)
	}
	cas, err := gridauth.LoadCADir(cred.CADir)
	if err != nil {
		return nil, fmt.Errorf("projects: credential.ca_dir: %w", err)
	}
	pool := stager.NewClientPool(client.Options{Certificate: cert, CADir: cred.CADir, Timeout: cfg.Stager.CallTimeout})
	// Users' requests run with the proxies they delegate, never with the
	// station's credential (docs/delegation.md).
	delegations, err := delegation.Open(cfg.Stager.Delegation, nil)
	if err != nil {
		return nil, fmt.Errorf("projects: stager.%w", err)
	}
	ok := false
	defer func() {
		if !ok {
			delegations.Close()
		}
	}()
	users := stager.NewDelegatedAccess(delegations, client.Options{CADir: cred.CADir, Timeout: cfg.Stager.CallTimeout}, cas.Pool())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert},
		RootCAs: cas.Pool(), MinVersion: tls.VersionTLS12}, IdleConnTimeout: 90 * time.Second}}
	var sm *stager.Metrics
	if reg != nil {
		if sm, err = stager.NewMetrics(reg); err != nil {
			return nil, err
		}
	}
	st, err := stager.New(cfg.Stager, d, log.WithField("component", "stager"), stager.Options{Resolver: pool.Resolve,
		Mover: stager.HTTPMover{Client: hc}, UserAccess: users.For, Metrics: sm})
	if err != nil {
		return nil, err
	}
	var src estimator.Source = estimator.SRMSource{Resolve: func(s string) (estimator.Statter, error) { return pool.Resolve(s) }}
	if len(cfg.Estimator.TapeREST) > 0 {
		byHost := estimator.ByHost{}
		for h, ep := range cfg.Estimator.TapeREST {
			byHost[h] = estimator.TapeREST{Endpoint: ep, HTTP: hc}
		}
		src = estimator.Chain{byHost, src}
	}
	est, err := estimator.New(cfg.Estimator, src, log.WithField("component", "estimator"), reg)
	if err != nil {
		return nil, err
	}
	opt := Options{Stager: st, Resolver: pool.Resolve, Prioritizer: est, Unregister: unreg, Metrics: reg}
	if store != nil {
		opt.Files = InventoryFiles{Store: store}
		opt.Sites = func(name string) (inventory.Site, bool) { return store.Snapshot().SiteByName(name) }
	}
	m, err := New(cfg, d, log.WithField("component", "projects"), opt)
	if err != nil {
		return nil, err
	}
	ok = true
	return &Services{Stager: st, Estimator: est, Manager: m, Delegations: delegations, log: log.WithField("component", "delegation")}, nil
}

// Close releases what the services hold outside Run: the delegation
// directory (removed when it is a private temporary one).
func (s *Services) Close() error { return s.Delegations.Close() }

// Run runs the stager's poller, the project manager and the sweeper of
// expired delegations until ctx ends.
func (s *Services) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Stager.Run(ctx) })
	g.Go(func() error { return s.Manager.Run(ctx) })
	g.Go(func() error { s.sweepDelegations(ctx); return nil })
	return g.Wait()
}

// sweepDelegations removes expired delegated keys every sweep_interval
// (Open removed those that expired while the server was down).
func (s *Services) sweepDelegations(ctx context.Context) {
	tick := time.NewTicker(s.Delegations.Config().SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := s.Delegations.Sweep()
		if err != nil {
			s.log.WithError(err).Warn("sweeping expired delegations failed")
		} else if n > 0 {
			s.log.WithField("credentials", n).Info("removed expired delegated credentials")
		}
	}
}
