package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func days(n int) int64 { return testNow.AddDate(0, 0, -n).Unix() }

func mustMatcher(t testing.TB, text string, b *Bindings[*rep]) *Matcher[*rep] {
	t.Helper()
	c, err := ParseCondition(text, ContextReplica)
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	m, err := Compile(c, b, testNow)
	if err != nil {
		t.Fatalf("compile %q: %v", text, err)
	}
	return m
}

func TestEvaluate(t *testing.T) {
	raw := &rep{name: "/Prim/Run2016B-v1/RAW", status: 5 /* VALID */, onTape: 10 /* NONE */, lastUpdate: days(10),
		size: 3e12, usageRank: 150, owner: "IB RelVal", site: "T2_CH_CERN", storage: 0, brLastUpdate: days(100),
		lastBlockCreated: days(40)}
	cases := []struct {
		cond string
		want bool
	}{
		// globs and equality
		{"dataset.name == /*/*/RAW", true},
		{"dataset.name == /*/*/RAW-RECO", false},
		{"dataset.name != /*Scouting*/*/RAW", true},
		{"dataset.name == /Prim/Run2016B-v1/RAW", true},
		{"dataset.name == /Prim/Run2016?-v1/RAW", true},
		{"dataset.name == /Prim/Run2016[AC]-v1/RAW", false},
		{"blockreplica.owner == IB RelVal", true},
		{"blockreplica.owner == IB", false},
		// regex: anchored at the start only (Python re.match)
		{"dataset.name =~ /Prim/Run", true},
		{"dataset.name =~ Run2016", false},
		{"dataset.name =~ /[^/]+/.*-v[0-9]+/RAW$", true},
		{"dataset.name !=~ /Prim/", false},
		// sets
		{"site.name in [T1_*_Disk T2_*]", true},
		{"site.name in [T1_*_Disk T3_*]", false},
		{"site.name notin [T1_US_FNAL_Disk T2_CH_CERN]", false},
		{"site.name notin [T1_US_FNAL_Disk T2_CH_CERNX]", true},
		{"dataset.status in [PRODUCTION VALID]", true},
		{"dataset.status notin [PRODUCTION VALID]", false},
		{"dataset.usage_rank in [100 150]", true},
		// enums through caller codes
		{"dataset.on_tape == NONE", true},
		{"dataset.on_tape != FULL", true},
		{"site.storage_type == DISK", true},
		{"dataset.status == valid", true},
		// numbers, sizes
		{"dataset.usage_rank > 100", true},
		{"dataset.usage_rank < 100", false},
		{"dataset.usage_rank >= 150 and dataset.usage_rank <= 150", true},
		{"replica.size > 2.5 TB", true},
		{"replica.size > 3 TB", false},
		{"replica.size == 3000000000000", true},
		{"replica.size < 2.8 TiB", true},
		// times
		{"dataset.last_update older_than 1 week ago", true},
		{"dataset.last_update older_than 2 weeks ago", false},
		{"dataset.last_update newer_than 1 week ago", false},
		{"dataset.last_update newer_than 2 weeks ago", true},
		{"blockreplica.last_update older_than 90 days ago", true},
		{"replica.last_block_created older_than 30 days ago", true},
		{"dataset.last_update > 2026-05-01", true},
		{"dataset.last_update < 2026-05-01", false},
		// booleans, not, and/or precedence
		{"replica.incomplete", false},
		{"not replica.incomplete", true},
		{"not (replica.incomplete or dataset.usage_rank > 100)", false},
		{"replica.incomplete or dataset.usage_rank > 100 and dataset.on_tape == FULL", false},
		{"(replica.incomplete or dataset.usage_rank > 100) and dataset.on_tape == NONE", true},
		{"replica.incomplete or dataset.usage_rank > 100 and dataset.on_tape == NONE", true},
		{"not dataset.name == /*/*/RAW", false},
		{"always", true},
		{"never", false},
		{"not never", true},
		{"never or not replica.incomplete and always", true},
	}
	b := repBindings()
	for _, c := range cases {
		m := mustMatcher(t, c.cond, b)
		if got := m.Match(raw); got != c.want {
			t.Errorf("%s = %v, want %v", c.cond, got, c.want)
		}
	}
}

