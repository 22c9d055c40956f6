package console

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

var errBadInput = errors.New("bad input")

func badInput(format string, args ...any) error {
	return errors.Join(errBadInput, fmt.Errorf(format, args...))
}

func idParam(g *gin.Context) (int64, error) {
	id, err := strconv.ParseInt(g.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, badInput("cycle id %q: want a positive integer", g.Param("id"))
	}
	return id, nil
}

// running guards the pages of a component: where this server does not run
// it (on is false), they render a "not running" page named name instead,
// so the handlers themselves can rely on their source.
func (c *Console) running(on bool, name, title, what string) func(gin.HandlerFunc) gin.HandlerFunc {
	return func(h gin.HandlerFunc) gin.HandlerFunc {
		if on {
			return h
		}
		return func(g *gin.Context) {
			c.renderAs(g, http.StatusOK, "off", name, title, what+" is not running on this server.")
		}
	}
}

// sourceErr maps a source's error: a missing cycle is the user's 404,
// anything else ours.
func (c *Console) sourceErr(g *gin.Context, err error) {
	switch {
	case errors.Is(err, detox.ErrNoCycle), errors.Is(err, dealer.ErrNotFound):
		c.fail(g, http.StatusNotFound, err)
	case errors.Is(err, errBadInput):
		c.fail(g, http.StatusBadRequest, err)
	default:
		c.fail(g, http.StatusInternalServerError, err)
	}
}

func (c *Console) detoxCycles(g *gin.Context) {
	ctx := g.Request.Context()
	data := struct {
		Cycles    []detox.CycleRow
		Dataset   string
		Decisions []detox.CycleReplicaRow
	}{Dataset: strings.TrimSpace(g.Query("dataset"))}
	var err error
	if data.Cycles, err = c.src.Detox.Cycles(ctx, g.Query("partition"), 100); err != nil {
		c.sourceErr(g, err)
		return
	}
	if data.Dataset != "" {
		if data.Decisions, err = c.src.Detox.DatasetDecisions(ctx, data.Dataset, 200); err != nil {
			c.sourceErr(g, err)
			return
		}
	}
	c.render(g, http.StatusOK, "detox", "Detox", data)
}

func (c *Console) detoxCycle(g *gin.Context) {
	id, err := idParam(g)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	ctx := g.Request.Context()
	cy, err := c.src.Detox.Cycle(ctx, id)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	sites, err := c.src.Detox.Sites(ctx, id)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	site := g.Query("site")
	decisions, err := c.src.Detox.Replicas(ctx, id, site, "", 500, 0)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	bars := make([]bar, 0, len(sites))
	for _, s := range sites {
		bars = append(bars, bar{Label: s.Site, Href: fmt.Sprintf("/detox/cycles/%d?site=%s", id, pathSegment(s.Site)),
			Value: frac(s.After, s.Quota), Projected: frac(s.Before, s.Quota), Alert: s.Triggered})
	}
	data := struct {
		Cycle     *detox.CycleRow
		Sites     []detox.CycleSiteRow
		Site      string
		Decisions []detox.CycleReplicaRow
		Chart     chart
	}{cy, sites, site, decisions, occupancyBars("Occupancy after the cycle (bar) and before it (outline)", bars)}
	c.render(g, http.StatusOK, "detox_cycle", fmt.Sprintf("Detox cycle %d", id), data)
}

func (c *Console) detoxExplain(g *gin.Context) {
	site, ds := g.Query("site"), g.Query("dataset")
	if site == "" || ds == "" {
		c.sourceErr(g, badInput("explain: give site and dataset"))
		return
	}
	ctx := g.Request.Context()
	var id int64
	if v := g.Query("cycle"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			c.sourceErr(g, badInput("cycle %q: want a positive integer", v))
			return
		}
		id = n
	} else {
		// The newest cycle that decided about this replica.
		rows, err := c.src.Detox.DatasetDecisions(ctx, ds, 200)
		if err != nil {
			c.sourceErr(g, err)
			return
		}
		for _, r := range rows {
			if r.Site == site {
				id = r.CycleID
				break
			}
		}
		if id == 0 {
			c.fail(g, http.StatusNotFound, fmt.Errorf("no Detox cycle decided about %s at %s", ds, site))
			return
		}
	}
	cy, err := c.src.Detox.Cycle(ctx, id)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	rows, err := c.src.Detox.Replicas(ctx, id, site, ds, 100, 0)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	data := struct {
		Cycle     *detox.CycleRow
		Site      string
		Dataset   string
		Decisions []detox.CycleReplicaRow
		Policy    []policyLine
	}{Cycle: cy, Site: site, Dataset: ds, Decisions: rows}
	used := map[int]bool{}
	defaults := map[string]bool{} // decisions taken by the bare default line (recorded as line 0)
	for _, r := range rows {
		used[r.Line] = true
		if r.Line == 0 {
			defaults[strings.ToLower(r.Action)] = true
		}
	}
	for i, l := range strings.Split(cy.PolicyText, "\n") {
		hit := used[i+1] || defaults[strings.ToLower(strings.TrimSpace(l))]
		data.Policy = append(data.Policy, policyLine{N: i + 1, Text: l, Hit: hit})
	}
	c.render(g, http.StatusOK, "detox_explain", "Why "+ds+" at "+site, data)
}

