package dealer_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
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

type scenario struct {
	t        *testing.T
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
}

func (s *scenario) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.file, s.line, fmt.Sprintf(format, args...))
}

func runScenario(t *testing.T, file, src string, d *db.DB) {
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
		n, _ := strconv.Atoi(opts["blocks"])
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
		id, _ := strconv.ParseInt(pos[0], 10, 64)
		n, _ := strconv.Atoi(opts["n"])
		r := dealer.CopyRequest{ID: id, Status: dealer.RequestStatus(pos[1]), N: n, Group: opts["group"], User: opts["user"]}
		if v := opts["items"]; v != "" {
			r.Items = strings.Split(v, ",")
		}
		if v := opts["sites"]; v != "" {
			r.Sites = strings.Split(v, ",")
		}
		s.reqList = append(s.reqList, r)
	case "access":
		need(1)
		n, _ := strconv.Atoi(opts["count"])
		age, err := time.ParseDuration(opts["age"])
		if err != nil {
			s.fail("%v", err)
		}
		s.acc = append(s.acc, dealer.DatasetAccess{Dataset: pos[0], Count: n, Time: scenarioNow.Add(-age).Unix()})
	case "protect":
		need(2)
		if s.prot == nil {
			s.prot = &dealer.Protection{Fractions: map[string]float64{}, LastCopies: map[string][]string{}}
		}
		f, _ := strconv.ParseFloat(pos[1], 64)
		s.prot.Fractions[pos[0]] = f
		s.prot.LastCopies[pos[0]] = append(s.prot.LastCopies[pos[0]], pos[2:]...)
	case "seed":
		need(1)
		v, _ := strconv.ParseUint(pos[0], 10, 64)
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
		s.expect(args[1], pos[1:], opts)
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
	if what != "replica" && what != "transfers" && what != "skipped" && what != "request" {
		s.doPlanIfNeeded()
	}
	switch what {
	case "copy":
		g, err := glob.Compile(pos[1])
		if err != nil {
			s.fail("%v", err)
		}
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
		pat := "*"
		if len(pos) > 1 {
			pat = pos[1]
		}
		g, _ := glob.Compile(pat)
		for _, c := range s.plan.Copies {
			if s.plan.Proposals[c.Proposal].Item == pos[0] && g.Match(c.SiteName) {
				s.fail("unexpected copy of %s to %s; plan:\n%s", pos[0], c.SiteName, s.dump())
			}
		}
	case "reject":
		for _, d := range s.plan.Decisions {
			if d.Item == pos[0] && !d.Accepted && string(d.Reason) == pos[1] && (opts["plugin"] == "" || d.Plugin == opts["plugin"]) {
				return
			}
		}
		s.fail("no rejection of %s for %q; plan:\n%s", pos[0], pos[1], s.dump())
	case "copies":
		if n, _ := strconv.Atoi(pos[0]); n != len(s.plan.Copies) {
			s.fail("copies: got %d, want %d; plan:\n%s", len(s.plan.Copies), n, s.dump())
		}
	case "rejections":
		if n, _ := strconv.Atoi(pos[0]); n != len(s.plan.Rejections()) {
			s.fail("rejections: got %d, want %d; plan:\n%s", len(s.plan.Rejections()), n, s.dump())
		}
	case "reason":
		n, _ := strconv.Atoi(pos[1])
		if got := s.plan.Counts()[dealer.Reason(pos[0])]; got != n {
			s.fail("reason %q: got %d, want %d; plan:\n%s", pos[0], got, n, s.dump())
		}
	case "request":
		id, _ := strconv.ParseInt(pos[0], 10, 64)
		want := dealer.RequestStatus(pos[1])
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
		site, _ := snap.SiteByName(pos[1])
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
		if n, _ := strconv.Atoi(pos[0]); n != len(s.xfers.Queued) {
			s.fail("transfers: got %d, want %d", len(s.xfers.Queued), n)
		}
	case "skipped":
		if n, _ := strconv.Atoi(pos[0]); s.applied == nil || n != len(s.applied.Skipped) {
			s.fail("skipped: got %+v, want %d", s.applied, n)
		}
	default:
		s.fail("unknown expectation %q", what)
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
