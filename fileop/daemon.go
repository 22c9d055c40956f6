package fileop

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/pfn"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// Prioritizer ranks transfers by the source the daemon chose for them
// (e.g. a file on a tape system's disk cache before one needing staging).
// *estimator.Estimator implements it. Priorities returns a priority per
// source URL, higher first; a URL missing from the map counts as 0. It must
// not fail (what it cannot learn is neutral) and should answer from a
// cache: it is called once per dispatch pass with the whole window.
// Without a Prioritizer the order is request priority, then age.
type Prioritizer interface {
	Priorities(ctx context.Context, sourceURLs []string) map[string]int
}

// Daemon runs the queue: it dispatches pending subscriptions to a backend
// in batches within the limits, and records results. Create with New, run
// with Run. Only one daemon may run against a database at a time (the
// serve process holds the inventory writer role).
type Daemon struct {
	cfg     Config
	store   *inventory.Store
	writer  inventory.Writer // records results: the store, or the one writer of `dynamo serve`
	db      *db.DB
	log     *logrus.Entry
	backend Backend
	prio    Prioritizer
	m       *metrics
	now     func() time.Time
	mappers map[string]*pfn.Mapper

	results chan Result
	wake    chan struct{}

	mu     sync.Mutex
	active map[int64]*activeSub // by subscription id
	links  map[link]int
	sites  map[int32]int
	keys   map[opKey]bool
}

type link struct{ src, dst int32 }

type opKey struct {
	op   Op
	file int64
	site int32
}

type activeSub struct {
	sub     Subscription
	batch   int64
	src     int32 // source site (transfers)
	srcName string
	dstName string
	srcURL  string
	dstURL  string
	backend string
}

// Options are New's optional collaborators.
type Options struct {
	// Backend overrides the one Config.Backend names (tests, benchmarks).
	Backend Backend
	// Prioritizer, if set, orders pending work.
	Prioritizer Prioritizer
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Writer records results in the inventory (default: the store). In
	// `dynamo serve` it is the scheduler, whose writes are fenced by the
	// writer lease.
	Writer inventory.Writer
}

// New builds a daemon over store (whose DB holds the queue tables).
func New(cfg Config, store *inventory.Store, log *logrus.Entry, o Options) (*Daemon, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, store: store, db: store.DB(), log: log, prio: o.Prioritizer, now: o.Now,
		mappers: map[string]*pfn.Mapper{}, results: make(chan Result, 4*cfg.CommitBatch), wake: make(chan struct{}, 1),
		active: map[int64]*activeSub{}, links: map[link]int{}, sites: map[int32]int{}, keys: map[opKey]bool{}}
	if d.now == nil {
		d.now = time.Now
	}
	d.writer = o.Writer
	if d.writer == nil {
		d.writer = store
	}
	for site, sc := range cfg.Sites {
		m, err := pfn.Compile(site, sc.PFN)
		if err != nil {
			return nil, err
		}
		d.mappers[site] = m
	}
	d.backend = o.Backend
	if d.backend == nil {
		b, err := NewBackend(cfg, log)
		if err != nil {
			return nil, err
		}
		d.backend = b
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	d.m = m
	return d, nil
}

// NewBackend builds the backend cfg.Backend names.
func NewBackend(cfg Config, log *logrus.Entry) (Backend, error) {
	switch cfg.Backend {
	case "native":
		return NewNative(cfg.Native, cfg.Driver, log), nil
	case "gfal2":
		return NewGfal2(cfg.Gfal2, log), nil
	case "fts3":
		return NewFTS3(cfg.FTS3, log)
	}
	return nil, fmt.Errorf("fileop.backend: unknown backend %q", cfg.Backend)
}

// Run resumes work left in flight by a previous run, then dispatches and
// records results until ctx ends. Work in flight at the end stays inbatch
// and is resumed by the next Run, of this daemon or of another server's:
// in `dynamo serve` Run lasts one writer-lease term, so a server that takes
// over resumes the previous holder's open batches at once.
func (d *Daemon) Run(ctx context.Context) error {
	// What an earlier Run had in flight is in the database, not here: this
	// Run resumes it from there.
	d.mu.Lock()
	d.active, d.links, d.sites, d.keys = map[int64]*activeSub{}, map[link]int{}, map[int32]int{}, map[opKey]bool{}
	d.mu.Unlock()
	for drained := false; !drained; {
		select {
		case <-d.results:
		default:
			drained = true
		}
	}
	if err := d.resume(ctx); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	bctx, stopBackend := context.WithCancel(ctx)
	defer stopBackend()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return d.backend.Run(bctx, func(r Result) {
			select {
			case d.results <- r:
			case <-bctx.Done():
			}
		})
	})
	g.Go(func() error { return d.commitLoop(gctx) })
	g.Go(func() error { return d.dispatchLoop(gctx) })
	g.Go(func() error { d.metricsLoop(gctx); return nil })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Wake asks the dispatcher to look for work now (after an enqueue).
