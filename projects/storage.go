package projects

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/dynamo-go/dynamo/srm/client"
)

// CachedFile is a file in a durable site's cache area.
type CachedFile struct {
	SURL     string
	Size     int64
	LastUsed int64 // unix seconds (the SE's modification time)
	// InUse: a running project stages, holds or has delivered it.
	InUse bool
}

// Eviction reason constants.
const (
	// ReasonOverQuota: erased, least recently used first, to get the
	// cache under its quota.
	ReasonOverQuota = "over quota: least recently used"
	// ReasonKeptInUse: not erased although over quota, a project uses it.
	ReasonKeptInUse = "kept: in use by a running project"
)

// EvictionPlan is what EnforceQuota erases and why.
type EvictionPlan struct {
	Used, Quota int64
	// Erase lists the files to erase, oldest first.
	Erase []CachedFile
	// Kept lists files that would have been erased but are in use.
	Kept []CachedFile
	// After is the usage once Erase is done.
	After int64
}

// PlanEviction chooses the files of a durable cache to erase so that the
// usage falls to the quota or below: least recently used first, never a
// file in use. Pure: it only plans.
func PlanEviction(files []CachedFile, quota int64) EvictionPlan {
	p := EvictionPlan{Quota: quota}
	for _, f := range files {
		p.Used += f.Size
	}
	p.After = p.Used
	sorted := append([]CachedFile(nil), files...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].LastUsed != sorted[j].LastUsed {
			return sorted[i].LastUsed < sorted[j].LastUsed
		}
		return sorted[i].SURL < sorted[j].SURL
	})
	for _, f := range sorted {
		if p.After <= quota {
			break
		}
		if f.InUse {
			p.Kept = append(p.Kept, f)
			continue
		}
		p.Erase = append(p.Erase, f)
		p.After -= f.Size
	}
	return p
}

// MapLocation returns the destination URL of lfn placed under base (a URL
// or path) by rule, given the file's known replica URLs: base + the
// directory of the chosen replica path + the file name. "base" ignores the
// replicas; "shortest" takes the shortest replica path; "same-protocol"
// the shortest among replicas whose scheme is base's, else the shortest.
// The replica directory keeps the namespace convention across storage
// elements without the always-growing paths of appending the full source.
func MapLocation(rule LocationRule, base, lfn string, replicas []string) (string, error) {
	name := path.Base(lfn)
	if name == "." || name == "/" {
		return "", fmt.Errorf("projects: location of %q: no file name", lfn)
	}
	base = strings.TrimRight(base, "/")
	if rule == LocationBase || len(replicas) == 0 {
		return base + "/" + name, nil
	}
	scheme := ""
	if u, err := url.Parse(base); err == nil {
		scheme = u.Scheme
	}
	best, bestSame := "", ""
	for _, r := range replicas {
		p := replicaPath(r)
		if p == "" {
			continue
		}
		if best == "" || len(p) < len(best) || (len(p) == len(best) && p < best) {
			best = p
		}
		if u, err := url.Parse(r); err == nil && u.Scheme == scheme {
			if bestSame == "" || len(p) < len(bestSame) || (len(p) == len(bestSame) && p < bestSame) {
				bestSame = p
			}
		}
	}
	switch rule {
	case LocationSameProtocol:
		if bestSame != "" {
			best = bestSame
		}
	case LocationShortest:
	default:
		return "", fmt.Errorf("projects: unknown location rule %q", rule)
	}
	if best == "" {
		return base + "/" + name, nil
	}
	dir := path.Dir(best)
	if dir == "/" || dir == "." {
		return base + "/" + name, nil
	}
	return base + dir + "/" + name, nil
}

// replicaPath is the path part of a replica URL (the SFN of a full SURL).
func replicaPath(r string) string {
	u, err := url.Parse(r)
	if err != nil {
		return ""
	}
	if sfn := u.Query().Get("SFN"); sfn != "" {
		return path.Clean(sfn)
	}
	if u.Path == "" {
		return ""
	}
	return path.Clean(u.Path)
}

