// Package estimator assigns priorities to transfer requests from the cached
// status of their source file, as SAM's estimator does for the station:
// a source on disk (ONLINE, or ONLINE_AND_NEARLINE) gets the highest
// priority, one whose status is unknown or cannot be learned the neutral
// priority, one that needs staging from tape (NEARLINE) or is lost the
// lowest. The status is learned lazily, from srmLs locality or from the
// WLCG Tape REST archiveinfo call, and cached with a freshness limit.
package estimator

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// Locality is a file's SRM TFileLocality ("" when unknown).
type Locality string

// The localities (SRM names; Tape REST DISK/TAPE/DISK_AND_TAPE map to the
// first three).
const (
	Unknown           Locality = ""
	Online            Locality = "ONLINE"
	Nearline          Locality = "NEARLINE"
	OnlineAndNearline Locality = "ONLINE_AND_NEARLINE"
	Lost              Locality = "LOST"
	Unavailable       Locality = "UNAVAILABLE"
	None              Locality = "NONE"
)

// The priorities; higher is served first.
const (
	// PriorityCached: the source is on disk.
	PriorityCached = 100
	// PriorityNeutral: the status is unknown or not supported.
	PriorityNeutral = 50
	// PriorityStaging: the source must be staged from tape, or is lost or
	// unavailable (its transfer will wait or fail: try the others first).
	PriorityStaging = 0
)

// PriorityOf maps a locality to its priority.
func PriorityOf(l Locality) int {
	switch l {
	case Online, OnlineAndNearline:
		return PriorityCached
	case Nearline, Lost, Unavailable:
		return PriorityStaging
	}
	return PriorityNeutral
}

// Source learns localities. A SURL missing from the answer is unknown.
// An error means nothing was learned (every SURL unknown).
type Source interface {
	Localities(ctx context.Context, surls []string) (map[string]Locality, error)
}

// Config tunes the cache.
type Config struct {
	// Freshness is how long a learned locality is trusted; default 10m.
	Freshness time.Duration `yaml:"freshness"`
	// UnknownFreshness is how long an unknown answer is cached before the
	// source is asked again; default 1m.
	UnknownFreshness time.Duration `yaml:"unknown_freshness"`
	// MaxEntries bounds the cache; default 100000.
	MaxEntries int `yaml:"max_entries"`
	// Timeout bounds one lookup at the source; default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// TapeREST maps an SE's "host:port" (as in its SURLs) to its WLCG Tape
	// REST API base URL ("https://tape.example.org:8443/api/v1"); those
	// SEs are asked with archiveinfo first, srmLs for what it leaves
	// unknown. Used by the wiring that builds the sources (projects).
	TapeREST map[string]string `yaml:"tape_rest"`
}

