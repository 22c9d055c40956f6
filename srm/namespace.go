package srm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/dynamo-go/dynamo/internal/gridauth"
	"github.com/dynamo-go/dynamo/srm/fs"
)

// Namespace errors; Resolve wraps them with the offending path.
var (
	ErrNoArea = errors.New("no storage area serves this path")
	ErrEscape = errors.New("path escapes its storage area")
)

// Area is a configured storage area at run time.
type Area struct {
	Config AreaConfig
	// realRoot is Root with symlinks resolved: containment is checked
	// against it.
	realRoot string
	drv      fs.Driver
	// used is the bytes of regular files, measured at start and kept up to
	// date by PutDone, Rm and data-endpoint writes.
	used atomic.Int64
	// reserved is the unused part of the dynamic space reservations
	// (srmReserveSpace) in this area: not free for anyone else.
	reserved atomic.Int64
}

// Driver returns the area's filesystem driver.
func (a *Area) Driver() fs.Driver { return a.drv }

// Used returns the bytes the area holds.
func (a *Area) Used() int64 { return a.used.Load() }

// Free returns the bytes left under OnlineSizeLimit and outside space
// reservations, or -1 when unlimited.
func (a *Area) Free() int64 {
	if a.Config.OnlineSizeLimit == 0 {
		return -1
	}
	f := a.Config.OnlineSizeLimit - a.used.Load() - a.reserved.Load()
	if f < 0 {
		return 0
	}
	return f
}

// Offers reports whether the area serves TURL protocol p.
func (a *Area) Offers(p string) bool { return contains(a.Config.Protocols, p) }

// Location is a resolved SURL path.
type Location struct {
	Area *Area
	// StFN is the cleaned site file name ("/dteam/a/b").
	StFN string
	// Phys is the physical path, symlinks resolved, inside Area's root.
	Phys string
}

// Namespace maps site file names to storage areas and physical paths.
type Namespace struct {
	areas []*Area // longest prefix first
}

// NewNamespace builds the namespace; each area's root must exist.
func NewNamespace(ctx context.Context, cfgs []AreaConfig, driver func(AreaConfig) (fs.Driver, error)) (*Namespace, error) {
	ns := &Namespace{}
	for _, c := range cfgs {
		real, err := filepath.EvalSymlinks(c.Root)
		if err != nil {
			return nil, fmt.Errorf("storage area %s: root: %w", c.Name, err)
		}
		d, err := driver(c)
		if err != nil {
			return nil, fmt.Errorf("storage area %s: %w", c.Name, err)
		}
		a := &Area{Config: c, realRoot: real, drv: d}
		if sr, ok := d.(fs.SpaceReporter); ok {
			n, err := sr.Used(ctx, real)
			if err != nil {
				return nil, fmt.Errorf("storage area %s: measuring used space: %w", c.Name, err)
			}
			a.used.Store(n)
		}
		ns.areas = append(ns.areas, a)
	}
	sort.SliceStable(ns.areas, func(i, j int) bool { return len(ns.areas[i].Config.Prefix) > len(ns.areas[j].Config.Prefix) })
	return ns, nil
}

// Areas returns the storage areas, longest prefix first.
func (ns *Namespace) Areas() []*Area { return ns.areas }

// AreaByToken returns the area with the given space token, or nil.
func (ns *Namespace) AreaByToken(tok string) *Area {
	for _, a := range ns.areas {
		if a.Config.SpaceToken == tok && tok != "" {
			return a
		}
	}
	return nil
}

// under reports whether p equals dir or lies below it, comparing whole path
// elements (so "/data2" is not under "/data"). Both must be clean.
func under(p, dir, sep string) bool {
	if dir == sep {
		return strings.HasPrefix(p, sep)
	}
	return p == dir || strings.HasPrefix(p, dir+sep)
}

// Resolve maps a site file name to its area and physical path. The name is
// cleaned first (so "..", "." and "//" cannot climb out), matched to the
// area with the longest element-wise prefix, joined to the area root, and
// then every existing component is resolved through symlinks, checking
// after each that the result is still inside the root. A path whose final
// components do not exist yet (a put or mkdir target) resolves to the
// non-existing remainder below the last existing directory.
//
// A symlink swapped in between Resolve and the operation is not caught
// (TOCTOU); the SE assumes clients cannot create symlinks, which holds
// because no SRM or data-endpoint operation creates one.
func (ns *Namespace) Resolve(stfn string) (*Location, error) {
	if !strings.HasPrefix(stfn, "/") || strings.ContainsRune(stfn, 0) {
		return nil, fmt.Errorf("%w: %q is not an absolute path", ErrEscape, stfn)
	}
	clean := path.Clean(stfn)
	var area *Area
	for _, a := range ns.areas {
		if under(clean, a.Config.Prefix, "/") {
			area = a
			break
		}
	}
	if area == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoArea, clean)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(clean, area.Config.Prefix), "/")
	cur := area.realRoot
	if rel != "" {
		parts := strings.Split(rel, "/")
		for i, part := range parts {
			next := filepath.Join(cur, part)
			st, err := os.Lstat(next)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					cur = filepath.Join(append([]string{cur}, parts[i:]...)...)
					break
				}
				return nil, fmt.Errorf("resolving %s: %w", clean, err)
			}
			if st.Mode()&os.ModeSymlink != 0 {
				target, err := filepath.EvalSymlinks(next)
				if err != nil {
					// Dangling symlink: treat like an escape, never follow
					// it by creating its target.
					return nil, fmt.Errorf("%w: %s: dangling symlink", ErrEscape, clean)
				}
				next = target
			}
			if !under(next, area.realRoot, string(filepath.Separator)) {
				return nil, fmt.Errorf("%w: %s", ErrEscape, clean)
			}
			cur = next
		}
	}
	if !under(cur, area.realRoot, string(filepath.Separator)) {
		return nil, fmt.Errorf("%w: %s", ErrEscape, clean)
	}
	return &Location{Area: area, StFN: clean, Phys: cur}, nil
}

// Authorize reports whether id may perform op in area a.
func (a *Area) Authorize(id *gridauth.Identity, op string) bool {
	if id == nil {
		return false
	}
	for _, r := range a.Config.Allow {
		if r.Issuer != "" { // a token rule: never admits a certificate
			continue
		}
		if len(r.Ops) > 0 && !contains(r.Ops, op) {
			continue
		}
		if r.DN != "" && r.DN != "*" {
			if ok, _ := path.Match(r.DN, id.DN); !ok {
				continue
			}
		}
		if r.Group != "" && !contains(id.Groups(), r.Group) {
			continue
		}
		return true
	}
	return false
}
