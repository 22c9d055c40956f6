package driver

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// CleanPath normalises a driver path: slash-separated, relative to the
// driver root, without leading or trailing "/". The root is "". A path that
// climbs above the root or contains a NUL byte gives ErrInvalidPath.
func CleanPath(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL byte in %q", ErrInvalidPath, p)
	}
	c := path.Clean("/" + p)
	// path.Clean("/"+p) cannot climb above "/", so compare segments to catch
	// ".." that would have escaped the root and been silently dropped.
	depth := 0
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", fmt.Errorf("%w: %q climbs above the root", ErrInvalidPath, p)
			}
		default:
			depth++
		}
	}
	return strings.TrimPrefix(c, "/"), nil
}

// JoinURLPath appends the clean relative path p to the root path of a URL.
func JoinURLPath(root, p string) string {
	if p == "" {
		return root
	}
	if strings.HasSuffix(root, "/") {
		return root + p
	}
	return root + "/" + p
}

// SplitURL splits a full file URL (a PFN such as
// "davs://se:443/store/mc/f.root") into the endpoint root URL
// ("davs://se:443/") and the path relative to it ("store/mc/f.root"), so a
// caller can open one driver per endpoint and reuse it for many files.
// XRootD URLs keep their double slash: "root://se:1094//store/f" gives
// "root://se:1094//" and "store/f".
func SplitURL(raw string) (root, rel string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrInvalidPath, err)
	}
	if u.Scheme == "" {
		return "", "", fmt.Errorf("%w: %q has no scheme", ErrInvalidPath, raw)
	}
	rel, err = CleanPath(u.Path)
	if err != nil {
		return "", "", err
	}
	r := *u
	r.Path, r.RawPath, r.RawQuery, r.Fragment = "/", "", "", ""
	if strings.EqualFold(u.Scheme, "root") || strings.EqualFold(u.Scheme, "xroot") {
		r.Path = "//"
	}
	return r.String(), rel, nil
}
