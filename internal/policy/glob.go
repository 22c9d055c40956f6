package policy

import (
	"strings"
	"unicode/utf8"
)

// glob is a compiled fnmatch pattern with Python fnmatch.translate
// semantics: `*` matches any run of characters including `/`, `?` one
// character, `[seq]` / `[!seq]` a character class with ranges, and a `[`
// without a closing `]` is literal. Matching is case-sensitive and anchored at
// both ends.
//
// Patterns made only of literals and stars (nearly all production patterns,
// e.g. /*/*/RAW or T2_*) take a fast path that uses no backtracking.
type glob struct {
	toks   []gtok
	simple []string // literal segments between stars, when the pattern has only literals and *
	isSimp bool
}

type gtokKind uint8

const (
	gLit   gtokKind = iota
	gAny            // ?
	gStar           // *
	gClass          // [...]
)

type gtok struct {
	kind   gtokKind
	lit    string
	ranges []rune // pairs lo,hi
	negate bool
}

func compileGlob(p string) *glob {
	g := &glob{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			g.toks = append(g.toks, gtok{kind: gLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(p); {
		switch c := p[i]; c {
		case '*':
			flush()
			if n := len(g.toks); n == 0 || g.toks[n-1].kind != gStar {
				g.toks = append(g.toks, gtok{kind: gStar})
			}
			i++
		case '?':
			flush()
			g.toks = append(g.toks, gtok{kind: gAny})
			i++
		case '[':
			if t, n, ok := parseClass(p[i:]); ok {
				flush()
				g.toks = append(g.toks, t)
				i += n
			} else {
				lit.WriteByte('[')
				i++
			}
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	g.isSimp = true
	for _, t := range g.toks {
		if t.kind == gAny || t.kind == gClass {
			g.isSimp = false
		}
	}
	if g.isSimp {
		// segments: literal before the first star, between stars, after the last
		seg := ""
		for _, t := range g.toks {
			if t.kind == gStar {
				g.simple = append(g.simple, seg)
				seg = ""
			} else {
				seg += t.lit
			}
		}
		g.simple = append(g.simple, seg)
	}
	return g
}

// parseClass parses "[...]" at the start of s like fnmatch.translate: `!`
// negates, a `]` right after `[` or `[!` is literal, a-z is a range.
func parseClass(s string) (gtok, int, bool) {
	i := 1
	t := gtok{kind: gClass}
	if i < len(s) && s[i] == '!' {
		t.negate = true
		i++
	}
	if i < len(s) && s[i] == ']' {
		i++
	}
	for i < len(s) && s[i] != ']' {
		i++
	}
	if i >= len(s) {
		return t, 0, false
	}
	body := s[1:i]
	if t.negate {
		body = body[1:]
	}
	rs := []rune(body)
	for j := 0; j < len(rs); j++ {
		if j+2 < len(rs) && rs[j+1] == '-' {
			t.ranges = append(t.ranges, rs[j], rs[j+2])
			j += 2
		} else {
			t.ranges = append(t.ranges, rs[j], rs[j])
		}
	}
	return t, i + 1, true
}

func (t *gtok) classMatch(r rune) bool {
	in := false
	for k := 0; k < len(t.ranges); k += 2 {
		if t.ranges[k] <= r && r <= t.ranges[k+1] {
			in = true
			break
		}
	}
	return in != t.negate
}

// match reports whether s matches the whole pattern.
func (g *glob) match(s string) bool {
	if g.isSimp {
		return matchSimple(g.simple, s)
	}
	return matchToks(g.toks, s)
}

// matchSimple matches literal segments separated by stars. With only stars,
// taking each middle segment at its leftmost occurrence is optimal.
func matchSimple(segs []string, s string) bool {
	if len(segs) == 1 {
		return s == segs[0]
	}
	first, last := segs[0], segs[len(segs)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, seg := range segs[1 : len(segs)-1] {
		i := strings.Index(s, seg)
		if i < 0 {
			return false
		}
		s = s[i+len(seg):]
	}
	return true
}

// matchToks is the general matcher: iterative, backtracking only to the
// most recent star (linear for star-only patterns, O(n*m) worst case).
func matchToks(toks []gtok, s string) bool {
	ti, si := 0, 0
	starT, starS := -1, 0
	for {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.kind {
			case gStar:
				starT, starS = ti, si
				ti++
				continue
			case gLit:
				if strings.HasPrefix(s[si:], t.lit) {
					ti++
					si += len(t.lit)
					continue
				}
			case gAny, gClass:
				if si < len(s) {
					r, n := rune(s[si]), 1
					if r >= utf8.RuneSelf {
						r, n = utf8.DecodeRuneInString(s[si:])
					}
					if t.kind == gAny || t.classMatch(r) {
						ti++
						si += n
						continue
					}
				}
			}
		} else if si == len(s) {
			return true
		}
		// mismatch: let the last star absorb one more character
		if starT < 0 || starS >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		ti, si = starT+1, starS
	}
}
