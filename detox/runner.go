package detox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// ErrNoPolicy: no policy file was given or configured for the partition.
var ErrNoPolicy = errors.New("no detox policy for partition")

// Runner runs whole cycles: load the policy, plan on a snapshot, record
// the cycle in the history, apply. It is what the scheduler application,
// `dynamo detox run` and the REST layer share.
type Runner struct {
	Store   *inventory.Store // for RunCycle; RunCycleOn needs none
	History *History         // nil: cycles are not recorded
	Config  Config
	Sources Sources
	Queue   DeletionQueue // required for cycles that are not dry runs
	Log     *logrus.Entry
	Metrics *Metrics // nil: no metrics
}

// RunOptions adjust one RunCycle call.
type RunOptions struct {
	PolicyFile string // overrides Config.Partitions[partition].Policy
	DryRun     bool   // plan and record, never apply (also when Config.DryRun)
	At         time.Time
}

// CycleResult is what one cycle did.
type CycleResult struct {
	CycleID int64 // 0 when not recorded
	Plan    *Plan
	Applied *ApplyResult // nil for dry runs
	DryRun  bool
}

// LoadPolicy reads the partition's policy file (opts.PolicyFile, else the
// configured one) and checks it against the configured producers.
func (r *Runner) LoadPolicy(partition, file string) (*policy.Policy, error) {
	if file == "" {
		file = r.Config.Partitions[partition].Policy
	}
	if file == "" {
		return nil, fmt.Errorf("%w %q: give --policy or configure detox.partitions.%s.policy", ErrNoPolicy, partition, partition)
	}
	p, err := policy.LoadPolicy(file, policy.PolicyOptions{Partition: partition})
	if err != nil {
		return nil, err
	}
	if p.Partition != partition {
		return nil, fmt.Errorf("%s: policy is for partition %q, not %q", file, p.Partition, partition)
	}
	if err := r.Sources.CheckProducers(p); err != nil {
		return nil, err
	}
	return p, nil
}

// RunCycle runs one cycle of partition. A dry run is planned and recorded
// (status planned) but not applied. A cycle whose Apply fails is recorded
// as failed with the error.
func (r *Runner) RunCycle(ctx context.Context, partition string, opts RunOptions) (*CycleResult, error) {
	return r.RunCycleOn(ctx, partition, r.Store.Snapshot(), func() Target { return StoreTarget(r.Store, opts.At) }, opts)
}

// RunCycleOn is RunCycle on a given snapshot, applying to the target
// target() returns (called after planning, so its snapshot is current).
// The scheduler application passes its run's snapshot and a target whose
// Commit is the run's Env.Commit.
func (r *Runner) RunCycleOn(ctx context.Context, partition string, snap *inventory.Snapshot, target func() Target, opts RunOptions) (res *CycleResult, err error) {
	start := time.Now()
	defer func() {
		status := StatusApplied
		switch {
		case err != nil:
			status = StatusFailed
		case res != nil && res.DryRun:
			status = StatusPlanned
		}
		r.Metrics.observe(res, status, time.Since(start), time.Now())
	}()
	pol, err := r.LoadPolicy(partition, opts.PolicyFile)
	if err != nil {
		return nil, err
	}
	if opts.At.IsZero() {
		opts.At = time.Now()
	}
	dry := opts.DryRun || r.Config.DryRun
	plan, err := PlanCycle(ctx, snap, pol, r.PlanOptions(partition, opts.At))
	if err != nil {
		return nil, err
	}
	res = &CycleResult{Plan: plan, DryRun: dry}
	if r.History != nil {
		if res.CycleID, err = r.History.Record(ctx, plan, StatusPlanned, dry, "", time.Now()); err != nil {
			return nil, err
		}
	}
	if dry {
		return res, nil
	}
	pc := r.Config.Partitions[partition]
	res.Applied, err = ApplyTo(ctx, target(), plan, ApplyOptions{MaxVolume: r.Config.MaxVolumePerCycle,
		MaxFilesPerSite: r.Config.MaxFilesPerSite, AllowLastCopyDeletion: pc.AllowLastCopyDeletion,
		MaxLastCopyVolume: pc.MaxLastCopyVolume, MaxLastCopyReplicas: pc.MaxLastCopyReplicas,
		Locks: r.Sources.Locks, Queue: r.Queue, CycleID: res.CycleID, At: opts.At, Log: r.Log})
	if r.History != nil && res.CycleID != 0 {
		status, msg := StatusApplied, ""
		if err != nil {
			status, msg = StatusFailed, err.Error()
		} else if res.Applied != nil {
			msg = fmt.Sprintf("%d replicas (%d bytes) deleted, %d skipped", len(res.Applied.Deleted), res.Applied.Bytes, len(res.Applied.Skipped))
			if n := res.Applied.LastCopies; n > 0 {
				msg += fmt.Sprintf("; %d LAST COPY deletions (partition opt-in)", n)
			}
		}
		if herr := r.History.Finish(ctx, res.CycleID, status, msg, time.Now()); herr != nil {
			err = errors.Join(err, herr)
		}
	}
	return res, err
}

// RunAll runs one cycle of every configured partition, in name order, and
// returns the results of those that ran; an error in one partition does not
// stop the others (they are joined). This is the scheduler application's
// body.
func (r *Runner) RunAll(ctx context.Context, opts RunOptions) ([]*CycleResult, error) {
	names := make([]string, 0, len(r.Config.Partitions))
	for n := range r.Config.Partitions {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []*CycleResult
	var errs []error
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		res, err := r.RunCycle(ctx, n, RunOptions{DryRun: opts.DryRun, At: opts.At})
		if res != nil {
			out = append(out, res)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("partition %s: %w", n, err))
		}
	}
	return out, errors.Join(errs...)
}

// FillEmpty configures the named producers, where not configured, as
// sources that know of nothing: no locks, no accesses, no flagged dataset.
// It lets an operator run a policy whose producers are not wired yet,
// knowingly (`dynamo detox run --assume-empty enforcer,unhandled_copy`).
// Unknown names are an error.
func (s *Sources) FillEmpty(producers ...string) error {
	empty := StaticDatasets{}
	for _, p := range producers {
		switch p {
		case policy.ProducerLocks:
			if s.Locks == nil {
				s.Locks = &MemLocks{}
			}
		case policy.ProducerAccesses:
			if s.Accesses == nil {
				s.Accesses = noAccesses{}
			}
		case policy.ProducerEnforcer:
			if s.Enforcer == nil {
				s.Enforcer = StaticReplicas{}
			}
		case policy.ProducerTapeRequest:
			if s.TapeRequests == nil {
				s.TapeRequests = empty
			}
		case policy.ProducerUnhandledCopy:
			if s.UnhandledCopies == nil {
				s.UnhandledCopies = empty
			}
		case policy.ProducerProtectedSite:
			if s.ProtectedSites == nil {
				s.ProtectedSites = empty
			}
		case policy.ProducerCatalog:
			if s.Catalog == nil {
				s.Catalog = empty
			}
		case policy.ProducerRelease:
			if s.LatestRelease == nil {
				s.LatestRelease = empty
			}
		case policy.ProducerDemand:
			if s.Demand == nil {
				s.Demand = empty
			}
		case policy.ProducerTape, policy.ProducerCopies, policy.ProducerOccupancy, policy.ProducerRelativeAge:
		default:
			return fmt.Errorf("%w: unknown producer %q", ErrConfig, p)
		}
	}
	return nil
}

type noAccesses struct{}

func (noAccesses) Accesses(context.Context, time.Time) ([]AccessSummary, error) { return nil, nil }