// TestAnySemantics checks Dynamo's rule for block variables on a dataset
// replica: each predicate is ORed over the blocks independently, and a `not`
// before a predicate negates per block, while not (...) negates the result.
func TestAnySemantics(t *testing.T) {
	b := NewBindings[*rep]()
	b.AnyString("blockreplica.owner", func(r *rep, yield func(string) bool) bool {
		for _, o := range r.owners {
			if yield(o) {
				return true
			}
		}
		return false
	}).AnyBool("blockreplica.on_tape", func(r *rep, yield func(bool) bool) bool {
		for _, v := range r.blocksOnTape {
			if yield(v) {
				return true
			}
		}
		return false
	})
	r := &rep{owners: []string{"DataOps", "AnalysisOps"}, blocksOnTape: []bool{true, false}}
	cases := []struct {
		cond string
		want bool
	}{
		{"blockreplica.owner == DataOps", true},
		{"blockreplica.owner == DataOps and blockreplica.owner == AnalysisOps", true},
		{"blockreplica.owner != DataOps", true}, // AnalysisOps block
		{"blockreplica.owner notin [DataOps AnalysisOps]", false},
		{"blockreplica.on_tape", true},
		{"not blockreplica.on_tape", true},          // some block is not on tape
		{"not (blockreplica.on_tape)", false},       // it is not true that no block is on tape
		{"replica.group_name == AnalysisOps", true}, // legacy alias
	}
	for _, c := range cases {
		if got := mustMatcher(t, c.cond, b).Match(r); got != c.want {
			t.Errorf("%s = %v, want %v", c.cond, got, c.want)
		}
	}
	empty := &rep{}
	if mustMatcher(t, "not blockreplica.on_tape", b).Match(empty) {
		t.Error("no blocks: not blockreplica.on_tape should be false (no block satisfies it)")
	}
}

func TestCompileUnbound(t *testing.T) {
	c, err := ParseCondition("replica.incomplete and dataset.usage_rank > 1", ContextReplica)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBindings[*rep]().Bool("replica.incomplete", func(r *rep) bool { return r.incomplete })
	_, err = Compile(c, b, testNow)
	var pe *Error
	if !errors.Is(err, ErrUnbound) || !errors.As(err, &pe) || pe.Col != 24 || !strings.Contains(pe.Hint, "producer accesses") {
		t.Fatalf("got %v", err)
	}
}

func TestBindingErrors(t *testing.T) {
	cases := []struct {
		bind func(b *Bindings[*rep])
		want string
	}{
		{func(b *Bindings[*rep]) { b.String("dataset.nmae", nil) }, "did you mean dataset.name?"},
		{func(b *Bindings[*rep]) { b.Number("dataset.name", nil) }, "dataset.name is a string, bound as number"},
		{func(b *Bindings[*rep]) { b.Bool("replica.has_locked_block", nil) }, "legacy alias; bind blockreplica.is_locked"},
		{func(b *Bindings[*rep]) { b.Bool("always", nil) }, "constant"},
		{func(b *Bindings[*rep]) { b.String("site.name", nil).String("site.name", nil) }, "bound twice"},
		{func(b *Bindings[*rep]) { b.Enum("site.status", nil, map[string]int{"READY": 1}) }, "no code for WAITROOM"},
		{func(b *Bindings[*rep]) {
			b.Enum("site.status", nil, map[string]int{"READY": 0, "WAITROOM": 1, "MORGUE": 2, "UNKNOWN": 3, "GONE": 4})
		}, `no constant "GONE"`},
	}
	for _, c := range cases {
		b := NewBindings[*rep]()
		c.bind(b)
		err := b.Err()
		if !errors.Is(err, ErrBinding) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
		cond, _ := ParseCondition("always", ContextReplica)
		if _, cerr := Compile(cond, b, testNow); cerr == nil {
			t.Error("Compile accepted broken bindings")
		}
	}
}

