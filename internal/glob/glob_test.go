package glob

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"/ZeroBias/*", "/ZeroBias/Run2018A-v1/MINIAOD", true},
		{"/*/*/RAW", "/A/B/RAW", true},
		{"/*/*/RAW", "/A/B/RAW-RECO", false},
		{"/*/*/RAW", "/A/B/C/RAW", true}, // '*' crosses '/'
		{"/*/*/NANOAOD*", "/A/B/NANOAODSIM", true},
		{"T*_MSS", "T1_US_FNAL_MSS", true},
		{"T*_MSS", "T1_US_FNAL_Disk", false},
		{"T2_*", "T2_", true},
		{"T2_*", "T1_X", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"a.b", "axb", false}, // no regular-expression meaning
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "acb", false},
		{"*aa", "aaa", true},
		{"ab*ba", "aba", false},
		{"?", "x", true},
		{"?", "", false},
		{"?", "é", true}, // one rune, not one byte
		{"/SingleMuon/Run2016?-18Apr2017-v?/AOD", "/SingleMuon/Run2016C-18Apr2017-v1/AOD", true},
		{"/SingleMuon/Run2016?-18Apr2017-v?/AOD", "/SingleMuon/Run2016-18Apr2017-v1/AOD", false},
		{"T2_[AB]*", "T2_AT_Vienna", true},
		{"T2_[AB]*", "T2_CH_CERN", false},
		{"T2_[!AB]*", "T2_CH_CERN", true},
		{"T2_[!AB]*", "T2_BE_IIHE", false},
		{"/A/[xy]/C", "/A/y/C", true},
		{"/A/[!xy]/C", "/A/y/C", false},
		{"v[0-9]", "v7", true},
		{"v[0-9]", "vx", false},
		{"[]]", "]", true},   // ']' first in a class is literal
		{"[!]]", "x", true},  // also after '!'
		{"[^x]", "^", true},  // '^' is literal, as in fnmatch ...
		{"[^x]", "y", false}, // ... not a negation, as in a regexp class
		{`[\]`, `\`, true},   // backslash is an ordinary character
		{"*", "", true},
		{"**", "anything", true},
		{"a?c*", "abcdef", true},
		{"*x?", "axbxc", true},
		{"*x?", "axb", true},
		{"*x?", "ax", false},
	} {
		p, err := Compile(c.pat)
		if err != nil {
			t.Fatalf("%q: %v", c.pat, err)
		}
		if got := p.Match(c.s); got != c.want {
			t.Errorf("%q ~ %q = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}

// TestUnclosedClassIsAnError: fnmatch would read "a[b" as the literal
// "a[b"; no name we match contains '[', so it is a class left open, and
// an error tells the user instead of matching nothing.
func TestUnclosedClassIsAnError(t *testing.T) {
	for _, pat := range []string{"a[b", "/A/[bc", "a[b*", "[", "[!"} {
		if _, err := Compile(pat); err == nil || !strings.Contains(err.Error(), "not closed") {
			t.Errorf("%q: %v, want a 'not closed' error", pat, err)
		}
	}
}

func TestLiteralPrefixAndHasMeta(t *testing.T) {
	for _, c := range []struct {
		pat, prefix string
		meta        bool
	}{{"/A/B/C", "/A/B/C", false}, {"/A/*", "/A/", true}, {"T2_?X", "T2_", true}, {"[ab]", "", true}} {
		if LiteralPrefix(c.pat) != c.prefix || HasMeta(c.pat) != c.meta {
			t.Errorf("%q: prefix %q meta %v", c.pat, LiteralPrefix(c.pat), HasMeta(c.pat))
		}
	}
}

// TestFastPathAgreesWithGeneral compares the star-only fast path with the
// general matcher on random patterns over a small alphabet, where
// overlapping segments are common.
func TestFastPathAgreesWithGeneral(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int, alpha string) string {
		b := make([]byte, rng.IntN(n+1))
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		return string(b)
	}
	for i := 0; i < 20000; i++ {
		pat, name := word(7, "ab/*"), word(9, "ab/")
		p, err := Compile(pat)
		if err != nil {
			t.Fatal(err)
		}
		if !p.isSimp {
			t.Fatalf("%q: a star-only pattern must take the fast path", pat)
		}
		if fast, gen := p.Match(name), matchToks(p.toks, name); fast != gen {
			t.Fatalf("pattern %q name %q: fast %v, general %v", pat, name, fast, gen)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	name := "/ZeroBias_0042/Run2018A-17Sep2018-v1/MINIAOD"
	for _, pat := range []string{"*/NO-SUCH-TIER", "/ZeroBias_00[0-4]?/*/MINIAOD"} {
		p, _ := Compile(pat)
		b.Run(pat, func(b *testing.B) {
			for b.Loop() {
				p.Match(name)
			}
		})
	}
}
