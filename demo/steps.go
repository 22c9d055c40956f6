package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

// inject: the experiment's bookkeeping, sent to the inventory as its
// production system would, in one synchronous injection.
func (r *Run) inject(ctx context.Context) error {
	doc, err := r.l.injectJSON()
	if err != nil {
		return fmt.Errorf("demo: experiment: %w", err)
	}
	var res registry.InjectResult
	if err := r.api.post(ctx, "/api/v1/injections/sync", json.RawMessage(doc), &res); err != nil {
		return fmt.Errorf("demo: inject: %w", err)
	}
	var bytes, files int64
	var blocks int
	for _, ds := range r.l.Datasets {
		bytes += ds.size()
		blocks += len(ds.Blocks)
		for _, b := range ds.Blocks {
			files += int64(len(b.Files))
		}
	}
	r.say("injected the experiment through the REST API (%d inventory updates): %d datasets, %d blocks, %d files, %s with adler32 checksums, written at %s",
		res.Updates, len(r.l.Datasets), blocks, files, bytesize.Format(bytes), DiskSite)
	return nil
}

// runApp asks the scheduler to run a writer application now, as `dynamo
// app run` does, and waits for it: it runs on the lease holder and writes
// through the scheduler's writer.
func (r *Run) runApp(ctx context.Context, app string) (scheduler.Run, error) {
	var run scheduler.Run
	err := r.api.post(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/run", scheduler.RunNowRequest{Wait: true, By: "demo"}, &run)
	if err != nil {
		return run, fmt.Errorf("demo: run %s: %w", app, err)
	}
	if run.Status != scheduler.StatusOK {
		return run, fmt.Errorf("demo: scheduler run %d of %s ended %s: %s", run.ID, app, run.Status, run.Error)
	}
	r.say("scheduler: run %d of %s (%s, writer %v): %d inventory updates", run.ID, app, run.Status, run.Writer, run.Updates)
	return run, nil
}

// stepPlace: a user asks for copies of every dataset at the file site;
// the Dealer's cycle turns the request into new (empty) replicas and
// queued transfers.
func (r *Run) stepPlace(ctx context.Context) error {
	fmt.Fprintln(r.out, "\n== 1. placement: a copy request, served by the Dealer")
	var items []string
	for _, ds := range r.l.Datasets {
		items = append(items, ds.Name)
	}
	// An analysis copy at the file:// site, and the archive copy on tape.
	for _, site := range []string{FileSite, TapeSite} {
		var req registry.Request
		body := registry.CopyRequestBody{Items: items, Sites: []string{site}, Group: demoGroup}
		if err := r.api.post(ctx, "/api/v1/copy-requests", body, &req); err != nil {
			return fmt.Errorf("demo: copy request: %w", err)
		}
		r.say("copy request %d by %s: %d datasets to %s for %s", req.ID, req.User, len(items), site, demoGroup)
	}
	if _, err := r.runApp(ctx, "dealer"); err != nil {
		return err
	}
	var cycles struct {
		Cycles []dealer.CycleRecord `json:"cycles"`
	}
	if err := r.api.get(ctx, "/api/v1/dealer/cycles", url.Values{"limit": {"1"}}, &cycles); err != nil {
		return err
	}
	if len(cycles.Cycles) == 0 {
		return errors.New("demo: the Dealer recorded no cycle")
	}
	cy := cycles.Cycles[0]
	var props struct {
		Proposals []dealer.ProposalRecord `json:"proposals"`
	}
	if err := r.api.get(ctx, fmt.Sprintf("/api/v1/dealer/cycles/%d/proposals", cy.ID), url.Values{"limit": {"1000"}}, &props); err != nil {
		return err
	}
	copies := 0
	for _, p := range props.Proposals {
		if p.Accepted {
			copies++
			r.say("dealer: copy %s -> %s (%s, owner %s, %s)", p.Item, p.Site, bytesize.Format(p.Bytes), p.Group, p.Plugin)
		} else {
			r.say("dealer: rejected %s -> %s: %s %s", p.Item, p.Destination, p.Reason, p.Detail)
		}
	}
	r.say("dealer cycle %d (%s): %d copies, %s", cy.ID, cy.Status, cy.NumCopies, bytesize.Format(cy.Volume))
	if cy.NumCopies != 2*len(items) {
		return fmt.Errorf("demo: the Dealer made %d copies of %d requested", cy.NumCopies, 2*len(items))
	}
	return nil
}

// stepTransfer waits for the file-operation daemon to move every file,
// printing progress, and checks every transfer's checksum was verified.
func (r *Run) stepTransfer(ctx context.Context) error {
	fmt.Fprintln(r.out, "\n== 2. transfers: the file-operation daemon copies and verifies (srm:// -> file://, srm:// -> srm:// tape area)")
	return r.waitOps(ctx, fileop.OpTransfer, "transfers")
}

// stepClean: an operator cuts the file site's quota so that it sits
// above Detox's high watermark; one Detox cycle, run by the scheduler,
// decides per replica with the policy line that decided, and the
// deletions go through the daemon.
func (r *Run) stepClean(ctx context.Context) error {
	fmt.Fprintln(r.out, "\n== 3. cleaning: a site over its high watermark, Detox down to the low watermark")
	u, err := r.siteUsage(ctx, FileSite)
	if err != nil {
		return err
	}
	quota := int64(math.Ceil(float64(u.Bytes) / 0.95))
	doc := map[string]any{"sites": []map[string]any{r.l.siteDoc(FileSite, quota)}}
	if err := r.api.post(ctx, "/api/v1/injections/sync", doc, nil); err != nil {
		return fmt.Errorf("demo: set quota: %w", err)
	}
	r.say("operator cuts %s's quota from %s to %s: occupancy %.0f%%, over the high watermark (%.0f%%); low watermark %.0f%%",
		FileSite, bytesize.Format(u.Quota), bytesize.Format(quota), 100*float64(u.Bytes)/float64(quota), 100*High, 100*Low)
	r.say("policy %s:", r.l.Policy)
	text, err := os.ReadFile(r.l.Policy)
	if err != nil {
		return err
	}
	for i, line := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
		fmt.Fprintf(r.out, "          %2d  %s\n", i+1, line)
	}
	if _, err := r.runApp(ctx, "detox:Default"); err != nil {
		return err
	}
	var cycles []detox.CycleRow
	if err := r.api.get(ctx, "/api/v1/detox/cycles", url.Values{"partition": {"Default"}, "limit": {"1"}}, &cycles); err != nil {
		return err
	}
	if len(cycles) == 0 {
		return errors.New("demo: Detox recorded no cycle")
	}
	cy := cycles[0]
	base := "/api/v1/detox/cycles/" + strconv.FormatInt(cy.ID, 10)
	var decisions []detox.CycleReplicaRow
	if err := r.api.get(ctx, base+"/replicas", url.Values{"limit": {"1000"}}, &decisions); err != nil {
		return err
	}
	var deleted []string
	for _, d := range decisions {
		line := "default decision"
		if d.Line > 0 {
			line = fmt.Sprintf("line %d %q", d.Line, d.RuleText)
		}
		r.say("detox: %-7s %s at %s (%s): %s, %s", d.Decision, d.Dataset, d.Site, bytesize.Format(d.Size), d.Reason, line)
		if d.Decision == "delete" && d.Site == FileSite && !slices.Contains(deleted, d.Dataset) {
			deleted = append(deleted, d.Dataset)
		}
	}
	var sites []detox.CycleSiteRow
	if err := r.api.get(ctx, base+"/sites", nil, &sites); err != nil {
		return err
	}
	for _, s := range sites {
		r.say("detox: %s %s -> %s of %s quota (%.0f%% -> %.0f%%), %d block replicas (%d files) to delete, low watermark met: %v",
			s.Site, bytesize.Format(s.Before), bytesize.Format(s.After), bytesize.Format(s.Quota),
			100*float64(s.Before)/float64(s.Quota), 100*float64(s.After)/float64(s.Quota), s.DeletedReplicas, s.DeletedFiles, s.Released)
	}
	if cy.DeletedReplicas == 0 {
		return errors.New("demo: Detox deleted nothing")
	}
	r.say("detox cycle %d %s: %d block replicas (%s) pending deletion, queued for the daemon",
		cy.ID, cy.Status, cy.DeletedReplicas, bytesize.Format(cy.DeletedBytes))
	r.report.DetoxCycle = cy.ID
	if err := r.waitOps(ctx, fileop.OpDeletion, "deletions"); err != nil {
		return err
	}
	if u, err = r.siteUsage(ctx, FileSite); err != nil {
		return err
	}
	var gone []string
	for _, ds := range deleted {
		var reps struct {
			Items []registry.DatasetReplicaView `json:"items"`
		}
		if err := r.api.get(ctx, "/api/v1/datasets/"+url.PathEscape(ds)+"/replicas", nil, &reps); err != nil {
			return err
		}
		if !slices.ContainsFunc(reps.Items, func(v registry.DatasetReplicaView) bool { return v.Site == FileSite }) {
			gone = append(gone, ds)
		}
	}
	r.say("%s now at %.0f%% of its quota; replicas gone from it: %s", FileSite, 100*float64(u.Bytes)/float64(u.Quota), strings.Join(gone, ", "))
	return nil
}

