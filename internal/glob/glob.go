// Package glob matches names against shell-style patterns the way Dynamo's
// users expect (Python's fnmatch): '*' matches any run of characters
// including '/', '?' any one character, '[...]' a character class.
package glob

import (
	"fmt"
	"regexp"
	"strings"
)

// Pattern is a compiled glob.
type Pattern struct{ re *regexp.Regexp }

// Compile compiles a glob; a malformed class is an error.
func Compile(glob string) (*Pattern, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := strings.IndexByte(glob[i+1:], ']')
			if j < 0 {
				return nil, fmt.Errorf("glob %q: '[' at offset %d is not closed", glob, i)
			}
			class := glob[i+1 : i+1+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("glob %q: %w", glob, err)
	}
	return &Pattern{re: re}, nil
}

// Match reports whether name matches.
func (p *Pattern) Match(name string) bool { return p.re.MatchString(name) }