type policyLine struct {
	N    int
	Text string
	Hit  bool
}

func (c *Console) dealerCycles(g *gin.Context) {
	cs, err := c.src.Dealer.Cycles(g.Request.Context(), 100, 0)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	c.render(g, http.StatusOK, "dealer", "Dealer", struct {
		Cycles []dealer.CycleRecord
	}{cs})
}

func (c *Console) dealerCycle(g *gin.Context) {
	id, err := idParam(g)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	ctx := g.Request.Context()
	cy, err := c.src.Dealer.Cycle(ctx, id)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	props, err := c.src.Dealer.Proposals(ctx, id, dealer.ProposalFilter{Limit: 5000})
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	data := struct {
		Cycle                dealer.CycleRecord
		Placements, Rejected []dealer.ProposalRecord
		Reasons              []kvCount
	}{Cycle: cy}
	reasons := map[string]int{}
	for _, p := range props {
		if p.Accepted {
			data.Placements = append(data.Placements, p)
		} else {
			data.Rejected = append(data.Rejected, p)
			reasons[p.Reason]++
		}
	}
	data.Reasons = sortedCounts(reasons)
	c.render(g, http.StatusOK, "dealer_cycle", fmt.Sprintf("Dealer cycle %d", id), data)
}

type kvCount struct {
	Key string
	N   int
}

func sortedCounts(m map[string]int) []kvCount {
	out := make([]kvCount, 0, len(m))
	for k, n := range m {
		out = append(out, kvCount{k, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N > out[j].N || (out[i].N == out[j].N && out[i].Key < out[j].Key) })
	return out
}

// linkRow is the queue of one link.
type linkRow struct {
	Op, Link string
	States   map[fileop.State]int64
	Count    int64
	Bytes    int64
}

func (c *Console) siteName(id int32, names map[int32]string) string {
	if id == 0 {
		return ""
	}
	if n, ok := names[id]; ok {
		return n
	}
	return "site#" + strconv.Itoa(int(id))
}

func (c *Console) transfers(g *gin.Context) {
	ctx := g.Request.Context()
	snap := c.src.Inventory.Snapshot()
	names := map[int32]string{}
	for _, s := range snap.Sites() {
		names[int32(s.ID)] = s.Name
	}
	queue, err := c.src.Transfers.Queue(ctx)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	held, err := c.src.Transfers.Held(ctx, 500)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	window := 6 * time.Hour
	tp, err := c.src.Transfers.Throughput(ctx, c.now().Add(-window), 5*time.Minute)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	links := map[string]*linkRow{}
	var order []string
	for _, q := range queue {
		link := c.siteName(q.Source, names) + " → " + c.siteName(q.Site, names)
		if q.Op == fileop.OpDeletion {
			link = "at " + c.siteName(q.Site, names)
		} else if q.Source == 0 {
			link = "(source not chosen) → " + c.siteName(q.Site, names)
		}
		k := string(q.Op) + " " + link
		l := links[k]
		if l == nil {
			l = &linkRow{Op: string(q.Op), Link: link, States: map[fileop.State]int64{}}
			links[k] = l
			order = append(order, k)
		}
		l.States[q.State] += q.Count
		l.Count += q.Count
		l.Bytes += q.Bytes
	}
	sort.Strings(order)
	type heldRow struct {
		fileop.Subscription
		SiteName, SourceName string
	}
	data := struct {
		Links      []linkRow
		Held       []heldRow
		Reasons    []kvCount
		Chart      chart
		CanRelease bool
		CanCancel  bool
		Notice     string
	}{CanRelease: c.access.Allowed(g, http.MethodPost, pathRelease), CanCancel: c.access.Allowed(g, http.MethodPost, pathCancel)}
	for _, k := range order {
		data.Links = append(data.Links, *links[k])
	}
	reasons := map[string]int{}
	for _, h := range held {
		data.Held = append(data.Held, heldRow{h, c.siteName(h.SiteID, names), c.siteName(h.SourceSite, names)})
		reasons[string(h.HoldReason)]++
	}
	data.Reasons = sortedCounts(reasons)
	bySeries := map[string]*series{}
	var keys []string
	for _, p := range tp {
		k := c.siteName(p.Source, names) + " → " + c.siteName(p.Site, names)
		s := bySeries[k]
		if s == nil {
			s = &series{Name: k}
			bySeries[k] = s
			keys = append(keys, k)
		}
		s.Points = append(s.Points, point{time.Unix(p.Start, 0), float64(p.Bytes) / 300})
	}
	sort.Strings(keys)
	var ss []series
	for _, k := range keys {
		ss = append(ss, *bySeries[k])
	}
	data.Chart = timeChart("Transfer throughput per link, last 6 hours (bytes/s, 5-minute buckets)", ss,
		func(v float64) string { return bytesize.Format(int64(v)) + "/s" }, nil)
	switch g.Query("done") {
	case "release":
		data.Notice = fmt.Sprintf("Released %s held subscription(s) for a new attempt.", digits(g.Query("n")))
	case "cancel":
		data.Notice = fmt.Sprintf("Cancelled %s subscription(s).", digits(g.Query("n")))
	}
	c.render(g, http.StatusOK, "transfers", "Transfers and deletions", data)
}

// digits keeps only a number from a query parameter echoed on the page.
func digits(s string) string {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return strconv.Itoa(n)
	}
	return "0"
}

