package registry

import (
	"math/rand/v2"
	"testing"

	"github.com/dynamo-go/dynamo/internal/glob"
)

// TestMatcherAgreesWithGlob compares the fast path with internal/glob on
// random star patterns over a small alphabet, where overlaps are common.
func TestMatcherAgreesWithGlob(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int, alpha string) string {
		b := make([]byte, rng.IntN(n+1))
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		return string(b)
	}
	for i := 0; i < 20000; i++ {
		pat := word(7, "ab/*")
		name := word(9, "ab/")
		m, err := compileMatcher(pat)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := glob.Compile(pat)
		if m.Match(name) != g.Match(name) {
			t.Fatalf("pattern %q name %q: fast %v, glob %v", pat, name, m.Match(name), g.Match(name))
		}
	}
	m, _ := compileMatcher("/P/R-v[12]/AOD")
	if m.re == nil || !m.Match("/P/R-v2/AOD") || m.Match("/P/R-v3/AOD") {
		t.Fatal("class patterns must use the general matcher")
	}
}

func BenchmarkMatcher(b *testing.B) {
	name := "/ZeroBias_0042/Run2018A-17Sep2018-v1/MINIAOD"
	m, _ := compileMatcher("*/NO-SUCH-TIER")
	g, _ := glob.Compile("*/NO-SUCH-TIER")
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			m.Match(name)
		}
	})
	b.Run("glob", func(b *testing.B) {
		for b.Loop() {
			g.Match(name)
		}
	})
}
