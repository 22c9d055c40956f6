package srm

import (
	"context"
	"fmt"
	"path"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/dynamo-go/dynamo/internal/gridauth"
	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/internal/sfn"
)

// Namespace errors; Resolve wraps them with the offending path.
var (
	ErrNoArea = sfn.ErrNoArea
	ErrEscape = sfn.ErrEscape
)

// Area is a configured storage area at run time.
type Area struct {
	Config AreaConfig
	drv    fs.Driver
	// used is the bytes of regular files, measured at start and kept up to
	// date by PutDone, Rm and data-endpoint writes.
	used atomic.Int64
	// reserved is the unused part of the dynamic space reservations
	// (srmReserveSpace) in this area: not free for anyone else.
	reserved atomic.Int64
	// pending is what uploads in progress (srmPrepareToPut until
	// srmPutDone, abort or expiry) have reserved.
	pending atomic.Int64
	// spaceMu makes check-and-claim of free space atomic (reserve,
	// srmReserveSpace); releases need no lock.
	spaceMu sync.Mutex
}

// Driver returns the area's filesystem driver.
func (a *Area) Driver() fs.Driver { return a.drv }

// Used returns the bytes the area holds.
func (a *Area) Used() int64 { return a.used.Load() }

// Pending returns the bytes reserved by uploads in progress.
func (a *Area) Pending() int64 { return a.pending.Load() }

// Free returns the bytes left under OnlineSizeLimit, outside space
// reservations and uploads in progress, or -1 when unlimited.
func (a *Area) Free() int64 {
	if a.Config.OnlineSizeLimit == 0 {
		return -1
	}
	f := a.Config.OnlineSizeLimit - a.used.Load() - a.reserved.Load() - a.pending.Load()
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
	// Name is the path relative to the area root ("a/b"; "" for the root),
	// in the form the area's driver takes (see package srm/fs): the driver
	// confines it, this package never joins it to a physical path.
	Name string
}

// Namespace maps site file names to storage areas and physical paths.
type Namespace struct {
	areas []*Area // longest prefix first
}

// NewNamespace builds the namespace; each area's root must exist.
func NewNamespace(ctx context.Context, cfgs []AreaConfig, driver func(AreaConfig) (fs.Driver, error)) (*Namespace, error) {
	ns := &Namespace{}
	for _, c := range cfgs {
		d, err := driver(c)
		if err != nil {
			return nil, fmt.Errorf("storage area %s: %w", c.Name, err)
		}
		a := &Area{Config: c, drv: d}
		if sr, ok := d.(fs.SpaceReporter); ok {
			n, err := sr.Used(ctx)
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

func under(p, dir, sep string) bool { return sfn.Under(p, dir, sep) }

// Resolve maps a site file name to its area and area-relative name. The
// name is cleaned first (so "..", "." and "//" cannot climb out) and matched
// to the area with the longest element-wise prefix. Nothing is resolved on
// disk here: the area's driver resolves the name confined below its root
// (no symbolic link followed, no mount crossed; see srm/fs). Names of the
// drivers' temporaries are refused, so clients cannot address them.
func (ns *Namespace) Resolve(stfn string) (*Location, error) {
	prefixes := make([]string, len(ns.areas))
	for i, a := range ns.areas {
		prefixes[i] = a.Config.Prefix
	}
	i, clean, rel, err := sfn.Map(stfn, prefixes)
	if err != nil {
		return nil, err
	}
	return &Location{Area: ns.areas[i], StFN: clean, Name: rel}, nil
}

// child is the location of entry base in directory loc.
func (loc *Location) child(base string) *Location {
	n := base
	if loc.Name != "" {
		n = loc.Name + "/" + base
	}
	return &Location{Area: loc.Area, StFN: path.Join(loc.StFN, base), Name: n}
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
