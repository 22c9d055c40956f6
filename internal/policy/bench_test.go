package policy

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchSubjects builds a deterministic population of replicas whose names,
// owners and ages spread over the rule set, so branches vary as in a real
// cycle (a single subject would let the branch predictor learn one path).
func benchSubjects(n int) []*rep {
	rng := rand.New(rand.NewPCG(1, 2))
	tiers := []string{"RAW", "RECO", "AOD", "MINIAODSIM", "TINYAODSIM", "GEN-SIM", "RAW-RECO", "LHE"}
	eras := []string{"Run2016B-PromptReco-v2", "Summer30UL-102X_v1-v1", "Fall17-94X-v2", "HeavyIonAutumn-NoPUmva-v1"}
	owners := []string{"Analysis", "Production", "Analysis", "Analysis", "RelVal"}
	sites := []string{"T2_DE_Lab", "T1_US_Big_Disk", "T2_XX_Lab", "T2_YY_Campus", "T3_ZZ_Small"}
	out := make([]*rep, n)
	for i := range out {
		out[i] = &rep{
			name:             fmt.Sprintf("/Primary%d/%s/%s", rng.IntN(5000), eras[rng.IntN(len(eras))], tiers[rng.IntN(len(tiers))]),
			status:           []int{4, 5, 5, 5, 2, 3}[rng.IntN(6)],
			onTape:           10 + rng.IntN(3),
			lastUpdate:       days(rng.IntN(600)),
			size:             rng.Int64N(5e12),
			usageRank:        rng.Float64() * 300,
			numAccess:        float64(rng.IntN(3)),
			otherCopies:      float64(rng.IntN(4)),
			lastBlockCreated: days(rng.IntN(400)),
			incomplete:       rng.IntN(50) == 0,
			locked:           rng.IntN(100) == 0,
			brOnTape:         rng.IntN(2) == 0,
			owner:            owners[rng.IntN(len(owners))],
			brLastUpdate:     days(rng.IntN(400)),
			site:             sites[rng.IntN(len(sites))],
		}
	}
	return out
}

// BenchmarkPolicyFirstMatch evaluates the rules of testdata/physics-like.txt
// top-down until the first match, as Detox does per block replica. One op is
// one replica.
func BenchmarkPolicyFirstMatch(b *testing.B) {
	pol, err := LoadPolicy("testdata/physics-like.txt", PolicyOptions{})
	if err != nil {
		b.Fatal(err)
	}
	bind := repBindings()
	rules := make([]*Matcher[*rep], len(pol.Rules))
	for i, r := range pol.Rules {
		if rules[i], err = Compile(r.Cond, bind, testNow); err != nil {
			b.Fatal(err)
		}
	}
	subjects := benchSubjects(1 << 14)
	hits := make([]int, len(rules)+1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s := subjects[i&(len(subjects)-1)]
		k := len(rules)
		for j, m := range rules {
			if m.Match(s) {
				k = j
				break
			}
		}
		hits[k]++
	}
	b.StopTimer()
	evaluated := 0
	for k, h := range hits {
		evaluated += h * min(k+1, len(rules))
	}
	b.ReportMetric(float64(evaluated)/float64(b.N), "rules/op")
}

// BenchmarkPolicyAllRules evaluates every rule on every replica (no early
// exit): the worst case, one op is one replica times all rules.
func BenchmarkPolicyAllRules(b *testing.B) {
	pol, err := LoadPolicy("testdata/physics-like.txt", PolicyOptions{})
	if err != nil {
		b.Fatal(err)
	}
	bind := repBindings()
	var rules []*Matcher[*rep]
	for _, r := range pol.Rules {
		m, err := Compile(r.Cond, bind, testNow)
		if err != nil {
			b.Fatal(err)
		}
		rules = append(rules, m)
	}
	subjects := benchSubjects(1 << 14)
	n := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s := subjects[i&(len(subjects)-1)]
		for _, m := range rules {
			if m.Match(s) {
				n++
			}
		}
	}
	b.ReportMetric(float64(len(rules)), "rules/op")
	_ = n
}

func BenchmarkParsePolicy(b *testing.B) {
	src := []byte{}
	var err error
	if pol, e := LoadPolicy("testdata/physics-like.txt", PolicyOptions{}); e == nil {
		src = []byte(pol.Source)
	} else {
		b.Fatal(e)
	}
	for b.Loop() {
		if _, err = ParsePolicy("p", src, PolicyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
