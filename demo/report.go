package demo

import (
	"context"
	"fmt"
	"hash/adler32"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/registry/client"
)

// Report is what the demo did, computed from the file-operation
// history and the inventory as the REST API serves them and from the
// sites' disks, never from the demo's own bookkeeping.
type Report struct {
	Seconds float64
	// Moved: successful transfers; Verified of them had their adler32
	// checked against the inventory's.
	Moved struct {
		Files, Verified int64
		Bytes           int64
	}
	Deleted struct {
		Files, Bytes int64
	}
	// Consumed: files the project's consumer read and found intact.
	Consumed struct {
		Files int
		Bytes int64
	}
	DetoxCycle int64
	Project    projects.Summary
	// Before and After are the inventory's view of each site (Default
	// partition) before step 1 and at the end; Disk what its root holds
	// at the end.
	Before, After []Usage
	Disk          []Disk
	// Tape is the nearline area's tape directory, checked like a disk.
	Tape Disk
}

// Usage is one site's occupancy in the inventory.
type Usage struct {
	Site  string
	Type  string
	Quota int64
	Bytes int64 // physical bytes in the Default partition
}

// Disk is what one site's storage root holds, checked file by file
// against the inventory's replicas there.
type Disk struct {
	Site          string
	Files         int64
	Bytes         int64
	Checked       int64    // files whose size and adler32 match the inventory
	Problems      []string // anything else: a file not in the inventory, missing, different
	InventoryFile int64    // files the inventory says the site holds
}

// occupancy is each site's occupancy in the Default partition as the
// REST API reports it, by site name.
func (r *Run) occupancy(ctx context.Context) ([]Usage, error) {
	var sites registry.Page[registry.SiteView]
	if err := r.api.get(ctx, "/api/v1/sites", nil, &sites); err != nil {
		return nil, err
	}
	var out []Usage
	for _, s := range sites.Items {
		u := Usage{Site: s.Name, Type: s.StorageType}
		found := false
		for _, p := range s.Partitions {
			if p.Name == "Default" {
				u.Quota, u.Bytes, found = p.Quota, p.Used, true
			}
		}
		if !found {
			return nil, fmt.Errorf("demo: %s has no Default partition", s.Name)
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Site < out[j].Site })
	return out, nil
}

// siteUsage is one site's occupancy in the Default partition.
func (r *Run) siteUsage(ctx context.Context, site string) (Usage, error) {
	all, err := r.occupancy(ctx)
	if err != nil {
		return Usage{}, err
	}
	for _, u := range all {
		if u.Site == site {
			return u, nil
		}
	}
	return Usage{}, fmt.Errorf("demo: site %s not in the inventory", site)
}

