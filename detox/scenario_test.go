package detox

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// TestScenarios runs every testdata/*.scenario script. The format:
//
//	partitions            lines up to "end": a partitions file (default: Default)
//	at DATE               injection clock for what follows (default 2026-01-01)
//	now DATE              cycle clock (default 2026-11-01)
//	load site NAME disk|mss ready|morgue PART=QUOTA...
//	load group NAME dataset|block
//	load dataset NAME STATUS BLOCK=SIZE[xFILES]... [updated=DATE]
//	load replica DATASET SITE GROUP [BLOCK...]     (no blocks: all, complete)
//	load blockreplica DATASET#BLOCK SITE GROUP [partial]   (partial: first file only)
//	lock DATASET[#BLOCK] [SITE...] [group=GROUP...] [expires=DATE]   (DATASET may be a glob)
//	access DATASET SITE COUNT DATE
//	flag tape_request|unhandled_copy|protected_site|catalog|release DATASET...
//	enforcer DATASET@SITE...
//	enforcer-rules        lines up to "end": an enforcer rules file (JSON)
//	option allow_last_copy | step FRACTION | copy_counts partition|inventory
//	policy                lines up to "end": the Detox policy
//	run                   plan a cycle
//	expect delete|keep|protect|ignore DATASET[#BLOCK] SITE [line N] [reason TEXT]
//	expect none DATASET[#BLOCK] SITE                (not in the partition or not a target)
//	expect deleted SITE BYTES
//	expect released SITE true|false
//
// The parser is strict, so that a typo fails instead of making an
// expectation pass vacuously: unknown directives, sites, datasets, blocks,
// flags and modifiers are errors, numbers and dates must parse, and a
// scenario needs a run and at least one expectation.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.scenario")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".scenario"), func(t *testing.T) { runScenario(t, f) })
	}
}

// TestScenariosParallel runs the scenarios again with every evaluation on
// the parallel path (run it with -race).
func TestScenariosParallel(t *testing.T) {
	defer func(n int) { parallelMin = n }(parallelMin)
	parallelMin = 1
	TestScenarios(t)
}

func parseDate(t require.TestingT, where, s string) time.Time {
	tm, err := time.Parse("2006-01-02", s)
	require.NoError(t, err, where)
	return tm
}

// scenarioNames is what a scenario declared, to refuse names it did not.
type scenarioNames struct {
	sites    map[string]bool
	datasets map[string]map[string]bool // dataset -> its blocks
}

func (n scenarioNames) site(t require.TestingT, where, s string) {
	if !n.sites[s] {
		require.Failf(t, "unknown site", "%s: unknown site %q", where, s)
	}
}

// item checks DATASET or DATASET#BLOCK.
func (n scenarioNames) item(t require.TestingT, where, item string) {
	ds, b, isBlock := strings.Cut(item, "#")
	blocks, ok := n.datasets[ds]
	if !ok {
		require.Failf(t, "unknown dataset", "%s: unknown dataset %q", where, ds)
	}
	if isBlock && !blocks[b] {
		require.Failf(t, "unknown block", "%s: dataset %s has no block %q", where, ds, b)
	}
}

// pattern checks a lock's DATASET[#BLOCK], which may be a glob: it must
// match a declared dataset (a plain name must be one).
func (n scenarioNames) pattern(t require.TestingT, where, item string) {
	ds, _, _ := strings.Cut(item, "#")
	if !strings.ContainsAny(ds, "*?[") {
		n.item(t, where, item)
		return
	}
	g, err := glob.Compile(ds)
	require.NoError(t, err, where)
	for name := range n.datasets {
		if g.Match(name) {
			return
		}
	}
	require.Failf(t, "pattern matches nothing", "%s: dataset pattern %q matches no dataset", where, ds)
}

// scenarioFlags are the dataset flags a scenario can set (harness.runPlan).
var scenarioFlags = []string{"tape_request", "unhandled_copy", "protected_site", "catalog", "release", "demand"}

func runScenario(t *testing.T, path string) {
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	runScenarioText(t, t, path, string(src))
}

