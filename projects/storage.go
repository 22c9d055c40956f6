package projects

import (
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
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
