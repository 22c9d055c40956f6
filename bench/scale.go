package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
	restbench "github.com/dynamo-go/dynamo/registry/bench"
)

// ScaleSteps are the steps of the scaling benchmark, in the order they run.
var ScaleSteps = []string{"load", "detox", "dealer", "consistency", "rest"}

// ScaleOptions say which sizes to build and what to measure on each.
type ScaleOptions struct {
	Sizes         []float64         // multiples of CMS
	Steps         []string          // subset of ScaleSteps
	LoadDB        map[string]string // size -> DSN of a database generated with the same spec
	PolicyFile    string
	Partition     string
	Requests      int
	Rate          int
	RESTDuration  time.Duration
	ConsistencyTo int // cap on the files of the consistency diff (0: none)
	Seed          uint64
	WorkDir       string
	Dealer        dealer.Config
	// Detox is the detox: section: the rest step's cycles plan with its
	// Workers, as `dynamo serve` does.
	Detox detox.Config
	// RESTCPUProfile and RESTTrace, when set, receive a CPU profile and
	// an execution trace of the rest step (requests and cycles together);
	// the size is appended to the name when several sizes run.
	RESTCPUProfile string
	RESTTrace      string
}

// ScaleRow is one inventory size's figures. Seconds are wall time; the
// CPU figures say what the step cost on a shared machine.
type ScaleRow struct {
	Scale          float64 `json:"scale"`
	Sites          int64   `json:"sites"`
	Datasets       int64   `json:"datasets"`
	Blocks         int64   `json:"blocks"`
	BlockReplicas  int64   `json:"block_replicas"`
	DSReplicas     int64   `json:"dataset_replicas"`
	Objects        int64   `json:"objects"`
	BuildSeconds   float64 `json:"build_seconds"`
	HeapBytes      int64   `json:"heap_bytes"`
	BytesPerObject float64 `json:"bytes_per_object"`
	RSSBytes       int64   `json:"rss_bytes"`

	LoadSeconds *float64 `json:"load_seconds,omitempty"`
	LoadDB      string   `json:"load_db,omitempty"`

	DetoxSeconds    *float64 `json:"detox_seconds,omitempty"`
	DetoxCPU        *float64 `json:"detox_cpu_seconds,omitempty"`
	DetoxDeletions  int      `json:"detox_deletions"`
	DetoxDeleted    int64    `json:"detox_deleted_bytes"`
	DetoxDecisions  int      `json:"detox_replica_decisions"`
	DealerSeconds   *float64 `json:"dealer_seconds,omitempty"`
	DealerCPU       *float64 `json:"dealer_cpu_seconds,omitempty"`
	DealerRequests  int      `json:"dealer_requests"`
	DealerCopies    int      `json:"dealer_copies"`
	LargestSite     string   `json:"largest_site,omitempty"`
	LargestSiteRep  int64    `json:"largest_site_block_replicas"`
	LargestSiteFile int64    `json:"largest_site_files"`
	DiffFiles       int      `json:"consistency_files"`
	DiffSeconds     *float64 `json:"consistency_seconds,omitempty"`
	RESTP99         *float64 `json:"rest_p99_ms,omitempty"`
	RESTP50         *float64 `json:"rest_p50_ms,omitempty"`
	RESTErrors      int      `json:"rest_errors"`
	RESTCPUPerReq   float64  `json:"rest_cpu_ms_per_request"`
	RESTRate        float64  `json:"rest_achieved_rate"`
	RESTCycles      int      `json:"rest_detox_cycles_during"`
	// RESTRoutes are the latency figures of each route of the read mix.
	RESTRoutes map[string]restbench.Stats `json:"rest_routes,omitempty"`
	// RESTPlanWorkers is how many goroutines those cycles planned with.
	RESTPlanWorkers int `json:"rest_plan_workers,omitempty"`
	// RESTRuntime is what the Go runtime saw meanwhile (GC pauses and
	// their time to stop every goroutine, assists, scheduling latency).
	RESTRuntime *RESTRuntime `json:"rest_runtime,omitempty"`
	LoadAvg     string       `json:"loadavg"`
}

// ScaleReport is the whole run: a row per size and the growth exponents
// of each cost between the smallest and largest size.
type ScaleReport struct {
	Rows       []ScaleRow         `json:"rows"`
	Exponents  map[string]float64 `json:"exponents,omitempty"`
	GOMAXPROCS int                `json:"gomaxprocs"`
}

