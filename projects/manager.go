// Package projects is the station flow of SAM over SRM storage: a workflow
// starts a project on a dataset (or an explicit snapshot of files) at a
// site; consumer processes (jobs) ask for the next file and get a transfer
// URL, cached files first; a look-ahead keeps the next N files staged
// through the stager; consumers report each file consumed or skipped; the
// project releases each pin when its file is done and ends with a summary
// and a recovery list of the files not consumed. The HTTP protocol (Routes)
// follows samweb's: 200 with the URL, 202 with Retry-After while nothing is
// ready, 204 when no files are left. See docs/projects.md.
package projects

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/stager"
)

// Owner is the stager owner name of the requests projects submit.
const Owner = "projects"

// FileState is where a file of a project is.
type FileState string

// The file states.
const (
	FilePending   FileState = "pending"   // not yet staged
	FileStaging   FileState = "staging"   // a stager get is in progress
	FileReady     FileState = "ready"     // pinned with a TURL, not yet delivered
	FileDelivered FileState = "delivered" // handed to a consumer
	FileConsumed  FileState = "consumed"  // the consumer processed it
	FileSkipped   FileState = "skipped"   // the consumer skipped it
	FileFailed    FileState = "failed"    // could not be staged
	FileLost      FileState = "lost"      // its consumer died or ended without reporting it
	FileVanished  FileState = "vanished"  // gone from volatile storage (unregistered)
)

// Errors of the manager; Routes maps them to HTTP statuses.
var (
	ErrNotFound      = apierr.New(apierr.ErrNotFound, "projects: not found")
	ErrExists        = apierr.New(apierr.ErrConflict, "projects: a project with that name exists")
	ErrBadRequest    = apierr.New(apierr.ErrBadRequest, "projects: bad request")
	ErrEnded         = apierr.New(apierr.ErrConflict, "projects: project ended")
	ErrNotDelivered  = apierr.New(apierr.ErrConflict, "projects: file is not delivered to this consumer")
	ErrConsumerEnded = apierr.New(apierr.ErrConflict, "projects: consumer process ended")
	ErrUnknownSite   = apierr.New(apierr.ErrNotFound, "projects: unknown site")
	ErrNoSURL        = apierr.New(apierr.ErrBadRequest, "projects: no SURL mapping for the site")
	ErrEmptySnapshot = apierr.New(apierr.ErrBadRequest, "projects: the snapshot has no files")
)

// FileSource lists the files of a dataset.
type FileSource interface {
	DatasetFiles(ctx context.Context, dataset string) ([]inventory.File, error)
}

// InventoryFiles is the FileSource over the inventory: the dataset's
// blocks from a snapshot, each block's files from the database.
type InventoryFiles struct{ Store *inventory.Store }

// DatasetFiles implements FileSource.
func (f InventoryFiles) DatasetFiles(ctx context.Context, dataset string) ([]inventory.File, error) {
	snap := f.Store.Snapshot()
	ds, ok := snap.DatasetByName(dataset)
	if !ok {
		return nil, fmt.Errorf("%w: dataset %s", ErrNotFound, dataset)
	}
	var out []inventory.File
	for b := range snap.Blocks(ds.ID) {
		fs, err := f.Store.Files(ctx, b.ID)
		if err != nil {
			return nil, fmt.Errorf("projects: files of block %s: %w", snap.BlockFullName(b.ID), err)
		}
		out = append(out, fs...)
	}
	return out, nil
}

// AccessRecorder records that a file was read at a site. Dataset is ""
// when the project was started on a list of files (the recorder finds
// the file's dataset). An error is logged; the delivery stands.
type AccessRecorder interface {
	RecordFileAccess(ctx context.Context, dataset, lfn, site string, at time.Time) error
}

// Prioritizer gives a transfer's priority from its source (higher first);
// *estimator.Estimator implements it. It must not fail: what it cannot
// learn gets a neutral priority.
type Prioritizer interface {
	Priority(ctx context.Context, sourceSURL string) int
}

// BatchPrioritizer is the optional capability of rating many sources in one
// go (one lookup at the SE for all of them); *estimator.Estimator has it.
type BatchPrioritizer interface {
	Priorities(ctx context.Context, sourceSURLs []string) map[string]int
}

// Unregisterer removes a site's replica of a file from the catalogue
// (volatile storage lost it, or a durable cache erased it). Optional.
type Unregisterer interface {
	Unregister(ctx context.Context, site, lfn string) error
}

