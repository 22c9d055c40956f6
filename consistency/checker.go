package consistency

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/scheduler"
)

// Errors of Checker.Run.
var (
	// ErrUnknownSite: the site is not in the inventory or not configured.
	ErrUnknownSite = errors.New("site not configured for consistency checks")
	// ErrBusy: a run of the site is already in progress in this process.
	ErrBusy = errors.New("consistency run already in progress")
	// errResumable marks a listing failure the next run should resume from.
	errResumable = errors.New("listing interrupted (resumable)")
)

// Checker runs consistency checks. It is safe for concurrent use; runs of
// one site are serialised (ErrBusy), runs of different sites proceed in
// parallel.
type Checker struct {
	cfg     Config
	db      *db.DB
	store   *inventory.Store
	actions Actions
	opts    driver.Options
	log     *logrus.Entry
	metrics *metrics
	// Now is the clock (tests move it); default time.Now.
	Now func() time.Time
	// open opens a site's driver (tests wrap it).
	open func(ctx context.Context, url string, opts driver.Options) (driver.Driver, error)

	mu      sync.Mutex
	running map[string]bool
}

// New returns a Checker. cfg must be valid; reg may be nil (no metrics);
// opts are the driver options (credentials) used to open sites.
func New(cfg Config, d *db.DB, store *inventory.Store, actions Actions, opts driver.Options, reg prometheus.Registerer, log *logrus.Entry) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if actions == nil {
		return nil, errors.New("consistency: no Actions given")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Checker{cfg: cfg, db: d, store: store, actions: actions, opts: opts, log: log, metrics: m, Now: time.Now, open: driver.Open, running: map[string]bool{}}, nil
}

// Config returns the checker's configuration.
func (c *Checker) Config() Config { return c.cfg }

// Run checks one site: list (resuming an interrupted listing of the same
// site), diff, and act unless dryRun or a safety valve trips. It returns
// the run's record; a run that tripped a valve has Status StatusAlert and
// a nil error. This is the entry point the scheduler registers as
// consistency:<site>.
func (c *Checker) Run(ctx context.Context, site string, dryRun bool) (*RunRecord, error) {
	c.mu.Lock()
	if c.running[site] {
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", site, ErrBusy)
	}
	c.running[site] = true
	c.mu.Unlock()
	defer func() { c.mu.Lock(); delete(c.running, site); c.mu.Unlock() }()

	snap := c.store.Snapshot()
	si, ok := snap.SiteByName(site)
	sc, configured := c.cfg.Sites[site]
	if !ok || !configured {
		return nil, fmt.Errorf("%s: %w", site, ErrUnknownSite)
	}
	url := sc.URL
	if url == "" {
		url = si.Backend
	}
	if url == "" {
		return nil, fmt.Errorf("%s: %w: no url configured and no backend in the inventory", site, ErrUnknownSite)
	}
	log := c.log.WithField("site", site)

	rec, err := resumableRun(ctx, c.db, site, dryRun)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		rec = &RunRecord{Site: site, DryRun: dryRun, Status: StatusRunning, StartedAt: c.Now().Unix()}
		if err := insertRun(ctx, c.db, rec); err != nil {
			return nil, err
		}
		rec.WorkDir = filepath.Join(c.cfg.WorkDir, site, strconv.FormatInt(rec.ID, 10))
		if err := saveRun(ctx, c.db, rec); err != nil {
			return nil, err
		}
	} else {
		log.WithField("run", rec.ID).Info("resuming interrupted consistency run")
	}
	log = log.WithField("run", rec.ID)
	started := time.Now()

	err = c.run(ctx, log, rec, snap, si, sc, url)
	rec.EndedAt = c.Now().Unix()
	switch {
	case err != nil && (ctx.Err() != nil || errors.Is(err, errResumable)):
		// Interrupted, or the site failed in a way that may pass (retries
		// exhausted on an unavailable server): stays "running" so that the
		// next run resumes the listing instead of starting over.
		rec.Message = err.Error()
	case err != nil:
		rec.Status, rec.Message = StatusFailed, err.Error()
	}
	// Record the outcome even when ctx is done: the row must say what happened.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := saveRun(sctx, c.db, rec); serr != nil && err == nil {
		err = serr
	}
	c.metrics.observe(rec, time.Since(started))
	if rec.Status == StatusDone || rec.Status == StatusAlert {
		c.prune(log, site)
	}
	if err != nil {
		log.WithError(err).Error("consistency run failed")
		return rec, err
	}
	log.WithField("status", rec.Status).WithField("missing", rec.Missing).WithField("orphans", rec.Orphans).Info("consistency run finished")
	return rec, nil
}

