package dealer_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
	"github.com/dynamo-go/dynamo/inventory"
)

// Scenario files (testdata/*.scenario) describe an inventory, the Dealer's
// inputs and configuration, and what a cycle must do. docs/dealer.md
// documents the format; in short, one command per line:
//
//	site NAME STORAGE STATUS [quota=SIZE]
//	group NAME
//	dataset NAME [status=S] blocks=N size=SIZE       (blocks b0..bN-1, equal sizes, 2 files each)
//	replica DATASET SITE [group=G|None] [blocks=b0,b1] [incomplete]   (default group AnalysisOps)
//	config {YAML flow mapping, applied on top of the defaults}
//	enforcer FILE                                    (relative to testdata/)
//	request ID STATUS n=N items=A,B sites=X,Y [group=G] [user=U]
//	access DATASET count=N age=DURATION
//	protect SITE FRACTION [DATASET ...]              (balancer input)
//	seed N
//	plan | apply | replan
//	expect copy ITEM SITEGLOB [plugin=P] [bytes=SIZE] [group=G]
//	expect nocopy ITEM [SITEGLOB]
//	expect reject ITEM "REASON" [plugin=P]
//	expect copies N | expect rejections N | expect reason "REASON" N
//	expect request ID STATUS
//	expect replica BLOCK SITE complete|incomplete|absent [group=G]
//	expect transfers N
//	expect skipped N
//
// Items are dataset names, "dataset#block" or "dataset (N blocks)", as
// proposals name them. A scenario that applies runs on every dialect.
//
// The parser is strict, so that a typo fails instead of making an
// expectation pass vacuously: unknown commands, options, sites, datasets,
// blocks, plugins, reasons and statuses are errors, numbers must parse, and
// a scenario needs at least one expectation.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.scenario")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".scenario")
		t.Run(name, func(t *testing.T) {
			if strings.Contains(string(src), "\napply") {
				testdb.Each(t, func(t *testing.T, d *db.DB) { runScenario(t, f, string(src), d) })
				return
			}
			runScenario(t, f, string(src), testdb.SQLite(t))
		})
	}
}

var scenarioNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// scenarioT is what a scenario reports failures to: the test, or a
// recorder in the parser's own tests.
type scenarioT interface {
	Helper()
	Fatalf(format string, args ...any)
}

type scenario struct {
	t        scenarioT
	file     string
	line     int
	d        *db.DB
	doc      inventory.InjectDoc
	cfg      dealer.Config
	cfgLines []string
	reqs     *dealer.MemRequests
	reqList  []dealer.CopyRequest
	acc      dealer.MemAccesses
	prot     *dealer.Protection
	seed     uint64
	store    *inventory.Store
	dl       *dealer.Dealer
	plan     *dealer.Plan
	applied  *dealer.ApplyResult
	xfers    *dealer.MemTransfers
	expects  int
}

func (s *scenario) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.file, s.line, fmt.Sprintf(format, args...))
}

func runScenario(t scenarioT, file, src string, d *db.DB) {
	t.Helper()
	s := &scenario{t: t, file: file, d: d, cfg: dealer.DefaultConfig(), seed: 1, xfers: &dealer.MemTransfers{}}
	sc := bufio.NewScanner(strings.NewReader(src))
	for sc.Scan() {
		s.line++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "config "); ok {
			s.cfgLines = append(s.cfgLines, rest)
			continue
		}
		s.exec(splitArgs(line))
	}
	s.line = 0
	if s.expects == 0 {
		s.fail("no expect line: a scenario must check something")
	}
}

