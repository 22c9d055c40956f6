// Package glob matches names against shell-style patterns: the one glob
// of dynamo-go, used by the policy language, the registry (dataset, site
// and lock globs), Detox locks and the consistency checker.
//
// The rules are Python's fnmatch (what Dynamo's users wrote patterns for):
//
//   - '*' matches any run of characters, including '/';
//   - '?' matches one character (one UTF-8 rune);
//   - '[seq]' matches one character in seq, '[!seq]' one not in it; 'a-z'
//     is a range; a ']' right after '[' or '[!' is literal, and so is '^'
//     (it does not negate, unlike a regular expression class).
//
// Matching is case-sensitive and anchored at both ends.
//
// One rule is stricter than fnmatch: a '[' without a closing ']' is an
// error, not a literal '['. No dataset, site or group name contains '[', so
// such a pattern is a typo (a class left open), and treating it as literal
// would make it silently match nothing.
package glob

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Pattern is a compiled glob. It is immutable and safe for concurrent use.
type Pattern struct {
	text   string
	toks   []tok
	simple []string // literal segments between stars, when the pattern has only literals and '*'
	isSimp bool
}

type tokKind uint8

const (
	tLit   tokKind = iota
	tAny           // ?
	tStar          // *
	tClass         // [...]
)

type tok struct {
	kind   tokKind
	lit    string
	ranges []rune // pairs lo, hi
	negate bool
}

// HasMeta reports whether s contains a glob metacharacter, that is whether
// it is a pattern rather than a plain name.
func HasMeta(s string) bool { return strings.ContainsAny(s, "*?[") }

// LiteralPrefix returns the part of pattern before its first
// metacharacter (all of it for a plain name): every match starts with it.
func LiteralPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, "*?["); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// Compile compiles a glob; an unclosed '[' is an error naming its offset.
func Compile(pattern string) (*Pattern, error) {
	g := &Pattern{text: pattern}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			g.toks = append(g.toks, tok{kind: tLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(pattern); {
		switch c := pattern[i]; c {
		case '*':
			flush()
			if n := len(g.toks); n == 0 || g.toks[n-1].kind != tStar {
				g.toks = append(g.toks, tok{kind: tStar})
			}
			i++
		case '?':
			flush()
			g.toks = append(g.toks, tok{kind: tAny})
			i++
		case '[':
			t, n, ok := parseClass(pattern[i:])
			if !ok {
				return nil, fmt.Errorf("glob %q: '[' at offset %d is not closed", pattern, i)
			}
			flush()
			g.toks = append(g.toks, t)
			i += n
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	g.isSimp = true
	for _, t := range g.toks {
		if t.kind == tAny || t.kind == tClass {
			g.isSimp = false
		}
	}
	if g.isSimp {
		// The literal before the first star, between stars, after the last.
		seg := ""
		for _, t := range g.toks {
			if t.kind == tStar {
				g.simple = append(g.simple, seg)
				seg = ""
			} else {
				seg += t.lit
			}
		}
		g.simple = append(g.simple, seg)
	}
	return g, nil
}

// String returns the pattern as written.
func (g *Pattern) String() string { return g.text }

// parseClass parses "[...]" at the start of s like fnmatch.translate: '!'
// negates, a ']' right after '[' or '[!' is literal, a-z is a range.
func parseClass(s string) (tok, int, bool) {
	i := 1
	t := tok{kind: tClass}
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

func (t *tok) classMatch(r rune) bool {
	in := false
	for k := 0; k < len(t.ranges); k += 2 {
		if t.ranges[k] <= r && r <= t.ranges[k+1] {
			in = true
			break
		}
	}
	return in != t.negate
}

// Match reports whether name matches the whole pattern.
func (g *Pattern) Match(name string) bool {
	if g.isSimp {
		return matchSimple(g.simple, name)
	}
	return matchToks(g.toks, name)
}

// matchSimple matches literal segments separated by stars: string
// searches only, which matters when a pattern without a literal prefix is
// matched against every dataset name. With only stars, taking each middle
// segment at its leftmost occurrence is enough.
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
// most recent star (linear for star-only patterns, O(n*m) worst case, never
// exponential).
func matchToks(toks []tok, s string) bool {
	ti, si := 0, 0
	starT, starS := -1, 0
	for {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.kind {
			case tStar:
				starT, starS = ti, si
				ti++
				continue
			case tLit:
				if strings.HasPrefix(s[si:], t.lit) {
					ti++
					si += len(t.lit)
					continue
				}
			case tAny, tClass:
				if si < len(s) {
					r, n := rune(s[si]), 1
					if r >= utf8.RuneSelf {
						r, n = utf8.DecodeRuneInString(s[si:])
					}
					if t.kind == tAny || t.classMatch(r) {
						ti++
						si += n
						continue
					}
				}
			}
		} else if si == len(s) {
			return true
		}
		// Mismatch: let the last star absorb one more character.
		if starT < 0 || starS >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		ti, si = starT+1, starS
	}
}
