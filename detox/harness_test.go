package detox

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// harness seeds a real inventory Store and runs Detox cycles on it. It is
// driven by scenario files (testdata/*.scenario) and by property tests.
type harness struct {
	t       require.TestingT
	ctx     context.Context
	d       *db.DB
	store   *inventory.Store
	log     *logrus.Entry
	at      time.Time // injection clock
	now     time.Time // cycle clock
	doc     inventory.InjectDoc
	parts   *policy.Partitions
	locks   MemLocks
	access  []AccessSummary
	flags   map[string]StaticDatasets
	enf     StaticReplicas
	opts    PlanOptions
	pol     *policy.Policy
	plan    *Plan
	decided map[string]ReplicaDecision // "dataset#block@site"
}

func testLog(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(testWriter{t})
	l.SetLevel(logrus.WarnLevel)
	return l.WithField("component", "detox")
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newHarness(t testing.TB, d *db.DB, partitions string) *harness {
	if d == nil {
		d = testdb.SQLite(t)
	}
	return newHarnessOn(t, t, d, partitions)
}

// newHarnessOn separates the assertion target (a rapid.T in property tests)
// from the test that owns the database and the logs.
func newHarnessOn(t require.TestingT, owner testing.TB, d *db.DB, partitions string) *harness {
	h := &harness{t: t, ctx: context.Background(), d: d, log: testLog(owner),
		at:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		now:   time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		flags: map[string]StaticDatasets{}}
	if partitions == "" {
		partitions = "Default: blockreplica.owner != None\n"
	}
	ps, err := policy.ParsePartitions("partitions", []byte(partitions))
	require.NoError(t, err)
	h.parts = ps
	defs, err := PartitionDefs(ps, h.now)
	require.NoError(t, err)
	h.store, err = inventory.Load(h.ctx, d, h.log, defs, h.at)
	require.NoError(t, err)
	return h
}

// flush injects what was loaded so far, at the injection clock.
func (h *harness) flush() {
	doc := h.doc
	h.doc = inventory.InjectDoc{}
	if len(doc.Sites)+len(doc.Groups)+len(doc.Datasets)+len(doc.DatasetReplicas)+len(doc.BlockReplicas) == 0 {
		return
	}
	_, err := h.store.Inject(h.ctx, h.at, &doc)
	require.NoError(h.t, err)
}

func lfn(ds, block string, i int) string {
	return fmt.Sprintf("/store%s/%s/%d.root", strings.ReplaceAll(ds, "/", "_"), block, i)
}

// block sizes are split into files of equal size (the last takes the rest).
func (h *harness) addDataset(name string, status inventory.DatasetStatus, updated int64, blocks []string, sizes []int64, files []int) {
	ds := inventory.InjectDataset{Name: name, Status: status, DataType: inventory.DataMC, LastUpdate: updated, SoftwareVersion: "CMSSW_10_2_4"}
	for i, b := range blocks {
		ib := inventory.InjectBlock{Name: b, LastUpdate: updated}
		n := max(files[i], 1)
		for f := 0; f < n; f++ {
			sz := sizes[i] / int64(n)
			if f == n-1 {
				sz = sizes[i] - sz*int64(n-1)
			}
			ib.Files = append(ib.Files, inventory.InjectFile{LFN: lfn(name, b, f), Size: sz})
		}
		ds.Blocks = append(ds.Blocks, ib)
	}
	h.doc.Datasets = append(h.doc.Datasets, ds)
}

// plan runs a cycle with the harness policy on the current snapshot.
func (h *harness) runPlan() *Plan {
	h.flush()
	opts := h.opts
	opts.At = h.now
	opts.Sources.Locks = &h.locks
	opts.Sources.Accesses = staticAccess(h.access)
	if h.enf != nil || opts.Sources.EnforcerRules == nil {
		opts.Sources.Enforcer = h.enf
	}
	opts.Sources.TapeRequests = h.flags["tape_request"]
	opts.Sources.UnhandledCopies = h.flags["unhandled_copy"]
	opts.Sources.ProtectedSites = h.flags["protected_site"]
	opts.Sources.Catalog = h.flags["catalog"]
	opts.Sources.LatestRelease = h.flags["release"]
	opts.Sources.Demand = h.flags["demand"]
	opts.Log = h.log
	p, err := PlanCycle(h.ctx, h.store.Snapshot(), h.pol, opts)
	require.NoError(h.t, err)
	h.plan = p
	h.decided = h.index(p)
	return p
}

type staticAccess []AccessSummary

func (s staticAccess) Accesses(context.Context, time.Time) ([]AccessSummary, error) { return s, nil }

// index maps every block replica of the plan to its decision.
func (h *harness) index(p *Plan) map[string]ReplicaDecision {
	snap := p.Snapshot()
	out := map[string]ReplicaDecision{}
	for _, r := range p.Replicas {
		site, _ := snap.Site(r.Site)
		blocks := r.Blocks
		if blocks == nil {
			for b := range snap.Blocks(r.Dataset) {
				if snap.InPartition(b.ID, r.Site, p.PartitionID) {
					blocks = append(blocks, b.ID)
				}
			}
		}
		for _, b := range blocks {
			out[snap.BlockFullName(b)+"@"+site.Name] = r
		}
	}
	return out
}

// decisions returns the decisions of the block replicas of ds (or of one
// block "ds#b") at site.
func (h *harness) decisions(name, site string) []ReplicaDecision {
	var out []ReplicaDecision
	for k, r := range h.decided {
		bn, s, _ := strings.Cut(k, "@")
		if s != site {
			continue
		}
		if bn == name || strings.HasPrefix(bn, name+"#") {
			out = append(out, r)
		}
	}
	return out
}