// splitArgs splits on blanks, keeping "quoted strings" together.
func splitArgs(line string) []string {
	var out []string
	var cur strings.Builder
	inQ := false
	for _, r := range line {
		switch {
		case r == '"':
			inQ = !inQ
		case (r == ' ' || r == '\t') && !inQ:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// options lists the key=value options each command takes; any other is
// an error.
var options = map[string][]string{
	"site": {"quota"}, "dataset": {"status", "blocks", "size"}, "replica": {"group", "blocks"},
	"request": {"n", "items", "sites", "group", "user"}, "access": {"count", "age"},
	"expect copy": {"plugin", "bytes", "group"}, "expect reject": {"plugin"}, "expect replica": {"group"},
}

// knownReasons are the dealer's rejection reasons an expectation may name.
var knownReasons = map[dealer.Reason]bool{}

func init() {
	for _, r := range []dealer.Reason{dealer.ReasonUnknownItem, dealer.ReasonDatasetStatus, dealer.ReasonDuplicate,
		dealer.ReasonCycleVolume, dealer.ReasonPluginVolume, dealer.ReasonRequestVolume, dealer.ReasonNoSource,
		dealer.ReasonReplicaExists, dealer.ReasonNotTarget, dealer.ReasonPlacement, dealer.ReasonDestinationFull,
		dealer.ReasonNoDestination, dealer.ReasonUnknownGroup, dealer.ReasonNoTargetSites, dealer.ReasonRequestTooLarge,
		dealer.ReasonNoItems, dealer.ReasonStale, dealer.ReasonNothingToReplace} {
		knownReasons[r] = true
	}
}

// kv splits key=value options from positional arguments.
func kv(args []string) (pos []string, opts map[string]string) {
	opts = map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && !strings.HasPrefix(a, "/") {
			opts[k] = v
		} else {
			pos = append(pos, a)
		}
	}
	return pos, opts
}

// checkOptions fails on an option cmd does not take.
func (s *scenario) checkOptions(cmd string, opts map[string]string) {
	s.t.Helper()
	for k := range opts {
		if !slices.Contains(options[cmd], k) {
			s.fail("%s: unknown option %s= (takes: %s)", cmd, k, strings.Join(options[cmd], ", "))
		}
	}
}

// integer parses a count or an ID; anything else fails the scenario.
func (s *scenario) integer(what, v string) int64 {
	s.t.Helper()
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		s.fail("%s: %q is not an integer", what, v)
	}
	return n
}

// fraction parses a number in [0, 1].
func (s *scenario) fraction(what, v string) float64 {
	s.t.Helper()
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		s.fail("%s: %q is not a fraction in [0, 1]", what, v)
	}
	return f
}

func (s *scenario) knownSite(name string) {
	s.t.Helper()
	for _, x := range s.doc.Sites {
		if x.Name == name {
			return
		}
	}
	s.fail("unknown site %q", name)
}

// knownSites fails unless the glob pattern matches a declared site.
func (s *scenario) knownSites(pat string) *glob.Pattern {
	s.t.Helper()
	g, err := glob.Compile(pat)
	if err != nil {
		s.fail("%v", err)
	}
	for _, x := range s.doc.Sites {
		if g.Match(x.Name) {
			return g
		}
	}
	s.fail("site pattern %q matches no site", pat)
	return nil
}

func (s *scenario) dataset(name string) inventory.InjectDataset {
	s.t.Helper()
	for _, ds := range s.doc.Datasets {
		if ds.Name == name {
			return ds
		}
	}
	s.fail("unknown dataset %q", name)
	return inventory.InjectDataset{}
}

// feedDataset is a dataset named by an outside feed (accesses,
// protection figures). Feeds may name datasets the inventory does not
// hold, which a scenario says on purpose with a leading "?": the name must
// then be undeclared, so a typo in a declared name still fails the parse.
func (s *scenario) feedDataset(name string) string {
	s.t.Helper()
	if foreign, ok := strings.CutPrefix(name, "?"); ok {
		for _, ds := range s.doc.Datasets {
			if ds.Name == foreign {
				s.fail("dataset %q is declared: drop the leading ?", foreign)
			}
		}
		return foreign
	}
	s.dataset(name)
	return name
}

