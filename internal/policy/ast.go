package policy

import (
	"regexp"
	"strings"

	"github.com/dynamo-go/dynamo/internal/glob"
)

// Pos is a 1-based position in a source file (Line 0 when the text did not
// come from a file). Col counts bytes.
type Pos struct {
	Line, Col int
}

// Node is a node of a condition's syntax tree: *And, *Or, *Not or
// *Predicate.
type Node interface {
	Pos() Pos
	String() string
}

// And is true when every term is true (evaluated left to right, short-circuit).
type And struct{ Terms []Node }

// Or is true when some term is true (evaluated left to right, short-circuit).
type Or struct{ Terms []Node }

// Not negates a parenthesized expression. `not` written directly before a
// predicate is folded into Predicate.Negate instead (see Predicate).
type Not struct {
	At Pos
	X  Node
}

// Op is a predicate operator.
type Op uint8

// Operators.
const (
	OpTruth    Op = iota + 1 // bare boolean variable
	OpEq                     // ==  (glob when the string value has * ? [)
	OpNe                     // !=
	OpMatch                  // =~  regex, anchored at the start like Python re.match
	OpNotMatch               // !=~
	OpLt                     // <
	OpGt                     // >
	OpLe                     // <= (extension)
	OpGe                     // >= (extension)
	OpOlder                  // older_than, same as < on times
	OpNewer                  // newer_than, same as > on times
	OpIn                     // in [a b c]
	OpNotIn                  // notin [a b c]
)

var opNames = map[Op]string{
	OpTruth: "", OpEq: "==", OpNe: "!=", OpMatch: "=~", OpNotMatch: "!=~",
	OpLt: "<", OpGt: ">", OpLe: "<=", OpGe: ">=", OpOlder: "older_than",
	OpNewer: "newer_than", OpIn: "in", OpNotIn: "notin",
}

var opByName = func() map[string]Op {
	m := make(map[string]Op, len(opNames))
	for op, n := range opNames {
		if n != "" {
			m[n] = op
		}
	}
	return m
}()

// String returns the operator as written in policy text.
func (o Op) String() string { return opNames[o] }

// Predicate is `variable [op value]`. Negate is set by a `not` written
// directly before it; the negation applies per value, so on a dataset replica
// `not blockreplica.on_tape` means "some block replica is not on tape", as in
// Dynamo, whereas `not (blockreplica.on_tape)` means "no block replica is".
type Predicate struct {
	At     Pos
	Name   string    // the variable as written (may be a legacy alias)
	Var    *Variable // resolved catalog entry; nil only in failed parses
	Op     Op
	Negate bool
	Value  *Value   // for comparison operators
	List   []*Value // for in / notin
}

// Value is a right-hand side, checked against the variable's type. Exactly
// the fields for that type are set.
type Value struct {
	At   Pos
	Text string // as written (quotes removed)

	Glob  *glob.Pattern  // TypeString with == != in notin, when Text has glob metacharacters
	Regex *regexp.Regexp // TypeString with =~ !=~
	Num   float64        // TypeNumber
	Bytes int64          // TypeBytes
	Time  *TimeExpr      // TypeTime
	Enum  int            // TypeEnum: index into Var.Enum
}

// Pos implements Node.
func (n *And) Pos() Pos { return n.Terms[0].Pos() }

// Pos implements Node.
func (n *Or) Pos() Pos { return n.Terms[0].Pos() }

// Pos implements Node.
func (n *Not) Pos() Pos { return n.At }

// Pos implements Node.
func (n *Predicate) Pos() Pos { return n.At }

func joinNodes(terms []Node, sep string) string {
	s := make([]string, len(terms))
	for i, t := range terms {
		s[i] = t.String()
		if _, ok := t.(*Or); ok {
			s[i] = "(" + s[i] + ")"
		}
	}
	return strings.Join(s, sep)
}

// String renders the tree in canonical form (parentheses only where needed).
func (n *And) String() string { return joinNodes(n.Terms, " and ") }

// String renders the tree in canonical form.
func (n *Or) String() string { return joinNodes(n.Terms, " or ") }

// String renders the tree in canonical form.
func (n *Not) String() string { return "not (" + n.X.String() + ")" }

// String renders the predicate in canonical form.
func (n *Predicate) String() string {
	var b strings.Builder
	if n.Negate {
		b.WriteString("not ")
	}
	b.WriteString(n.Name)
	switch n.Op {
	case OpTruth:
	case OpIn, OpNotIn:
		b.WriteString(" " + n.Op.String() + " [")
		for i, v := range n.List {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(v.Text)
		}
		if last := n.List[len(n.List)-1].Text; strings.Count(last, "[") > strings.Count(last, "]") {
			// an item with an unclosed glob class would swallow the list's ]
			b.WriteByte(' ')
		}
		b.WriteString("]")
	default:
		b.WriteString(" " + n.Op.String() + " " + renderScalar(n.Value.Text))
	}
	return b.String()
}

// walk calls f for every predicate under n.
func walk(n Node, f func(*Predicate)) {
	switch n := n.(type) {
	case *And:
		for _, t := range n.Terms {
			walk(t, f)
		}
	case *Or:
		for _, t := range n.Terms {
			walk(t, f)
		}
	case *Not:
		walk(n.X, f)
	case *Predicate:
		f(n)
	}
}

// renderScalar writes a comparison value so that it parses back to itself:
// plain when the scanner would read it unchanged, quoted otherwise.
func renderScalar(t string) string {
	plain := t != "" && t[0] != '"' && strings.Join(strings.Fields(t), " ") == t
	for _, w := range strings.Fields(t) {
		if w == "and" || w == "or" || excessClosers(w) > 0 {
			plain = false
		}
	}
	if plain {
		return t
	}
	// only \ and " are escapes for the scanner (see scanner.quoted)
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(t) + `"`
}
