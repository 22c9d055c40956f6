package dealer

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// Deps are the Dealer's collaborators. Any may be nil: a nil source gives
// its plugin nothing to do, a nil TransferQueue makes Apply create the
// projected replicas without queueing transfers (tests, dry runs), a nil
// History records nothing.
type Deps struct {
	Requests   RequestSource
	Accesses   AccessSource
	Protection ProtectionSource
	Transfers  TransferQueue
	History    *History
	Metrics    *Metrics // nil: no metrics
}

// Dealer plans and applies copy cycles. It is safe for concurrent use;
// cycles of one partition should not run concurrently (the scheduler's
// one-writer rule ensures it).
type Dealer struct {
	cfg      Config
	deps     Deps
	log      *logrus.Entry
	enforcer []*policy.EnforcerRules
}

// New validates cfg, loads the enforcer rule files and returns a Dealer.
// Errors wrap ErrConfig (or the policy package's error kinds for rule
// files) and name the offending key or file.
func New(cfg Config, deps Deps, log *logrus.Entry) (*Dealer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Dealer{cfg: cfg, deps: deps, log: log}
	if cfg.Plugins.Enforcer.Enabled {
		for i, f := range cfg.Plugins.Enforcer.RulesFiles {
			rs, err := policy.LoadEnforcerRules(f)
			if err != nil {
				return nil, fmt.Errorf("%w: dealer.plugins.enforcer.rules_files[%d]: %w", ErrConfig, i, err)
			}
			if rs.Partition != cfg.Partition {
				return nil, fmt.Errorf("%w: dealer.plugins.enforcer.rules_files[%d]: %s: partition %q is not the dealer's partition %q",
					ErrConfig, i, f, rs.Partition, cfg.Partition)
			}
			d.enforcer = append(d.enforcer, rs)
		}
	}
	// Compile once now so that unbound variables are load-time errors; the
	// cycle compiles again against its own clock.
	if _, err := compilePlacement(cfg.Placement, time.Now()); err != nil {
		return nil, err
	}
	if _, err := compileEnforcer(d.enforcer, time.Now()); err != nil {
		return nil, err
	}
	if _, err := newSiteMatcher(cfg.TargetSites); err != nil {
		return nil, fmt.Errorf("%w: dealer.target_sites: %w", ErrConfig, err)
	}
	return d, nil
}

// Config returns the Dealer's configuration.
func (d *Dealer) Config() Config { return d.cfg }

// Inputs is everything a cycle reads besides the inventory. Gather fetches
// it from Deps; tests build it directly.
type Inputs struct {
	Requests   []CopyRequest
	Accesses   []DatasetAccess
	Protection *Protection
}

// Gather fetches the cycle's inputs from the configured sources (only for
// enabled plugins).
func (d *Dealer) Gather(ctx context.Context, now time.Time) (Inputs, error) {
	var in Inputs
	var err error
	p := d.cfg.Plugins
	if p.Requests.Enabled && d.deps.Requests != nil {
		if in.Requests, err = d.deps.Requests.OpenCopyRequests(ctx); err != nil {
			return in, fmt.Errorf("open copy requests: %w", err)
		}
	}
	if p.Popularity.Enabled && d.deps.Accesses != nil {
		// Accesses older than 20 half-lives weigh less than 1e-6: skip them.
		since := now.Add(-20 * p.Popularity.HalfLife).Unix()
		if in.Accesses, err = d.deps.Accesses.DatasetAccesses(ctx, since); err != nil {
			return in, fmt.Errorf("dataset accesses: %w", err)
		}
	}
	if p.Balancer.Enabled && d.deps.Protection != nil {
		if in.Protection, err = d.deps.Protection.LatestProtection(ctx, d.cfg.Partition); err != nil {
			return in, fmt.Errorf("latest protection: %w", err)
		}
	}
	return in, nil
}

// PlanOptions parameterize one cycle.
type PlanOptions struct {
	// Seed of the cycle's random source; 0 uses Config.Seed, and when that
	// is 0 too a fresh random seed. The plan records the seed used.
	Seed uint64
	// Now is the cycle's clock (time expressions, access decay); zero
	// means time.Now().
	Now time.Time
	// Plugins, when not empty, restricts the cycle to these plugins (each
	// still subject to its enabled flag): the request tracker runs the
	// requests plugin alone so that new requests are placed within a
	// minute without a full cycle.
	Plugins []string
}

// Plan gathers the inputs and plans one cycle on snap (see PlanWith).
// It never writes anything.
func (d *Dealer) Plan(ctx context.Context, snap *inventory.Snapshot, opts PlanOptions) (*Plan, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	in, err := d.Gather(ctx, opts.Now)
	if err != nil {
		return nil, err
	}
	return d.PlanWith(snap, in, opts)
}

// PlanWith plans one cycle: pure, it reads only snap and in. The same
// snapshot, inputs, options and configuration give the same plan.
func (d *Dealer) PlanWith(snap *inventory.Snapshot, in Inputs, opts PlanOptions) (*Plan, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	seed := opts.Seed
	if seed == 0 {
		seed = d.cfg.Seed
	}
	if seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	pl, err := newPlanner(d, snap, in, seed, opts.Now)
	if err != nil {
		return nil, err
	}
	pl.only = opts.Plugins
	return pl.run()
}

// History returns the cycle history the Dealer records in (nil: none).
func (d *Dealer) History() *History { return d.deps.History }
