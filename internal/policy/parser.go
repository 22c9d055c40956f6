package policy

import (
	"slices"
	"strings"
)

// Condition is a parsed and type-checked condition.
type Condition struct {
	Text string  // as written
	Ctx  Context // what it is evaluated on
	Root Node
	File string // source file, "" when parsed from a string
	At   Pos    // position of Text's first byte
}

// ParseCondition parses and type-checks text for the given context. The
// returned error is an ErrorList of *Error (positions relative to text,
// Line 0).
func ParseCondition(text string, ctx Context) (*Condition, error) {
	c, errs := parseCondition(text, ctx, "", Pos{Line: 0, Col: 1})
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// String renders the condition in canonical form.
func (c *Condition) String() string { return c.Root.String() }

// Variables returns the catalog entries the condition uses, sorted by name,
// without duplicates.
func (c *Condition) Variables() []*Variable {
	var out []*Variable
	walk(c.Root, func(p *Predicate) {
		if p.Var != nil && !slices.Contains(out, p.Var) {
			out = append(out, p.Var)
		}
	})
	slices.SortFunc(out, func(a, b *Variable) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// RequiredAttrs returns the attribute producers the condition needs, sorted.
func (c *Condition) RequiredAttrs() []string { return producersOf(c.Variables()) }

func producersOf(vars []*Variable) []string {
	var out []string
	for _, v := range vars {
		if v.Producer != "" && !slices.Contains(out, v.Producer) {
			out = append(out, v.Producer)
		}
	}
	slices.Sort(out)
	return out
}

// parser is a recursive-descent parser over one condition:
//
//	or      = and { "or" and }
//	and     = unary { "and" unary }
//	unary   = "not" unary | primary
//	primary = "(" or ")" | predicate
//	pred    = VAR [ op value | ("in"|"notin") "[" items "]" ]
type parser struct {
	s      scanner
	ctx    Context
	file   string
	errs   ErrorList
	failed bool // a syntax error: stop, the rest would only cascade
}

func parseCondition(text string, ctx Context, file string, at Pos) (*Condition, ErrorList) {
	p := &parser{s: scanner{src: text, at: at}, ctx: ctx, file: file}
	root := p.parseOr()
	if !p.failed {
		p.s.skipSpace()
		if !p.s.eof() {
			w, off := p.s.word()
			if strings.HasPrefix(w, ")") {
				p.syntax(off, w, "unbalanced )", "remove it or add the matching (")
			} else {
				p.syntax(off, w, "unexpected text", "join predicates with and / or")
			}
		}
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return &Condition{Text: text, Ctx: ctx, Root: root, File: file, At: at}, nil
}

func (p *parser) add(kind error, off int, text, msg, hint string) {
	pos := p.s.posAt(off)
	p.errs = append(p.errs, &Error{Kind: kind, File: p.file, Line: pos.Line, Col: pos.Col, Text: text, Msg: msg, Hint: hint})
}

func (p *parser) syntax(off int, text, msg, hint string) {
	p.add(ErrSyntax, off, text, msg, hint)
	p.failed = true
}

func (p *parser) parseOr() Node {
	terms := []Node{p.parseAnd()}
	for !p.failed {
		p.s.skipSpace()
		if !p.s.keywordAhead("or") {
			break
		}
		p.s.pos += len("or")
		terms = append(terms, p.parseAnd())
	}
	if len(terms) == 1 {
		return terms[0]
	}
	return &Or{Terms: terms}
}

func (p *parser) parseAnd() Node {
	terms := []Node{p.parseUnary()}
	for !p.failed {
		p.s.skipSpace()
		if !p.s.keywordAhead("and") {
			break
		}
		p.s.pos += len("and")
		terms = append(terms, p.parseUnary())
	}
	if len(terms) == 1 {
		return terms[0]
	}
	return &And{Terms: terms}
}

func (p *parser) parseUnary() Node {
	n, _ := p.parseUnaryGrouped()
	return n
}

// parseUnaryGrouped also reports whether the node was a parenthesized group,
// which decides between a per-value negation and a logical one.
func (p *parser) parseUnaryGrouped() (Node, bool) {
	p.s.skipSpace()
	if p.s.keywordAhead("not") {
		at := p.s.posAt(p.s.pos)
		p.s.pos += len("not")
		x, grouped := p.parseUnaryGrouped()
		if pr, ok := x.(*Predicate); ok && !grouped {
			pr.Negate = !pr.Negate
			return pr, false
		}
		return &Not{At: at, X: x}, false
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (Node, bool) {
	p.s.skipSpace()
	off := p.s.pos
	bad := &Predicate{At: p.s.posAt(off)}
	if p.failed {
		return bad, false
	}
	if p.s.eof() {
		p.syntax(off, "", "expected a condition", "write a predicate such as dataset.name == /*/*/RAW")
		return bad, false
	}
	if p.s.peek() == '(' {
		p.s.pos++
		p.s.depth++
		x := p.parseOr()
		p.s.depth--
		if p.failed {
			return x, true
		}
		p.s.skipSpace()
		if p.s.peek() != ')' {
			p.syntax(off, "(", "unclosed (", "add the matching )")
			return x, true
		}
		p.s.pos++
		return x, true
	}
	return p.parsePredicate(), false
}

func (p *parser) parsePredicate() Node {
	s := &p.s
	off := s.pos
	name, _ := s.ident()
	pr := &Predicate{At: s.posAt(off), Name: name}
	if name == "" {
		w, _ := s.word()
		p.syntax(off, w, "expected a variable", "variables look like dataset.name or site.status")
		return pr
	}
	v, ok := Lookup(name)
	switch {
	case !ok:
		hint := "see docs/policy-language.md for the variable list"
		if h := didYouMean(name, variableNames(p.ctx)); h != "" {
			hint = "did you mean " + h + "?"
		}
		p.add(ErrUnknownVariable, off, name, "unknown variable", hint)
	case !p.ctx.allows(v.Scope):
		hint := v.Name + " is only available in site conditions (On, When, Until)"
		if p.ctx == ContextSite {
			hint = "site conditions (On, When, Until, destinations, sources) may use site.*, always and never"
		}
		p.add(ErrScope, off, name, "variable not available in a "+p.ctx.String(), hint)
	default:
		pr.Var = v
	}

	s.skipSpace()
	if s.eof() || s.peek() == ')' || s.keywordAhead("and") || s.keywordAhead("or") {
		pr.Op = OpTruth
		p.check(pr)
		return pr
	}
	opText, opOff := s.operator()
	op, ok := opByName[opText]
	if !ok {
		hint := "operators: == != =~ !=~ < > <= >= older_than newer_than in notin"
		if h := didYouMean(opText, mapKeys(opByName)); h != "" {
			hint = "did you mean " + h + "?"
		}
		p.syntax(opOff, opText, "unknown operator", hint)
		return pr
	}
	pr.Op = op
	if op == OpIn || op == OpNotIn {
		s.skipSpace()
		if s.peek() != '[' {
			w, woff := s.word()
			p.syntax(woff, w, "expected [ after "+opText, "write a list like [T1_*_Disk T2_*]")
			return pr
		}
		lb := s.pos
		items, closed := s.list()
		if !closed {
			p.syntax(lb, s.src[lb:], "unclosed [", "add the matching ]")
			return pr
		}
		if len(items) == 0 {
			p.add(ErrSyntax, lb, s.src[lb:s.pos], "empty list", "")
		}
		for _, it := range items {
			pr.List = append(pr.List, &Value{At: s.posAt(it.start), Text: it.text})
		}
		p.check(pr)
		return pr
	}
	text, voff, closed := s.scalar()
	if !closed {
		p.syntax(voff, s.src[voff:], "unterminated quoted value", "add the closing \"")
		return pr
	}
	if text == "" {
		p.syntax(opOff, opText, "missing value after operator", "")
		return pr
	}
	pr.Value = &Value{At: s.posAt(voff), Text: text}
	p.check(pr)
	return pr
}
