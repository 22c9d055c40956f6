package policy

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Error kinds. Every *Error wraps exactly one of them, so callers can test
// with errors.Is(err, policy.ErrUnknownVariable).
var (
	// ErrSyntax: the text does not follow the grammar.
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownVariable: the variable is not in the catalog.
	ErrUnknownVariable = errors.New("unknown variable")
	// ErrUnknownValue: an enum constant that the variable does not have.
	ErrUnknownValue = errors.New("unknown value")
	// ErrType: an operator or value that does not fit the variable's type.
	ErrType = errors.New("type error")
	// ErrScope: a variable used where its object is not available (a
	// dataset variable in a site condition, site.occupancy in a replica rule).
	ErrScope = errors.New("variable not available here")
	// ErrTime: a time expression that cannot be parsed.
	ErrTime = errors.New("invalid time expression")
	// ErrRegex: a regular expression that does not compile.
	ErrRegex = errors.New("invalid regular expression")
	// ErrUnbound: a compiled condition needs a variable the Bindings lack.
	ErrUnbound = errors.New("variable not bound")
	// ErrPolicy: a policy, partitions or enforcer file is structurally wrong
	// (missing or duplicate line, unknown partition, cycle, ...).
	ErrPolicy = errors.New("invalid policy")
)

// Error is one problem found in policy text. Line and Col are 1-based; Col
// counts bytes. Line is 0 when the text did not come from a file line.
type Error struct {
	Kind error  // one of the Err* sentinels
	File string // file name as given by the caller; may be empty
	Line int
	Col  int
	Text string // the offending text, verbatim
	Msg  string // what is wrong
	Hint string // how to fix it; may be empty
}

// Error formats the problem as "file:line:col: msg: "text"; hint", the shape
// editors and CI logs understand.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Col)
	} else if e.Col > 0 {
		fmt.Fprintf(&b, "col %d: ", e.Col)
	} else if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	if e.Text != "" {
		fmt.Fprintf(&b, ": %q", e.Text)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns the error kind.
func (e *Error) Unwrap() error { return e.Kind }

// ErrorList is every problem found in one parse. It is returned as an error
// only when non-empty.
type ErrorList []*Error

// Error joins the messages, one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap exposes each element to errors.Is/As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// err returns the list as an error, or nil when empty (never a typed nil).
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Errors flattens err into its *Error elements, so a CLI can print one line
// per problem. Errors that are not policy errors are returned as they are.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	var l ErrorList
	if errors.As(err, &l) {
		out := make([]error, len(l))
		for i, e := range l {
			out[i] = e
		}
		return out
	}
	return []error{err}
}

// didYouMean returns the candidate closest to s by edit distance, or "" when
// none is close enough to be a plausible typo.
func didYouMean(s string, candidates []string) string {
	best, bestD := "", len(s)/3+2
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sortErrors orders errors by position; whole-file errors (Line 0) go last.
// The sort is stable so errors at one position keep their order.
func sortErrors(l ErrorList) {
	key := func(e *Error) int {
		if e.Line == 0 {
			return math.MaxInt
		}
		return e.Line<<16 | min(e.Col, 1<<16-1)
	}
	slices.SortStableFunc(l, func(a, b *Error) int { return cmp.Compare(key(a), key(b)) })
}