// stepProject: a project delivers the protected dataset at the disk SE to
// one consumer, which reads every file over its HTTPS transfer URL and
// checks it against the inventory's adler32; the consumer speaks the
// projects REST API as a job would.
func (r *Run) stepProject(ctx context.Context) error {
	fmt.Fprintln(r.out, "\n== 4. delivery: a project hands a dataset to a consumer process")
	ds := r.l.Datasets[0]
	want := map[string]demoFile{}
	for _, b := range ds.Blocks {
		for _, f := range b.Files {
			want[f.LFN] = f
		}
	}
	const name = "demo-reco"
	base := "/api/v1/projects/" + name
	if err := r.api.post(ctx, "/api/v1/projects", projects.StartRequest{Name: name, Site: DiskSite, Dataset: ds.Name}, nil); err != nil {
		return fmt.Errorf("demo: start project: %w", err)
	}
	var proc struct {
		CPID int64 `json:"cpid"`
	}
	if err := r.api.post(ctx, base+"/processes", map[string]string{"name": "job-1"}, &proc); err != nil {
		return fmt.Errorf("demo: consumer: %w", err)
	}
	cpid := proc.CPID
	r.say("project %s: %s at %s (%d files), consumer job-1 (cpid %d)", name, ds.Name, DiskSite, len(want), cpid)
	hc, err := r.consumerClient()
	if err != nil {
		return err
	}
	procBase := fmt.Sprintf("%s/processes/%d", base, cpid)
	deadline := time.Now().Add(Deadline)
	for {
		dv, more, err := r.nextFile(ctx, procBase+"/next")
		if err != nil {
			return fmt.Errorf("demo: next file: %w", err)
		}
		if !more {
			break
		}
		if dv == nil {
			if time.Now().After(deadline) {
				return errors.New("demo: the project delivered nothing in time")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
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
			r.say("job-1: read %s (%s, adler32 %s ok) from %s", dv.LFN, bytesize.Format(n), sum, hostOf(dv.URL))
		}
		if err := r.api.post(ctx, procBase+"/files", map[string]string{"filename": dv.LFN, "status": status}, nil); err != nil {
			return fmt.Errorf("demo: report %s: %w", dv.LFN, err)
		}
	}
	if err := r.api.post(ctx, procBase+"/end", map[string]string{"status": "completed"}, nil); err != nil {
		return fmt.Errorf("demo: end consumer: %w", err)
	}
	var sum projects.Summary
	if err := r.api.post(ctx, base+"/end", nil, &sum); err != nil {
		return fmt.Errorf("demo: end project: %w", err)
	}
	r.say("project %s ended: %d files, states %v, recovery list %d files; pins released", name, sum.Files, sum.Counts, len(sum.Recovery))
	r.report.Project = sum
	if r.report.Consumed.Files != len(want) || len(sum.Recovery) > 0 {
		return fmt.Errorf("demo: the consumer got %d of %d files intact (recovery list: %v)", r.report.Consumed.Files, len(want), sum.Recovery)
	}
	return nil
}

// nextFile asks the project for the consumer's next file: a delivery, or
// nil while none is ready (202), or more false when there is none left
// (204).
func (r *Run) nextFile(ctx context.Context, path string) (dv *projects.Delivery, more bool, err error) {
	resp, err := r.api.c.Send(ctx, http.MethodPost, path, nil, nil)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil, false, nil
	case http.StatusAccepted:
		return nil, true, nil
	}
	// Without Accept: application/json the route answers "URL\nLFN\n",
	// as samweb's getNextFile does.
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, false, err
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(lines) != 2 {
		return nil, false, fmt.Errorf("unexpected answer %q", body)
	}
	return &projects.Delivery{URL: lines[0], LFN: lines[1]}, true, nil
}

