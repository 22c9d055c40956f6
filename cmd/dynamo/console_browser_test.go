package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/demo"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/inventory"
)

// findChromium returns Debian's chromium (scripts/install-test-deps.sh
// installs it). Without it the test skips, except under CI=true.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (scripts/install-test-deps.sh installs it); CI=true needs it")
	}
	t.Skip("chromium is not installed; run scripts/install-test-deps.sh")
	return ""
}

// artefactDir is where screenshots go: $DYNAMO_TEST_ARTIFACTS/console when
// set (CI keeps it), else the test's temporary directory.
func artefactDir(t *testing.T) string {
	if d := os.Getenv("DYNAMO_TEST_ARTIFACTS"); d != "" {
		dir := filepath.Join(d, "console")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	return t.TempDir()
}

// browser is a headless Chromium driven over the DevTools protocol.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
}

func newBrowser(t *testing.T, chrome, base string) *browser {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	// Bound every step; a hung page fails the test instead of the run.
	ctx, cancelC := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancelC)
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return &browser{t: t, ctx: ctx, base: base, dir: artefactDir(t)}
}

// open loads path and returns the text of the element matching sel once
// it is visible.
func (b *browser) open(path, sel string) string {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(sel))), "open %s", path)
	return b.text(sel)
}

func (b *browser) html(sel string) string {
	b.t.Helper()
	h, err := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS(sel)))
	require.NoError(b.t, err, "html of %s", sel)
	return h
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(sel))), "wait for %s", sel)
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err, "text of %s", sel)
	return s
}

// waitText polls until the element matching sel contains want (a click
// that submits a form returns before the next page is there).
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
		if err == nil && strings.Contains(s, want) {
			return
		}
		require.True(b.t, time.Now().Before(deadline), "%s never contained %q (last %q, %v)", sel, want, s, err)
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	p := filepath.Join(b.dir, name+".png")
	require.NoError(b.t, os.WriteFile(p, png, 0o644))
	b.t.Logf("screenshot %s", p)
}