func (d *Daemon) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Daemon) dispatchLoop(ctx context.Context) error {
	tick := time.NewTicker(d.cfg.Interval)
	defer tick.Stop()
	for {
		n, err := d.dispatch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// A failed pass changes nothing (one transaction); try again later.
			d.log.WithError(err).Warn("dispatch pass failed")
		}
		if n > 0 && err == nil {
			continue // more may be waiting and capacity may remain
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-d.wake:
		}
	}
}

func (d *Daemon) commitLoop(ctx context.Context) error {
	for {
		var batch []Result
		select {
		case <-ctx.Done():
			return nil
		case r := <-d.results:
			batch = append(batch, r)
		}
	drain:
		for len(batch) < d.cfg.CommitBatch {
			select {
			case r := <-d.results:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		// A failed commit changed nothing (one transaction): keep the
		// results and try again, so a database outage delays recording
		// but neither loses results nor stops the daemon.
		for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
			err := d.commit(ctx, batch)
			if err == nil {
				break
			}
			d.log.WithError(err).WithField("results", len(batch)).Warn("recording results failed; retrying")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		d.Wake()
	}
}

// pfnOf maps lfn at site to a storage URL.
func (d *Daemon) pfnOf(site inventory.Site, lfn string) (string, error) {
	if m, ok := d.mappers[site.Name]; ok {
		return m.ToPFN(lfn, d.cfg.Protocol)
	}
	if site.Backend == "" {
		return "", fmt.Errorf("site %s has no storage URL (inventory backend) and no pfn mapping", site.Name)
	}
	return driver.JoinURLPath(strings.TrimSuffix(site.Backend, "/"), strings.TrimPrefix(lfn, "/")), nil
}

func (d *Daemon) backoff(tries int) time.Duration {
	b := d.cfg.RetryBase
	for i := 1; i < tries && b < d.cfg.RetryMax; i++ {
		b *= 2
	}
	return min(b, d.cfg.RetryMax)
}

func (d *Daemon) addActive(a *activeSub) {
	d.active[a.sub.ID] = a
	d.links[link{a.src, a.sub.SiteID}]++
	if a.src != 0 {
		d.sites[a.src]++
	}
	d.sites[a.sub.SiteID]++
	d.keys[opKey{a.sub.Op, a.sub.FileID, a.sub.SiteID}] = true
}

func (d *Daemon) dropActive(a *activeSub) {
	if _, ok := d.active[a.sub.ID]; !ok {
		return
	}
	delete(d.active, a.sub.ID)
	d.links[link{a.src, a.sub.SiteID}]--
	if a.src != 0 {
		d.sites[a.src]--
	}
	d.sites[a.sub.SiteID]--
	delete(d.keys, opKey{a.sub.Op, a.sub.FileID, a.sub.SiteID})
}

// resume rebuilds the in-flight set from open batches and hands them to
// the backend again.
func (d *Daemon) resume(ctx context.Context) error {
	type batchRow struct {
		ID     int64  `db:"id"`
		Op     Op     `db:"op"`
		Src    int32  `db:"source_site_id"`
		Site   int32  `db:"site_id"`
		JobID  string `db:"job_id"`
		Backed string `db:"backend"`
	}
	var batches []batchRow
	if err := d.db.SelectContext(ctx, &batches, "SELECT id, op, source_site_id, site_id, job_id, backend FROM "+TableBatches+" WHERE state = 'open' ORDER BY id"); err != nil {
		return err
	}
	snap := d.store.Snapshot()
	started := d.now()
	now := started.Unix()
	resumed := 0
	var rebuilt []Batch
	for _, br := range batches {
		var subs []Subscription
		if err := d.db.SelectContext(ctx, &subs, "SELECT "+subCols+" FROM "+TableSubscriptions+" WHERE batch_id = ? AND state = ?", br.ID, StateInBatch); err != nil {
			return err
		}
		if len(subs) == 0 {
			if _, err := d.db.ExecContext(ctx, "UPDATE "+TableBatches+" SET state = 'closed', updated = ? WHERE id = ?", now, br.ID); err != nil {
				return err
			}
			continue
		}
		b := Batch{ID: br.ID, Op: br.Op, JobID: br.JobID}
		src, _ := snap.Site(inventory.SiteID(br.Src))
		dst, _ := snap.Site(inventory.SiteID(br.Site))
		b.SourceSite, b.Site = src.Name, dst.Name
		d.mu.Lock()
		for _, s := range subs {
			a := &activeSub{sub: s, batch: br.ID, src: br.Src, srcName: src.Name, dstName: dst.Name, backend: br.Backed}
			var err error
			if a.dstURL, err = d.pfnOf(dst, s.LFN); err == nil && br.Op == OpTransfer {
				a.srcURL, err = d.pfnOf(src, s.LFN)
			}
			if err != nil {
				// The batch cannot be rebuilt (site renamed or gone):
				// give it back to the queue, where it will be held.
				d.mu.Unlock()
				if _, err := d.db.ExecContext(ctx, "UPDATE "+TableSubscriptions+" SET state = ?, batch_id = 0, updated = ? WHERE id = ? AND state = ?",
					StateNew, now, s.ID, StateInBatch); err != nil {
					return err
				}
				d.mu.Lock()
				continue
			}
			d.addActive(a)
			b.Tasks = append(b.Tasks, Task{SubID: s.ID, LFN: s.LFN, Size: s.Size, Adler32: s.Adler32, Source: a.srcURL, Target: a.dstURL})
		}
		d.mu.Unlock()
		if len(b.Tasks) == 0 {
			continue
		}
		rebuilt = append(rebuilt, b)
	}
	d.removeLeftovers(ctx, rebuilt, started)
	for _, b := range rebuilt {
		if err := d.submit(ctx, b); err != nil {
			return err
		}
		resumed += len(b.Tasks)
	}
	// Rows inbatch without an open batch cannot be in any backend.
	if _, err := d.db.ExecContext(ctx, "UPDATE "+TableSubscriptions+" SET state = ?, batch_id = 0, updated = ? WHERE state = ? AND batch_id NOT IN (SELECT id FROM "+TableBatches+" WHERE state = 'open')",
		StateNew, now, StateInBatch); err != nil {
		return err
	}
	if resumed > 0 {
		d.log.WithFields(logrus.Fields{"batches": len(batches), "operations": resumed}).Info("resumed work in flight")
	}
	return nil
}

// removeLeftovers removes the temporary uploads that transfers in flight
// when the previous daemon stopped (a kill -9, a crash, a lost lease) left
// in their destination directories, before those transfers start again:
// nothing else would ever remove them. Only uploads older than this start
// go; the consistency check reports any left elsewhere as temporary. A
// failure is logged and does not stop the daemon.
func (d *Daemon) removeLeftovers(ctx context.Context, batches []Batch, started time.Time) {
	lr, ok := d.backend.(LeftoverRemover)
	if !ok {
		return
	}
	var targets []string
	for _, b := range batches {
		if b.Op != OpTransfer {
			continue
		}
		for _, t := range b.Tasks {
			targets = append(targets, t.Target)
		}
	}
	if len(targets) == 0 {
		return
	}
	n, err := lr.RemoveLeftovers(ctx, targets, started)
	if err != nil {
		d.log.WithError(err).Warn("some leftover temporary uploads could not be removed; the consistency check reports them")
	}
	if n > 0 {
		d.log.WithField("removed", n).Info("removed temporary uploads left by interrupted transfers")
	}
}

// submit hands b to the backend and records its job id. A refused
// submission fails every task recoverably (they are retried later).
func (d *Daemon) submit(ctx context.Context, b Batch) error {
	job, err := d.backend.Submit(ctx, b)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.log.WithError(err).WithField("batch", b.ID).Warn("submission failed")
		go func() {
			for _, t := range b.Tasks {
				select {
				case d.results <- Result{SubID: t.SubID, BatchID: b.ID, Err: fmt.Errorf("submit: %w", err), Recoverable: true, ExitCode: -1, Started: d.now()}:
				case <-ctx.Done():
					return
				}
			}
		}()
		return nil
	}
	if job != "" && job != b.JobID {
		if _, err := d.db.ExecContext(ctx, "UPDATE "+TableBatches+" SET job_id = ?, updated = ? WHERE id = ?", job, d.now().Unix(), b.ID); err != nil {
			return fmt.Errorf("recording job %s of batch %d: %w", job, b.ID, err)
		}
	}
	return nil
}

// orderCandidates sorts dispatch candidates by the prioritizer, if any:
// transfers by the priority of their chosen source (one Priorities call
// per pass), deletions first (they need no source and free space). The
// sort is stable, so within one priority the queue's order (request
// priority, then age) stays.
func (d *Daemon) orderCandidates(ctx context.Context, cands []*activeSub) {
	if d.prio == nil {
		return
	}
	var urls []string
	for _, a := range cands {
		if a.sub.Op == OpTransfer {
			urls = append(urls, a.srcURL)
		}
	}
	if len(urls) == 0 {
		return
	}
	p := d.prio.Priorities(ctx, urls)
	key := func(a *activeSub) int {
		if a.sub.Op == OpDeletion {
			return math.MaxInt
		}
		return p[a.srcURL]
	}
	sort.SliceStable(cands, func(i, j int) bool { return key(cands[i]) > key(cands[j]) })
}
