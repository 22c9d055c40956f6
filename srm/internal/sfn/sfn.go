// Package sfn parses SURLs and maps site file names to storage areas,
// lexically: the pure front half of the SE's namespace, kept free of the
// server's dependencies so it can be fuzzed cheaply. What a name reaches on
// disk is decided by the area's driver (srm/fs/rootfs), never here.
package sfn

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// Errors of parsing and mapping.
var (
	// ErrBadSURL: not a usable SURL.
	ErrBadSURL = errors.New("invalid SURL")
	// ErrNoArea: no storage area serves the path.
	ErrNoArea = errors.New("no storage area serves this path")
	// ErrEscape: the path is not absolute, holds a NUL, or names a
	// reserved temporary.
	ErrEscape = errors.New("path escapes its storage area")
)

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
// file name, never a parent reference); it is cleaned and mapped by Map.
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

// Under reports whether p equals dir or lies below it, comparing whole path
// elements (so "/data2" is not under "/data"). Both must be clean.
func Under(p, dir, sep string) bool {
	if dir == sep {
		return strings.HasPrefix(p, sep)
	}
	return p == dir || strings.HasPrefix(p, dir+sep)
}

// Map cleans stfn and maps it to the area with the longest element-wise
// prefix among prefixes (clean, absolute): it returns that prefix's index,
// the cleaned name and the name relative to the area root, in the form the
// drivers take (rootfs.CleanName holds for it). ".." cannot climb out
// (cleaning happens first), and names of reserved temporaries are refused.
func Map(stfn string, prefixes []string) (int, string, string, error) {
	if !strings.HasPrefix(stfn, "/") || strings.ContainsRune(stfn, 0) {
		return -1, "", "", fmt.Errorf("%w: not an absolute path", ErrEscape)
	}
	clean := path.Clean(stfn)
	best := -1
	for i, p := range prefixes {
		if Under(clean, p, "/") && (best < 0 || len(p) > len(prefixes[best])) {
			best = i
		}
	}
	if best < 0 {
		return -1, clean, "", fmt.Errorf("%w: %s", ErrNoArea, clean)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(clean, prefixes[best]), "/")
	if rootfs.IsReserved(rel) {
		return -1, clean, "", fmt.Errorf("%w: %s: names starting with %s are reserved", ErrEscape, clean, rootfs.ReservedPrefix)
	}
	if _, err := rootfs.CleanName(rel); err != nil {
		return -1, clean, "", fmt.Errorf("%w: %s", ErrEscape, clean)
	}
	return best, clean, rel, nil
}