// opCounts sums the file-operation queue's rows of one op.
type opCounts struct {
	total, done, open, held, doneBytes int64
}

// waitOps prints progress of op until nothing of it is pending or in
// flight; anything held is an error with the daemon's reason.
func (r *Run) waitOps(ctx context.Context, op fileop.Op, what string) error {
	deadline := time.Now().Add(Deadline)
	last := ""
	for {
		c, err := r.opCounts(ctx, op)
		if err != nil {
			return err
		}
		var ok, bad int64
		if op == fileop.OpTransfer {
			if ok, bad, err = r.checksums(ctx, op); err != nil {
				return err
			}
		}
		line := fmt.Sprintf("%s: %d/%d files, %s", what, c.done, c.total, bytesize.Format(c.doneBytes))
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
		if c.held > 0 {
			var hs []fileop.Subscription
			_ = r.api.get(ctx, "/api/v1/fileop/held", url.Values{"limit": {"5"}}, &hs)
			var why []string
			for _, h := range hs {
				why = append(why, fmt.Sprintf("%s %s: %s", h.Op, h.LFN, h.HoldReason))
			}
			return fmt.Errorf("demo: %d %s held: %s", c.held, what, strings.Join(why, "; "))
		}
		if c.open == 0 && c.total > 0 {
			if bad > 0 {
				return fmt.Errorf("demo: %d transfers were not checksum-verified", bad)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: %s not finished after %s (%d open); see %s", what, Deadline, c.open, r.l.LogFile)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *Run) opCounts(ctx context.Context, op fileop.Op) (opCounts, error) {
	var rows []fileop.StatusRow
	if err := r.api.get(ctx, "/api/v1/fileop/status", nil, &rows); err != nil {
		return opCounts{}, err
	}
	var c opCounts
	for _, row := range rows {
		if row.Op != op || row.State == fileop.StateCancelled {
			continue
		}
		c.total += row.Count
		switch row.State {
		case fileop.StateDone:
			c.done += row.Count
			c.doneBytes += row.Bytes
		case fileop.StateHeld:
			c.held += row.Count
		default:
			c.open += row.Count
		}
	}
	return c, nil
}

// history is every recorded successful attempt of op.
func (r *Run) history(ctx context.Context, op fileop.Op) ([]fileop.HistoryEntry, error) {
	var rows []fileop.HistoryEntry
	if err := r.api.get(ctx, "/api/v1/fileop/history", url.Values{"limit": {"100000"}}, &rows); err != nil {
		return nil, err
	}
	var out []fileop.HistoryEntry
	for _, h := range rows {
		if h.Op == op && h.Outcome == "done" {
			out = append(out, h)
		}
	}
	return out, nil
}

// checksums counts successful attempts of op whose checksum verdict was
// ok, and those with any other verdict.
func (r *Run) checksums(ctx context.Context, op fileop.Op) (ok, other int64, err error) {
	rows, err := r.history(ctx, op)
	for _, h := range rows {
		if h.Checksum == "ok" {
			ok++
		} else {
			other++
		}
	}
	return ok, other, err
}

// consumerClient is the consumer's HTTPS client: the demo user's
// certificate, the demo CA.
func (r *Run) consumerClient() (*http.Client, error) {
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
