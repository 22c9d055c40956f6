package policy

import "strings"

// scanner walks one condition's text. Values are lexed differently from the
// rest (they may contain spaces, parentheses and brackets: "IB RelVal",
// "1 week ago", "GEN-SIM(?:-RECO|)$"), so the parser drives the scanner mode
// by mode instead of consuming a flat token stream.
type scanner struct {
	src   string
	pos   int // byte offset into src
	at    Pos // position of src[0]
	depth int // open parentheses
}

func (s *scanner) posAt(off int) Pos { return Pos{Line: s.at.Line, Col: s.at.Col + off} }

func (s *scanner) eof() bool { return s.pos >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.pos]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func (s *scanner) skipSpace() {
	for !s.eof() && isSpace(s.src[s.pos]) {
		s.pos++
	}
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.'
}

// ident reads a variable name or word operator ([A-Za-z0-9_.]+).
func (s *scanner) ident() (string, int) {
	start := s.pos
	for !s.eof() && isIdentByte(s.src[s.pos]) {
		s.pos++
	}
	return s.src[start:s.pos], start
}

// word reads up to the next space.
func (s *scanner) word() (string, int) {
	start := s.pos
	for !s.eof() && !isSpace(s.src[s.pos]) {
		s.pos++
	}
	return s.src[start:s.pos], start
}

// keywordAhead reports whether the next word is kw (and/or/not), ending at a
// space, an opening parenthesis or the end of text.
func (s *scanner) keywordAhead(kw string) bool {
	if !strings.HasPrefix(s.src[s.pos:], kw) {
		return false
	}
	end := s.pos + len(kw)
	return end == len(s.src) || isSpace(s.src[end]) || s.src[end] == '('
}

// symbolOps are the operators written with symbols, longest first.
var symbolOps = []string{"!=~", "==", "!=", "=~", "<=", ">=", "<", ">"}

// operator reads an operator: a symbol or one of the word operators.
func (s *scanner) operator() (string, int) {
	for _, op := range symbolOps {
		if strings.HasPrefix(s.src[s.pos:], op) {
			start := s.pos
			s.pos += len(op)
			return op, start
		}
	}
	if !s.eof() && isIdentByte(s.src[s.pos]) {
		return s.ident()
	}
	return s.word()
}

// scalar reads a comparison's right-hand side: one quoted string, or words
// up to `and`, `or`, the end of text, or a `)` that closes an open group.
// Words are joined by single spaces, as Dynamo did.
func (s *scanner) scalar() (text string, start int, ok bool) {
	s.skipSpace()
	start = s.pos
	if s.peek() == '"' {
		return s.quoted()
	}
	var words []string
	for {
		s.skipSpace()
		if s.eof() || s.keywordAhead("and") || s.keywordAhead("or") {
			break
		}
		w, ws := s.word()
		if s.depth > 0 {
			if k := excessClosers(w); k > 0 {
				k = min(k, s.depth)
				w = w[:len(w)-k]
				s.pos = ws + len(w)
				if w != "" {
					words = append(words, w)
				}
				break
			}
		}
		words = append(words, w)
	}
	return strings.Join(words, " "), start, true
}

// quoted reads "..." with \" and \\ escapes.
func (s *scanner) quoted() (string, int, bool) {
	start := s.pos
	s.pos++
	var b strings.Builder
	for !s.eof() {
		c := s.src[s.pos]
		switch {
		case c == '\\' && s.pos+1 < len(s.src):
			b.WriteByte(s.src[s.pos+1])
			s.pos += 2
		case c == '"':
			s.pos++
			return b.String(), start, true
		default:
			b.WriteByte(c)
			s.pos++
		}
	}
	return b.String(), start, false
}

// excessClosers counts the trailing ')' of w that have no '(' in w, i.e.
// that close groups of the condition rather than groups of a regex. Escaped
// parentheses do not count.
func excessClosers(w string) int {
	bal := 0
	for i := 0; i < len(w); i++ {
		switch w[i] {
		case '\\':
			i++
		case '(':
			bal++
		case ')':
			bal--
		}
	}
	if bal >= 0 {
		return 0
	}
	trailing := 0
	for i := len(w) - 1; i >= 0 && w[i] == ')'; i-- {
		trailing++
	}
	return min(-bal, trailing)
}

// listItem is one element of an in/notin list.
type listItem struct {
	text  string
	start int
}

// list reads "[a b c]" (commas also separate). Brackets inside an element
// (glob classes like T2_[AB]*) nest. ok is false when the list is not closed.
func (s *scanner) list() (items []listItem, closed bool) {
	s.pos++ // '['
	for {
		for !s.eof() && (isSpace(s.src[s.pos]) || s.src[s.pos] == ',') {
			s.pos++
		}
		if s.eof() {
			return items, false
		}
		if s.src[s.pos] == ']' {
			s.pos++
			return items, true
		}
		start, nest := s.pos, 0
	elem:
		for !s.eof() {
			switch c := s.src[s.pos]; {
			case isSpace(c) || c == ',':
				break elem
			case c == '[':
				nest++
			case c == ']':
				if nest == 0 {
					break elem
				}
				nest--
			}
			s.pos++
		}
		items = append(items, listItem{s.src[start:s.pos], start})
	}
}
