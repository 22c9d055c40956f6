package detox

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/policy"
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

func parseDate(t *testing.T, where, s string) time.Time {
	tm, err := time.Parse("2006-01-02", s)
	require.NoError(t, err, where)
	return tm
}

func runScenario(t *testing.T, path string) {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NoError(t, sc.Err())

	var h *harness
	ensure := func(parts string) {
		if h == nil {
			h = newHarness(t, nil, parts)
		}
	}
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
		switch w[0] {
		case "partitions":
			require.Nil(t, h, "%s: partitions must come first", where)
			text, _ := block(&i)
			ensure(text)
		case "at":
			ensure("")
			h.flush()
			h.at = parseDate(t, where, w[1])
		case "now":
			ensure("")
			h.now = parseDate(t, where, w[1])
		case "load":
			ensure("")
			scenarioLoad(t, h, where, w[1:])
		case "lock":
			ensure("")
			l := Lock{}
			l.Dataset, l.Block, _ = strings.Cut(w[1], "#")
			for _, a := range w[2:] {
				if e, ok := strings.CutPrefix(a, "expires="); ok {
					l.Expires = parseDate(t, where, e)
				} else if g, ok := strings.CutPrefix(a, "group="); ok {
					l.Groups = append(l.Groups, g)
				} else {
					l.Sites = append(l.Sites, a)
				}
			}
			h.locks.Add(l)
		case "access":
			ensure("")
			n, err := strconv.ParseInt(w[3], 10, 64)
			require.NoError(t, err, where)
			h.access = append(h.access, AccessSummary{Dataset: w[1], Site: w[2], NumAccess: n, LastAccess: parseDate(t, where, w[4]).Unix()})
		case "flag":
			ensure("")
			m := h.flags[w[1]]
			if m == nil {
				m = StaticDatasets{}
				h.flags[w[1]] = m
			}
			for _, ds := range w[2:] {
				m[ds] = 1
			}
		case "enforcer":
			ensure("")
			h.enf = append(h.enf, w[1:]...)
		case "enforcer-rules":
			ensure("")
			text, _ := block(&i)
			er, err := policy.ParseEnforcerRules(where, []byte(text))
			require.NoError(t, err, where)
			h.opts.Sources.EnforcerRules = append(h.opts.Sources.EnforcerRules, er)
		case "option":
			ensure("")
			switch w[1] {
			case "allow_last_copy":
				h.opts.AllowLastCopyDeletion = true
			case "copy_counts":
				h.opts.CopyCounts = CopyScope(w[2])
			case "step":
				v, err := strconv.ParseFloat(w[2], 64)
				require.NoError(t, err, where)
				h.opts.DeletionPerIteration = v
			default:
				t.Fatalf("%s: unknown option %q", where, w[1])
			}
		case "policy":
			ensure("")
			text, start := block(&i)
			// Pad so that policy line numbers are scenario line numbers.
			p, err := policy.ParsePolicy(path, []byte(strings.Repeat("\n", start)+text), policy.PolicyOptions{})
			require.NoError(t, err, where)
			h.pol = p
		case "run":
			require.NotNil(t, h.pol, "%s: run before policy", where)
			h.runPlan()
		case "expect":
			require.NotNil(t, h.plan, "%s: expect before run", where)
			scenarioExpect(t, h, where, w[1:])
		default:
			t.Fatalf("%s: unknown directive %q", where, w[0])
		}
	}
	require.NotNil(t, h.plan, "%s: no run", path)
}

func scenarioLoad(t *testing.T, h *harness, where string, w []string) {
	switch w[0] {
	case "site":
		st, err := inventory.ParseStorageType(w[2])
		require.NoError(t, err, where)
		status, err := inventory.ParseSiteStatus(w[3])
		require.NoError(t, err, where)
		s := inventory.InjectSite{Name: w[1], StorageType: st, Status: status, Quotas: map[string]int64{}}
		for _, q := range w[4:] {
			k, v, _ := strings.Cut(q, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err, where)
			s.Quotas[k] = n
		}
		h.doc.Sites = append(h.doc.Sites, s)
	case "group":
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
		h.addDataset(w[1], status, updated, blocks, sizes, files)
	case "replica":
		r := inventory.InjectDatasetReplica{Dataset: w[1], Site: w[2], Group: w[3]}
		if len(w) > 4 {
			r.Blocks = w[4:]
		}
		if r.Group == "None" {
			r.Group = ""
		}
		h.doc.DatasetReplicas = append(h.doc.DatasetReplicas, r)
	case "blockreplica":
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
		t.Fatalf("%s: unknown load kind %q", where, w[0])
	}
}

func scenarioExpect(t *testing.T, h *harness, where string, w []string) {
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
		for _, s := range h.plan.Sites {
			if s.Name == w[1] {
				require.Equal(t, w[2] == "true", s.Released, "%s: released at %s", where, w[1])
				return
			}
		}
		t.Fatalf("%s: site %s is not a target", where, w[1])
	}
	if w[0] == "none" {
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
	for k := 3; k+1 < len(w); k++ {
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
		}
	}
}
