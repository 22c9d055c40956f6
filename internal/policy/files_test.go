package policy

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestPolicyFileGood(t *testing.T) {
	p, err := LoadPolicy("testdata/cache.txt", PolicyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Partition != "Scratch" || p.PartitionLine != 1 {
		t.Errorf("partition %q line %d", p.Partition, p.PartitionLine)
	}
	if len(p.On) != 2 || len(p.When) != 1 || len(p.Until) != 1 || !p.Static {
		t.Errorf("On %d When %d Until %d Static %v", len(p.On), len(p.When), len(p.Until), p.Static)
	}
	if p.On[1].Line != 4 || p.On[1].Cond.Ctx != ContextSite {
		t.Errorf("On[1] = %+v", p.On[1])
	}
	wantRules := []struct {
		line   int
		action Action
		text   string
	}{
		{10, ActionProtectBlock, "ProtectBlock blockreplica.is_locked"},
		{11, ActionProtect, "Protect replica.last_block_created newer_than 1 day ago"},
		{12, ActionDelete, "Delete dataset.status in [INVALID DEPRECATED]"},
		{13, ActionDismiss, "Dismiss (dataset.usage_rank > 10 or replica.num_access == 0) and not dataset.name =~ /Keep.*"},
	}
	if len(p.Rules) != len(wantRules) {
		t.Fatalf("%d rules", len(p.Rules))
	}
	for i, w := range wantRules {
		r := p.Rules[i]
		if r.Line != w.line || r.Action != w.action || r.Text != w.text || r.Cond.At.Line != w.line {
			t.Errorf("rule %d = line %d %v %q", i, r.Line, r.Action, r.Text)
		}
	}
	if p.Default != ActionDismiss || p.DefaultLine != 15 {
		t.Errorf("default %v line %d", p.Default, p.DefaultLine)
	}
	if len(p.Order) != 2 || p.Order[0].Var.Name != "dataset.usage_rank" || !p.Order[0].Decreasing || p.Order[1].Decreasing {
		t.Errorf("order %+v", p.Order)
	}
	if got := strings.Join(p.RequiredAttrs(), ","); got != "accesses,locks,occupancy" {
		t.Errorf("RequiredAttrs = %s", got)
	}
	if !ActionProtectBlock.BlockLevel() || ActionProtectBlock.DatasetLevel() != ActionProtect || ActionDismiss.BlockLevel() {
		t.Error("action levels")
	}
}

func TestPolicyPartitionOption(t *testing.T) {
	p, err := LoadPolicy("testdata/campaign-nopartition.txt", PolicyOptions{Partition: "Scratch"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Partition != "Scratch" || p.PartitionLine != 0 || p.Default != ActionProtect || len(p.Order) != 0 {
		t.Errorf("got partition %q line %d default %v order %v", p.Partition, p.PartitionLine, p.Default, p.Order)
	}
	if got := strings.Join(p.RequiredAttrs(), ","); got != ProducerLocks {
		t.Errorf("RequiredAttrs = %s", got)
	}
	if _, err := LoadPolicy("testdata/campaign-nopartition.txt", PolicyOptions{}); !errors.Is(err, ErrPolicy) {
		t.Errorf("no partition: %v", err)
	}
	errs := CheckPolicyFile("testdata/cache.txt", "", "Analysis")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "cache.txt:1:1: file names partition Scratch but Analysis was requested") {
		t.Errorf("override mismatch: %v", errs)
	}
}

func TestCheckGoodFiles(t *testing.T) {
	for _, c := range []struct{ file, partition string }{
		{"testdata/cache.txt", ""},
		{"testdata/physics-like.txt", "Analysis"},
		{"testdata/campaign-nopartition.txt", "Prod"},
	} {
		if errs := CheckPolicyFile(c.file, "testdata/partitions.txt", c.partition); len(errs) > 0 {
			t.Errorf("%s: %v", c.file, errs)
		}
	}
	errs := CheckPolicyFile("testdata/campaign-nopartition.txt", "testdata/partitions.txt", "Analysys")
	if len(errs) != 1 || errs[0].Error() != `testdata/campaign-nopartition.txt: partition not defined in testdata/partitions.txt: "Analysys"; did you mean Analysis?` {
		t.Errorf("unknown partition: %v", errs)
	}
}

func TestPartitionsGood(t *testing.T) {
	ps, err := LoadPartitions("testdata/partitions.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ps.Names(), ","); got != "Analysis,ProdDisk,Release Val,Scratch,Tape,Everything,Prod" {
		t.Errorf("names %s", got)
	}
	rv, _ := ps.Lookup("Release Val")
	if rv.Cond.String() != "blockreplica.owner == Release Val" || rv.Line != 4 {
		t.Errorf("Release Val = %+v", rv)
	}
	var leaves []string
	for _, p := range ps.Leaves("Everything") {
		leaves = append(leaves, p.Name)
	}
	if !slices.Equal(leaves, []string{"Analysis", "ProdDisk", "Tape"}) {
		t.Errorf("leaves %v", leaves)
	}
}

func TestEnforcerGood(t *testing.T) {
	er, err := LoadEnforcerRules("testdata/enforcer.json")
	if err != nil {
		t.Fatal(err)
	}
	if er.Partition != "Analysis" || len(er.Rules) != 2 {
		t.Fatalf("%+v", er)
	}
	// file order, not alphabetical
	r := er.Rules[0]
	if r.Name != "zeta_minis_in_region" || r.NumCopies != 2 || !r.Protect || len(r.Sources) != 1 {
		t.Errorf("rule 0 = %+v", r)
	}
	if r.Replicas[0].At != (Pos{Line: 6, Col: 21}) || r.Destinations[0].Ctx != ContextSite {
		t.Errorf("positions/ctx: %+v %v", r.Replicas[0].At, r.Destinations[0].Ctx)
	}
	if r := er.Rules[1]; r.Name != "alpha_release_val" || r.Protect || len(r.Replicas) != 2 || len(r.Sources) != 0 {
		t.Errorf("rule 1 = %+v", r)
	}
}

// TestBadFiles pins every message for the files under testdata/bad.
func TestBadFiles(t *testing.T) {
	cases := []struct {
		file  string
		check func(string) []error
		want  []string
	}{
		{"unknown-things.txt", policyCheck, []string{
			`testdata/bad/unknown-things.txt:5:9: unknown variable: "dataset.nmae"; did you mean dataset.name?`,
			`testdata/bad/unknown-things.txt:6:27: unknown value for dataset.status: "PRODUCTON"; did you mean PRODUCTION? one of: UNKNOWN, DELETED, DEPRECATED, INVALID, PRODUCTION, VALID, IGNORED`,
			`testdata/bad/unknown-things.txt:7:1: unknown line type: "Protec"; did you mean Protect?`,
		}},
		{"missing-lines.txt", policyCheck, []string{
			"testdata/bad/missing-lines.txt: missing Partition line; add `Partition NAME` or supply the partition name (--partition)",
			"testdata/bad/missing-lines.txt: missing On line (target sites); e.g. On site.name in [T2_*]",
			"testdata/bad/missing-lines.txt: missing When line (deletion trigger); e.g. When site.occupancy > 0.9, or When always",
			"testdata/bad/missing-lines.txt: missing Until line (stop condition); e.g. Until site.occupancy < 0.85, or Until never",
			"testdata/bad/missing-lines.txt: missing default decision; add a line with only Protect or Dismiss",
		}},
		{"duplicates.txt", policyCheck, []string{
			`testdata/bad/duplicates.txt:2:1: second Partition line (first on line 1): "Partition Scratch"`,
			`testdata/bad/duplicates.txt:7:1: second default decision (first on line 6): "Dismiss"`,
			`testdata/bad/duplicates.txt:9:1: second Order line (first on line 8): "Order increasing replica.size"`,
		}},
		{"scope-and-types.txt", policyCheck, []string{
			`testdata/bad/scope-and-types.txt:2:4: variable not available in a site condition: "dataset.name"; site conditions (On, When, Until, destinations, sources) may use site.*, always and never`,
			`testdata/bad/scope-and-types.txt:3:23: not a number for site.occupancy: "lots"; write a decimal number such as 0.9 or 100`,
			`testdata/bad/scope-and-types.txt:5:9: variable not available in a replica condition: "site.occupancy"; site.occupancy is only available in site conditions (On, When, Until)`,
			`testdata/bad/scope-and-types.txt:6:40: invalid time expression for dataset.last_update: "3 wks ago"; unknown time unit "wks"; did you mean weeks?; forms: now, 1 week ago, 90 days ago, 3 months ago, 2016-08-17, January 1, @1500000000`,
			`testdata/bad/scope-and-types.txt:7:1: ProtectBlock needs a condition: "ProtectBlock"; a default decision is dataset-level: Protect, Dismiss, Delete or Ignore`,
			`testdata/bad/scope-and-types.txt:8:6: unknown algorithm: "Dynamic"; the only algorithm keyword is Static (iterative deletion is the default)`,
			`testdata/bad/scope-and-types.txt:10:18: cannot sort by a string: "dataset.name"; sort keys must be numbers, sizes or times`,
			`testdata/bad/scope-and-types.txt:10:31: unknown sort direction: "sideways"; write increasing or decreasing before each variable, or Order none`,
		}},
		{"partitions-bad.txt", CheckPartitionsFile, []string{
			`testdata/bad/partitions-bad.txt:2:1: partition defined twice (first on line 1): "A"`,
			`testdata/bad/partitions-bad.txt:3:8: unknown sub-partition of B: "Cee"; did you mean C?`,
			`testdata/bad/partitions-bad.txt:4:1: partition cycle C -> D -> C: "C"; a super-partition cannot contain itself`,
			`testdata/bad/partitions-bad.txt:6:3: partition E has no definition: "E:"; write a condition or [Sub1, Sub2]`,
			`testdata/bad/partitions-bad.txt:7:1: expected Name: condition or Name: [Sub1, Sub2]: "F blockreplica.owner == F"`,
		}},
		{"partitions-cycle.txt", CheckPartitionsFile, []string{
			`testdata/bad/partitions-cycle.txt:2:1: partition cycle Top -> Mid -> Top: "Top"; a super-partition cannot contain itself`,
		}},
		{"enforcer-bad.json", CheckEnforcerFile, []string{
			`testdata/bad/enforcer-bad.json:5:21: unknown variable: "dataset.nmae"; did you mean dataset.name?`,
			`testdata/bad/enforcer-bad.json:7:25: variable not available in a site condition: "dataset.name"; site conditions (On, When, Until, destinations, sources) may use site.*, always and never`,
			`testdata/bad/enforcer-bad.json: rule r1: num_copies must be at least 1, got 0`,
			`testdata/bad/enforcer-bad.json: rule r2: json: unknown field "protekt"`,
		}},
	}
	for _, c := range cases {
		errs := c.check("testdata/bad/" + c.file)
		var got []string
		for _, e := range errs {
			got = append(got, e.Error())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got:\n  %s\n want:\n  %s", c.file, strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
		}
	}
}

func policyCheck(path string) []error { return CheckPolicyFile(path, "testdata/partitions.txt", "") }

func TestCheckEnforcerPartition(t *testing.T) {
	if errs := Check(CheckRequest{Partitions: "testdata/partitions.txt", Enforcer: []string{"testdata/enforcer.json"}}); len(errs) > 0 {
		t.Errorf("good enforcer: %v", errs)
	}
	dir := t.TempDir()
	path := dir + "/rules.json"
	src := `{"partition": "Anlysis", "rules": {"r": {"replicas": ["always"], "num_copies": 1, "destinations": ["always"]}}}`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	errs := Check(CheckRequest{Partitions: "testdata/partitions.txt", Enforcer: []string{path}})
	if len(errs) != 1 || errs[0].Error() != path+`: partition not defined in testdata/partitions.txt: "Anlysis"; did you mean Analysis?` {
		t.Errorf("got %v", errs)
	}
}