// maxCacheDepth bounds the directory levels EnforceQuota descends.
const maxCacheDepth = 32

// EnforceQuota keeps a durable site's cache area under its quota: it lists
// CacheRoot (srmLs), plans with PlanEviction (files a running project
// stages, holds or has delivered are in use) and erases the chosen files
// (srmRm), unregistering each (by its path under the SE). dryRun only
// plans. It returns ErrBadRequest for a site that is not durable.
func (m *Manager) EnforceQuota(ctx context.Context, site string, dryRun bool) (EvictionPlan, error) {
	sc := m.cfg.Sites[site]
	if sc == nil || sc.Kind != Durable {
		return EvictionPlan{}, fmt.Errorf("%w: site %s is not durable", ErrBadRequest, site)
	}
	if m.opt.Resolver == nil {
		return EvictionPlan{}, errors.New("projects: EnforceQuota needs Options.Resolver")
	}
	c, err := m.opt.Resolver(sc.CacheRoot)
	if err != nil {
		return EvictionPlan{}, err
	}
	ents, err := c.List(ctx, sc.CacheRoot, 0)
	if err != nil {
		return EvictionPlan{}, fmt.Errorf("projects: listing the cache of %s: %w", site, err)
	}
	inUse := map[string]bool{}
	m.mu.Lock()
	for _, p := range m.projects {
		if p.State != ProjectRunning || p.Site != site {
			continue
		}
		for _, f := range p.files {
			if f.State == FileStaging || f.State == FileReady || f.State == FileDelivered {
				inUse[replicaPath(f.SURL)] = true
			}
		}
	}
	m.mu.Unlock()
	root, _ := url.Parse(sc.CacheRoot)
	var files []CachedFile
	surlOf := func(p string) string {
		u := *root
		u.Path, u.RawQuery = p, ""
		return u.String()
	}
	var walk func(es []client.Entry, depth int) error
	walk = func(es []client.Entry, depth int) error {
		for _, e := range es {
			if !e.IsDir {
				files = append(files, CachedFile{SURL: surlOf(e.Path), Size: e.Size, LastUsed: e.ModTime.Unix(), InUse: inUse[path.Clean(e.Path)]})
				continue
			}
			if depth >= maxCacheDepth {
				return fmt.Errorf("projects: cache of %s deeper than %d levels at %s", site, maxCacheDepth, e.Path)
			}
			sub := e.Children
			if len(sub) == 0 { // the SE lists one level: descend ourselves
				if sub, err = c.List(ctx, surlOf(e.Path), 0); err != nil {
					return fmt.Errorf("projects: listing %s: %w", e.Path, err)
				}
			}
			if err := walk(sub, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(ents, 0); err != nil {
		return EvictionPlan{}, err
	}
	plan := PlanEviction(files, sc.QuotaBytes)
	if dryRun {
		return plan, nil
	}
	for _, f := range plan.Erase {
		if _, err := c.Rm(ctx, f.SURL); err != nil && !errors.Is(err, client.ErrNotFound) {
			return plan, fmt.Errorf("projects: erasing %s: %w", f.SURL, err)
		}
		m.log.WithField("site", site).WithField("surl", f.SURL).WithField("reason", ReasonOverQuota).Info("erased from durable cache")
		if m.opt.Unregister != nil {
			if err := m.opt.Unregister.Unregister(ctx, site, replicaPath(f.SURL)); err != nil {
				m.log.WithError(err).WithField("surl", f.SURL).Warn("unregistering an erased file failed")
			}
		}
	}
	return plan, nil
}

// Destination is where a copy of lfn placed at site goes: MapLocation with
// the site's location rule and location_base. It returns ErrBadRequest for
// a site without a location_base.
func (m *Manager) Destination(site, lfn string, replicas []string) (string, error) {
	sc := m.cfg.Sites[site]
	if sc == nil || sc.LocationBase == "" {
		return "", fmt.Errorf("%w: site %s has no location_base", ErrBadRequest, site)
	}
	return MapLocation(sc.Location, sc.LocationBase, lfn, replicas)
}
