package policy

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// Action is a Detox decision.
type Action uint8

// Detox decisions. The Block variants act on the matching block replicas
// only; a block action that matches every block of a replica acts like its
// dataset-level counterpart.
const (
	ActionProtect Action = iota + 1
	ActionDelete
	ActionDismiss
	ActionIgnore
	ActionProtectBlock
	ActionDeleteBlock
	ActionDismissBlock
)

var actionNames = [...]string{"", "Protect", "Delete", "Dismiss", "Ignore", "ProtectBlock", "DeleteBlock", "DismissBlock"}

// String returns the keyword as written in policy files.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "invalid"
}

// BlockLevel reports whether the action applies to block replicas.
func (a Action) BlockLevel() bool { return a >= ActionProtectBlock }

// DatasetLevel returns the dataset-level counterpart of a block action (and a
// dataset action itself).
func (a Action) DatasetLevel() Action {
	switch a {
	case ActionProtectBlock:
		return ActionProtect
	case ActionDeleteBlock:
		return ActionDelete
	case ActionDismissBlock:
		return ActionDismiss
	}
	return a
}

func actionByName(s string) (Action, bool) {
	i := slices.Index(actionNames[:], s)
	return Action(i), i > 0
}

// SiteLine is an On, When or Until line.
type SiteLine struct {
	Line int    // 1-based line number
	Text string // the whole line as written
	Cond *Condition
}

// Rule is a decision line. Detox reports decisions by Line and Text.
type Rule struct {
	Line   int
	Text   string
	Action Action
	Cond   *Condition // ContextReplica
}

// OrderKey is one `increasing|decreasing VAR` pair of the Order line.
type OrderKey struct {
	File       string
	At         Pos
	Name       string
	Var        *Variable // TypeNumber, TypeBytes or TypeTime
	Decreasing bool
}

// Policy is a parsed Detox policy file.
type Policy struct {
	File          string
	Source        string // whole file text, for cycle history
	Partition     string
	PartitionLine int // 0 when supplied by PolicyOptions
	On            []SiteLine
	When          []SiteLine
	Until         []SiteLine
	Rules         []Rule // in file order; the first matching dataset-level rule decides
	Default       Action // bare decision line
	DefaultLine   int
	Order         []OrderKey // empty for "Order none" or no Order line
	OrderLine     int
	Static        bool // Algo Static: no iterative deletion
}

// PolicyOptions adjusts ParsePolicy.
type PolicyOptions struct {
	// Partition names the partition for files without a Partition line (the
	// older campaign files). When the file has one, the two must agree.
	Partition string
}

var lineKeywords = []string{"Partition", "On", "When", "Until", "Order", "Algo",
	"Protect", "Delete", "Dismiss", "Ignore", "ProtectBlock", "DeleteBlock", "DismissBlock"}

// LoadPolicy reads and parses a policy file.
func LoadPolicy(path string, opts PolicyOptions) (*Policy, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return ParsePolicy(path, src, opts)
}

// ParsePolicy parses a Detox policy file. file is used in error positions.
// The error, if any, is an ErrorList holding every problem found.
func ParsePolicy(file string, src []byte, opts PolicyOptions) (*Policy, error) {
	pp := &policyParser{p: &Policy{File: file, Source: string(src)}, file: file, seen: map[string]bool{}}
	for i, raw := range strings.Split(string(src), "\n") {
		pp.line(i+1, strings.TrimRight(raw, "\r"))
	}
	pp.finish(opts)
	if len(pp.errs) > 0 {
		sortErrors(pp.errs)
		return nil, pp.errs
	}
	return pp.p, nil
}

type policyParser struct {
	p    *Policy
	file string
	errs ErrorList
	seen map[string]bool // line keywords present, even if the line was bad
}

func (pp *policyParser) errAt(kind error, line, col int, text, msg, hint string) {
	pp.errs = append(pp.errs, &Error{Kind: kind, File: pp.file, Line: line, Col: col, Text: text, Msg: msg, Hint: hint})
}

