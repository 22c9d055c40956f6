package srm

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadSURL is returned by ParseSURL for anything that is not a usable SURL.
var ErrBadSURL = errors.New("invalid SURL")

// SURL is a parsed storage URL.
type SURL struct {
	Host string // host[:port] as written (may lack the port)
	// Path is the StFN: the site file name, absolute, not yet cleaned.
	Path string
}

// ParseSURL accepts every SURL form seen in the wild:
//
//	srm://host/path
//	srm://host:port/path
//	srm://host:port/srm/managerv2?SFN=/path
//	srm://host:port/anything?SFN=/path
//
// The path is taken verbatim (no percent-decoding: "%2e%2e" is a literal
// file name, never a parent reference); it is cleaned and contained by the
// namespace, not here.
func ParseSURL(s string) (SURL, error) {
	rest, ok := strings.CutPrefix(s, "srm://")
	if !ok {
		return SURL{}, fmt.Errorf("%w %q: must start with srm://", ErrBadSURL, s)
	}
	i := strings.IndexByte(rest, '/')
	if i <= 0 {
		return SURL{}, fmt.Errorf("%w %q: no host or no path", ErrBadSURL, s)
	}
	u := SURL{Host: rest[:i]}
	p := rest[i:]
	if j := strings.Index(p, "?"); j >= 0 {
		q := p[j+1:]
		// Only the SFN parameter carries a path; it runs to the end (paths
		// may contain '&' and '=').
		sfn, ok := strings.CutPrefix(q, "SFN=")
		if !ok {
			return SURL{}, fmt.Errorf("%w %q: query must be ?SFN=/path", ErrBadSURL, s)
		}
		p = sfn
	}
	if !strings.HasPrefix(p, "/") {
		return SURL{}, fmt.Errorf("%w %q: path %q must be absolute", ErrBadSURL, s, p)
	}
	if strings.ContainsRune(p, 0) {
		return SURL{}, fmt.Errorf("%w %q: NUL in path", ErrBadSURL, s)
	}
	u.Path = p
	return u, nil
}