// knownItem fails unless item (a dataset, dataset#block or "dataset (N
// blocks)", as proposals name them) is declared.
func (s *scenario) knownItem(item string) {
	s.t.Helper()
	name, block, isBlock := strings.Cut(item, "#")
	if !isBlock {
		name, _, _ = strings.Cut(item, " (")
	}
	ds := s.dataset(name)
	if isBlock && !slices.ContainsFunc(ds.Blocks, func(b inventory.InjectBlock) bool { return b.Name == block }) {
		s.fail("dataset %s has no block %q", name, block)
	}
}

func (s *scenario) knownPlugin(opts map[string]string) {
	s.t.Helper()
	if p, ok := opts["plugin"]; ok && !slices.Contains(dealer.PluginNames, p) {
		s.fail("unknown plugin %q (known: %s)", p, strings.Join(dealer.PluginNames, ", "))
	}
}

func (s *scenario) knownReason(r string) {
	s.t.Helper()
	if !knownReasons[dealer.Reason(r)] {
		s.fail("unknown reason %q", r)
	}
}

func (s *scenario) requestStatus(v string) dealer.RequestStatus {
	s.t.Helper()
	switch st := dealer.RequestStatus(v); st {
	case dealer.RequestNew, dealer.RequestActivated, dealer.RequestCompleted, dealer.RequestRejected, dealer.RequestCancelled:
		return st
	}
	s.fail("unknown request status %q", v)
	return ""
}

func (s *scenario) size(v string) int64 {
	n, err := bytesize.Parse(v)
	if err != nil {
		s.fail("%v", err)
	}
	return n
}