// formIDs parses the ids form field(s): each a positive integer.
func formIDs(g *gin.Context) ([]int64, error) {
	var ids []int64
	for _, v := range g.PostFormArray("id") {
		id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || id <= 0 {
			return nil, badInput("id %q: want a positive integer", v)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// release is the console's Release and Retry button: held subscriptions
// back to new with their source failures forgotten, so every source is
// tried again. With no id it releases every held subscription of the
// given reason (the bulk button), never all reasons by accident.
func (c *Console) release(g *gin.Context) {
	ids, err := formIDs(g)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	reason := fileop.HoldReason(g.PostForm("reason"))
	if len(ids) == 0 && reason == "" {
		c.sourceErr(g, badInput("release: choose subscriptions or a hold reason"))
		return
	}
	n, err := c.src.Transfers.Release(g.Request.Context(), ids, reason)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	user, _ := registry.Caller(g)
	c.log.WithField("user", user).WithField("released", n).WithField("ids", ids).WithField("reason", reason).Info("console: released held subscriptions")
	g.Redirect(http.StatusSeeOther, "/transfers?done=release&n="+strconv.Itoa(n))
}

func (c *Console) cancel(g *gin.Context) {
	ids, err := formIDs(g)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	if len(ids) == 0 {
		c.sourceErr(g, badInput("cancel: choose subscriptions"))
		return
	}
	n, err := c.src.Transfers.Cancel(g.Request.Context(), ids)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	user, _ := registry.Caller(g)
	c.log.WithField("user", user).WithField("cancelled", n).WithField("ids", ids).Info("console: cancelled subscriptions")
	g.Redirect(http.StatusSeeOther, "/transfers?done=cancel&n="+strconv.Itoa(n))
}

func (c *Console) consistency(g *gin.Context) {
	ctx := g.Request.Context()
	sites, err := c.src.Consistency.SiteStatuses(ctx)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	runs, err := c.src.Consistency.Runs(ctx, "", 50)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	var alerts []consistency.SiteStatus
	for _, s := range sites {
		if s.LastRun != nil && s.LastRun.Status == consistency.StatusAlert {
			alerts = append(alerts, s)
		}
	}
	c.render(g, http.StatusOK, "consistency", "Consistency", struct {
		Sites  []consistency.SiteStatus
		Alerts []consistency.SiteStatus
		Runs   []consistency.RunRecord
	}{sites, alerts, runs})
}

func (c *Console) scheduler(g *gin.Context) {
	ctx := g.Request.Context()
	st, err := c.src.Scheduler.Status(ctx)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	apps, err := c.src.Scheduler.Apps(ctx)
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	runs, err := c.src.Scheduler.Runs(ctx, scheduler.RunFilter{Limit: 50})
	if err != nil {
		c.sourceErr(g, err)
		return
	}
	c.render(g, http.StatusOK, "scheduler", "Scheduler", struct {
		Status scheduler.Status
		Apps   []scheduler.AppInfo
		Runs   []scheduler.Run
	}{st, apps, runs})
}