// runScenarioText runs a scenario, reporting to t (the test, or a
// recorder in the parser's own tests); owner holds the database and logs.
func runScenarioText(t require.TestingT, owner testing.TB, path, src string) {
	sc := bufio.NewScanner(strings.NewReader(src))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NoError(t, sc.Err())

	var h *harness
	ensure := func(parts string) {
		if h == nil {
			h = newHarnessOn(t, owner, testdb.SQLite(owner), parts)
		}
	}
	names := scenarioNames{sites: map[string]bool{}, datasets: map[string]map[string]bool{}}
	expects := 0
	block := func(i *int) (string, int) {
		start := *i + 1
		var b strings.Builder
		for *i++; *i < len(lines) && strings.TrimSpace(lines[*i]) != "end"; *i++ {
			b.WriteString(lines[*i])
			b.WriteByte('\n')
		}
		return b.String(), start
	}
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := path + ":" + strconv.Itoa(i+1)
		w := strings.Fields(line)
		// args requires at least min words after the directive, at most max
		// (-1: any number).
		args := func(min, max int) {
			if n := len(w) - 1; n < min || (max >= 0 && n > max) {
				require.Failf(t, "wrong arguments", "%s: %s takes %d to %d arguments, got %d", where, w[0], min, max, n)
			}
		}
		switch w[0] {
		case "partitions":
			require.Nil(t, h, "%s: partitions must come first", where)
			text, _ := block(&i)
			ensure(text)
		case "at":
			args(1, 1)
			ensure("")
			h.flush()
			h.at = parseDate(t, where, w[1])
		case "now":
			args(1, 1)
			ensure("")
			h.now = parseDate(t, where, w[1])
		case "load":
			args(1, -1)
			ensure("")
			scenarioLoad(t, h, names, where, w[1:])
		case "lock":
			args(1, -1)
			ensure("")
			l := Lock{}
			names.pattern(t, where, w[1])
			l.Dataset, l.Block, _ = strings.Cut(w[1], "#")
			for _, a := range w[2:] {
				if e, ok := strings.CutPrefix(a, "expires="); ok {
					l.Expires = parseDate(t, where, e)
				} else if g, ok := strings.CutPrefix(a, "group="); ok {
					l.Groups = append(l.Groups, g)
				} else {
					names.site(t, where, a)
					l.Sites = append(l.Sites, a)
				}
			}
			h.locks.Add(l)
		case "access":
			args(4, 4)
			ensure("")
			names.item(t, where, w[1])
			names.site(t, where, w[2])
			n, err := strconv.ParseInt(w[3], 10, 64)
			require.NoError(t, err, where)
			h.access = append(h.access, AccessSummary{Dataset: w[1], Site: w[2], NumAccess: n, LastAccess: parseDate(t, where, w[4]).Unix()})
		case "flag":
			args(2, -1)
			ensure("")
			if !slices.Contains(scenarioFlags, w[1]) {
				require.Failf(t, "unknown flag", "%s: unknown flag %q (known: %s)", where, w[1], strings.Join(scenarioFlags, ", "))
			}
			for _, ds := range w[2:] {
				names.item(t, where, ds)
			}
			m := h.flags[w[1]]
			if m == nil {
				m = StaticDatasets{}
				h.flags[w[1]] = m
			}
			for _, ds := range w[2:] {
				m[ds] = 1
			}
		case "enforcer":
			args(1, -1)
			ensure("")
			for _, a := range w[1:] {
				ds, site, ok := strings.Cut(a, "@")
				if !ok {
					require.Failf(t, "bad enforcer", "%s: %q: want DATASET@SITE", where, a)
				}
				names.item(t, where, ds)
				names.site(t, where, site)
			}
			h.enf = append(h.enf, w[1:]...)
		case "enforcer-rules":
			ensure("")
			text, _ := block(&i)
			er, err := policy.ParseEnforcerRules(where, []byte(text))
			require.NoError(t, err, where)
			h.opts.Sources.EnforcerRules = append(h.opts.Sources.EnforcerRules, er)
		case "option":
			args(1, 2)
			ensure("")
			switch w[1] {
			case "allow_last_copy":
				args(1, 1)
				h.opts.AllowLastCopyDeletion = true
			case "copy_counts":
				args(2, 2)
				h.opts.CopyCounts = CopyScope(w[2])
				require.True(t, h.opts.CopyCounts.valid(), "%s: copy_counts %q: want partition or inventory", where, w[2])
			case "step":
				args(2, 2)
				v, err := strconv.ParseFloat(w[2], 64)
				require.NoError(t, err, where)
				h.opts.DeletionPerIteration = v
			default:
				require.Failf(t, "unknown option", "%s: unknown option %q", where, w[1])
			}
		case "policy":
			ensure("")
			text, start := block(&i)
			// Pad so that policy line numbers are scenario line numbers.
			p, err := policy.ParsePolicy(path, []byte(strings.Repeat("\n", start)+text), policy.PolicyOptions{})
			require.NoError(t, err, where)
			h.pol = p
		case "run":
			args(0, 0)
			require.True(t, h != nil && h.pol != nil, "%s: run before policy", where)
			h.runPlan()
		case "expect":
			args(2, -1)
			require.True(t, h != nil && h.plan != nil, "%s: expect before run", where)
			expects++
			scenarioExpect(t, h, names, where, w[1:])
		default:
			require.Failf(t, "unknown directive", "%s: unknown directive %q", where, w[0])
		}
	}
	require.True(t, h != nil && h.plan != nil, "%s: no run", path)
	require.NotZero(t, expects, "%s: no expect line: a scenario must check something", path)
}

