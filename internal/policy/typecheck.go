package policy

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/internal/glob"
)

// opsFor lists the operators each type accepts.
var opsFor = map[Type][]Op{
	TypeString: {OpEq, OpNe, OpMatch, OpNotMatch, OpIn, OpNotIn},
	TypeNumber: {OpEq, OpNe, OpLt, OpGt, OpLe, OpGe, OpIn, OpNotIn},
	TypeBytes:  {OpEq, OpNe, OpLt, OpGt, OpLe, OpGe, OpIn, OpNotIn},
	TypeTime:   {OpLt, OpGt, OpLe, OpGe, OpOlder, OpNewer},
	TypeBool:   {OpTruth},
	TypeEnum:   {OpEq, OpNe, OpIn, OpNotIn},
}

func opList(t Type) string {
	var s []string
	for _, op := range opsFor[t] {
		s = append(s, op.String())
	}
	return strings.Join(s, " ")
}

// check type-checks pr and fills in the typed values. Problems are recorded
// on the parser; they do not stop parsing.
func (p *parser) check(pr *Predicate) {
	v := pr.Var
	if v == nil {
		return
	}
	off := pr.At.Col - p.s.at.Col
	if !containsOp(opsFor[v.Type], pr.Op) {
		if pr.Op == OpTruth {
			p.add(ErrType, off, pr.Name, v.Name+" is a "+v.Type.String()+", not a boolean; compare it with an operator",
				"operators for "+v.Type.String()+": "+opList(v.Type))
			return
		}
		hint := "operators for " + v.Type.String() + ": " + opList(v.Type)
		if v.Type == TypeBool {
			hint = "use the variable alone, or not " + v.Name
		}
		p.add(ErrType, off, pr.Name+" "+pr.Op.String(), "operator "+pr.Op.String()+" does not apply to "+v.Name+" ("+v.Type.String()+")", hint)
		return
	}
	if pr.Value != nil {
		p.checkValue(pr, pr.Value)
	}
	for _, val := range pr.List {
		p.checkValue(pr, val)
	}
}

func containsOp(ops []Op, op Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

func (p *parser) checkValue(pr *Predicate, val *Value) {
	v := pr.Var
	off := val.At.Col - p.s.at.Col
	switch v.Type {
	case TypeString:
		if pr.Op == OpMatch || pr.Op == OpNotMatch {
			// Python re.match anchors at the start only; so do we.
			re, err := regexp.Compile("^(?:" + val.Text + ")")
			if err != nil {
				p.add(ErrRegex, off, val.Text, "invalid regular expression", strings.TrimPrefix(err.Error(), "error parsing regexp: ")+" (RE2 syntax; no lookaround or backreferences)")
				return
			}
			val.Regex = re
			return
		}
		if glob.HasMeta(val.Text) {
			g, err := glob.Compile(val.Text)
			if err != nil {
				p.add(ErrType, off, val.Text, "invalid glob", "close the character class with ] (a class such as [AB] matches one of its characters)")
				return
			}
			val.Glob = g
		}
	case TypeNumber:
		f, err := strconv.ParseFloat(val.Text, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			p.add(ErrType, off, val.Text, "not a number for "+v.Name, "write a decimal number such as 0.9 or 100")
			return
		}
		val.Num = f
	case TypeBytes:
		n, err := bytesize.Parse(val.Text)
		if err != nil {
			p.add(ErrType, off, val.Text, "not a size for "+v.Name, "write bytes or a number with a unit: 500 GB, 1.5 TB, 2 TiB")
			return
		}
		val.Bytes = n
	case TypeTime:
		te, err := ParseTime(val.Text)
		if err != nil {
			p.add(ErrTime, off, val.Text, "invalid time expression for "+v.Name,
				err.Error()+"; forms: now, 1 week ago, 90 days ago, 3 months ago, 2016-08-17, January 1, @1500000000")
			return
		}
		val.Time = te
	case TypeEnum:
		i := v.enumIndex(val.Text)
		if i < 0 {
			hint := "one of: " + strings.Join(v.Enum, ", ")
			if h := didYouMean(val.Text, v.Enum); h != "" {
				hint = "did you mean " + h + "? " + hint
			}
			p.add(ErrUnknownValue, off, val.Text, "unknown value for "+v.Name, hint)
			return
		}
		val.Enum = i
	}
}