// ApplyDefaults fills zero values.
func (c *Config) ApplyDefaults() {
	if c.Freshness == 0 {
		c.Freshness = 10 * time.Minute
	}
	if c.UnknownFreshness == 0 {
		c.UnknownFreshness = time.Minute
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = 100000
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

// ErrBadConfig wraps configuration errors.
var ErrBadConfig = errors.New("estimator: bad configuration")

// Validate names the first bad value.
func (c *Config) Validate() error {
	switch {
	case c.Freshness < 0:
		return fmt.Errorf("%w: freshness %v is negative", ErrBadConfig, c.Freshness)
	case c.UnknownFreshness < 0:
		return fmt.Errorf("%w: unknown_freshness %v is negative", ErrBadConfig, c.UnknownFreshness)
	case c.MaxEntries < 1:
		return fmt.Errorf("%w: max_entries %d must be positive", ErrBadConfig, c.MaxEntries)
	case c.Timeout <= 0:
		return fmt.Errorf("%w: timeout %v must be positive", ErrBadConfig, c.Timeout)
	}
	for h, ep := range c.TapeREST {
		if u, err := url.Parse(ep); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%w: tape_rest[%s] %q is not an http(s) URL", ErrBadConfig, h, ep)
		}
	}
	return nil
}

type entry struct {
	loc     Locality
	expires time.Time
}

// Estimator caches localities and turns them into priorities. Safe for
// concurrent use.
type Estimator struct {
	cfg Config
	src Source
	log *logrus.Entry
	now func() time.Time

	lookups, hits prometheus.Counter

	mu    sync.Mutex
	cache map[string]entry
}

// New returns an estimator asking src. reg may be nil.
func New(cfg Config, src Source, log *logrus.Entry, reg prometheus.Registerer) (*Estimator, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Estimator{cfg: cfg, src: src, log: log, now: time.Now, cache: map[string]entry{},
		lookups: prometheus.NewCounter(prometheus.CounterOpts{Name: "dynamo_estimator_source_lookups_total",
			Help: "SURLs whose locality the estimator asked its source for."}),
		hits: prometheus.NewCounter(prometheus.CounterOpts{Name: "dynamo_estimator_cache_hits_total",
			Help: "Priorities answered from the locality cache."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{e.lookups, e.hits} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("estimator metrics: %w", err)
			}
		}
	}
	return e, nil
}

// SetClock replaces the clock (tests).
func (e *Estimator) SetClock(now func() time.Time) { e.now = now }

// Priority returns the priority of a transfer from sourceSURL: one of
// PriorityCached, PriorityNeutral, PriorityStaging. It never fails: what
// cannot be learned is neutral. This is the method the file-operation
// daemon's Prioritizer calls.
func (e *Estimator) Priority(ctx context.Context, sourceSURL string) int {
	return PriorityOf(e.Localities(ctx, []string{sourceSURL})[sourceSURL])
}

// Priorities returns the priority of each source SURL, asking the source
// once for all those not fresh in the cache.
func (e *Estimator) Priorities(ctx context.Context, sourceSURLs []string) map[string]int {
	out := make(map[string]int, len(sourceSURLs))
	for s, l := range e.Localities(ctx, sourceSURLs) {
		out[s] = PriorityOf(l)
	}
	return out
}

// Locality returns the (cached) locality of surl.
func (e *Estimator) Locality(ctx context.Context, surl string) Locality {
	return e.Localities(ctx, []string{surl})[surl]
}

// Localities returns the locality of each SURL, asking the source once for
// all those not fresh in the cache.
func (e *Estimator) Localities(ctx context.Context, surls []string) map[string]Locality {
	now := e.now()
	out := make(map[string]Locality, len(surls))
	var stale []string
	e.mu.Lock()
	for _, s := range surls {
		if en, ok := e.cache[s]; ok && now.Before(en.expires) {
			out[s] = en.loc
			e.hits.Inc()
			continue
		}
		stale = append(stale, s)
	}
	e.mu.Unlock()
	if len(stale) == 0 {
		return out
	}
	e.lookups.Add(float64(len(stale)))
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	got, err := e.src.Localities(ctx, stale)
	if err != nil {
		// got may still hold what was learned before the failure.
		e.log.WithError(err).WithField("surls", len(stale)).WithField("learned", len(got)).Warn("locality lookup failed; the rest is neutral")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.cache)+len(stale) > e.cfg.MaxEntries {
		e.trim(now)
	}
	for _, s := range stale {
		l := got[s]
		out[s] = l
		ttl := e.cfg.Freshness
		if l == Unknown {
			ttl = e.cfg.UnknownFreshness
		}
		e.cache[s] = entry{loc: l, expires: now.Add(ttl)}
	}
	return out
}

// trim drops expired entries, then (if still too many) half of the rest.
func (e *Estimator) trim(now time.Time) {
	for k, en := range e.cache {
		if !now.Before(en.expires) {
			delete(e.cache, k)
		}
	}
	if len(e.cache) < e.cfg.MaxEntries/2 {
		return
	}
	n := 0
	for k := range e.cache {
		if n%2 == 0 {
			delete(e.cache, k)
		}
		n++
	}
}

// Observe records a locality learned elsewhere (a get that completed
// means the file is on disk now), fresh for Config.Freshness.
func (e *Estimator) Observe(surl string, l Locality) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cache[surl] = entry{loc: l, expires: e.now().Add(e.cfg.Freshness)}
}

// Sort returns surls ordered by priority, highest first, keeping the
// given order among equals.
func (e *Estimator) Sort(ctx context.Context, surls []string) []string {
	locs := e.Localities(ctx, surls)
	out := slices.Clone(surls)
	slices.SortStableFunc(out, func(a, b string) int { return PriorityOf(locs[b]) - PriorityOf(locs[a]) })
	return out
}
