package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/registry"
)

// stepPlace: a user asks for copies of every dataset at the file site;
// the Dealer's cycle turns the request into new (empty) replicas and
// queued transfers.
func (r *demoRun) stepPlace(ctx context.Context) error {
	fmt.Fprintln(r.out, "\n== 1. placement: a copy request, served by the Dealer")
	var items []string
	for _, ds := range r.l.Datasets {
		items = append(items, ds.Name)
	}
	// An analysis copy at the file:// site, and the archive copy on tape.
	rs := registry.NewStore(r.e.db)
	for _, site := range []string{demoFileSite, demoTapeSite} {
		req, _, err := rs.CreateRequest(ctx, registry.NewRequest{Kind: registry.KindCopy, Items: items,
			Sites: []string{site}, Group: demoGroup, N: 1, User: "demo"}, time.Now())
		if err != nil {
			return fmt.Errorf("demo: copy request: %w", err)
		}
		r.say("copy request %d by user demo: %d datasets to %s for %s", req.ID, len(items), site, demoGroup)
	}
	dl := r.s.dealer
	if dl == nil {
		return errors.New("demo: the dealer component is not running")
	}
	plan, err := dl.Plan(ctx, r.store.Snapshot(), dealer.PlanOptions{})
	if err != nil {
		return fmt.Errorf("demo: dealer plan: %w", err)
	}
	res, err := dl.Apply(ctx, r.store, plan, dealer.ApplyOptions{})
	if err != nil {
		return fmt.Errorf("demo: dealer apply: %w", err)
	}
	for _, c := range plan.Copies {
		r.say("dealer: copy %s -> %s (%d blocks, %s, owner %s)", c.DatasetName, c.SiteName, len(c.Blocks), humanBytes(c.Bytes), c.Group)
	}
	for _, rej := range plan.Rejections() {
		r.say("dealer: rejected %+v", rej)
	}
	r.say("dealer cycle %d: %d copies, %d block replicas created, %d transfers queued, %d request updates",
		res.CycleID, res.Copies, res.Replicas, res.Transfers, res.Requests)
	if res.Copies != 2*len(items) {
		return fmt.Errorf("demo: the Dealer made %d copies of %d requested (skipped: %v)", res.Copies, 2*len(items), res.Skipped)
	}
	return nil
}

// stepTransfer waits for the file-operation daemon to move every file,
// printing progress, and checks every transfer's checksum was verified.
func (r *demoRun) stepTransfer(ctx context.Context) error {
	fmt.Fprintln(r.out, "\n== 2. transfers: the file-operation daemon copies and verifies (srm:// -> file://, srm:// -> srm:// tape area)")
	r.wake()
	return r.waitOps(ctx, fileop.OpTransfer, "transfers")
}