func (s *scenario) exec(args []string) {
	s.t.Helper()
	pos, opts := kv(args[1:])
	need := func(n int) {
		if len(pos) < n {
			s.fail("%s needs %d arguments", args[0], n)
		}
	}
	if args[0] != "expect" {
		s.checkOptions(args[0], opts)
	}
	switch args[0] {
	case "site":
		need(3)
		st, err := inventory.ParseStorageType(pos[1])
		if err != nil {
			s.fail("%v", err)
		}
		ss, err := inventory.ParseSiteStatus(pos[2])
		if err != nil {
			s.fail("%v", err)
		}
		site := inventory.InjectSite{Name: pos[0], StorageType: st, Status: ss}
		if q, ok := opts["quota"]; ok {
			site.Quotas = map[string]int64{"Default": s.size(q)}
		}
		s.doc.Sites = append(s.doc.Sites, site)
	case "group":
		need(1)
		s.doc.Groups = append(s.doc.Groups, inventory.InjectGroup{Name: strings.Join(pos, " ")})
	case "dataset":
		need(1)
		n := int(s.integer("blocks=", opts["blocks"]))
		if n < 1 {
			s.fail("dataset %s: blocks=%d, want at least 1", pos[0], n)
		}
		total := s.size(opts["size"])
		status := inventory.DatasetValid
		if v, ok := opts["status"]; ok {
			var err error
			if status, err = inventory.ParseDatasetStatus(v); err != nil {
				s.fail("%v", err)
			}
		}
		ds := inventory.InjectDataset{Name: pos[0], Status: status, DataType: inventory.DataMC, LastUpdate: scenarioNow.Unix()}
		base := strings.ReplaceAll(strings.Trim(pos[0], "/"), "/", "_")
		for i := range n {
			bs := total / int64(n)
			ds.Blocks = append(ds.Blocks, inventory.InjectBlock{Name: fmt.Sprintf("b%d", i), Files: []inventory.InjectFile{
				{LFN: fmt.Sprintf("/store/%s/b%d_0.root", base, i), Size: bs / 2},
				{LFN: fmt.Sprintf("/store/%s/b%d_1.root", base, i), Size: bs - bs/2},
			}})
		}
		s.doc.Datasets = append(s.doc.Datasets, ds)
	case "replica":
		need(2)
		ds := s.dataset(pos[0])
		s.knownSite(pos[1])
		for _, p := range pos[2:] {
			if p != "incomplete" {
				s.fail("replica: unknown argument %q", p)
			}
		}
		group := opts["group"]
		switch group {
		case "":
			group = "AnalysisOps"
		case "None":
			group = "" // the null group
		}
		var blocks []string
		if b := opts["blocks"]; b != "" {
			blocks = strings.Split(b, ",")
			for _, b := range blocks {
				s.knownItem(ds.Name + "#" + b)
			}
		}
		if slices.Contains(pos, "incomplete") {
			// every listed (or every) block present with its first file only
			if blocks == nil {
				for _, ds := range s.doc.Datasets {
					if ds.Name == pos[0] {
						for _, b := range ds.Blocks {
							blocks = append(blocks, b.Name)
						}
					}
				}
			}
			s.doc.DatasetReplicas = append(s.doc.DatasetReplicas, inventory.InjectDatasetReplica{Dataset: pos[0], Site: pos[1], Group: group, Blocks: []string{}})
			for _, b := range blocks {
				var first string
				for _, ds := range s.doc.Datasets {
					for _, bl := range ds.Blocks {
						if ds.Name == pos[0] && bl.Name == b {
							first = bl.Files[0].LFN
						}
					}
				}
				s.doc.BlockReplicas = append(s.doc.BlockReplicas, inventory.InjectBlockReplica{Block: pos[0] + "#" + b, Site: pos[1], Group: group, Files: []string{first}})
			}
			return
		}
		s.doc.DatasetReplicas = append(s.doc.DatasetReplicas, inventory.InjectDatasetReplica{Dataset: pos[0], Site: pos[1], Group: group, Blocks: blocks})
	case "enforcer":
		need(1)
		s.cfg.Plugins.Enforcer.RulesFiles = append(s.cfg.Plugins.Enforcer.RulesFiles, filepath.Join("testdata", pos[0]))
	case "request":
		need(2)
		id := s.integer("request ID", pos[0])
		n := int(s.integer("n=", opts["n"]))
		r := dealer.CopyRequest{ID: id, Status: s.requestStatus(pos[1]), N: n, Group: opts["group"], User: opts["user"]}
		if v := opts["items"]; v != "" {
			r.Items = strings.Split(v, ",")
		}
		if v := opts["sites"]; v != "" {
			r.Sites = strings.Split(v, ",")
		}
		s.reqList = append(s.reqList, r)
	case "access":
		need(1)
		name := s.feedDataset(pos[0])
		n := int(s.integer("count=", opts["count"]))
		age, err := time.ParseDuration(opts["age"])
		if err != nil {
			s.fail("%v", err)
		}
		s.acc = append(s.acc, dealer.DatasetAccess{Dataset: name, Count: n, Time: scenarioNow.Add(-age).Unix()})
	case "protect":
		need(2)
		if s.prot == nil {
			s.prot = &dealer.Protection{Fractions: map[string]float64{}, LastCopies: map[string][]string{}}
		}
		s.knownSite(pos[0])
		var last []string
		for _, ds := range pos[2:] {
			last = append(last, s.feedDataset(ds))
		}
		f := s.fraction("protect", pos[1])
		s.prot.Fractions[pos[0]] = f
		s.prot.LastCopies[pos[0]] = append(s.prot.LastCopies[pos[0]], last...)
	case "seed":
		need(1)
		v, err := strconv.ParseUint(pos[0], 10, 64)
		if err != nil {
			s.fail("seed: %q is not an unsigned integer", pos[0])
		}
		s.seed = v
	case "plan", "replan":
		s.doPlan(args[0] == "replan")
	case "apply":
		s.doPlanIfNeeded()
		res, err := s.dl.Apply(context.Background(), s.store, s.plan, dealer.ApplyOptions{At: scenarioNow})
		if err != nil {
			s.fail("apply: %v", err)
		}
		s.applied = res
	case "expect":
		need(1)
		s.checkOptions("expect "+pos[0], opts)
		s.expects++
		s.expect(pos[0], pos[1:], opts)
	default:
		s.fail("unknown command %q", args[0])
	}
}