// finishReport fills the report from the file-operation history, the
// inventory (both as the REST API serves them) and the disks, and fails
// if the disks and the inventory disagree.
func (r *Run) finishReport(ctx context.Context) error {
	rep := r.report
	moved, err := r.history(ctx, fileop.OpTransfer)
	if err != nil {
		return err
	}
	for _, h := range moved {
		rep.Moved.Files++
		rep.Moved.Bytes += h.Bytes
		if h.Checksum == "ok" {
			rep.Moved.Verified++
		}
	}
	var rows []fileop.StatusRow
	if err := r.api.get(ctx, "/api/v1/fileop/status", nil, &rows); err != nil {
		return err
	}
	for _, row := range rows {
		if row.Op == fileop.OpDeletion && row.State == fileop.StateDone {
			rep.Deleted.Files += row.Count
			rep.Deleted.Bytes += row.Bytes
		}
	}
	if rep.After, err = r.occupancy(ctx); err != nil {
		return err
	}
	held, err := r.replicasBySite(ctx)
	if err != nil {
		return err
	}
	var problems []string
	for _, site := range []string{DiskSite, TapeSite, FileSite} {
		d, err := auditSite(site, r.l.Roots[site], held[site])
		if err != nil {
			return err
		}
		rep.Disk = append(rep.Disk, d)
		for _, p := range d.Problems {
			problems = append(problems, site+": "+p)
		}
	}
	// The nearline area migrated every file written to it to its tape
	// directory at srmPutDone: those copies must be whole too.
	tape, err := auditSite(TapeSite, r.l.Roots[TapeSite]+".tape", held[TapeSite])
	if err != nil {
		return err
	}
	rep.Tape = tape
	for _, p := range tape.Problems {
		problems = append(problems, TapeSite+" tape: "+p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo: the disks and the inventory disagree:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// siteReplicas is what the inventory says one site holds: its files, and
// the block replicas not yet settled (incomplete or pending deletion).
type siteReplicas struct {
	files     map[string]inventory.File
	unsettled []string
}

// replicasBySite reads, through the REST API, every block replica of
// every dataset and the files of those a site holds.
func (r *Run) replicasBySite(ctx context.Context) (map[string]*siteReplicas, error) {
	out := map[string]*siteReplicas{}
	var names []string
	err := client.Stream(ctx, r.api.c, "/api/v1/datasets", url.Values{"name": {"*"}}, func(d registry.DatasetView) error {
		names = append(names, d.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("demo: datasets: %w", err)
	}
	for _, name := range names {
		var ds registry.DatasetDetail
		if err := r.api.get(ctx, "/api/v1/datasets/"+url.PathEscape(name), nil, &ds); err != nil {
			return nil, err
		}
		for _, b := range ds.Blocks {
			full := name + "#" + b.Name
			var files []inventory.File
			for _, br := range b.Replicas {
				sr := out[br.Site]
				if sr == nil {
					sr = &siteReplicas{files: map[string]inventory.File{}}
					out[br.Site] = sr
				}
				if !br.Complete || br.PendingDeletion {
					sr.unsettled = append(sr.unsettled, fmt.Sprintf("replica of %s still in flight (complete %v, pending deletion %v)", full, br.Complete, br.PendingDeletion))
					continue
				}
				if files == nil {
					var page registry.Page[inventory.File]
					if err := r.api.get(ctx, "/api/v1/blocks/"+url.PathEscape(full)+"/files", nil, &page); err != nil {
						return nil, err
					}
					files = page.Items
				}
				for _, f := range files {
					sr.files[f.LFN] = f
				}
			}
		}
	}
	return out, nil
}

// auditSite walks a site's root and checks every file against the
// replicas the inventory places there: same set of LFNs, same sizes, same
// adler32. Replicas still incomplete or pending deletion are problems at
// the end of the demo (all work should be finished).
func auditSite(site, root string, held *siteReplicas) (Disk, error) {
	d := Disk{Site: site}
	want := map[string]inventory.File{}
	if held != nil {
		d.Problems = append(d.Problems, held.unsettled...)
		for lfn, f := range held.files {
			want[lfn] = f
		}
	}
	d.InventoryFile = int64(len(want))
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		lfn := "/" + filepath.ToSlash(rel)
		size, sum, err := fileAdler32(p)
		if err != nil {
			return err
		}
		d.Files++
		d.Bytes += size
		f, ok := want[lfn]
		switch {
		case !ok:
			d.Problems = append(d.Problems, fmt.Sprintf("%s on disk, not in the inventory", lfn))
		case f.Size != size || f.Adler32 != sum:
			d.Problems = append(d.Problems, fmt.Sprintf("%s: %d bytes adler32 %s on disk, inventory %d bytes %s", lfn, size, sum, f.Size, f.Adler32))
		default:
			d.Checked++
		}
		delete(want, lfn)
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("demo: walking %s: %w", root, err)
	}
	for lfn := range want {
		d.Problems = append(d.Problems, fmt.Sprintf("%s in the inventory, missing on disk", lfn))
	}
	sort.Strings(d.Problems)
	return d, nil
}

func fileAdler32(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := adler32.New()
	n, err := io.Copy(h, f)
	return n, fmt.Sprintf("%08x", h.Sum32()), err
}

func pct(bytes, quota int64) string {
	if quota <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(bytes)/float64(quota))
}

// print writes the report.
func (rep *Report) print(w io.Writer) {
	fmt.Fprintf(w, "\n== report (%.1f s)\n", rep.Seconds)
	fmt.Fprintf(w, "moved      %d files, %s; checksums verified %d/%d\n", rep.Moved.Files, bytesize.Format(rep.Moved.Bytes), rep.Moved.Verified, rep.Moved.Files)
	fmt.Fprintf(w, "deleted    %d files, %s (Detox cycle %d)\n", rep.Deleted.Files, bytesize.Format(rep.Deleted.Bytes), rep.DetoxCycle)
	fmt.Fprintf(w, "delivered  %d files, %s to one consumer, adler32 verified (project %s)\n", rep.Consumed.Files, bytesize.Format(rep.Consumed.Bytes), rep.Project.Name)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tTYPE\tQUOTA BEFORE\tBEFORE\tQUOTA AFTER\tAFTER\tON DISK\tFILES\tCHECKED")
	for i, a := range rep.After {
		var b Usage
		if i < len(rep.Before) {
			b = rep.Before[i]
		}
		var d Disk
		for _, x := range rep.Disk {
			if x.Site == a.Site {
				d = x
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s (%s)\t%s\t%s (%s)\t%s\t%d\t%d/%d\n", a.Site, a.Type, quotaText(b.Quota), bytesize.Format(b.Bytes), pct(b.Bytes, b.Quota),
			quotaText(a.Quota), bytesize.Format(a.Bytes), pct(a.Bytes, a.Quota), bytesize.Format(d.Bytes), d.Files, d.Checked, d.InventoryFile)
	}
	tw.Flush()
	fmt.Fprintf(w, "%s tape copies (migrated by its nearline area): %d files, %s, checked %d/%d\n",
		rep.Tape.Site, rep.Tape.Files, bytesize.Format(rep.Tape.Bytes), rep.Tape.Checked, rep.Tape.InventoryFile)
	fmt.Fprintln(w, "every file on every site's disk and tape matches the inventory (LFN, size, adler32)")
}

func quotaText(q int64) string {
	if q <= 0 {
		return "none"
	}
	return bytesize.Format(q)
}
