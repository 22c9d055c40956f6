// Package pfn maps logical file names (LFNs, "/store/mc/...") to physical
// file names (PFNs, full storage URLs) per site and protocol, the way
// Dynamo's Site.filename_mapping does: each protocol has a list of chains,
// each chain a list of (lfn regex -> pfn template) rewrites applied in
// order; the first chain whose every rule matches gives the PFN.
package pfn

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Errors returned by Mapper.ToPFN.
var (
	// ErrNoProtocol: the site has no mapping for the protocol.
	ErrNoProtocol = errors.New("no name mapping for protocol")
	// ErrNoMatch: no chain of the protocol matches the LFN.
	ErrNoMatch = errors.New("no name mapping rule matches")
)

// Rule is one rewrite. LFN is a Go (RE2) regular expression that must match
// at the start of the name (like Python's re.match in Dynamo); every match
// of it is then replaced by PFN, a template where $1, ${1} and ${name} refer
// to groups and $$ is a literal dollar. Dynamo's \1 is accepted as ${1}.
type Rule struct {
	LFN string `yaml:"lfn"`
	PFN string `yaml:"pfn"`
}

// Chain is a sequence of rules applied one after the other.
type Chain []Rule

// Config is a site's mapping: protocol (e.g. "davs", "root", "srm",
// "gfal2") to chains, tried in order.
//
//	davs:
//	  - - {lfn: '^/store/(.*)', pfn: 'davs://se.example.org:443/cms/store/$1'}
//	root:
//	  - - {lfn: '^/store/user/(.*)', pfn: '/user/$1'}
//	    - {lfn: '^/(.*)', pfn: 'root://xrd.example.org//eos/$1'}
type Config map[string][]Chain

type rule struct {
	match *regexp.Regexp // anchored, decides whether the rule applies
	sub   *regexp.Regexp // unanchored, replaces every match
	tmpl  string
}

// Mapper is a compiled, validated Config. It is immutable and safe for
// concurrent use.
type Mapper struct {
	site   string
	chains map[string][][]rule
}

var backref = regexp.MustCompile(`\\(\d+)`)

// Validate reports every problem in c, each naming protocol, chain and rule.
func (c Config) Validate() error {
	_, err := Compile("", c)
	return err
}

// Compile validates c and returns its Mapper. The error lists every bad
// rule with its position and the offending text.
func Compile(site string, c Config) (*Mapper, error) {
	m := &Mapper{site: site, chains: map[string][][]rule{}}
	var errs []error
	where := func(proto string, ci, ri int) string {
		s := fmt.Sprintf("protocol %q chain %d", proto, ci)
		if ri >= 0 {
			s += fmt.Sprintf(" rule %d", ri)
		}
		if site != "" {
			s = "site " + site + ": " + s
		}
		return s
	}
	if len(c) == 0 {
		errs = append(errs, fmt.Errorf("site %s: name mapping has no protocols", site))
	}
	for _, proto := range sortedKeys(c) {
		chains := c[proto]
		if proto == "" || strings.TrimSpace(proto) != proto {
			errs = append(errs, fmt.Errorf("site %s: bad protocol name %q", site, proto))
		}
		if len(chains) == 0 {
			errs = append(errs, fmt.Errorf("%s: no chains", where(proto, 0, -1)))
		}
		for ci, ch := range chains {
			if len(ch) == 0 {
				errs = append(errs, fmt.Errorf("%s: empty chain", where(proto, ci, -1)))
			}
			var crs []rule
			for ri, r := range ch {
				cr, err := compileRule(r)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", where(proto, ci, ri), err))
					continue
				}
				crs = append(crs, cr)
			}
			m.chains[proto] = append(m.chains[proto], crs)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

func compileRule(r Rule) (rule, error) {
	if r.LFN == "" {
		return rule{}, errors.New("empty lfn regex")
	}
	sub, err := regexp.Compile(r.LFN)
	if err != nil {
		return rule{}, fmt.Errorf("bad lfn regex %q: %w", r.LFN, err)
	}
	match := regexp.MustCompile(`^(?:` + r.LFN + `)`)
	tmpl := backref.ReplaceAllString(r.PFN, `$${$1}`)
	if err := checkTemplate(tmpl, sub); err != nil {
		return rule{}, fmt.Errorf("pfn template %q: %w", r.PFN, err)
	}
	return rule{match: match, sub: sub, tmpl: tmpl}, nil
}

var tmplRef = regexp.MustCompile(`\$(\$|\{([^}]*)\}|([A-Za-z0-9_]+))`)

// checkTemplate rejects references to groups the regex does not have,
// which regexp.Expand would silently turn into empty strings.
func checkTemplate(tmpl string, re *regexp.Regexp) error {
	names := map[string]bool{}
	for _, n := range re.SubexpNames() {
		if n != "" {
			names[n] = true
		}
	}
	for _, m := range tmplRef.FindAllStringSubmatch(tmpl, -1) {
		if m[1] == "$" {
			continue
		}
		ref := m[2] + m[3]
		if n, err := strconv.Atoi(ref); err == nil {
			if n > re.NumSubexp() {
				return fmt.Errorf("refers to group %d but the regex has %d", n, re.NumSubexp())
			}
			continue
		}
		if !names[ref] {
			return fmt.Errorf("refers to unknown group %q (write ${1}x, not $1x, before letters)", ref)
		}
	}
	return nil
}

// ToPFN maps lfn for protocol. It returns ErrNoProtocol or ErrNoMatch
// (wrapped, naming the site, protocol and LFN) when nothing applies.
func (m *Mapper) ToPFN(lfn, protocol string) (string, error) {
	chains, ok := m.chains[protocol]
	if !ok {
		return "", fmt.Errorf("site %s: %w %q (have %s)", m.site, ErrNoProtocol, protocol, strings.Join(m.Protocols(), ", "))
	}
next:
	for _, ch := range chains {
		name := lfn
		for _, r := range ch {
			if !r.match.MatchString(name) {
				continue next
			}
			name = r.sub.ReplaceAllString(name, r.tmpl)
		}
		return name, nil
	}
	return "", fmt.Errorf("site %s protocol %s: %w %q", m.site, protocol, ErrNoMatch, lfn)
}

// Protocols lists the mapped protocols, sorted.
func (m *Mapper) Protocols() []string {
	return sortedKeys(m.chains)
}

func sortedKeys[V any](mp map[string]V) []string {
	out := make([]string, 0, len(mp))
	for k := range mp {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