func (s *scenario) setup() {
	if s.store != nil {
		return
	}
	ctx := context.Background()
	for _, l := range s.cfgLines {
		cfg, err := yamlconf.Read(strings.NewReader(l), func(n *yaml.Node) (dealer.Config, error) {
			return dealer.DecodeConfigOnto(s.cfg, n)
		})
		if err != nil {
			s.fail("config: %v", err)
		}
		s.cfg = cfg
	}
	st, err := inventory.Load(ctx, s.d, logging.Discard(), nil, scenarioNow)
	if err != nil {
		s.fail("load: %v", err)
	}
	if _, err := st.Inject(ctx, scenarioNow, &s.doc); err != nil {
		s.fail("inject: %v", err)
	}
	s.store = st
	s.reqs = dealer.NewMemRequests(s.reqList...)
	var prot dealer.ProtectionSource
	if s.prot != nil {
		prot = dealer.MemProtection{P: s.prot}
	}
	s.dl, err = dealer.New(s.cfg, dealer.Deps{Requests: s.reqs, Accesses: s.acc, Protection: prot, Transfers: s.xfers,
		History: dealer.NewHistory(s.d)}, logging.Discard())
	if err != nil {
		s.fail("new dealer: %v", err)
	}
}

func (s *scenario) doPlanIfNeeded() {
	if s.plan == nil {
		s.doPlan(false)
	}
}

func (s *scenario) doPlan(again bool) {
	s.setup()
	if s.plan != nil && !again && s.applied == nil {
		return
	}
	p, err := s.dl.Plan(context.Background(), s.store.Snapshot(), dealer.PlanOptions{Seed: s.seed, Now: scenarioNow})
	if err != nil {
		s.fail("plan: %v", err)
	}
	s.plan = p
	s.applied = nil
}