// ScaleSpec is the synthetic spec of k times CMS.
func ScaleSpec(k float64, seed uint64) synth.Spec {
	s := synth.CMS()
	s.Sites = max(10, int(math.Round(float64(s.Sites)*k)))
	s.Datasets = max(1, int(math.Round(float64(s.Datasets)*k)))
	s.Seed = seed
	s.ReportEveryBlocks = 5_000_000
	return s
}

// DefaultScaleOptions are the options `dynamo bench scale` starts from.
func DefaultScaleOptions() ScaleOptions {
	return ScaleOptions{Partition: "Default", Requests: 10_000, Rate: 500, RESTDuration: 10 * time.Second, Seed: 1,
		PolicyFile: "detox/testdata/policies/physics-default.txt"}
}

func (o ScaleOptions) step(name string) bool {
	return len(o.Steps) == 0 || slices.Contains(o.Steps, name)
}

// Scale builds the synthetic inventory of each size in memory and
// measures on it the steps o asks for (see `dynamo bench scale --help`).
func Scale(ctx context.Context, o ScaleOptions, log *logrus.Entry) (*ScaleReport, error) {
	dir := o.WorkDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "dynamo-bench-scale-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	// Components that keep their own tables (the registry's) get a scratch
	// database; the inventory lives only in memory.
	scratch, err := db.Open(ctx, "sqlite:"+filepath.Join(dir, "scratch.db"))
	if err != nil {
		return nil, err
	}
	defer scratch.Close()
	if _, err := scratch.Migrate(ctx); err != nil {
		return nil, err
	}
	var pol *policy.Policy
	var src detox.Sources
	if o.step("detox") || o.step("rest") {
		if pol, err = policy.LoadPolicy(o.PolicyFile, policy.PolicyOptions{Partition: o.Partition}); err != nil {
			return nil, InputError{err}
		}
		if err := src.FillEmpty(AllProducers()...); err != nil {
			return nil, err
		}
	}
	rep := &ScaleReport{GOMAXPROCS: runtime.GOMAXPROCS(0)}
	blog := log.WithField("component", "bench")
	for _, k := range o.Sizes {
		row, err := scaleOne(ctx, o, k, dir, scratch, pol, src, blog)
		if err != nil {
			return nil, fmt.Errorf("%gx: %w", k, err)
		}
		rep.Rows = append(rep.Rows, row)
	}
	rep.Exponents = scaleExponents(rep.Rows)
	return rep, nil
}