func (c *Checker) run(ctx context.Context, log *logrus.Entry, rec *RunRecord, snap *inventory.Snapshot, si inventory.Site, sc SiteConfig, url string) error {
	rec.Message = "" // a resumed run's earlier interruption is history

	// The inventory side is read while the site is listed: the listing
	// takes far longer, so the diff waits only for the listing. It comes
	// from the site's cache of the last run where the change log allows,
	// else from the database; a resumed run prepares it afresh (the
	// inventory moved on while it was stopped).
	prepCtx, stopPrep := context.WithCancel(ctx)
	defer stopPrep()
	prepared := make(chan error, 1)
	var exp *PreparedExpected
	go func() {
		var err error
		exp, err = PrepareExpected(prepCtx, c.db, snap, si.ID, c.cacheDir(si.Name), filepath.Join(rec.WorkDir, "inventory"), ExtractOptions{Budget: c.cfg.SpoolBudget})
		prepared <- err
	}()
	waitPrepared := func() error {
		if prepared == nil {
			return nil
		}
		err := <-prepared
		prepared = nil
		return err
	}
	defer func() {
		stopPrep()
		if waitPrepared() == nil && exp != nil {
			exp.Abandon() // no-op once committed
		}
	}()

	drv, err := c.open(ctx, url, c.opts)
	if err != nil {
		return err
	}
	// Network drivers keep idle connections (and their goroutines) until
	// closed: one left open per run would pile up in a long-lived server.
	if cl, ok := drv.(io.Closer); ok {
		defer cl.Close()
	}
	conc := c.cfg.Concurrency
	if sc.Concurrency > 0 {
		conc = sc.Concurrency
	}
	lres, err := List(ctx, drv, filepath.Join(rec.WorkDir, "listing"), ListOptions{
		Paths: sc.Paths, Concurrency: conc, Retries: c.cfg.Retries, RetryWait: c.cfg.RetryWait,
		Checksums: c.cfg.Checksums, SpoolBudget: c.cfg.SpoolBudget, CheckpointEvery: c.cfg.CheckpointEvery,
		Progress: func(p ListProgress) { c.metrics.progress(si.Name, p) }, Log: log,
	})
	if err != nil {
		if driver.Recoverable(err) {
			return fmt.Errorf("%w: %w", errResumable, err)
		}
		return err
	}
	rec.Dirs = lres.Progress.Dirs

	inflight, err := c.actions.InFlight(ctx, si.Name)
	if err != nil {
		return fmt.Errorf("files in flight: %w", err)
	}
	ignore, _ := compileGlobs(append(append([]string{}, c.cfg.Ignore...), sc.Ignore...))
	now := c.Now().Unix()
	filter := Filter{Now: now, MinAge: int64(c.cfg.MinAge / time.Second), Paths: sc.Paths, Ignore: ignore, InFlight: inflight}

	siteStream, err := MergeRuns(lres.Runs)
	if err != nil {
		return err
	}
	defer siteStream.Close()
	if err := waitPrepared(); err != nil {
		return err
	}
	log.WithFields(logrus.Fields{"cold": exp.Stats.Cold, "reason": exp.Stats.Reason, "cached_blocks": exp.Stats.CachedBlocks,
		"read_blocks": exp.Stats.ReadBlocks, "read_files": exp.Stats.ReadFiles, "changes": exp.Stats.Changes}).Info("inventory side ready")
	// Replica states are refreshed from the snapshot of now: the listing
	// may have taken hours since the inventory side was prepared.
	invStream, err := exp.Open(c.store.Snapshot())
	if err != nil {
		return err
	}
	defer invStream.Close()
	reportDir := filepath.Join(rec.WorkDir, "report")
	rw, err := newReportWriter(reportDir)
	if err != nil {
		return err
	}
	counts, err := Diff(siteStream, invStream, filter, rw)
	if cerr := rw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// The diff read the inventory side to its end: it is the next run's cache.
	if err := exp.Commit(); err != nil {
		log.WithError(err).Warn("cannot keep the inventory side for the next run; it will read everything")
	}
	rec.Counts = counts
	rec.EmptyDirs = int64(len(lres.EmptyDirs))
	if err := writeNDJSON(filepath.Join(reportDir, ListEmptyDirs+".ndjson"), lres.EmptyDirs); err != nil {
		return err
	}
	rec.Temporary = int64(len(lres.Temporary))
	slices.SortFunc(lres.Temporary, func(a, b TempFile) int { return strings.Compare(a.Path, b.Path) })
	if err := writeNDJSON(filepath.Join(reportDir, ListTemporary+".ndjson"), lres.Temporary); err != nil {
		return err
	}
	if rec.Temporary > 0 {
		log.WithField("temporary", rec.Temporary).Warn("temporary uploads at the site: transfers in progress, or leftovers of interrupted ones (the file-operation daemon removes those when it starts)")
	}

	plan, err := c.plan(ctx, rec, si, sc, lres.EmptyDirs, reportDir, now)
	if err != nil {
		return err
	}
	if err := writeNDJSON(filepath.Join(reportDir, ListActions+".ndjson"), plan.Items); err != nil {
		return err
	}
	if plan.Alert != "" {
		rec.Status, rec.Message = StatusAlert, plan.Alert
		c.metrics.alert(si.Name, true)
		log.WithField("reason", plan.Alert).Error("consistency safety valve tripped: no action taken")
		return nil
	}
	c.metrics.alert(si.Name, false)
	if err := c.apply(ctx, log, rec, si, drv, plan); err != nil {
		return err
	}
	rec.Status = StatusDone
	// The spools are not needed once the diff is written.
	for _, sub := range []string{"listing", "inventory"} {
		if err := os.RemoveAll(filepath.Join(rec.WorkDir, sub)); err != nil {
			log.WithError(err).WithField("dir", sub).Warn("cannot remove spool")
		}
	}
	return nil
}