// The console on the demo federation, in a real browser: every site with
// its occupancy and watermarks, the Detox decision that deleted the
// Cosmics replica at the file:// site, the transfers, charts, and an
// operator's release and cancel round-tripping through the page with its
// CSRF token.
func TestConsoleInBrowser(t *testing.T) {
	chrome := findChromium(t)
	api := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t))
	base := "http://" + api
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A seed whose Cosmics dataset is the largest one Detox may delete, so
	// the cycle deletes its replica (the demo draws the same experiment).
	var seed uint64
	for seed = 1; ; seed++ {
		if sizes := demo.ExperimentSizes(seed); sizes[2] > sizes[1] {
			break
		}
	}
	kept := make(chan *demo.Run, 1)
	var srv *server // set before the demo's steps start, read after kept
	done := make(chan error, 1)
	var out lockedBuffer
	go func() {
		_, err := runDemo(ctx, demo.Options{Dir: filepath.Join(t.TempDir(), "d"), Keep: true, Listen: api, Out: &out, Seed: seed,
			Kept: func(r *demo.Run) { kept <- r }}, func(s *server) { srv = s })
		done <- err
	}()
	var r *demo.Run
	select {
	case r = <-kept:
	case err := <-done:
		t.Fatalf("demo ended: %v\n%s", err, out.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("demo did not finish:\n%s", out.String())
	}
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("the kept demo did not stop")
		}
	}()
	require.Contains(t, out.String(), "Operator console: "+base+"/")
	b := newBrowser(t, chrome, base)

	// Federation: each site with its occupancy; the Detox site with its
	// watermarks in the table and as ticks on the chart.
	b.open("/", "#sites")
	snap := srv.store.Snapshot()
	for _, s := range []string{demo.DiskSite, demo.TapeSite, demo.FileSite} {
		site, ok := snap.SiteByName(s)
		require.True(t, ok)
		var quota, used int64
		for _, p := range snap.Partitions() {
			if len(p.Subs) == 0 {
				u := snap.Usage(site.ID, p.ID)
				quota, used = quota+u.Quota, used+u.Physical
			}
		}
		row := b.text(`tr[data-site="` + s + `"]`)
		require.Contains(t, row, fmt.Sprintf("%.1f%%", 100*float64(used)/float64(quota)), "occupancy of %s", s)
		require.Contains(t, row, bytesize.Format(quota), "quota of %s", s)
	}
	wm := b.text(`tr[data-site="` + demo.FileSite + `"] td.watermarks`)
	require.Contains(t, wm, fmt.Sprintf("%.0f%% / %.0f%%", demo.High*100, demo.Low*100))
	chart := b.html("figure svg.chart")
	require.Contains(t, chart, `class="wm high"`)
	require.Contains(t, chart, `class="wm low"`)
	require.Contains(t, chart, demo.FileSite)
	b.shot("federation")

	// Detox: the decision that deleted the Cosmics replica, with its line.
	cosmics := r.Datasets()[2]
	require.Contains(t, cosmics, "Cosmics")
	search := b.open("/detox?dataset="+url.QueryEscape(cosmics), "#search")
	require.Contains(t, search, demo.FileSite)
	require.Contains(t, search, "delete")
	require.Contains(t, search, "Dismiss")
	require.NoError(t, chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`#search a[href^="/detox/explain"]`)),
		chromedp.WaitVisible(chromedp.CSS("#explain"))))
	require.Contains(t, b.text("h1"), cosmics)
	require.Contains(t, b.text("#explain"), "site over its trigger")
	require.Contains(t, b.html("pre.policy"), `class="hit"`)
	b.shot("detox-explain")

	// The site page: the occupancy-over-time chart from the cycle history.
	b.open("/sites/"+demo.FileSite, "#partitions")
	require.Contains(t, b.html("figure svg.chart"), "<polyline")
	b.shot("site")

	// Requests: the demo's copy request, complete at its destination.
	reqs := b.open("/requests", "table.requests")
	require.Contains(t, reqs, r.Datasets()[0])
	require.Contains(t, reqs, "100.0%")
	for _, p := range []string{"/dealer", "/scheduler", "/consistency"} {
		require.NotEmpty(t, b.open(p, "h1"))
	}
	require.Contains(t, b.open("/dealer/cycles/1", "#placements"), demo.FileSite)
	require.Contains(t, b.open("/scheduler", "#lease"), "Writer lease")

	// Transfers: the demo's throughput chart, and two transfers that can
	// never succeed (their files exist nowhere), held by the daemon.
	ids := queueHopeless(t, srv, r.Datasets(), 2)
	var tr string
	for deadline := time.Now().Add(60 * time.Second); ; {
		tr = b.open("/transfers", "#held")
		if strings.Contains(tr, fmt.Sprint(ids[0])) && strings.Contains(tr, fmt.Sprint(ids[1])) {
			break
		}
		require.True(t, time.Now().Before(deadline), "transfers not held in time:\n%s", tr)
		time.Sleep(200 * time.Millisecond)
	}
	require.Contains(t, b.html("figure svg.chart"), "<polyline", "throughput chart")
	require.Contains(t, b.text("#links"), "transfer")
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#held button").length`))
	require.NoError(t, err)
	require.Zero(t, n, "anonymous users get no action buttons")
	b.shot("transfers-anonymous")

	// Sign in as the demo's operator; the actions appear and work.
	tok, err := os.ReadFile(r.OperatorToken())
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(b.ctx, chromedp.Navigate(base+"/login?next=/transfers"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), strings.TrimSpace(string(tok))), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#held"))))
	require.Equal(t, "demo-operator", b.text("#user"))
	require.NoError(t, chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-id="%d"] button.release`, ids[0])))))
	b.waitText("#notice", "Released 1 held")
	sub, err := fileop.Get(ctx, srv.env.db, ids[0])
	require.NoError(t, err)
	require.True(t, sub.Message == "released" || sub.Tries > 0 || sub.State != fileop.StateHeld, "released: %+v", sub)
	require.NoError(t, chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-id="%d"] button.cancel`, ids[1])))))
	b.waitText("#notice", "Cancelled 1")
	sub, err = fileop.Get(ctx, srv.env.db, ids[1])
	require.NoError(t, err)
	require.Equal(t, fileop.StateCancelled, sub.State)
	b.shot("transfers-operator")

	// The same action without the page's CSRF token is refused, even with
	// the operator's session cookie.
	form := url.Values{"id": {fmt.Sprint(ids[0])}}
	req, err := http.NewRequest(http.MethodPost, base+"/transfers/cancel", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "dynamo_session", Value: strings.TrimSpace(string(tok))})
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	sub, err = fileop.Get(ctx, srv.env.db, ids[0])
	require.NoError(t, err)
	require.NotEqual(t, fileop.StateCancelled, sub.State)

	// The numbers behind the pages, for alerting.
	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{
		`dynamo_site_used_bytes{partition="Default",site="` + demo.FileSite + `"}`,
		`dynamo_detox_watermark{level="high",partition="Default",site="` + demo.FileSite + `"} 0.9`,
		`dynamo_detox_cycles_total{partition="Default",status="applied"} 1`,
		`dynamo_dealer_cycles_total{partition="Default",status="applied"}`,
		`dynamo_detox_decisions_total{decision="delete",partition="Default"}`,
	} {
		require.True(t, strings.Contains(string(metrics), m), "/metrics has %s", m)
	}
	// The Grafana dashboard asks only for documented series, and the demo
	// serves those of the sites, Detox and the Dealer.
	dash, err := os.ReadFile("../../docs/grafana/dynamo.json")
	require.NoError(t, err)
	doc, err := os.ReadFile("../../docs/metrics.md")
	require.NoError(t, err)
	for _, name := range regexp.MustCompile(`dynamo_[a-z_]+`).FindAllString(string(dash), -1) {
		name = strings.TrimSuffix(name, "_bucket")
		require.Contains(t, string(doc), name, "dashboard series %s is documented", name)
		// (fileop's gauges appear at its first 15-second refresh.)
		if regexp.MustCompile(`^dynamo_(site|detox|dealer)_`).MatchString(name) {
			require.True(t, strings.Contains(string(metrics), name), "the demo serves %s", name)
		}
	}
}