func scaleOne(ctx context.Context, o ScaleOptions, k float64, dir string, scratch *db.DB, pol *policy.Policy, src detox.Sources, log *logrus.Entry) (ScaleRow, error) {
	spec := ScaleSpec(k, o.Seed)
	row := ScaleRow{Scale: k}
	log = log.WithField("scale", k)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	store, st, err := synth.Build(ctx, scratch, log, spec, func(s synth.Stats) {
		log.WithField("block_replicas", s.BlockReplicas).WithField("elapsed", time.Since(start).Round(time.Second).String()).Info("building")
	})
	if err != nil {
		return row, err
	}
	row.BuildSeconds = time.Since(start).Seconds()
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	snap := store.Snapshot()
	c := snap.Counts()
	if c.Datasets != st.Datasets || c.Blocks != st.Blocks || c.BlockReplicas != st.BlockReplicas || c.Sites != st.Sites {
		return row, fmt.Errorf("built inventory %+v differs from what was generated %+v", c, st)
	}
	row.Sites, row.Datasets, row.Blocks, row.BlockReplicas, row.DSReplicas = c.Sites, c.Datasets, c.Blocks, c.BlockReplicas, c.DatasetReplicas
	row.Objects = c.Sites + c.Datasets + c.Blocks + c.BlockReplicas
	row.HeapBytes = int64(after.HeapAlloc) - int64(before.HeapAlloc)
	row.BytesPerObject = float64(row.HeapBytes) / float64(max(row.Objects, 1))
	row.RSSBytes = procStatusBytes("VmRSS")
	log.WithField("objects", row.Objects).WithField("bytes_per_object", math.Round(row.BytesPerObject*10)/10).
		WithField("seconds", math.Round(row.BuildSeconds)).Info("built in memory")

	if dsn, ok := o.LoadDB[strconv.FormatFloat(k, 'g', -1, 64)]; ok && o.step("load") {
		secs, name, err := timeLoad(ctx, dsn, log, snap)
		if err != nil {
			return row, fmt.Errorf("load: %w", err)
		}
		row.LoadSeconds, row.LoadDB = &secs, name
		log.WithField("seconds", secs).Info("loaded from the database")
	}
	if o.step("detox") {
		runtime.GC()
		c0, t0 := cpuSeconds(), time.Now()
		plan, err := detox.PlanCycle(ctx, snap, pol, detox.PlanOptions{Sources: src, Log: log})
		if err != nil {
			return row, fmt.Errorf("detox: %w", err)
		}
		secs, cpu := time.Since(t0).Seconds(), cpuSeconds()-c0
		row.DetoxSeconds, row.DetoxCPU = &secs, &cpu
		row.DetoxDeletions, row.DetoxDeleted, row.DetoxDecisions = len(plan.Deletions), plan.DeletedBytes(), len(plan.Replicas)
		log.WithField("seconds", secs).WithField("deletions", row.DetoxDeletions).Info("detox cycle planned")
	}
	if o.step("dealer") {
		now := time.Unix(1_760_000_000, 0)
		in := dealer.SyntheticInputs(snap, o.Requests, o.Seed, now)
		dl, err := dealer.New(o.Dealer, dealer.Deps{Requests: dealer.NewMemRequests(in.Requests...),
			Accesses: dealer.MemAccesses(in.Accesses), Protection: dealer.MemProtection{P: in.Protection}}, log)
		if err != nil {
			return row, fmt.Errorf("dealer: %w", err)
		}
		runtime.GC()
		c0, t0 := cpuSeconds(), time.Now()
		plan, err := dl.Plan(ctx, snap, dealer.PlanOptions{Seed: o.Seed, Now: now})
		if err != nil {
			return row, fmt.Errorf("dealer: %w", err)
		}
		secs, cpu := time.Since(t0).Seconds(), cpuSeconds()-c0
		row.DealerSeconds, row.DealerCPU = &secs, &cpu
		row.DealerRequests, row.DealerCopies = len(in.Requests), len(plan.Copies)
		log.WithField("seconds", secs).WithField("copies", row.DealerCopies).Info("dealer cycle planned")
	}
	site, reps, files := LargestSite(snap)
	row.LargestSite, row.LargestSiteRep, row.LargestSiteFile = site, reps, files
	if o.step("consistency") && files > 0 {
		n := int(files)
		if o.ConsistencyTo > 0 {
			n = min(n, o.ConsistencyTo)
		}
		n = max(10_000, (n+9_999)/10_000*10_000) // the diff benchmark's layout unit
		cdir, err := os.MkdirTemp(dir, "consistency-")
		if err != nil {
			return row, err
		}
		cdb, err := db.Open(ctx, "sqlite:"+filepath.Join(cdir, "inventory.db"))
		if err != nil {
			return row, err
		}
		if _, err := cdb.Migrate(ctx); err != nil {
			cdb.Close()
			return row, err
		}
		res, err := consistency.Bench(ctx, cdb, consistency.BenchOptions{Dir: cdir, Files: n, SpoolBudget: 64 << 20,
			Progress: func(s string) { log.Info(s) }})
		cdb.Close()
		os.RemoveAll(cdir)
		if err != nil {
			return row, fmt.Errorf("consistency: %w", err)
		}
		secs := res.Cold.Total.Seconds()
		row.DiffFiles, row.DiffSeconds = n, &secs
		log.WithField("files", n).WithField("seconds", secs).Info("consistency diff (cold)")
	}
	if o.step("rest") {
		res, cycles, rt, err := restDuringCycles(ctx, store, snap, pol, src, o, len(o.Sizes) > 1, k, log)
		if err != nil {
			return row, fmt.Errorf("rest: %w", err)
		}
		row.RESTP99, row.RESTP50 = &res.All.P99, &res.All.P50
		row.RESTErrors, row.RESTRate, row.RESTCycles, row.RESTCPUPerReq = res.All.Errors, res.AchievedRate, cycles, res.CPUPerRequest
		row.RESTRoutes, row.RESTPlanWorkers, row.RESTRuntime = res.Routes, o.Detox.Workers(), &rt
		log.WithField("p99_ms", res.All.P99).WithField("detox_cycles", cycles).WithField("gc_cycles", rt.GCCycles).
			WithField("gc_stopping_max_ms", rt.GCStoppingMaxMS).WithField("sched_latency_max_ms", rt.SchedLatencyMaxMS).Info("REST during cycles")
	}
	row.LoadAvg = loadAvg()
	runtime.KeepAlive(store)
	return row, nil
}