// TestMatchDoesNotAllocate guards the hot path Detox runs ~10^8 times a cycle.
func TestMatchDoesNotAllocate(t *testing.T) {
	b := repBindings()
	ms := []*Matcher[*rep]{
		mustMatcher(t, "dataset.name == /*/*/RAW and dataset.name != /*Scouting*/*/RAW and blockreplica.last_update older_than 60 days ago", b),
		mustMatcher(t, "site.name in [T1_*_Disk T2_*] or dataset.status in [VALID PRODUCTION]", b),
		mustMatcher(t, "dataset.name =~ /[^/]+/.*CMSSW_[0-9]+_[0-9]+ and not (replica.incomplete)", b),
	}
	r := &rep{name: "/A/CMSSW_10_2_0-v1/RAW", site: "T2_CH_CERN"}
	for _, m := range ms {
		if n := testing.AllocsPerRun(100, func() { m.Match(r) }); n != 0 {
			t.Errorf("%s: %v allocs per Match", m.Condition().Text, n)
		}
	}
}

func TestSorter(t *testing.T) {
	p, err := LoadPolicy("testdata/cache.txt", PolicyOptions{}) // Order decreasing dataset.usage_rank increasing replica.size
	if err != nil {
		t.Fatal(err)
	}
	o, err := CompileOrder(p.Order, repBindings())
	if err != nil {
		t.Fatal(err)
	}
	hi := &rep{usageRank: 9, size: 5}
	loBig := &rep{usageRank: 1, size: 9}
	loSmall := &rep{usageRank: 1, size: 2}
	if o.Compare(hi, loSmall) != -1 || o.Compare(loSmall, loBig) != -1 || o.Compare(loBig, hi) != 1 || o.Compare(hi, hi) != 0 {
		t.Error("wrong order")
	}
	if k := o.Key(loBig, nil); len(k) != 2 || k[0] != -1 || k[1] != 9 {
		t.Errorf("Key = %v", k)
	}
	// Any bindings cannot give a sort key.
	b := NewBindings[*rep]().AnyNumber("dataset.usage_rank", func(*rep, func(float64) bool) bool { return false }).
		Bytes("replica.size", func(r *rep) int64 { return r.size })
	if _, err := CompileOrder(p.Order, b); !errors.Is(err, ErrUnbound) {
		t.Errorf("got %v", err)
	}
	none, err := CompileOrder(nil, NewBindings[*rep]())
	if err != nil || none.Compare(hi, loBig) != 0 {
		t.Errorf("Order none: %v", err)
	}
}

// TestFusedMatchesGeneral: the fused fast paths must agree with the general
// path on every shape they cover, including negation.
func TestFusedMatchesGeneral(t *testing.T) {
	conds := []string{
		"dataset.name == /*/*/RAW", "dataset.name != /*/*/RAW", "not dataset.name == /*/*/RAW", "not dataset.name != /*/*/RAW",
		"blockreplica.owner == Analysis", "blockreplica.owner != Analysis", "not blockreplica.owner == Analysis",
		"dataset.status == VALID", "dataset.status != VALID", "not dataset.status == VALID", "not dataset.on_tape != FULL",
		"dataset.usage_rank > 100", "dataset.usage_rank < 100", "dataset.usage_rank == 150", "dataset.usage_rank != 150",
		"dataset.usage_rank >= 150", "dataset.usage_rank <= 150", "not dataset.usage_rank > 100",
		"dataset.last_update older_than 30 days ago", "dataset.last_update newer_than 30 days ago", "not dataset.last_update <= 2026-01-01",
		"replica.size > 1 TB", "replica.size == 3 TB", "not replica.size >= 2 TB",
	}
	b := repBindings()
	subjects := benchSubjects(500)
	for _, text := range conds {
		fast := mustMatcher(t, text, b)
		disableFused = true
		slow := mustMatcher(t, text, b)
		disableFused = false
		for _, s := range subjects {
			if fast.Match(s) != slow.Match(s) {
				t.Errorf("%s: fused %v, general %v on %+v", text, fast.Match(s), slow.Match(s), *s)
				break
			}
		}
	}
}
