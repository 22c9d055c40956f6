package driver

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// NewFunc opens a driver rooted at u. It must not keep ctx beyond the call;
// it may contact the server (or not: errors may surface on first use).
type NewFunc func(ctx context.Context, u *url.URL, opts Options) (Driver, error)

// Info describes a driver implementation for Register.
type Info struct {
	// Name is a short human name ("local", "webdav", "xrootd").
	Name string
	// Schemes are the URL schemes served, lower case ("file", "davs", ...).
	Schemes []string
	// New opens a driver.
	New NewFunc
}

var (
	regMu    sync.RWMutex
	byScheme = map[string]Info{}
)

// Register makes a driver available to Open for its schemes. It is meant to
// be called from init; registering a scheme twice panics, because two drivers
// silently shadowing each other is a build mistake.
func Register(info Info) {
	if info.New == nil || len(info.Schemes) == 0 {
		panic("driver.Register: " + info.Name + " needs New and Schemes")
	}
	regMu.Lock()
	defer regMu.Unlock()
	for _, s := range info.Schemes {
		s = strings.ToLower(s)
		if old, dup := byScheme[s]; dup {
			panic(fmt.Sprintf("driver.Register: scheme %q registered by %s and %s", s, old.Name, info.Name))
		}
		byScheme[s] = info
	}
}

// Lookup returns the driver registered for scheme.
func Lookup(scheme string) (Info, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	info, ok := byScheme[strings.ToLower(scheme)]
	return info, ok
}

// Schemes lists the registered schemes, sorted.
func Schemes() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(byScheme))
	for s := range byScheme {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Open returns a driver rooted at rawURL (e.g. "file:///data",
// "davs://se.example.org:443/dav/store", "root://se:1094//data"). An unknown
// scheme gives ErrUnsupported; a malformed URL ErrInvalidPath. opts is
// defaulted (Options.ApplyDefaults) and validated before the driver sees it.
func Open(ctx context.Context, rawURL string, opts Options) (Driver, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &Error{Op: "open", URL: rawURL, Kind: ErrInvalidPath, Err: err}
	}
	if u.Scheme == "" {
		return nil, &Error{Op: "open", URL: rawURL, Kind: ErrInvalidPath, Err: fmt.Errorf("no scheme (want one of %s)", strings.Join(Schemes(), ", "))}
	}
	info, ok := Lookup(u.Scheme)
	if !ok {
		return nil, &Error{Op: "open", URL: rawURL, Kind: ErrUnsupported, Err: fmt.Errorf("no driver for scheme %q (registered: %s; import fileop/driver/all?)", u.Scheme, strings.Join(Schemes(), ", "))}
	}
	opts.ApplyDefaults()
	if err := opts.Validate(); err != nil {
		return nil, &Error{Op: "open", URL: Redact(u), Kind: ErrInvalid, Err: err}
	}
	return info.New(ctx, u, opts)
}

// Redact renders u without user info, for logs and errors.
func Redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