// stepClean: the file site's quota is cut so that it sits above Detox's
// high watermark; one Detox cycle decides per replica, with the policy
// line that decided, and the deletions go through the daemon.
func (r *demoRun) stepClean(ctx context.Context) error {
	fmt.Fprintln(r.out, "\n== 3. cleaning: a site over its high watermark, Detox down to the low watermark")
	snap := r.store.Snapshot()
	site, _ := snap.SiteByName(demoFileSite)
	part, ok := snap.PartitionByName("Default")
	if !ok {
		return errors.New("demo: no Default partition")
	}
	u := snap.Usage(site.ID, part.ID)
	quota := int64(math.Ceil(float64(u.Physical) / 0.95))
	if _, err := r.store.Write(ctx, time.Now(), func(t *inventory.Txn) error {
		return t.Add(inventory.SetQuota{Site: site.ID, Partition: part.ID, Bytes: quota})
	}); err != nil {
		return fmt.Errorf("demo: set quota: %w", err)
	}
	r.say("operator cuts %s's quota from %s to %s: occupancy %.0f%%, over the high watermark (%.0f%%); low watermark %.0f%%",
		demoFileSite, humanBytes(u.Quota), humanBytes(quota), 100*float64(u.Physical)/float64(quota), 100*demoHigh, 100*demoLow)
	r.say("policy %s:", r.l.Policy)
	text, err := os.ReadFile(r.l.Policy)
	if err != nil {
		return err
	}
	for i, line := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
		fmt.Fprintf(r.out, "          %2d  %s\n", i+1, line)
	}
	// The runner `dynamo serve` wires: registry locks, the fileop queue.
	runner := r.s.detox
	if runner == nil {
		return errors.New("demo: the detox component is not running")
	}
	res, err := runner.RunCycle(ctx, "Default", detox.RunOptions{})
	if err != nil {
		return fmt.Errorf("demo: detox cycle: %w", err)
	}
	p := res.Plan
	psnap := p.Snapshot()
	for _, d := range p.Replicas {
		ds, _ := psnap.Dataset(d.Dataset)
		s, _ := psnap.Site(d.Site)
		line := "default decision"
		if n := p.Policy.DefaultLine; d.Line == 0 && n > 0 {
			line = fmt.Sprintf("default decision, line %d %q", n, fmt.Sprint(p.Policy.Default))
		}
		if d.Line > 0 {
			line = fmt.Sprintf("line %d %q", d.Line, p.LineText(d.Line))
		}
		r.say("detox: %-7s %s at %s (%s): %s, %s", d.Decision, ds.Name, s.Name, humanBytes(d.Size), d.Reason, line)
	}
	for _, s := range p.Sites {
		r.say("detox: %s %s -> %s of %s quota (%.0f%% -> %.0f%%), %d block replicas (%d files) to delete, low watermark met: %v",
			s.Name, humanBytes(s.Before), humanBytes(s.After), humanBytes(s.Quota),
			100*float64(s.Before)/float64(s.Quota), 100*float64(s.After)/float64(s.Quota), s.DeletedReps, s.Files, s.Released)
	}
	if res.Applied == nil || len(res.Applied.Deleted) == 0 {
		return errors.New("demo: Detox deleted nothing")
	}
	r.say("detox cycle %d applied: %d block replicas (%s) pending deletion, queued for the daemon",
		res.CycleID, len(res.Applied.Deleted), humanBytes(res.Applied.Bytes))
	r.report.DetoxCycle = res.CycleID
	r.wake()
	if err := r.waitOps(ctx, fileop.OpDeletion, "deletions"); err != nil {
		return err
	}
	now := r.store.Snapshot()
	u = now.Usage(site.ID, part.ID)
	var gone []string
	for _, d := range p.Deletions {
		ds, _ := psnap.Dataset(d.Dataset)
		if _, ok := now.DatasetByName(ds.Name); ok && !hasDatasetReplica(now, d.Dataset, site.ID) && !slices.Contains(gone, ds.Name) {
			gone = append(gone, ds.Name)
		}
	}
	r.say("%s now at %.0f%% of its quota; replicas gone from it: %s", demoFileSite, 100*float64(u.Physical)/float64(u.Quota), strings.Join(gone, ", "))
	return nil
}

func hasDatasetReplica(snap *inventory.Snapshot, ds inventory.DatasetID, site inventory.SiteID) bool {
	for dr := range snap.DatasetReplicas(ds) {
		if dr.Site == site {
			return true
		}
	}
	return false
}

