package policy

import (
	"errors"
	"sync"
	"testing"
)

// groupedSubjects returns groups*perGroup subjects whose dataset fields are
// shared within a group (the replicas of one dataset) and a key function.
func groupedSubjects(groups, perGroup int) ([]*rep, func(*rep) int32) {
	base := benchSubjects(groups + groups*perGroup)
	key := map[*rep]int32{}
	var out []*rep
	for g := range groups {
		ds := base[g]
		for j := range perGroup {
			r := *base[groups+g*perGroup+j]
			r.name, r.status, r.onTape, r.lastUpdate, r.usageRank = ds.name, ds.status, ds.onTape, ds.lastUpdate, ds.usageRank
			r.protectedSite, r.unhandled, r.tapeRequested = ds.protectedSite, ds.unhandled, ds.tapeRequested
			key[&r] = int32(g)
			out = append(out, &r)
		}
	}
	return out, func(r *rep) int32 { return key[r] }
}

var datasetVars = []string{"dataset.name", "dataset.status", "dataset.on_tape", "dataset.last_update",
	"dataset.usage_rank", "dataset.on_protected_site", "dataset.unhandled_copy_exists", "dataset.tape_copy_requested"}

var groupedConds = []string{
	"dataset.name == /*/*/RAW",
	"dataset.name != /*/*/RAW and replica.size > 1 TB",
	"site.name == T2_* or dataset.name =~ /Primary1",
	"not (dataset.status == VALID and dataset.usage_rank > 100)",
	"dataset.name in [/*/*/AOD /*/*/RECO] and dataset.last_update older_than 30 days ago and blockreplica.owner == Analysis",
	"replica.incomplete or (dataset.on_tape != FULL and dataset.name == /Primary2*) or always",
	"dataset.status == VALID",
	"never or dataset.name == /*/Fall17*/*",
	"site.name == T2_* and dataset.name == /*/*/RAW",
	"(site.name == T2_* or site.status == READY) and not dataset.name == /*/*/AOD",
}

// siteKey groups subjects by site name, a second grouping next to the
// dataset's.
func siteKey() (func(*rep) int32, int) {
	ids := map[string]int32{}
	for _, s := range benchSubjects(2000) {
		if _, ok := ids[s.site]; !ok {
			ids[s.site] = int32(len(ids))
		}
	}
	return func(r *rep) int32 { return ids[r.site] }, len(ids)
}

// TestGroupedMatchesUngrouped: grouping changes how often a condition is
// evaluated, never its value, including from concurrent matchers.
func TestGroupedMatchesUngrouped(t *testing.T) {
	subjects, key := groupedSubjects(40, 25)
	cache, sites := NewGroupCache(), NewGroupCache()
	skey, nsites := siteKey()
	grouped := repBindings().Grouped(cache, key, datasetVars...).Grouped(sites, skey, "site.name", "site.status")
	plain := repBindings()
	var gm, pm []*Matcher[*rep]
	for _, text := range groupedConds {
		gm = append(gm, mustMatcher(t, text, grouped))
		pm = append(pm, mustMatcher(t, text, plain))
	}
	if cache.Slots() == 0 || sites.Slots() == 0 {
		t.Fatalf("grouped conditions: %d by dataset, %d by site", cache.Slots(), sites.Slots())
	}
	cache.Reset(40)
	sites.Reset(nsites)
	var wg sync.WaitGroup
	errs := make(chan string, len(groupedConds)*4)
	for range 4 {
		wg.Go(func() {
			for i := range groupedConds {
				for _, s := range subjects {
					if gm[i].Match(s) != pm[i].Match(s) {
						errs <- groupedConds[i]
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for text := range errs {
		t.Errorf("%s: grouped and plain matchers disagree", text)
	}
}

// TestGroupedEvaluatesOncePerGroup: a name glob reads the name once per
// group until Reset, and Reset makes it read the (changed) value again.
func TestGroupedEvaluatesOncePerGroup(t *testing.T) {
	subjects, key := groupedSubjects(10, 30)
	calls := 0
	b := repBindings()
	b.m["dataset.name"].str = func(r *rep) string { calls++; return r.name }
	cache := NewGroupCache()
	b.Grouped(cache, key, datasetVars...)
	m := mustMatcher(t, "dataset.name == /*/*/RAW and replica.size > 0", b)
	cache.Reset(10)
	raw := 0
	for range 3 {
		raw = 0
		for _, s := range subjects {
			if m.Match(s) {
				raw++
			}
		}
	}
	if calls != 10 {
		t.Fatalf("name read %d times for 10 datasets x 30 replicas, 3 passes; want 10", calls)
	}
	for _, s := range subjects {
		s.name = "/Renamed/X/RAW"
	}
	cache.Reset(10)
	calls, n := 0, 0
	for _, s := range subjects {
		if m.Match(s) {
			n++
		}
	}
	if calls != 10 || n != len(subjects) {
		t.Fatalf("after Reset: %d reads, %d matches; want 10, %d (before: %d matches)", calls, n, len(subjects), raw)
	}
}

// TestGroupedOutOfRange: keys outside the Reset range and conditions
// compiled after Reset are evaluated, not read from the cache.
func TestGroupedOutOfRange(t *testing.T) {
	subjects, key := groupedSubjects(5, 4)
	cache := NewGroupCache()
	b := repBindings().Grouped(cache, key, datasetVars...)
	early := mustMatcher(t, "dataset.name == /*/*/RAW", b)
	cache.Reset(2) // groups 2..4 out of range
	late := mustMatcher(t, "dataset.name != /*/*/RAW", b)
	for _, s := range subjects {
		want := globRAW(s.name)
		if early.Match(s) != want || late.Match(s) == want {
			t.Fatalf("%s (group %d): early %v late %v, want %v / %v", s.name, key(s), early.Match(s), late.Match(s), want, !want)
		}
	}
}

func globRAW(name string) bool {
	return len(name) > 4 && name[len(name)-4:] == "/RAW"
}

func TestGroupedBindingErrors(t *testing.T) {
	b := repBindings().Grouped(NewGroupCache(), func(*rep) int32 { return 0 }, "dataset.release")
	if err := b.Err(); !errors.Is(err, ErrBinding) {
		t.Fatalf("grouping an unbound variable: %v, want ErrBinding", err)
	}
	b = repBindings().Grouped(nil, nil, "dataset.name")
	if err := b.Err(); !errors.Is(err, ErrBinding) {
		t.Fatalf("Grouped without cache: %v, want ErrBinding", err)
	}
	key := func(*rep) int32 { return 0 }
	b = repBindings().Grouped(NewGroupCache(), key, "dataset.name").Grouped(NewGroupCache(), key, "dataset.name")
	if err := b.Err(); !errors.Is(err, ErrBinding) {
		t.Fatalf("a variable in two groups: %v, want ErrBinding", err)
	}
}