func scenarioLoad(t require.TestingT, h *harness, names scenarioNames, where string, w []string) {
	want := map[string]int{"site": 4, "group": 3, "dataset": 3, "replica": 4, "blockreplica": 4}
	if n, ok := want[w[0]]; ok && len(w) < n {
		require.Failf(t, "too few arguments", "%s: load %s needs %d arguments", where, w[0], n-1)
	}
	switch w[0] {
	case "site":
		st, err := inventory.ParseStorageType(w[2])
		require.NoError(t, err, where)
		status, err := inventory.ParseSiteStatus(w[3])
		require.NoError(t, err, where)
		s := inventory.InjectSite{Name: w[1], StorageType: st, Status: status, Quotas: map[string]int64{}}
		names.sites[w[1]] = true
		for _, q := range w[4:] {
			k, v, ok := strings.Cut(q, "=")
			require.True(t, ok, "%s: %q: want PARTITION=QUOTA", where, q)
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err, where)
			s.Quotas[k] = n
		}
		h.doc.Sites = append(h.doc.Sites, s)
	case "group":
		require.Len(t, w, 3, "%s: load group NAME LEVEL", where)
		l, err := inventory.ParseOwnershipLevel(w[2])
		require.NoError(t, err, where)
		h.doc.Groups = append(h.doc.Groups, inventory.InjectGroup{Name: w[1], Level: l})
	case "dataset":
		status, err := inventory.ParseDatasetStatus(w[2])
		require.NoError(t, err, where)
		updated := h.at.Unix()
		var blocks []string
		var sizes []int64
		var files []int
		for _, a := range w[3:] {
			if u, ok := strings.CutPrefix(a, "updated="); ok {
				updated = parseDate(t, where, u).Unix()
				continue
			}
			b, v, ok := strings.Cut(a, "=")
			require.True(t, ok, "%s: %q: want BLOCK=SIZE", where, a)
			sz, nf, _ := strings.Cut(v, "x")
			n, err := strconv.ParseInt(sz, 10, 64)
			require.NoError(t, err, where)
			k := 1
			if nf != "" {
				k, err = strconv.Atoi(nf)
				require.NoError(t, err, where)
			}
			blocks, sizes, files = append(blocks, b), append(sizes, n), append(files, k)
		}
		names.datasets[w[1]] = map[string]bool{}
		for _, b := range blocks {
			names.datasets[w[1]][b] = true
		}
		h.addDataset(w[1], status, updated, blocks, sizes, files)
	case "replica":
		names.item(t, where, w[1])
		names.site(t, where, w[2])
		for _, b := range w[4:] {
			names.item(t, where, w[1]+"#"+b)
		}
		r := inventory.InjectDatasetReplica{Dataset: w[1], Site: w[2], Group: w[3]}
		if len(w) > 4 {
			r.Blocks = w[4:]
		}
		if r.Group == "None" {
			r.Group = ""
		}
		h.doc.DatasetReplicas = append(h.doc.DatasetReplicas, r)
	case "blockreplica":
		names.item(t, where, w[1])
		require.True(t, strings.Contains(w[1], "#"), "%s: %q: want DATASET#BLOCK", where, w[1])
		names.site(t, where, w[2])
		require.True(t, len(w) == 4 || (len(w) == 5 && w[4] == "partial"), "%s: load blockreplica DATASET#BLOCK SITE GROUP [partial]", where)
		r := inventory.InjectBlockReplica{Block: w[1], Site: w[2], Group: w[3]}
		if r.Group == "None" {
			r.Group = ""
		}
		if len(w) > 4 && w[4] == "partial" {
			ds, b, _ := strings.Cut(w[1], "#")
			r.Files = []string{lfn(ds, b, 0)}
		}
		h.doc.BlockReplicas = append(h.doc.BlockReplicas, r)
	default:
		require.Failf(t, "unknown load kind", "%s: unknown load kind %q", where, w[0])
	}
}