func (pp *policyParser) line(n int, raw string) {
	trimmed := strings.TrimLeft(raw, " \t")
	if trimmed == "" || trimmed[0] == '#' {
		return
	}
	col := len(raw) - len(trimmed) + 1
	kw := trimmed
	if i := strings.IndexAny(trimmed, " \t"); i >= 0 {
		kw = trimmed[:i]
	}
	pp.seen[kw] = true
	restTrim := strings.TrimLeft(trimmed[len(kw):], " \t")
	rest := strings.TrimRight(restTrim, " \t")
	restCol := col + len(trimmed) - len(restTrim)
	text := strings.TrimSpace(raw)
	p := pp.p

	cond := func(ctx Context) *Condition {
		if rest == "" {
			pp.errAt(ErrSyntax, n, col, kw, kw+" needs a condition", "")
			return nil
		}
		c, errs := parseCondition(rest, ctx, pp.file, Pos{Line: n, Col: restCol})
		pp.errs = append(pp.errs, errs...)
		return c
	}
	switch kw {
	case "Partition":
		switch {
		case rest == "":
			pp.errAt(ErrSyntax, n, col, kw, "Partition needs a name", "")
		case p.PartitionLine != 0:
			pp.errAt(ErrPolicy, n, col, text, fmt.Sprintf("second Partition line (first on line %d)", p.PartitionLine), "")
		default:
			p.Partition, p.PartitionLine = rest, n
		}
	case "On", "When", "Until":
		c := cond(ContextSite)
		if c == nil {
			return
		}
		sl := SiteLine{Line: n, Text: text, Cond: c}
		switch kw {
		case "On":
			p.On = append(p.On, sl)
		case "When":
			p.When = append(p.When, sl)
		default:
			p.Until = append(p.Until, sl)
		}
	case "Order":
		if p.OrderLine != 0 {
			pp.errAt(ErrPolicy, n, col, text, fmt.Sprintf("second Order line (first on line %d)", p.OrderLine), "")
			return
		}
		p.OrderLine = n
		pp.order(n, rest, restCol)
	case "Algo":
		if rest != "Static" {
			pp.errAt(ErrSyntax, n, restCol, rest, "unknown algorithm", "the only algorithm keyword is Static (iterative deletion is the default)")
			return
		}
		p.Static = true
	default:
		a, ok := actionByName(kw)
		if !ok {
			hint := "lines start with one of: " + strings.Join(lineKeywords, " ")
			if h := didYouMean(kw, lineKeywords); h != "" {
				hint = "did you mean " + h + "?"
			}
			pp.errAt(ErrSyntax, n, col, kw, "unknown line type", hint)
			return
		}
		if rest == "" {
			switch {
			case a.BlockLevel():
				pp.errAt(ErrSyntax, n, col, kw, kw+" needs a condition", "a default decision is dataset-level: Protect, Dismiss, Delete or Ignore")
			case p.DefaultLine != 0:
				pp.errAt(ErrPolicy, n, col, kw, fmt.Sprintf("second default decision (first on line %d)", p.DefaultLine), "")
			default:
				p.Default, p.DefaultLine = a, n
			}
			return
		}
		if c := cond(ContextReplica); c != nil {
			p.Rules = append(p.Rules, Rule{Line: n, Text: text, Action: a, Cond: c})
		}
	}
}

