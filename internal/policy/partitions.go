package policy

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// Partition is one line of a partitions file: either a condition on block
// replicas or a list of sub-partitions (a super-partition).
type Partition struct {
	Name string
	Line int
	Text string     // the whole line
	Cond *Condition // nil for super-partitions
	Subs []string   // sub-partition names, nil for condition partitions
}

// Partitions is a parsed partitions file.
type Partitions struct {
	File   string
	List   []*Partition // file order
	byName map[string]*Partition
}

// LoadPartitions reads and parses a partitions file.
func LoadPartitions(path string) (*Partitions, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read partitions: %w", err)
	}
	return ParsePartitions(path, src)
}

// ParsePartitions parses lines `Name: condition` and `Name: [Sub1, Sub2]`.
// Names may contain spaces ("IB RelVal"). It rejects duplicate names,
// unknown sub-partitions and cycles.
func ParsePartitions(file string, src []byte) (*Partitions, error) {
	ps := &Partitions{File: file, byName: map[string]*Partition{}}
	var errs ErrorList
	errAt := func(kind error, line, col int, text, msg, hint string) {
		errs = append(errs, &Error{Kind: kind, File: file, Line: line, Col: col, Text: text, Msg: msg, Hint: hint})
	}
	subCols := map[*Partition][]int{}
	for i, raw := range strings.Split(string(src), "\n") {
		n := i + 1
		raw = strings.TrimRight(raw, "\r")
		t := strings.TrimSpace(raw)
		if t == "" || t[0] == '#' {
			continue
		}
		lead := strings.Index(raw, t) + 1
		colon := strings.IndexByte(t, ':')
		if colon < 0 {
			errAt(ErrSyntax, n, lead, t, "expected Name: condition or Name: [Sub1, Sub2]", "")
			continue
		}
		name := strings.TrimSpace(t[:colon])
		if name == "" {
			errAt(ErrSyntax, n, lead, t, "empty partition name", "")
			continue
		}
		body := t[colon+1:]
		bodyTrim := strings.TrimLeft(body, " \t")
		bodyCol := lead + colon + 1 + len(body) - len(bodyTrim)
		body = strings.TrimRight(bodyTrim, " \t")
		p := &Partition{Name: name, Line: n, Text: t}
		if prev, dup := ps.byName[name]; dup {
			errAt(ErrPolicy, n, lead, name, fmt.Sprintf("partition defined twice (first on line %d)", prev.Line), "")
			continue
		}
		switch {
		case body == "":
			errAt(ErrSyntax, n, bodyCol, t, "partition "+name+" has no definition", "write a condition or [Sub1, Sub2]")
			continue
		case body[0] == '[':
			if !strings.HasSuffix(body, "]") {
				errAt(ErrSyntax, n, bodyCol, body, "unclosed [", "")
				continue
			}
			inner := body[1 : len(body)-1]
			off := bodyCol + 1
			for _, part := range strings.Split(inner, ",") {
				s := strings.TrimSpace(part)
				col := off + strings.Index(part, s)
				off += len(part) + 1
				if s == "" {
					errAt(ErrSyntax, n, col, body, "empty sub-partition name", "")
					continue
				}
				p.Subs = append(p.Subs, s)
				subCols[p] = append(subCols[p], col)
			}
			if len(p.Subs) == 0 {
				continue
			}
		default:
			c, cerrs := parseCondition(body, ContextReplica, file, Pos{Line: n, Col: bodyCol})
			if len(cerrs) > 0 {
				errs = append(errs, cerrs...)
				continue
			}
			p.Cond = c
		}
		ps.List = append(ps.List, p)
		ps.byName[name] = p
	}
	for _, p := range ps.List {
		for i, s := range p.Subs {
			if _, ok := ps.byName[s]; !ok {
				hint := ""
				if h := didYouMean(s, ps.Names()); h != "" {
					hint = "did you mean " + h + "?"
				}
				errAt(ErrPolicy, p.Line, subCols[p][i], s, "unknown sub-partition of "+p.Name, hint)
			}
		}
	}
	{
		for _, p := range ps.List {
			if cyc := ps.cycle(p, nil); cyc != nil {
				errAt(ErrPolicy, p.Line, 1, p.Name, "partition cycle "+strings.Join(cyc, " -> "), "a super-partition cannot contain itself")
				break
			}
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	return ps, nil
}

// cycle returns a path that comes back to a partition on path, or nil.
func (ps *Partitions) cycle(p *Partition, path []string) []string {
	if i := slices.Index(path, p.Name); i >= 0 {
		return append(slices.Clone(path[i:]), p.Name)
	}
	path = append(path, p.Name)
	for _, s := range p.Subs {
		sub := ps.byName[s]
		if sub == nil {
			continue // reported as unknown
		}
		if c := ps.cycle(sub, path); c != nil {
			return c
		}
	}
	return nil
}

// Lookup returns the partition called name.
func (ps *Partitions) Lookup(name string) (*Partition, bool) {
	p, ok := ps.byName[name]
	return p, ok
}

// Names returns the partition names in file order.
func (ps *Partitions) Names() []string {
	out := make([]string, len(ps.List))
	for i, p := range ps.List {
		out[i] = p.Name
	}
	return out
}

// Leaves returns the condition partitions that make up name (name itself
// when it is a condition partition), without duplicates, in definition
// order. A block replica is in a super-partition when it is in any leaf.
func (ps *Partitions) Leaves(name string) []*Partition {
	var out []*Partition
	var visit func(p *Partition)
	visit = func(p *Partition) {
		if p.Cond != nil {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
			return
		}
		for _, s := range p.Subs {
			visit(ps.byName[s])
		}
	}
	if p, ok := ps.byName[name]; ok {
		visit(p)
	}
	return out
}