// cacheDir is where the inventory side of site's last run is kept.
func (c *Checker) cacheDir(site string) string {
	return filepath.Join(c.cfg.WorkDir, site, "inventory-cache")
}

// prune removes the work directories of all but the newest KeepRuns
// finished runs of site.
func (c *Checker) prune(log *logrus.Entry, site string) {
	runs, err := ListRuns(context.Background(), c.db, site, 1000)
	if err != nil {
		log.WithError(err).Warn("cannot list runs to prune")
		return
	}
	kept := 0
	for _, r := range runs {
		if r.Status == StatusRunning {
			continue
		}
		kept++
		if kept > c.cfg.KeepRuns && r.WorkDir != "" {
			if err := os.RemoveAll(r.WorkDir); err != nil {
				log.WithError(err).WithField("dir", r.WorkDir).Warn("cannot prune old run")
			}
		}
	}
}

// AppTimeout bounds one scheduled run: listings of large sites take hours
// (and resume from their checkpoint if cut off).
const AppTimeout = 24 * time.Hour

// Apps returns one scheduler application per configured site, named
// consistency:<site>, for the lead to Register. Arguments: --dry-run. They
// are read-only applications as far as the scheduler is concerned: a
// listing takes hours and must not hold the writer slot; the few inventory
// updates a run makes go through Store.Write, which serialises writers.
func (c *Checker) Apps() []scheduler.App {
	names := make([]string, 0, len(c.cfg.Sites))
	for n := range c.cfg.Sites {
		names = append(names, n)
	}
	slices.Sort(names)
	apps := make([]scheduler.App, 0, len(names))
	for _, n := range names {
		apps = append(apps, scheduler.App{
			Name:        "consistency:" + n,
			Description: "list " + n + ", diff against the inventory and act behind safety valves; args: --dry-run",
			Timeout:     AppTimeout,
			Run: func(ctx context.Context, e *scheduler.Env) error {
				dry := false
				for _, a := range e.Args {
					if a != "--dry-run" {
						return fmt.Errorf("consistency:%s: unknown argument %q (want --dry-run)", n, a)
					}
					dry = true
				}
				rec, err := c.Run(ctx, n, dry)
				if err == nil && rec.Status == StatusAlert {
					// A tripped valve is a failed run for the operator's eyes.
					return fmt.Errorf("consistency:%s: run %d: safety valve: %s", n, rec.ID, rec.Message)
				}
				return err
			},
		})
	}
	return apps
}