// Options are the manager's collaborators. Stager and Prioritizer are
// required; Files is required to start projects on datasets.
type Options struct {
	Stager      *stager.Stager
	Resolver    stager.Resolver // SRM access for volatile checks and quota listings
	Prioritizer Prioritizer
	Files       FileSource
	// Sites resolves a site's backend URL when the configuration has no
	// mapping for it (the inventory); optional.
	Sites func(name string) (inventory.Site, bool)
	// Unregister, when set, is told about vanished and erased files.
	Unregister Unregisterer
	// Accesses, when set, is told of every file delivered to a consumer:
	// a job reading it is an access in Dynamo's sense (what popularity
	// counts).
	Accesses AccessRecorder
	Metrics  prometheus.Registerer
	Now      func() time.Time
}

// Manager runs the projects. Create with New, Run once. Safe for
// concurrent use.
type Manager struct {
	cfg Config
	d   *db.DB
	log *logrus.Entry
	opt Options
	now func() time.Time
	met *metrics

	wake chan struct{}

	mu       sync.Mutex
	projects map[string]*project
	reserved map[string]bool // names of projects being stored by Start
	byReq    map[int64]*pfile
}

type project struct {
	ID        int64
	Name      string
	Dataset   string
	Site      string
	State     string // running, ended
	LookAhead int
	Owner     string // the user who started it ("" : the system's)
	Created   int64
	Ended     int64
	files     []*pfile
	consumers map[int64]*consumer
	nextCPID  int64
}

type pfile struct {
	p         *project
	Idx       int
	LFN       string
	Size      int64
	State     FileState
	Priority  int
	Rated     bool // Priority was asked of the Prioritizer
	Consumer  int64
	RequestID int64
	SURL      string
	TURL      string
	Error     string
}

type consumer struct {
	CPID     int64  `db:"cpid"`
	Name     string `db:"name"`
	State    string `db:"state"` // active, completed, bad, dead
	LastSeen int64  `db:"last_seen"`
}

// Project states and consumer states.
const (
	ProjectRunning = "running"
	ProjectEnded   = "ended"

	ConsumerActive    = "active"
	ConsumerCompleted = "completed"
	ConsumerBad       = "bad"
	ConsumerDead      = "dead"
)