func (s *scenario) expect(what string, pos []string, opts map[string]string) {
	s.t.Helper()
	nargs := map[string]int{"copy": 2, "nocopy": 1, "reject": 2, "copies": 1, "rejections": 1, "reason": 2,
		"request": 2, "replica": 3, "transfers": 1, "skipped": 1}
	n, ok := nargs[what]
	if !ok {
		s.fail("unknown expectation %q", what)
	}
	if len(pos) < n {
		s.fail("expect %s needs %d arguments", what, n)
	}
	if what != "replica" && what != "transfers" && what != "skipped" && what != "request" {
		s.doPlanIfNeeded()
	}
	count := func() int { return int(s.integer("expect "+what, pos[len(pos)-1])) }
	switch what {
	case "copy":
		s.knownItem(pos[0])
		s.knownPlugin(opts)
		g := s.knownSites(pos[1])
		for _, c := range s.plan.Copies {
			pr := s.plan.Proposals[c.Proposal]
			if pr.Item != pos[0] || !g.Match(c.SiteName) {
				continue
			}
			if p := opts["plugin"]; p != "" && pr.Plugin != p {
				continue
			}
			if b := opts["bytes"]; b != "" && c.Bytes != s.size(b) {
				continue
			}
			if gr := opts["group"]; gr != "" && c.Group != gr {
				continue
			}
			return
		}
		s.fail("no copy of %s to %s %v; plan:\n%s", pos[0], pos[1], opts, s.dump())
	case "nocopy":
		s.knownItem(pos[0])
		pat := "*"
		if len(pos) > 1 {
			pat = pos[1]
		}
		g := s.knownSites(pat)
		for _, c := range s.plan.Copies {
			if s.plan.Proposals[c.Proposal].Item == pos[0] && g.Match(c.SiteName) {
				s.fail("unexpected copy of %s to %s; plan:\n%s", pos[0], c.SiteName, s.dump())
			}
		}
	case "reject":
		s.knownItem(pos[0])
		s.knownReason(pos[1])
		s.knownPlugin(opts)
		for _, d := range s.plan.Decisions {
			if d.Item == pos[0] && !d.Accepted && string(d.Reason) == pos[1] && (opts["plugin"] == "" || d.Plugin == opts["plugin"]) {
				return
			}
		}
		s.fail("no rejection of %s for %q; plan:\n%s", pos[0], pos[1], s.dump())
	case "copies":
		if n := count(); n != len(s.plan.Copies) {
			s.fail("copies: got %d, want %d; plan:\n%s", len(s.plan.Copies), n, s.dump())
		}
	case "rejections":
		if n := count(); n != len(s.plan.Rejections()) {
			s.fail("rejections: got %d, want %d; plan:\n%s", len(s.plan.Rejections()), n, s.dump())
		}
	case "reason":
		s.knownReason(pos[0])
		n := count()
		if got := s.plan.Counts()[dealer.Reason(pos[0])]; got != n {
			s.fail("reason %q: got %d, want %d; plan:\n%s", pos[0], got, n, s.dump())
		}
	case "request":
		id := s.integer("expect request", pos[0])
		want := s.requestStatus(pos[1])
		if !slices.ContainsFunc(s.reqList, func(r dealer.CopyRequest) bool { return r.ID == id }) {
			s.fail("expect request: no request %d", id)
		}
		if s.applied != nil {
			r, _ := s.reqs.Request(id)
			if r.Status != want {
				s.fail("request %d: status %s, want %s", id, r.Status, want)
			}
			return
		}
		s.doPlanIfNeeded()
		got := dealer.RequestStatus("")
		for _, u := range s.plan.RequestUpdates {
			if u.ID == id {
				got = u.Status
			}
		}
		if got == "" {
			for _, r := range s.reqList {
				if r.ID == id {
					got = r.Status
				}
			}
		}
		if got != want {
			s.fail("request %d: status %s, want %s; updates %+v", id, got, want, s.plan.RequestUpdates)
		}
	case "replica":
		snap := s.store.Snapshot()
		b, ok := snap.BlockByName(pos[0])
		if !ok {
			s.fail("no block %s", pos[0])
		}
		site, ok := snap.SiteByName(pos[1])
		if !ok {
			s.fail("unknown site %q", pos[1])
		}
		if !slices.Contains([]string{"complete", "incomplete", "absent"}, pos[2]) {
			s.fail("expect replica: state %q, want complete, incomplete or absent", pos[2])
		}
		r, ok := snap.BlockReplica(b.ID, site.ID)
		switch {
		case pos[2] == "absent" && ok:
			s.fail("replica of %s at %s exists", pos[0], pos[1])
		case pos[2] != "absent" && !ok:
			s.fail("no replica of %s at %s", pos[0], pos[1])
		case pos[2] == "complete" && !r.Complete, pos[2] == "incomplete" && r.Complete:
			s.fail("replica of %s at %s: complete=%v, want %s", pos[0], pos[1], r.Complete, pos[2])
		}
		if g := opts["group"]; g != "" && ok {
			gr, _ := snap.Group(r.Group)
			if gr.Name != g {
				s.fail("replica of %s at %s: group %q, want %q", pos[0], pos[1], gr.Name, g)
			}
		}
	case "transfers":
		if n := count(); n != len(s.xfers.Queued) {
			s.fail("transfers: got %d, want %d", len(s.xfers.Queued), n)
		}
	case "skipped":
		if n := count(); s.applied == nil || n != len(s.applied.Skipped) {
			s.fail("skipped: got %+v, want %d", s.applied, n)
		}
	}
}

func (s *scenario) dump() string {
	var b strings.Builder
	for i, pr := range s.plan.Proposals {
		d := s.plan.Decisions[i]
		fmt.Fprintf(&b, "  %3d %-13s %-40s -> %-10s accepted=%v %q %s (%d bytes)\n", i, pr.Plugin, pr.Item, d.Site, d.Accepted, d.Reason, d.Detail, d.Bytes)
	}
	return b.String()
}

// failRecorder is a scenarioT that records the first failure and stops
// the scenario's goroutine, as testing.T.Fatalf does.
type failRecorder struct{ msg string }