// queueHopeless queues n transfers to the file:// site of files that no
// site holds, through fileop's queue API (as the consistency checker
// does), and returns their subscription ids. Every source fails, so the
// daemon holds them.
func queueHopeless(t *testing.T, srv *server, datasets []string, n int) []int64 {
	t.Helper()
	snap := srv.store.Snapshot()
	ds, ok := snap.DatasetByName(datasets[1])
	require.True(t, ok)
	var blk inventory.Block
	for b := range snap.Blocks(ds.ID) {
		blk = b
		break
	}
	dst, ok := snap.SiteByName(demo.FileSite)
	require.True(t, ok)
	var reqs []fileop.Request
	for i := range n {
		lfn := fmt.Sprintf("/store/demo/never-written/%d.root", i)
		reqs = append(reqs, fileop.Request{Op: fileop.OpTransfer, Site: dst.ID,
			File: inventory.File{ID: inventory.FileID(1<<40 + i), Block: blk.ID, LFN: lfn, Size: 1000}})
	}
	res, err := fileop.EnqueueTx(context.Background(), srv.env.db, time.Now(), reqs)
	require.NoError(t, err)
	require.Equal(t, n, res.Added)
	var ids []int64
	require.NoError(t, srv.env.db.Select(&ids, "SELECT id FROM "+fileop.TableSubscriptions+" WHERE lfn LIKE '/store/demo/never-written/%' ORDER BY id"))
	require.Len(t, ids, n)
	return ids
}