// New returns a manager on d with cfg (defaults applied and validated).
// It subscribes to the stager as Owner; call it before the stager's Run so
// that completions of requests resumed after a restart reach it.
func New(cfg Config, d *db.DB, log *logrus.Entry, opt Options) (*Manager, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.Stager == nil || opt.Prioritizer == nil {
		return nil, errors.New("projects: Options.Stager and Options.Prioritizer are required")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	m := &Manager{cfg: cfg, d: d, log: log, opt: opt, now: opt.Now, wake: make(chan struct{}, 1),
		projects: map[string]*project{}, reserved: map[string]bool{}, byReq: map[int64]*pfile{}}
	var err error
	if m.met, err = newMetrics(opt.Metrics); err != nil {
		return nil, err
	}
	opt.Stager.Subscribe(Owner, m.onStager)
	return m, nil
}

// StartRequest starts a project: on Dataset (its files now, from the
// FileSource: the snapshot) or on an explicit Files snapshot.
type StartRequest struct {
	Name    string   `json:"name" form:"name"`
	Site    string   `json:"site" form:"site"`
	Dataset string   `json:"dataset,omitempty" form:"dataset"`
	Files   []string `json:"files,omitempty" form:"files"` // LFNs; instead of Dataset
	// LookAhead overrides Config.LookAhead when positive.
	LookAhead int `json:"lookahead,omitempty" form:"lookahead"`
	// Owner is the user starting the project, set by the REST route from
	// the authenticated caller (never from the body).
	Owner string `json:"-" form:"-"`
}

// RecordAccessesWith sets Options.Accesses for a manager built by
// NewServices. Call it before Run and before the routes are served.
func (m *Manager) RecordAccessesWith(a AccessRecorder) { m.opt.Accesses = a }

// snapshotDataset stands for the dataset of a project started on a list
// of files.
const snapshotDataset = "(snapshot)"

// Start snapshots the files and starts the project. It returns ErrExists
// for a name in use (ended projects keep their name), ErrUnknownSite,
// ErrEmptySnapshot, ErrBadRequest for malformed input.
func (m *Manager) Start(ctx context.Context, r StartRequest) (Summary, error) {
	if r.Name == "" || len(r.Name) > 255 || strings.ContainsAny(r.Name, "/ \t\n") {
		return Summary{}, fmt.Errorf("%w: name %q must be 1-255 characters without '/' or spaces", ErrBadRequest, r.Name)
	}
	if (r.Dataset == "") == (len(r.Files) == 0) {
		return Summary{}, fmt.Errorf("%w: give either dataset or files", ErrBadRequest)
	}
	if r.LookAhead < 0 {
		return Summary{}, fmt.Errorf("%w: lookahead %d is negative", ErrBadRequest, r.LookAhead)
	}
	if _, err := m.surl(r.Site, "/probe"); errors.Is(err, ErrUnknownSite) {
		return Summary{}, err
	}
	var files []inventory.File
	if r.Dataset != "" {
		if m.opt.Files == nil {
			return Summary{}, fmt.Errorf("%w: no file source configured for datasets", ErrBadRequest)
		}
		var err error
		if files, err = m.opt.Files.DatasetFiles(ctx, r.Dataset); err != nil {
			return Summary{}, err
		}
	} else {
		seen := map[string]bool{}
		for i, l := range r.Files {
			if !strings.HasPrefix(l, "/") || seen[l] {
				return Summary{}, fmt.Errorf("%w: files[%d] %q is not an absolute LFN or is repeated", ErrBadRequest, i, l)
			}
			seen[l] = true
			files = append(files, inventory.File{LFN: l, Size: -1})
		}
	}
	if len(files) == 0 {
		return Summary{}, fmt.Errorf("%w: %s", ErrEmptySnapshot, r.Dataset)
	}
	la := m.cfg.LookAhead
	if r.LookAhead > 0 {
		la = r.LookAhead
	}
	p := &project{Name: r.Name, Dataset: r.Dataset, Site: r.Site, State: ProjectRunning, LookAhead: la, Owner: r.Owner,
		Created: m.now().UnixNano(), consumers: map[int64]*consumer{}}
	if p.Dataset == "" {
		p.Dataset = snapshotDataset
	}
	// Priorities are asked later, in batches, by Run (rate): a large
	// snapshot must not hold up Start with one locality lookup per file.
	for i, f := range files {
		pf := &pfile{p: p, Idx: i, LFN: f.LFN, Size: f.Size, State: FilePending}
		if s, err := m.surl(r.Site, f.LFN); err == nil {
			pf.SURL = s
		}
		p.files = append(p.files, pf)
	}
	m.mu.Lock()
	if _, ok := m.projects[r.Name]; ok || m.reserved[r.Name] {
		m.mu.Unlock()
		return Summary{}, fmt.Errorf("%w: %s", ErrExists, r.Name)
	}
	m.reserved[r.Name] = true // while storing, without holding the lock
	m.mu.Unlock()
	err := m.insertProject(ctx, p)
	m.mu.Lock()
	delete(m.reserved, r.Name)
	if err == nil {
		m.projects[r.Name] = p
	}
	m.mu.Unlock()
	if err != nil {
		if db.IsDuplicate(err) {
			return Summary{}, fmt.Errorf("%w: %s", ErrExists, r.Name)
		}
		return Summary{}, err
	}
	m.met.started.Inc()
	m.log.WithField("project", p.Name).WithField("files", len(p.files)).WithField("site", p.Site).Info("project started")
	m.kick()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.summary(p), nil
}

// surl maps an LFN to the site's SURL: the site's mapping, else its
// surl_prefix, else the inventory site's srm:// backend.
func (m *Manager) surl(site, lfn string) (string, error) {
	if sc := m.cfg.Sites[site]; sc != nil {
		if sc.mapper != nil {
			s, err := sc.mapper.ToPFN(lfn, "srm")
			if err != nil {
				return "", fmt.Errorf("%w: %s: %w", ErrNoSURL, site, err)
			}
			return s, nil
		}
		if sc.SURLPrefix != "" {
			return strings.TrimRight(sc.SURLPrefix, "/") + lfn, nil
		}
	}
	if m.opt.Sites != nil {
		if s, ok := m.opt.Sites(site); ok {
			if strings.HasPrefix(s.Backend, "srm://") {
				return strings.TrimRight(s.Backend, "/") + lfn, nil
			}
			return "", fmt.Errorf("%w: %s has backend %q", ErrNoSURL, site, s.Backend)
		}
	}
	if m.cfg.Sites[site] != nil {
		return "", fmt.Errorf("%w: %s", ErrNoSURL, site)
	}
	return "", fmt.Errorf("%w: %s", ErrUnknownSite, site)
}

func (m *Manager) siteKind(site string) StorageKind {
	if sc := m.cfg.Sites[site]; sc != nil {
		return sc.Kind
	}
	return Permanent
}

func (m *Manager) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run loads the running projects (reconciling their files with the
// stager's requests), then keeps the look-ahead filled and declares silent
// consumers dead, until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while loading: a shutdown, not a failure
		}
		return err
	}
	tick := time.NewTicker(m.cfg.Tick)
	defer tick.Stop()
	quota := time.NewTicker(m.cfg.QuotaInterval)
	defer quota.Stop()
	for {
		m.reapConsumers(ctx)
		m.rate(ctx)
		m.fill(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-m.wake:
		case <-quota.C:
			m.enforceQuotas(ctx)
		}
	}
}