// timeLoad loads the database's inventory and checks it is the one that
// was built (same counts): otherwise the two figures are not comparable.
func timeLoad(ctx context.Context, dsn string, log *logrus.Entry, built *inventory.Snapshot) (float64, string, error) {
	d, err := db.Open(ctx, dsn)
	if err != nil {
		return 0, "", err
	}
	defer d.Close()
	runtime.GC()
	t0 := time.Now()
	s, err := inventory.Load(ctx, d, log, nil, time.Now())
	if err != nil {
		return 0, d.Name, fmt.Errorf("%s: %w", d.Name, err)
	}
	secs := time.Since(t0).Seconds()
	loaded := s.Snapshot()
	if got, want := loaded.Counts(), built.Counts(); got.Datasets != want.Datasets || got.BlockReplicas != want.BlockReplicas {
		return 0, d.Name, fmt.Errorf("%s holds %d datasets and %d block replicas, the built inventory %d and %d: generate it with the same spec",
			d.Name, got.Datasets, got.BlockReplicas, want.Datasets, want.BlockReplicas)
	}
	// Untimed: the loaded inventory must be the built one, not only as
	// large (a loader that misread a column would still count right).
	if got, want := digestInventory(loaded), digestInventory(built); got != want {
		return 0, d.Name, fmt.Errorf("%s loads an inventory that differs from the built one:\n loaded %+v\n built  %+v", d.Name, got, want)
	}
	return secs, d.Name, nil
}

// inventoryDigest sums every loaded field of the large tables, and hashes
// the names, in an order-independent way: two inventories with the same
// digest hold the same objects with the same values, save for collisions.
type inventoryDigest struct {
	Counts                                               inventory.Counts
	DatasetNames, DatasetFields, BlockNames, BlockFields uint64
	ReplicaFields, DSReplicaFields                       uint64
}

