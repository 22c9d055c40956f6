package projects

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/setest"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testutil"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

func TestPlanEviction(t *testing.T) {
	files := []CachedFile{
		{SURL: "a", Size: 40, LastUsed: 10},
		{SURL: "b", Size: 30, LastUsed: 5, InUse: true},
		{SURL: "c", Size: 20, LastUsed: 20},
		{SURL: "d", Size: 10, LastUsed: 1},
	}
	p := PlanEviction(files, 50)
	// Oldest first: d (10), b in use is kept, a (40): 100 → 50.
	if p.Used != 100 || p.After != 50 || len(p.Erase) != 2 || p.Erase[0].SURL != "d" || p.Erase[1].SURL != "a" ||
		len(p.Kept) != 1 || p.Kept[0].SURL != "b" {
		t.Errorf("plan %+v", p)
	}
	if p := PlanEviction(files, 1000); len(p.Erase) != 0 || p.After != 100 {
		t.Errorf("under quota: %+v", p)
	}
	if p := PlanEviction(files, 0); p.After != 30 || len(p.Erase) != 3 {
		t.Errorf("quota 0 erases everything not in use: %+v", p)
	}
}

func TestMapLocation(t *testing.T) {
	reps := []string{
		"srm://se1:8444/srm/managerv2?SFN=/pnfs/fnal.gov/usr/exp/data/raw/run1/f.root",
		"root://xrd:1094//exp/raw/run1/f.root",
		"srm://se2:8444/exp/data/run1/f.root",
	}
	for _, tc := range []struct {
		rule LocationRule
		base string
		reps []string
		want string
	}{
		{LocationBase, "srm://cache:8444/c/", reps, "srm://cache:8444/c/f.root"},
		{LocationShortest, "srm://cache:8444/c", reps, "srm://cache:8444/c/exp/raw/run1/f.root"},
		{LocationSameProtocol, "srm://cache:8444/c", reps, "srm://cache:8444/c/exp/data/run1/f.root"},
		{LocationSameProtocol, "davs://cache/c", reps, "davs://cache/c/exp/raw/run1/f.root"}, // no davs replica: shortest
		{LocationShortest, "srm://cache/c", nil, "srm://cache/c/f.root"},
		{LocationShortest, "srm://cache/c", []string{"srm://x/f.root"}, "srm://cache/c/f.root"},
	} {
		got, err := MapLocation(tc.rule, tc.base, "/store/exp/f.root", tc.reps)
		if err != nil || got != tc.want {
			t.Errorf("%s %s: %q %v, want %q", tc.rule, tc.base, got, err, tc.want)
		}
	}
	if _, err := MapLocation("nearest", "srm://c/c", "/x/f", reps); err == nil {
		t.Error("unknown rule accepted")
	}
	m := &Manager{cfg: Config{Sites: map[string]*SiteConfig{
		"A": {Location: LocationSameProtocol, LocationBase: "srm://cache:8444/c"}, "B": {}}}}
	if got, err := m.Destination("A", "/store/exp/f.root", reps); err != nil || got != "srm://cache:8444/c/exp/data/run1/f.root" {
		t.Errorf("Destination(A) = %q %v", got, err)
	}
	if _, err := m.Destination("B", "/store/exp/f.root", reps); err == nil {
		t.Error("Destination without location_base accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":   {"lookahed: 3\n", "1:1: lookahed: unknown key"},
		"lookahead":     {"lookahead: -1\n", "lookahead -1"},
		"retry":         {"retry_after: 100ms\n", "retry_after"},
		"kind":          {"sites: {S: {kind: flaky}}\n", "sites.S.kind"},
		"durable":       {"sites: {S: {kind: durable}}\n", "sites.S: a durable site needs"},
		"location":      {"sites: {S: {location: nearest}}\n", "sites.S.location"},
		"prefix":        {"sites: {S: {surl_prefix: 'davs://x'}}\n", "sites.S.surl_prefix"},
		"mapping":       {"sites: {S: {mapping: {srm: [[{lfn: '(', pfn: 'x'}]]}}}\n", "sites.S.mapping"},
		"stager nested": {"stager: {backoff_start: 10s, backoff_cap: 1s}\n", "stager: "},
		"estimator bad": {"estimator: {max_entries: -1}\n", "estimator: "},
	} {
		_, err := yamlconf.Read(strings.NewReader(tc.yaml), DecodeConfig)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, tc.want)
		}
	}
	c, err := yamlconf.Read(strings.NewReader("sites: {S: {}}\n"), DecodeConfig)
	if err != nil || c.LookAhead != 5 || c.Sites["S"].Kind != Permanent || c.Stager.BackoffStart != 2*time.Second {
		t.Errorf("defaults: %+v %v", c, err)
	}
}