// order parses "none" or "(increasing|decreasing) VAR ...".
func (pp *policyParser) order(n int, rest string, restCol int) {
	s := scanner{src: rest, at: Pos{Line: n, Col: restCol}}
	if strings.TrimSpace(rest) == "none" {
		return
	}
	if rest == "" {
		pp.errAt(ErrSyntax, n, restCol, "Order", "Order needs keys or none", "e.g. Order decreasing dataset.usage_rank increasing replica.size")
		return
	}
	for {
		s.skipSpace()
		if s.eof() {
			return
		}
		dir, doff := s.word()
		pos := s.posAt(doff)
		if dir != "increasing" && dir != "decreasing" {
			hint := "write increasing or decreasing before each variable, or Order none"
			if h := didYouMean(dir, []string{"increasing", "decreasing", "none"}); h != "" {
				hint = "did you mean " + h + "?"
			}
			pp.errAt(ErrSyntax, pos.Line, pos.Col, dir, "unknown sort direction", hint)
			return
		}
		s.skipSpace()
		name, voff := s.word()
		vpos := s.posAt(voff)
		if name == "" {
			pp.errAt(ErrSyntax, pos.Line, pos.Col, dir, dir+" needs a variable", "")
			return
		}
		v, ok := Lookup(name)
		switch {
		case !ok:
			hint := ""
			if h := didYouMean(name, variableNames(ContextReplica)); h != "" {
				hint = "did you mean " + h + "?"
			}
			pp.errAt(ErrUnknownVariable, vpos.Line, vpos.Col, name, "unknown variable", hint)
		case !ContextReplica.allows(v.Scope) || v.Scope == ScopeConst:
			pp.errAt(ErrScope, vpos.Line, vpos.Col, name, "cannot sort replicas by "+v.Name, "sort keys describe replicas: dataset.*, replica.*, blockreplica.*")
		case v.Type != TypeNumber && v.Type != TypeBytes && v.Type != TypeTime:
			pp.errAt(ErrType, vpos.Line, vpos.Col, name, "cannot sort by a "+v.Type.String(), "sort keys must be numbers, sizes or times")
		default:
			pp.p.Order = append(pp.p.Order, OrderKey{File: pp.file, At: vpos, Name: name, Var: v, Decreasing: dir == "decreasing"})
		}
	}
}

// finish applies the partition option and checks the required lines.
func (pp *policyParser) finish(opts PolicyOptions) {
	p := pp.p
	switch {
	case opts.Partition != "" && p.PartitionLine != 0 && opts.Partition != p.Partition:
		pp.errAt(ErrPolicy, p.PartitionLine, 1, p.Partition, "file names partition "+p.Partition+" but "+opts.Partition+" was requested", "drop the override or fix the Partition line")
	case opts.Partition != "" && p.PartitionLine == 0:
		p.Partition = opts.Partition
	}
	missing := func(what, hint string) {
		pp.errs = append(pp.errs, &Error{Kind: ErrPolicy, File: pp.file, Msg: "missing " + what, Hint: hint})
	}
	if p.Partition == "" && !pp.seen["Partition"] {
		missing("Partition line", "add `Partition NAME` or supply the partition name (--partition)")
	}
	if len(p.On) == 0 && !pp.seen["On"] {
		missing("On line (target sites)", "e.g. On site.name in [T2_*]")
	}
	if len(p.When) == 0 && !pp.seen["When"] {
		missing("When line (deletion trigger)", "e.g. When site.occupancy > 0.9, or When always")
	}
	if len(p.Until) == 0 && !pp.seen["Until"] {
		missing("Until line (stop condition)", "e.g. Until site.occupancy < 0.85, or Until never")
	}
	if p.DefaultLine == 0 {
		missing("default decision", "add a line with only Protect or Dismiss")
	}
}

// Conditions returns every condition of the policy: site lines then rules.
func (p *Policy) Conditions() []*Condition {
	var out []*Condition
	for _, ls := range [][]SiteLine{p.On, p.When, p.Until} {
		for _, l := range ls {
			out = append(out, l.Cond)
		}
	}
	for _, r := range p.Rules {
		out = append(out, r.Cond)
	}
	return out
}

// RequiredAttrs returns the attribute producers the whole policy needs
// (conditions and Order keys), sorted.
func (p *Policy) RequiredAttrs() []string {
	var vars []*Variable
	for _, c := range p.Conditions() {
		vars = append(vars, c.Variables()...)
	}
	for _, k := range p.Order {
		vars = append(vars, k.Var)
	}
	return producersOf(vars)
}