func scenarioExpect(t require.TestingT, h *harness, names scenarioNames, where string, w []string) {
	switch w[0] {
	case "deleted", "released":
		require.Len(t, w, 3, "%s: expect %s SITE VALUE", where, w[0])
		names.site(t, where, w[1])
	default:
		require.GreaterOrEqual(t, len(w), 3, "%s: expect %s DATASET[#BLOCK] SITE", where, w[0])
		names.item(t, where, w[1])
		names.site(t, where, w[2])
	}
	switch w[0] {
	case "deleted":
		var got int64
		for _, s := range h.plan.Sites {
			if s.Name == w[1] {
				got = s.Deleted
			}
		}
		want, err := strconv.ParseInt(w[2], 10, 64)
		require.NoError(t, err, where)
		require.Equal(t, want, got, "%s: bytes deleted at %s", where, w[1])
		return
	case "released":
		require.Contains(t, []string{"true", "false"}, w[2], "%s: expect released SITE true|false", where)
		for _, s := range h.plan.Sites {
			if s.Name == w[1] {
				require.Equal(t, w[2] == "true", s.Released, "%s: released at %s", where, w[1])
				return
			}
		}
		require.Failf(t, "not a target", "%s: site %s is not a target", where, w[1])
	}
	if w[0] == "none" {
		require.Len(t, w, 3, "%s: expect none DATASET[#BLOCK] SITE", where)
		require.Empty(t, h.decisions(w[1], w[2]), "%s: %s at %s is not in the cycle", where, w[1], w[2])
		return
	}
	want, err := ParseDecision(w[0])
	require.NoError(t, err, where)
	ds := h.decisions(w[1], w[2])
	require.NotEmpty(t, ds, "%s: no decision for %s at %s", where, w[1], w[2])
	for _, d := range ds {
		require.Equal(t, want, d.Decision, "%s: %s at %s: got %v (%s, %s)", where, w[1], w[2], d.Decision, h.plan.LineText(d.Line), d.Reason)
	}
	for k := 3; k < len(w); k++ {
		require.Less(t, k+1, len(w), "%s: %q needs a value", where, w[k])
		switch w[k] {
		case "line":
			n, err := strconv.Atoi(w[k+1])
			require.NoError(t, err, where)
			for _, d := range ds {
				require.Equal(t, n, d.Line, "%s: deciding line of %s at %s (%s)", where, w[1], w[2], h.plan.LineText(d.Line))
			}
			k++
		case "reason":
			text := strings.Join(w[k+1:], " ")
			for _, d := range ds {
				require.Equal(t, Reason(text), d.Reason, "%s: reason for %s at %s", where, w[1], w[2])
			}
			k = len(w)
		default:
			require.Failf(t, "unknown modifier", "%s: unknown modifier %q (line N, reason TEXT)", where, w[k])
		}
	}
}

// failRecorder is a require.TestingT that records the first failure and
// stops the scenario's goroutine, as testing.T.FailNow does.
type failRecorder struct{ msg string }

func (r *failRecorder) Errorf(format string, args ...any) {
	if r.msg == "" {
		r.msg = fmt.Sprintf(format, args...)
	}
}
func (r *failRecorder) FailNow() { runtime.Goexit() }

