// Package consistency checks that what a storage site holds matches what
// the inventory says it holds (Dynamo's Site Consistency): it lists the
// site's namespace through its driver into sorted spool runs (parallel,
// retried, resumable from a checkpoint), diffs that stream against the
// inventory's files at the site in one sorted merge, and acts on the
// differences behind safety valves (two-run confirmation of missing files,
// a grace period for orphans, absolute and relative limits that turn a
// run into an alert). See docs/consistency.md.
package consistency

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/internal/yamlconf"

	"github.com/dynamo-go/dynamo/internal/glob"
)

// Config is the `consistency:` section of the dynamo configuration.
type Config struct {
	// Sites maps site names to what to list there. Only sites named here
	// are checked.
	Sites map[string]SiteConfig `yaml:"sites"`
	// Concurrency is the number of concurrent listing requests per site.
	Concurrency int `yaml:"concurrency"`
	// Retries per directory listing on recoverable errors.
	Retries int `yaml:"retries"`
	// RetryWait before the first retry (doubled after each).
	RetryWait time.Duration `yaml:"retry_wait"`
	// MinAge: files modified (and replicas changed) more recently are not
	// judged.
	MinAge time.Duration `yaml:"min_age"`
	// OrphanGrace: orphans are deleted only when older than this.
	OrphanGrace time.Duration `yaml:"orphan_grace"`
	// Ignore are glob patterns of LFNs never judged (e.g. "/store/unmerged/*").
	Ignore []string `yaml:"ignore"`
	// MaxMissing and MaxOrphans are absolute limits per run; MaxMissingFraction
	// and MaxOrphanFraction are relative to the files the inventory places at
	// the site (missing) or the files listed (orphans). A run above any
	// limit takes no action and raises an alert.
	MaxMissing         int64   `yaml:"max_missing"`
	MaxOrphans         int64   `yaml:"max_orphans"`
	MaxMissingFraction float64 `yaml:"max_missing_fraction"`
	MaxOrphanFraction  float64 `yaml:"max_orphan_fraction"`
	// Checksums asks sites for adler32 of every listed file (one request per file).
	Checksums bool `yaml:"checksums"`
	// CleanEmptyDirs removes empty directories older than MinAge.
	CleanEmptyDirs bool `yaml:"clean_empty_dirs"`
	// WorkDir holds per-run directories: listing checkpoints, spool runs
	// and the NDJSON reports.
	WorkDir string `yaml:"work_dir"`
	// SpoolBudget is the bytes of listing records held before a sorted run
	// is spilled to disk.
	SpoolBudget int `yaml:"spool_budget"`
	// CheckpointEvery is how often a listing's progress is saved.
	CheckpointEvery time.Duration `yaml:"checkpoint_every"`
	// KeepRuns is the number of finished runs per site whose work
	// directories are kept (older spools and reports are removed).
	KeepRuns int `yaml:"keep_runs"`
}

// SiteConfig says where and what to list at one site.
type SiteConfig struct {
	// URL is the storage root the site's LFNs are relative to, e.g.
	// "davs://se.example.org:443/dav". Default: the site's backend in the
	// inventory. The LFN /store/x is the path /store/x below it.
	URL string `yaml:"url"`
	// Paths are the LFN directories to list, e.g. ["/store/mc", "/store/data"].
	Paths []string `yaml:"paths"`
	// Concurrency overrides Config.Concurrency for this site.
	Concurrency int `yaml:"concurrency"`
	// Ignore adds site-specific patterns to Config.Ignore.
	Ignore []string `yaml:"ignore"`
}

// DefaultConfig returns the defaults; the limits follow Dynamo's
// production values (MaxMissing 100, MaxOrphan 1000) and Rucio's 1% abort
// thresholds.
func DefaultConfig() Config {
	return Config{
		Concurrency:        4,
		Retries:            3,
		RetryWait:          5 * time.Second,
		MinAge:             48 * time.Hour,
		OrphanGrace:        14 * 24 * time.Hour,
		MaxMissing:         100,
		MaxOrphans:         1000,
		MaxMissingFraction: 0.01,
		MaxOrphanFraction:  0.01,
		CleanEmptyDirs:     true,
		WorkDir:            "/var/lib/dynamo/consistency",
		SpoolBudget:        64 << 20,
		CheckpointEvery:    30 * time.Second,
		KeepRuns:           5,
	}
}

// DecodeConfig decodes a `consistency:` section from its node (see
// yamlconf: strict, positions of the file) over the defaults and
// validates. A nil node gives the defaults.
func DecodeConfig(n *yaml.Node) (Config, error) {
	c := DefaultConfig()
	if err := yamlconf.Decode(n, &c); err != nil {
		return c, fmt.Errorf("consistency: %w", err)
	}
	return c, c.Validate()
}

// Validate reports every bad setting, naming it.
func (c Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("consistency: "+f, a...)) }
	if c.Concurrency < 1 {
		bad("concurrency: %d, want >= 1", c.Concurrency)
	}
	if c.Retries < 0 {
		bad("retries: %d is negative", c.Retries)
	}
	for name, d := range map[string]time.Duration{"retry_wait": c.RetryWait, "min_age": c.MinAge, "orphan_grace": c.OrphanGrace, "checkpoint_every": c.CheckpointEvery} {
		if d < 0 {
			bad("%s: %v is negative", name, d)
		}
	}
	if c.OrphanGrace < c.MinAge {
		bad("orphan_grace %v is shorter than min_age %v", c.OrphanGrace, c.MinAge)
	}
	if c.MaxMissing < 0 || c.MaxOrphans < 0 {
		bad("max_missing/max_orphans must not be negative")
	}
	for name, f := range map[string]float64{"max_missing_fraction": c.MaxMissingFraction, "max_orphan_fraction": c.MaxOrphanFraction} {
		if f < 0 || f > 1 {
			bad("%s: %v, want 0..1", name, f)
		}
	}
	if c.WorkDir == "" {
		bad("work_dir is empty")
	}
	if c.KeepRuns < 1 {
		bad("keep_runs: %d, want >= 1", c.KeepRuns)
	}
	if _, err := compileGlobs(c.Ignore); err != nil {
		bad("ignore: %v", err)
	}
	for name, s := range c.Sites {
		if len(s.Paths) == 0 {
			bad("sites.%s.paths: empty", name)
		}
		for _, p := range s.Paths {
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || (len(p) > 1 && strings.HasSuffix(p, "/")) {
				bad("sites.%s.paths: %q must be absolute and clean (no trailing /, no ..)", name, p)
			}
		}
		for i, p := range s.Paths {
			for _, q := range s.Paths[i+1:] {
				if p == q || strings.HasPrefix(q, p+"/") || strings.HasPrefix(p, q+"/") || p == "/" || q == "/" {
					bad("sites.%s.paths: %q and %q overlap (a file would be listed twice)", name, p, q)
				}
			}
		}
		if s.Concurrency < 0 {
			bad("sites.%s.concurrency: %d is negative", name, s.Concurrency)
		}
		if _, err := compileGlobs(s.Ignore); err != nil {
			bad("sites.%s.ignore: %v", name, err)
		}
	}
	return errors.Join(errs...)
}

func compileGlobs(pats []string) ([]*glob.Pattern, error) {
	out := make([]*glob.Pattern, 0, len(pats))
	for _, p := range pats {
		g, err := glob.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", p, err)
		}
		out = append(out, g)
	}
	return out, nil
}
