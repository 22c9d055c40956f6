package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

type siteView struct {
	name      string
	status    int
	occupancy float64
}

func siteBindings() *Bindings[*siteView] {
	return NewBindings[*siteView]().
		String("site.name", func(s *siteView) string { return s.name }).
		Enum("site.status", func(s *siteView) int { return s.status }, codes(SiteStatuses, 0)).
		Number("site.occupancy", func(s *siteView) float64 { return s.occupancy })
}

func TestCompilePolicy(t *testing.T) {
	p, err := LoadPolicy("testdata/cache.txt", PolicyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := CompilePolicy(p, repBindings(), siteBindings(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	// On site.name in [ T2_AA_One T3_BB_Two ] / On site.name == T2_CC_* and site.status == READY
	ready, morgue := 0, 2
	for _, c := range []struct {
		s                        siteView
		target, trigger, release bool
	}{
		{siteView{"T2_AA_One", morgue, 0.5}, true, true, true},
		{siteView{"T2_CC_X", ready, 0.95}, true, true, false},
		{siteView{"T2_CC_X", morgue, 0.87}, false, true, false},
		{siteView{"T2_DD_Y", ready, 0.80}, false, false, true},
	} {
		if cp.IsTarget(&c.s) != c.target || cp.Triggered(&c.s) != c.trigger || cp.Released(&c.s) != c.release {
			t.Errorf("%+v: target %v trigger %v release %v", c.s, cp.IsTarget(&c.s), cp.Triggered(&c.s), cp.Released(&c.s))
		}
	}
	// rules: 10 ProtectBlock locked, 11 Protect new, 12 Delete invalid, 13 Dismiss (...)
	r := &rep{locked: true, lastBlockCreated: days(100), status: 3 /* INVALID */, usageRank: 20, name: "/A/B/C"}
	var lines []int
	for i := cp.FirstMatch(r, 0); i >= 0; i = cp.FirstMatch(r, i+1) {
		lines = append(lines, cp.Rules[i].Rule.Line)
	}
	if got := fmt.Sprint(lines); got != "[10 12 13]" {
		t.Errorf("matching lines %s", got)
	}
	if cp.Order.Compare(&rep{usageRank: 2}, &rep{usageRank: 1}) != -1 {
		t.Error("order not compiled")
	}
}

func TestCompilePolicyUnbound(t *testing.T) {
	p, err := LoadPolicy("testdata/cache.txt", PolicyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sites := NewBindings[*siteView]().String("site.name", func(s *siteView) string { return s.name })
	_, err = CompilePolicy(p, NewBindings[*rep](), sites, testNow)
	if !errors.Is(err, ErrUnbound) {
		t.Fatalf("got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`testdata/cache.txt:4:29: variable has no binding: "site.status"`,
		`testdata/cache.txt:5:6: variable has no binding: "site.occupancy"`,
		`testdata/cache.txt:10:14: variable has no binding: "blockreplica.is_locked"; the caller must bind blockreplica.is_locked (attribute producer locks)`,
		`testdata/cache.txt:17:18: sort key has no scalar binding: "dataset.usage_rank"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
}

func TestCompilePartition(t *testing.T) {
	ps, err := LoadPartitions("testdata/partitions.txt")
	if err != nil {
		t.Fatal(err)
	}
	b := repBindings()
	disk, mss := 0, 1
	cases := []struct {
		part  string
		owner string
		stor  int
		want  bool
	}{
		{"Analysis", "Analysis", disk, true},
		{"Analysis", "Analysis", mss, false},
		{"Release Val", "Release Val", mss, true},
		{"Everything", "Production", disk, true},   // via ProdDisk
		{"Everything", "Production", mss, true},    // via Tape
		{"Everything", "Release Val", disk, false}, // not a leaf of Everything
		{"Scratch", "None", disk, true},
	}
	for _, c := range cases {
		m, err := CompilePartition(ps, c.part, b, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Match(&rep{owner: c.owner, storage: c.stor}); got != c.want {
			t.Errorf("%s owner %s storage %d: %v", c.part, c.owner, c.stor, got)
		}
	}
	if _, err := CompilePartition(ps, "Analisys", b, testNow); err == nil || !strings.Contains(err.Error(), "did you mean Analysis?") {
		t.Errorf("unknown partition: %v", err)
	}
}