// A typo in a scenario must fail it, not make an expectation pass.
func TestScenarioParserIsStrict(t *testing.T) {
	const base = `load site T2_A disk ready Default=10000
load site T2_B disk ready Default=10000
load group AnalysisOps dataset
load dataset /Old/R-v1/AOD deprecated b1=100 updated=2025-01-01
load replica /Old/R-v1/AOD T2_A AnalysisOps
load replica /Old/R-v1/AOD T2_B AnalysisOps
policy
Partition Default
On site.name == T2_A
When site.occupancy > 0.9
Until site.occupancy < 0.8
Delete dataset.status == DEPRECATED
Dismiss
end
`
	run := func(src string) string {
		r := &failRecorder{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			runScenarioText(r, t, "bad.scenario", src)
		}()
		<-done
		return r.msg
	}
	if msg := run(base + "run\nexpect delete /Old/R-v1/AOD T2_A line 12\n"); msg != "" {
		t.Fatalf("the base scenario fails: %s", msg)
	}
	for _, tc := range []struct{ name, lines, want string }{
		{"no expectation", "run\n", "no expect line"},
		{"no run", "", "no run"},
		{"unknown directive", "run\nexpct delete /Old/R-v1/AOD T2_A\n", `unknown directive "expct"`},
		{"unknown site", "run\nexpect none /Old/R-v1/AOD T2_Z\n", `unknown site "T2_Z"`},
		{"unknown dataset", "run\nexpect none /Old/R-v2/AOD T2_B\n", `unknown dataset "/Old/R-v2/AOD"`},
		{"unknown block", "run\nexpect none /Old/R-v1/AOD#b9 T2_B\n", `has no block "b9"`},
		{"unknown site in deleted", "run\nexpect deleted T2_Z 0\n", `unknown site "T2_Z"`},
		{"bad bytes", "run\nexpect deleted T2_A 1OO\n", "bad.scenario:16"},
		{"bad released", "run\nexpect released T2_A yes\n", "true|false"},
		{"bad line number", "run\nexpect delete /Old/R-v1/AOD T2_A line twelve\n", "bad.scenario:16"},
		{"modifier without value", "run\nexpect delete /Old/R-v1/AOD T2_A line\n", `"line" needs a value`},
		{"unknown modifier", "run\nexpect delete /Old/R-v1/AOD T2_A lien 12\n", `unknown modifier "lien"`},
		{"unknown flag", "flag tape_requests /Old/R-v1/AOD\nrun\nexpect none /Old/R-v1/AOD T2_B\n", `unknown flag "tape_requests"`},
		{"unknown dataset in access", "access /Old/R-v1/AOOD T2_A 3 2026-01-01\nrun\nexpect none /Old/R-v1/AOD T2_B\n", `unknown dataset "/Old/R-v1/AOOD"`},
		{"bad access count", "access /Old/R-v1/AOD T2_A x 2026-01-01\nrun\nexpect none /Old/R-v1/AOD T2_B\n", "bad.scenario:15"},
		{"bad date", "now 2026-13-01\nrun\nexpect none /Old/R-v1/AOD T2_B\n", "bad.scenario:15"},
		{"lock pattern matching nothing", "lock /New*/R-v1/AOD\nrun\nexpect none /Old/R-v1/AOD T2_B\n", `dataset pattern "/New*/R-v1/AOD" matches no dataset`},
		{"lock on unknown site", "lock /Old/R-v1/AOD T2_Z\nrun\nexpect none /Old/R-v1/AOD T2_B\n", `unknown site "T2_Z"`},
		{"enforcer without site", "enforcer /Old/R-v1/AOD\nrun\nexpect none /Old/R-v1/AOD T2_B\n", "want DATASET@SITE"},
		{"bad copy_counts", "option copy_counts site\nrun\nexpect none /Old/R-v1/AOD T2_B\n", "want partition or inventory"},
		{"missing argument", "run\nexpect delete /Old/R-v1/AOD\n", "expect delete DATASET[#BLOCK] SITE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := run(base + tc.lines); !strings.Contains(msg, tc.want) {
				t.Fatalf("failure %q, want one containing %q", msg, tc.want)
			}
		})
	}
}