func digestInventory(snap *inventory.Snapshot) inventoryDigest {
	g := inventoryDigest{Counts: snap.Counts()}
	for d := range snap.Datasets() {
		g.DatasetNames += fnv64(d.Name)
		g.DatasetFields += mix64(uint64(d.ID), uint64(d.Status), uint64(d.DataType), fnv64(d.SoftwareVersion), uint64(d.LastUpdate),
			b2u(d.Open), uint64(d.Size), uint64(d.NumBlocks), uint64(d.NumFiles))
		for b := range snap.Blocks(d.ID) {
			g.BlockNames += fnv64(b.Name)
			g.BlockFields += mix64(uint64(b.ID), uint64(b.Dataset), uint64(b.Size), uint64(b.NumFiles), b2u(b.Open), uint64(b.LastUpdate))
		}
		for r := range snap.DatasetReplicas(d.ID) {
			g.DSReplicaFields += mix64(uint64(r.Dataset), uint64(r.Site), b2u(r.Growing), uint64(r.Group))
		}
	}
	for _, site := range snap.Sites() {
		for r := range snap.BlockReplicasAtSite(site.ID) {
			g.ReplicaFields += mix64(uint64(r.Block), uint64(r.Site), uint64(r.Group), b2u(r.Custodial), b2u(r.PendingDeletion),
				b2u(r.Suspicious), b2u(r.Complete), uint64(r.Size), uint64(r.NumFiles), uint64(r.LastUpdate))
		}
	}
	return g
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// mix64 hashes an ordered tuple of fields into one value (FNV-1a over the
// fields' bytes, then a final avalanche so that sums of digests of
// different tuples rarely coincide).
func mix64(v ...uint64) uint64 {
	h := uint64(14695981039346656037)
	for _, x := range v {
		for i := 0; i < 8; i++ {
			h = (h ^ (x & 0xff)) * 1099511628211
			x >>= 8
		}
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// LargestSite is the site with the most block replicas, and how many
// files those replicas hold.
func LargestSite(snap *inventory.Snapshot) (string, int64, int64) {
	var best inventory.Site
	var bestN int64 = -1
	for _, s := range snap.Sites() {
		var n int64
		for range snap.BlockReplicasAtSite(s.ID) {
			n++
		}
		if n > bestN {
			best, bestN = s, n
		}
	}
	if bestN <= 0 {
		return "", 0, 0
	}
	var files int64
	for r := range snap.BlockReplicasAtSite(best.ID) {
		files += int64(r.NumFiles)
	}
	return best.Name, bestN, files
}

// restDuringCycles runs Detox cycles back to back while the REST read mix
// runs at o.Rate, and reports the read latency.
func restDuringCycles(ctx context.Context, store *inventory.Store, snap *inventory.Snapshot, pol *policy.Policy, src detox.Sources,
	o ScaleOptions, suffix bool, k float64, log *logrus.Entry) (restbench.Result, int, RESTRuntime, error) {
	name := func(p string) string {
		if p == "" || !suffix {
			return p
		}
		return p + "." + strconv.FormatFloat(k, 'g', -1, 64) + "x"
	}
	stopProfile, err := startCPUProfile(name(o.RESTCPUProfile))
	if err != nil {
		return restbench.Result{}, 0, RESTRuntime{}, err
	}
	defer stopProfile()
	stopTrace, err := startTrace(name(o.RESTTrace))
	if err != nil {
		return restbench.Result{}, 0, RESTRuntime{}, err
	}
	defer stopTrace()
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var cycles int
	var cycleErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for cctx.Err() == nil {
			if _, err := detox.PlanCycle(cctx, snap, pol, detox.PlanOptions{Sources: src, Workers: o.Detox.Workers()}); err != nil {
				if cctx.Err() == nil {
					cycleErr = err
				}
				return
			}
			cycles++
		}
	}()
	before := readRuntimeCounters()
	res, err := restbench.API(ctx, store, log.WithField("component", "registry"), restbench.Options{Rate: o.Rate, Duration: o.RESTDuration,
		Warmup: time.Second, Seed: o.Seed})
	rt := runtimeBetween(before, readRuntimeCounters())
	cancel()
	wg.Wait()
	if err == nil {
		err = cycleErr
	}
	return res, cycles, rt, err
}

// scaleExponents fits cost ~ size^k for each step over the sizes measured.
func scaleExponents(rows []ScaleRow) map[string]float64 {
	out := map[string]float64{}
	fit := func(name string, get func(ScaleRow) *float64) {
		var xs, ys []float64
		for _, r := range rows {
			if v := get(r); v != nil && *v > 0 {
				xs = append(xs, r.Scale)
				ys = append(ys, *v)
			}
		}
		if k, ok := logLogSlope(xs, ys).(float64); ok {
			out[name] = math.Round(k*100) / 100
		}
	}
	f := func(v float64) *float64 { return &v }
	fit("memory", func(r ScaleRow) *float64 { return f(float64(r.HeapBytes)) })
	fit("build", func(r ScaleRow) *float64 { return f(r.BuildSeconds) })
	fit("load", func(r ScaleRow) *float64 { return r.LoadSeconds })
	fit("detox", func(r ScaleRow) *float64 { return r.DetoxSeconds })
	fit("detox_cpu", func(r ScaleRow) *float64 { return r.DetoxCPU })
	fit("dealer", func(r ScaleRow) *float64 { return r.DealerSeconds })
	fit("dealer_cpu", func(r ScaleRow) *float64 { return r.DealerCPU })
	fit("consistency", func(r ScaleRow) *float64 { return r.DiffSeconds })
	fit("rest_p99", func(r ScaleRow) *float64 { return r.RESTP99 })
	return out
}

// PrintScaleTable writes rep as a table, a row per size, then the growth
// exponents.
func PrintScaleTable(w io.Writer, rep *ScaleReport) {
	opt := func(v *float64, format string) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf(format, *v)
	}
	fmt.Fprintf(w, "%-5s %6s %9s %11s %7s %7s %8s %8s %13s %12s %12s %10s %s\n", "scale", "sites", "datasets", "blk_replicas",
		"GiB", "B/obj", "build_s", "load_s", "detox_s(cpu)", "dealer_s", "diff_s(files)", "rest_p99", "loadavg")
	for _, r := range rep.Rows {
		diff := "-"
		if r.DiffSeconds != nil {
			diff = fmt.Sprintf("%.1f(%dk)", *r.DiffSeconds, r.DiffFiles/1000)
		}
		detoxCol := "-"
		if r.DetoxSeconds != nil {
			detoxCol = fmt.Sprintf("%.1f(%.1f)", *r.DetoxSeconds, *r.DetoxCPU)
		}
		la := strings.Fields(r.LoadAvg)
		if len(la) > 0 {
			la = la[:1]
		}
		fmt.Fprintf(w, "%-5g %6d %9d %11d %7.2f %7.1f %8.1f %8s %13s %12s %12s %10s %s\n", r.Scale, r.Sites, r.Datasets, r.BlockReplicas,
			float64(r.HeapBytes)/(1<<30), r.BytesPerObject, r.BuildSeconds, opt(r.LoadSeconds, "%.1f"), detoxCol,
			opt(r.DealerSeconds, "%.2f"), diff, opt(r.RESTP99, "%.1fms"), strings.Join(la, ""))
	}
	if len(rep.Exponents) > 0 {
		keys := make([]string, 0, len(rep.Exponents))
		for k := range rep.Exponents {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, rep.Exponents[k]))
		}
		fmt.Fprintf(w, "growth exponents (cost ~ size^k): %s\n", strings.Join(parts, ", "))
	}
}