// stepProject: a project delivers the protected dataset at the disk SE to
// one consumer, which reads every file over its HTTPS transfer URL and
// checks it against the inventory's adler32.
func (r *demoRun) stepProject(ctx context.Context) error {
	fmt.Fprintln(r.out, "\n== 4. delivery: a project hands a dataset to a consumer process")
	if r.s.projects == nil {
		return errors.New("demo: the projects component is not running")
	}
	mgr := r.s.projects.Manager
	ds := r.l.Datasets[0]
	want := map[string]inventory.File{}
	for _, b := range ds.Blocks {
		for _, f := range b.Files {
			want[f.LFN] = f.File
		}
	}
	const name = "demo-reco"
	if _, err := mgr.Start(ctx, projects.StartRequest{Name: name, Site: demoDiskSite, Dataset: ds.Name}); err != nil {
		return fmt.Errorf("demo: start project: %w", err)
	}
	cpid, err := mgr.EstablishProcess(ctx, name, "job-1")
	if err != nil {
		return fmt.Errorf("demo: consumer: %w", err)
	}
	r.say("project %s: %s at %s (%d files), consumer job-1 (cpid %d)", name, ds.Name, demoDiskSite, len(want), cpid)
	hc, err := r.consumerClient()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(demoDeadline)
	for {
		dv, err := mgr.NextFile(ctx, name, cpid)
		if err != nil {
			return fmt.Errorf("demo: next file: %w", err)
		}
		if dv.Status == projects.NoMore {
			break
		}
		if dv.Status == projects.Wait {
			if time.Now().After(deadline) {
				return errors.New("demo: the project delivered nothing in time")
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		n, sum, err := readTURL(ctx, hc, dv.URL)
		f, known := want[dv.LFN]
		status := "consumed"
		switch {
		case err != nil:
			status = "skipped"
			r.say("job-1: %s: %v", dv.LFN, err)
		case !known || n != f.Size || sum != f.Adler32:
			status = "skipped"
			r.say("job-1: %s: read %d bytes adler32 %s, inventory says %d bytes %s", dv.LFN, n, sum, f.Size, f.Adler32)
		default:
			r.report.Consumed.Files++
			r.report.Consumed.Bytes += n
			r.say("job-1: read %s (%s, adler32 %s ok) from %s", dv.LFN, humanBytes(n), sum, hostOf(dv.URL))
		}
		if err := mgr.UpdateFileStatus(ctx, name, cpid, dv.LFN, status); err != nil {
			return fmt.Errorf("demo: report %s: %w", dv.LFN, err)
		}
	}
	if err := mgr.EndProcess(ctx, name, cpid, "completed"); err != nil {
		return fmt.Errorf("demo: end consumer: %w", err)
	}
	sum, err := mgr.End(ctx, name)
	if err != nil {
		return fmt.Errorf("demo: end project: %w", err)
	}
	r.say("project %s ended: %d files, states %v, recovery list %d files; pins released", name, sum.Files, sum.Counts, len(sum.Recovery))
	r.report.Project = sum
	if r.report.Consumed.Files != len(want) || len(sum.Recovery) > 0 {
		return fmt.Errorf("demo: the consumer got %d of %d files intact (recovery list: %v)", r.report.Consumed.Files, len(want), sum.Recovery)
	}
	return nil
}

// wake tells the file-operation daemon new work is queued.
func (r *demoRun) wake() {
	if d := r.s.fileop; d != nil {
		d.Wake()
	}
}

// waitOps prints progress of op until nothing of it is pending or in
// flight; anything held is an error with the daemon's reason.
func (r *demoRun) waitOps(ctx context.Context, op fileop.Op, what string) error {
	deadline := time.Now().Add(demoDeadline)
	last := ""
	for {
		rows, err := fileop.Status(ctx, r.e.db)
		if err != nil {
			return err
		}
		var total, done, open, held int64
		var doneBytes int64
		for _, row := range rows {
			if row.Op != op || row.State == fileop.StateCancelled {
				continue
			}
			total += row.Count
			switch row.State {
			case fileop.StateDone:
				done += row.Count
				doneBytes += row.Bytes
			case fileop.StateHeld:
				held += row.Count
			default:
				open += row.Count
			}
		}
		var ok, bad int64
		if op == fileop.OpTransfer {
			if ok, bad, err = r.checksums(ctx, op); err != nil {
				return err
			}
		}
		line := fmt.Sprintf("%s: %d/%d files, %s", what, done, total, humanBytes(doneBytes))
		if op == fileop.OpTransfer {
			line += fmt.Sprintf(", checksums ok %d", ok)
			if bad > 0 {
				line += fmt.Sprintf(", NOT verified %d", bad)
			}
		}
		if line != last {
			r.say("%s", line)
			last = line
		}
		if held > 0 {
			hs, _ := fileop.Held(ctx, r.e.db, 5)
			var why []string
			for _, h := range hs {
				why = append(why, fmt.Sprintf("%s %s: %s", h.Op, h.LFN, h.HoldReason))
			}
			return fmt.Errorf("demo: %d %s held: %s", held, what, strings.Join(why, "; "))
		}
		if open == 0 && total > 0 {
			if bad > 0 {
				return fmt.Errorf("demo: %d transfers were not checksum-verified", bad)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: %s not finished after %s (%d open); see %s", what, demoDeadline, open, r.l.LogFile)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checksums counts successful attempts of op whose checksum verdict was
// ok, and those with any other verdict.
func (r *demoRun) checksums(ctx context.Context, op fileop.Op) (ok, other int64, err error) {
	var rows []struct {
		Checksum string `db:"checksum"`
		N        int64  `db:"n"`
	}
	err = r.e.db.SelectContext(ctx, &rows, "SELECT checksum, COUNT(*) AS n FROM "+fileop.TableHistory+
		" WHERE op = ? AND outcome = 'done' GROUP BY checksum", op)
	for _, row := range rows {
		if row.Checksum == "ok" {
			ok += row.N
		} else {
			other += row.N
		}
	}
	return ok, other, err
}

// consumerClient is the consumer's HTTPS client: the demo user's
// certificate, the demo CA.
func (r *demoRun) consumerClient() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(r.l.PKI.UserCert, r.l.PKI.UserKey)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(r.l.PKI.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

// readTURL reads a transfer URL to the end, returning its size and adler32.
func readTURL(ctx context.Context, hc *http.Client, u string) (int64, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	h := adler32.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return n, "", err
	}
	return n, fmt.Sprintf("%08x", h.Sum32()), nil
}

func hostOf(u string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}