func (r *failRecorder) Helper() {}
func (r *failRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runRecorded runs src and returns the failure it reported ("" if none).
func runRecorded(t *testing.T, src string) string {
	r := &failRecorder{}
	d := testdb.SQLite(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runScenario(r, "bad.scenario", src, d)
	}()
	<-done
	return r.msg
}

// A typo in a scenario must fail it, not make an expectation pass.
func TestScenarioParserIsStrict(t *testing.T) {
	const base = `site T2_A disk ready quota=100TB
site T2_B disk ready quota=100TB
group AnalysisOps
dataset /A/R/AOD blocks=2 size=2TB
replica /A/R/AOD T2_A
config {max_pending_fraction: 1, plugins: {popularity: {enabled: false}, undertaker: {enabled: false}, balancer: {enabled: false}}}
request 1 new n=1 items=/A/R/AOD sites=T2_B
`
	if msg := runRecorded(t, base+"expect copy /A/R/AOD T2_B plugin=requests\n"); msg != "" {
		t.Fatalf("the base scenario fails: %s", msg)
	}
	for _, tc := range []struct{ name, lines, want string }{
		{"no expectation", "plan\n", "no expect line"},
		{"unknown command", "expct copies 1\n", `unknown command "expct"`},
		{"unknown expectation", "expect copys 1\n", `unknown expectation "copys"`},
		{"missing arguments", "expect copy /A/R/AOD\n", "expect copy needs 2 arguments"},
		{"count not a number", "expect copies one\n", `"one" is not an integer`},
		{"count with junk", "expect copies 1x\n", `"1x" is not an integer`},
		{"bad blocks", "dataset /B/R/AOD blocks=two size=1TB\nexpect copies 1\n", `blocks=: "two" is not an integer`},
		{"bad access count", "access /A/R/AOD count=lots age=1h\nexpect copies 1\n", `count=: "lots" is not an integer`},
		{"bad request id", "request x new n=1 items=/A/R/AOD sites=T2_B\nexpect copies 1\n", `request ID: "x" is not an integer`},
		{"bad seed", "seed -1\nexpect copies 1\n", `seed: "-1"`},
		{"bad protect fraction", "protect T2_A lots\nexpect copies 1\n", `protect: "lots" is not a fraction`},
		{"unknown option", "expect copy /A/R/AOD T2_B plugn=requests\n", "unknown option plugn="},
		{"unknown site in replica", "replica /A/R/AOD T2_Z\nexpect copies 1\n", `unknown site "T2_Z"`},
		{"unknown dataset in replica", "replica /Z/R/AOD T2_A\nexpect copies 1\n", `unknown dataset "/Z/R/AOD"`},
		{"unknown dataset in access", "access /Z/R/AOD count=1 age=0s\nexpect copies 1\n", `unknown dataset "/Z/R/AOD"`},
		{"declared dataset marked foreign", "access ?/A/R/AOD count=1 age=0s\nexpect copies 1\n", `dataset "/A/R/AOD" is declared`},
		{"unknown block in replica", "replica /A/R/AOD T2_B blocks=b7\nexpect copies 1\n", `no block "b7"`},
		{"unknown site in expect replica", "apply\nexpect replica /A/R/AOD#b0 T2_Z absent\n", `unknown site "T2_Z"`},
		{"unknown replica state", "apply\nexpect replica /A/R/AOD#b0 T2_B gone\n", `state "gone"`},
		{"site glob matching nothing", "expect nocopy /A/R/AOD T3_*\n", `site pattern "T3_*" matches no site`},
		{"unknown item", "expect nocopy /A/R/AOOD\n", `unknown dataset "/A/R/AOOD"`},
		{"unknown plugin", "expect copy /A/R/AOD T2_B plugin=request\n", `unknown plugin "request"`},
		{"unknown reason", "expect reason \"no destinaton\" 0\n", `unknown reason "no destinaton"`},
		{"unknown request", "expect request 9 new\n", "no request 9"},
		{"unknown request status", "expect request 1 actived\n", `unknown request status "actived"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := runRecorded(t, base+tc.lines)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("failure %q, want one containing %q", msg, tc.want)
			}
		})
	}
}