// enforceQuotas keeps every durable site's cache under its quota. A site
// whose listing or erasure fails is logged and tried again next time.
func (m *Manager) enforceQuotas(ctx context.Context) {
	for name, sc := range m.cfg.Sites {
		if sc.Kind != Durable {
			continue
		}
		plan, err := m.EnforceQuota(ctx, name, false)
		if err != nil {
			if ctx.Err() == nil {
				m.log.WithError(err).WithField("site", name).Warn("keeping the durable cache under its quota")
			}
			continue
		}
		if len(plan.Erase) > 0 {
			m.log.WithFields(logrus.Fields{"site": name, "erased": len(plan.Erase), "used": plan.Used, "after": plan.After}).Info("durable cache pruned to its quota")
		}
	}
}

// rate asks the prioritizer for the priorities of the next RateBatch
// unrated files of each running project (snapshot order), without holding
// the lock during the lookups. This is the seed's "active" prioritisation:
// the cost of access is learned for a window of files ahead of delivery.
func (m *Manager) rate(ctx context.Context) {
	m.mu.Lock()
	var todo []*pfile
	var surls []string
	for _, p := range m.projects {
		if p.State != ProjectRunning {
			continue
		}
		n := 0
		for _, f := range p.files {
			if n == m.cfg.RateBatch {
				break
			}
			if !f.Rated && f.State == FilePending {
				todo = append(todo, f)
				if f.SURL != "" {
					surls = append(surls, f.SURL)
				}
				n++
			}
		}
	}
	m.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	var prio map[string]int
	if b, ok := m.opt.Prioritizer.(BatchPrioritizer); ok {
		prio = b.Priorities(ctx, surls)
	} else {
		prio = map[string]int{}
		for _, s := range surls {
			prio[s] = m.opt.Prioritizer.Priority(ctx, s)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range todo {
		if f.Rated || f.State != FilePending {
			continue
		}
		f.Priority, f.Rated = prio[f.SURL], true
		if err := m.saveFile(ctx, f); err != nil {
			m.log.WithError(err).WithField("lfn", f.LFN).Error("persisting a file priority")
		}
	}
}

// fill submits gets for the best rated pending files of each running
// project until its look-ahead window (staging + ready) is full. Unrated
// files wait for rate, which runs before fill in the same loop, so that a
// tape file is never staged ahead of a cached one for lack of a rating.
func (m *Manager) fill(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.projects {
		if p.State != ProjectRunning {
			continue
		}
		window := 0
		var pending []*pfile
		for _, f := range p.files {
			switch f.State {
			case FileStaging, FileReady:
				window++
			case FilePending:
				if f.Rated {
					pending = append(pending, f)
				}
			}
		}
		if window >= p.LookAhead || len(pending) == 0 {
			continue
		}
		// Cached first, then snapshot order.
		sort.SliceStable(pending, func(i, j int) bool { return pending[i].Priority > pending[j].Priority })
		for _, f := range pending[:min(len(pending), p.LookAhead-window)] {
			m.stage(ctx, f)
		}
	}
}

// stage submits the get of f (m.mu held). The LFN is translated to the
// site's SURL now, at staging time, so mapping changes apply.
func (m *Manager) stage(ctx context.Context, f *pfile) {
	s, err := m.surl(f.p.Site, f.LFN)
	if err != nil {
		m.setFile(ctx, f, FileFailed, err.Error())
		return
	}
	f.SURL = s
	var protos []string
	if sc := m.cfg.Sites[f.p.Site]; sc != nil {
		protos = sc.Protocols
	}
	id, err := m.opt.Stager.Submit(ctx, stager.Request{Kind: stager.KindGet, SURL: s, Owner: Owner, Protocols: protos}, nil)
	if err != nil {
		m.setFile(ctx, f, FileFailed, err.Error())
		return
	}
	f.RequestID = id
	m.byReq[id] = f
	m.setFile(ctx, f, FileStaging, "")
}

// onStager is the stager's callback for Owner's requests.
func (m *Manager) onStager(r stager.Result) {
	ctx := context.Background()
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.byReq[r.ID]
	if f == nil || f.RequestID != r.ID {
		// Not ours any more (project ended, or a request from before a
		// restart already reconciled): give back what it holds.
		if r.State == stager.StateReady {
			m.release(ctx, r.ID)
		}
		return
	}
	m.apply(ctx, f, r)
	m.kick()
}

// apply moves f according to its request's result (m.mu held).
func (m *Manager) apply(ctx context.Context, f *pfile, r stager.Result) {
	switch r.State {
	case stager.StateReady:
		if f.State != FileStaging || f.p.State != ProjectRunning {
			m.release(ctx, r.ID)
			return
		}
		f.TURL = r.TURL
		m.setFile(ctx, f, FileReady, "")
	case stager.StateFailed, stager.StateTimedOut:
		if f.State != FileStaging {
			return
		}
		delete(m.byReq, f.RequestID)
		if m.siteKind(f.p.Site) == Volatile && strings.Contains(r.Error, "SRM_INVALID_PATH") {
			m.vanished(ctx, f)
			return
		}
		m.setFile(ctx, f, FileFailed, r.Error)
	case stager.StateExpired:
		// The pin ran out before dispatch: stage it again later.
		if f.State == FileReady {
			delete(m.byReq, f.RequestID)
			f.RequestID, f.TURL = 0, ""
			m.setFile(ctx, f, FilePending, "")
		}
	}
}

// vanished handles a file volatile storage no longer has (m.mu held).
func (m *Manager) vanished(ctx context.Context, f *pfile) {
	m.setFile(ctx, f, FileVanished, "gone from volatile storage")
	m.met.vanished.Inc()
	if m.opt.Unregister != nil {
		if err := m.opt.Unregister.Unregister(ctx, f.p.Site, f.LFN); err != nil {
			m.log.WithError(err).WithField("site", f.p.Site).WithField("lfn", f.LFN).Warn("unregistering a vanished file failed")
		}
	}
}

// release gives a request's pin back through the stager (m.mu held; the
// stager only records the intent, so this does not block).
func (m *Manager) release(ctx context.Context, id int64) {
	if id == 0 {
		return
	}
	if err := m.opt.Stager.Release(ctx, id); err != nil {
		m.log.WithError(err).WithField("request", id).Warn("releasing a stager request failed")
	}
}

// setFile changes f's state and persists it (m.mu held).
func (m *Manager) setFile(ctx context.Context, f *pfile, st FileState, errMsg string) {
	f.State, f.Error = st, errMsg
	if err := m.saveFile(ctx, f); err != nil {
		m.log.WithError(err).WithField("project", f.p.Name).WithField("lfn", f.LFN).Error("persisting file state")
	}
}

// reapConsumers declares consumers silent for ConsumerTimeout dead.
func (m *Manager) reapConsumers(ctx context.Context) {
	limit := m.now().Add(-m.cfg.ConsumerTimeout).UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.projects {
		if p.State != ProjectRunning {
			continue
		}
		for _, c := range p.consumers {
			if c.State == ConsumerActive && c.LastSeen < limit {
				m.log.WithField("project", p.Name).WithField("cpid", c.CPID).Warn("consumer silent too long: declared dead")
				m.endConsumer(ctx, p, c, ConsumerDead)
			}
		}
	}
}

// endConsumer ends c: its unreported files are lost, their pins released
// (m.mu held).
func (m *Manager) endConsumer(ctx context.Context, p *project, c *consumer, st string) {
	c.State = st
	if err := m.saveConsumer(ctx, p, c); err != nil {
		m.log.WithError(err).Error("persisting consumer state")
	}
	for _, f := range p.files {
		if f.State == FileDelivered && f.Consumer == c.CPID {
			m.release(ctx, f.RequestID)
			m.setFile(ctx, f, FileLost, "consumer "+st+" without reporting the file")
		}
	}
}