// TestEnforceQuota erases the least recently used files of a durable
// cache on the embedded SE, never one a running project holds.
func TestEnforceQuota(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	d := testdb.SQLite(t)
	se.Mkdir(t, "/cache/sub")
	old := time.Now().Add(-time.Hour)
	for i, p := range []string{"/cache/a", "/cache/sub/b", "/cache/c"} {
		se.Put(t, p, []byte("0123456789"), false)
		mt := old.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(filepath.Join(se.Root, p), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	unreg := &recordUnreg{}
	e := newEnv(t, se, d, nil, func(c *Config) {
		c.Sites["T1_SE"] = &SiteConfig{Kind: Durable, QuotaBytes: 15, CacheRoot: se.Base + "/cache", SURLPrefix: se.Base, Location: LocationShortest}
	}, unreg)
	ctx := context.Background()
	// A project holds /cache/a (the oldest): it must survive.
	if _, err := e.m.Start(ctx, StartRequest{Name: "q", Files: []string{"/cache/a"}, Site: "T1_SE"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "the project's file ready", func() bool {
		s, _ := e.m.Summary(ctx, "q")
		return s.Counts[FileReady] == 1
	})
	dry, err := e.m.EnforceQuota(ctx, "T1_SE", true)
	if err != nil || len(dry.Erase) != 2 || dry.Used != 30 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if _, err := os.Stat(filepath.Join(se.Root, "cache/sub/b")); err != nil {
		t.Fatal("dry run erased")
	}
	plan, err := e.m.EnforceQuota(ctx, "T1_SE", false)
	if err != nil {
		t.Fatal(err)
	}
	if plan.After != 10 || len(plan.Kept) != 1 || !strings.HasSuffix(plan.Kept[0].SURL, "/cache/a") {
		t.Errorf("plan %+v", plan)
	}
	for p, want := range map[string]bool{"cache/a": true, "cache/sub/b": false, "cache/c": false} {
		if _, err := os.Stat(filepath.Join(se.Root, p)); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", p, err == nil, want)
		}
	}
	if len(unreg.got) != 2 {
		t.Errorf("unregistered %v", unreg.got)
	}
	if _, err := e.m.EnforceQuota(ctx, "nope", false); err == nil {
		t.Error("non-durable site accepted")
	}
	if _, err := e.m.End(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	se.NoLeaks(t)
}

// Run keeps a durable cache under its quota by itself, every
// quota_interval: the configured quota is enforced without anyone calling
// EnforceQuota.
func TestRunEnforcesQuota(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	d := testdb.SQLite(t)
	se.Mkdir(t, "/cache")
	old := time.Now().Add(-time.Hour)
	for i, p := range []string{"/cache/a", "/cache/b", "/cache/c"} {
		se.Put(t, p, []byte("0123456789"), false)
		mt := old.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(filepath.Join(se.Root, p), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	newEnv(t, se, d, nil, func(c *Config) {
		c.QuotaInterval = 50 * time.Millisecond
		c.Sites["T1_SE"] = &SiteConfig{Kind: Durable, QuotaBytes: 15, CacheRoot: se.Base + "/cache", SURLPrefix: se.Base, Location: LocationShortest}
	}, nil)
	var errA, errB, errC error
	if !testutil.Poll(time.Minute, func() bool {
		_, errA = os.Stat(filepath.Join(se.Root, "cache/a"))
		_, errB = os.Stat(filepath.Join(se.Root, "cache/b"))
		_, errC = os.Stat(filepath.Join(se.Root, "cache/c"))
		return errA != nil && errB != nil && errC == nil // the two oldest erased, the newest kept
	}) {
		t.Fatalf("cache not pruned: a %v, b %v, c %v", errA, errB, errC)
	}
}
