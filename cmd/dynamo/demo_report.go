package main

import (
	"context"
	"fmt"
	"hash/adler32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/projects"
)

// demoReport is what the demo did, computed from the file-operation
// history, the inventory and the sites' disks, never from the demo's own
// bookkeeping.
type demoReport struct {
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
	Before, After []demoUsage
	Disk          []demoDisk
	// Tape is the nearline area's tape directory, checked like a disk.
	Tape demoDisk
}

// demoUsage is one site's occupancy in the inventory.
type demoUsage struct {
	Site  string
	Type  string
	Quota int64
	Bytes int64 // physical bytes in the Default partition
}

// demoDisk is what one site's storage root holds, checked file by file
// against the inventory's replicas there.
type demoDisk struct {
	Site          string
	Files         int64
	Bytes         int64
	Checked       int64    // files whose size and adler32 match the inventory
	Problems      []string // anything else: a file not in the inventory, missing, different
	InventoryFile int64    // files the inventory says the site holds
}

// demoOccupancy is the inventory's per-site occupancy in the Default
// partition, by site name.
func demoOccupancy(snap *inventory.Snapshot) ([]demoUsage, error) {
	part, ok := snap.PartitionByName("Default")
	if !ok {
		return nil, fmt.Errorf("demo: no Default partition")
	}
	var out []demoUsage
	for _, s := range snap.Sites() {
		u := snap.Usage(s.ID, part.ID)
		out = append(out, demoUsage{Site: s.Name, Type: fmt.Sprint(s.StorageType), Quota: u.Quota, Bytes: u.Physical})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Site < out[j].Site })
	return out, nil
}

// finishReport fills the report from the history, the inventory and the
// disks, and fails if the disks and the inventory disagree.
func (r *demoRun) finishReport(ctx context.Context) error {
	rep := r.report
	var err error
	if rep.Moved.Verified, _, err = r.checksums(ctx, fileop.OpTransfer); err != nil {
		return err
	}
	if err := r.e.db.GetContext(ctx, &rep.Moved, "SELECT COUNT(*) AS files, COALESCE(SUM(bytes), 0) AS bytes FROM "+
		fileop.TableHistory+" WHERE op = ? AND outcome = 'done'", fileop.OpTransfer); err != nil {
		return err
	}
	rows, err := fileop.Status(ctx, r.e.db)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if row.Op == fileop.OpDeletion && row.State == fileop.StateDone {
			rep.Deleted.Files += row.Count
			rep.Deleted.Bytes += row.Bytes
		}
	}
	snap := r.store.Snapshot()
	if rep.After, err = demoOccupancy(snap); err != nil {
		return err
	}
	var problems []string
	for _, site := range []string{demoDiskSite, demoTapeSite, demoFileSite} {
		d, err := auditSite(ctx, r.store, snap, site, r.l.Roots[site])
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
	tape, err := auditSite(ctx, r.store, snap, demoTapeSite, r.l.Roots[demoTapeSite]+".tape")
	if err != nil {
		return err
	}
	rep.Tape = tape
	for _, p := range tape.Problems {
		problems = append(problems, demoTapeSite+" tape: "+p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo: the disks and the inventory disagree:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// auditSite walks a site's root and checks every file against the
// replicas the inventory places there: same set of LFNs, same sizes, same
// adler32. Replicas still incomplete or pending deletion are problems at
// the end of the demo (all work should be finished).
func auditSite(ctx context.Context, store *inventory.Store, snap *inventory.Snapshot, site, root string) (demoDisk, error) {
	d := demoDisk{Site: site}
	s, ok := snap.SiteByName(site)
	if !ok {
		return d, fmt.Errorf("demo: site %s not in the inventory", site)
	}
	want := map[string]inventory.File{}
	for br := range snap.BlockReplicasAtSite(s.ID) {
		name := snap.BlockFullName(br.Block)
		if !br.Complete || br.PendingDeletion {
			d.Problems = append(d.Problems, fmt.Sprintf("replica of %s still in flight (complete %v, pending deletion %v)", name, br.Complete, br.PendingDeletion))
			continue
		}
		files, err := store.Files(ctx, br.Block)
		if err != nil {
			return d, err
		}
		for _, f := range files {
			want[f.LFN] = f
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
func (rep *demoReport) print(w io.Writer) {
	fmt.Fprintf(w, "\n== report (%.1f s)\n", rep.Seconds)
	fmt.Fprintf(w, "moved      %d files, %s; checksums verified %d/%d\n", rep.Moved.Files, humanBytes(rep.Moved.Bytes), rep.Moved.Verified, rep.Moved.Files)
	fmt.Fprintf(w, "deleted    %d files, %s (Detox cycle %d)\n", rep.Deleted.Files, humanBytes(rep.Deleted.Bytes), rep.DetoxCycle)
	fmt.Fprintf(w, "delivered  %d files, %s to one consumer, adler32 verified (project %s)\n", rep.Consumed.Files, humanBytes(rep.Consumed.Bytes), rep.Project.Name)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tTYPE\tQUOTA BEFORE\tBEFORE\tQUOTA AFTER\tAFTER\tON DISK\tFILES\tCHECKED")
	for i, a := range rep.After {
		var b demoUsage
		if i < len(rep.Before) {
			b = rep.Before[i]
		}
		var d demoDisk
		for _, x := range rep.Disk {
			if x.Site == a.Site {
				d = x
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s (%s)\t%s\t%s (%s)\t%s\t%d\t%d/%d\n", a.Site, a.Type, quotaText(b.Quota), humanBytes(b.Bytes), pct(b.Bytes, b.Quota),
			quotaText(a.Quota), humanBytes(a.Bytes), pct(a.Bytes, a.Quota), humanBytes(d.Bytes), d.Files, d.Checked, d.InventoryFile)
	}
	tw.Flush()
	fmt.Fprintf(w, "%s tape copies (migrated by its nearline area): %d files, %s, checked %d/%d\n",
		rep.Tape.Site, rep.Tape.Files, humanBytes(rep.Tape.Bytes), rep.Tape.Checked, rep.Tape.InventoryFile)
	fmt.Fprintln(w, "every file on every site's disk and tape matches the inventory (LFN, size, adler32)")
}

func quotaText(q int64) string {
	if q <= 0 {
		return "none"
	}
	return humanBytes(q)
}
