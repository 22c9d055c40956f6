package registry

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/inventory"
)

// Dynamo's detox/{partitions,cycles,summary,sitedetail} and the transfer
// and deletion histories, read from Detox's cycle history and fileop's
// attempt history in the registry's database.

// detoxCycleParams resolves partition (a name; default: the only one,
// else required) and cycle (an id; 0, absent or latest=y: the newest).
func (s *Server) detoxCycle(c *gin.Context, p compatParams) (*detox.CycleRow, error) {
	h := detox.NewHistory(s.store.d)
	ctx := c.Request.Context()
	part := p.one("partition")
	if v := p.one("cycle"); v != "" && v != "0" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 0 {
			return nil, fieldErr("cycle", "%q: want a cycle id", v)
		}
		cy, err := h.Cycle(ctx, id)
		if errors.Is(err, detox.ErrNoCycle) {
			return nil, fmt.Errorf("%w: detox cycle %d", ErrNotFound, id)
		}
		if err == nil && part != "" && cy.Partition != part {
			return nil, fmt.Errorf("%w: detox cycle %d is of partition %q, not %q", ErrNotFound, id, cy.Partition, part)
		}
		return cy, err
	}
	if part == "" {
		parts, err := h.CyclePartitions(ctx)
		if err != nil {
			return nil, err
		}
		if len(parts) != 1 {
			return nil, fieldErr("partition", "missing; cycles were recorded for %d partitions (%s)", len(parts), strings.Join(parts, ", "))
		}
		part = parts[0]
	}
	cy, err := h.Latest(ctx, part)
	if errors.Is(err, detox.ErrNoCycle) {
		return nil, fmt.Errorf("%w: no detox cycle recorded for partition %q", ErrNotFound, part)
	}
	return cy, err
}

func dynamoCycle(cy detox.CycleRow) map[string]any {
	return map[string]any{"cycle": cy.ID, "partition": cy.Partition, "policy_version": cy.PolicyFile, "comment": cy.Message,
		"timestamp": cy.Started, "finished": cy.Finished, "status": cy.Status, "dry_run": cy.DryRun,
		"deleted_bytes": cy.DeletedBytes, "deleted_replicas": cy.DeletedReplicas}
}

func (s *Server) compatDetoxPartitions(c *gin.Context) {
	if _, err := readCompatParams(c); err != nil {
		s.abort(c, err)
		return
	}
	parts, err := detox.NewHistory(s.store.d).CyclePartitions(c.Request.Context())
	if err != nil {
		s.abort(c, err)
		return
	}
	out := make([]map[string]any, 0, len(parts))
	for _, name := range parts {
		out = append(out, map[string]any{"name": name})
	}
	ok(c, "", out)
}

// compatDetoxCycles lists a partition's cycles (newest first, at most
// limit), or with cycle or latest one of them.
func (s *Server) compatDetoxCycles(c *gin.Context) {
	p, err := readCompatParams(c, "partition", "cycle", "latest", "limit")
	if err != nil {
		s.abort(c, err)
		return
	}
	latest := false
	if v := p.one("latest"); v != "" {
		if latest, err = yesno(v); err != nil {
			s.abort(c, fieldErr("latest", "%v", err))
			return
		}
	}
	if latest || p.one("cycle") != "" {
		cy, err := s.detoxCycle(c, p)
		if err != nil {
			s.abort(c, err)
			return
		}
		ok(c, "", []map[string]any{dynamoCycle(*cy)})
		return
	}
	limit, err := compatLimit(p, 100)
	if err != nil {
		s.abort(c, err)
		return
	}
	cs, err := detox.NewHistory(s.store.d).Cycles(c.Request.Context(), p.one("partition"), limit)
	if err != nil {
		s.abort(c, err)
		return
	}
	out := make([]map[string]any, 0, len(cs))
	for _, cy := range cs {
		out = append(out, dynamoCycle(cy))
	}
	ok(c, "", out)
}

func compatLimit(p compatParams, def int) (int, error) {
	v := p.one("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 1000 {
		return 0, fieldErr("limit", "%q: want 1..1000", v)
	}
	return n, nil
}

// compatDetoxSummary is Dynamo's cycle summary: per target site the quota
// and what the cycle protected, kept and deleted (TB), with the previous
// cycle's protected and kept volumes; the first row is the total. Our
// fields (bytes, replica counts, before/after occupancy) come with it.
func (s *Server) compatDetoxSummary(c *gin.Context) {
	p, err := readCompatParams(c, "partition", "cycle", "latest")
	if err != nil {
		s.abort(c, err)
		return
	}
	cy, err := s.detoxCycle(c, p)
	if err != nil {
		s.abort(c, err)
		return
	}
	ctx := c.Request.Context()
	h := detox.NewHistory(s.store.d)
	prev, next, err := h.Neighbours(ctx, cy.Partition, cy.ID)
	if err != nil {
		s.abort(c, err)
		return
	}
	sites, err := h.Sites(ctx, cy.ID)
	if err != nil {
		s.abort(c, err)
		return
	}
	totals := func(id int64) (map[string]map[string]detox.DecisionBytes, error) {
		out := map[string]map[string]detox.DecisionBytes{}
		if id == 0 {
			return out, nil
		}
		rows, err := h.DecisionTotals(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if out[r.Site] == nil {
				out[r.Site] = map[string]detox.DecisionBytes{}
			}
			out[r.Site][r.Decision] = r
		}
		return out, nil
	}
	cur, err := totals(cy.ID)
	if err != nil {
		s.abort(c, err)
		return
	}
	before, err := totals(prev)
	if err != nil {
		s.abort(c, err)
		return
	}
	snap, _ := s.snapshot() // for site status only: history outlives the inventory
	keys := []string{"quota", "protect", "keep", "delete", "protect_prev", "keep_prev"}
	total := map[string]any{"name": "Total"}
	sums := map[string]float64{}
	var totalBytes [3]int64
	rows := []map[string]any{}
	for _, st := range sites {
		status := 1
		if snap != nil {
			// Dynamo's status bit: 0 for sites in the morgue or waiting room.
			if site, found := snap.SiteByName(st.Site); found && (site.Status.String() == "morgue" || site.Status.String() == "waitroom") {
				status = 0
			}
		}
		row := map[string]any{"name": st.Site, "status": status,
			"quota":   float64(st.Quota) / tb,
			"protect": float64(cur[st.Site]["protect"].Bytes) / tb, "keep": float64(cur[st.Site]["keep"].Bytes) / tb,
			"delete": float64(cur[st.Site]["delete"].Bytes) / tb, "protect_prev": float64(before[st.Site]["protect"].Bytes) / tb,
			"keep_prev":       float64(before[st.Site]["keep"].Bytes) / tb,
			"protect_bytes":   cur[st.Site]["protect"].Bytes,
			"keep_bytes":      cur[st.Site]["keep"].Bytes,
			"delete_bytes":    cur[st.Site]["delete"].Bytes,
			"delete_replicas": cur[st.Site]["delete"].Replicas,
			"before_bytes":    st.Before, "after_bytes": st.After, "triggered": st.Triggered,
		}
		for _, k := range keys {
			sums[k] += row[k].(float64)
		}
		totalBytes[0] += cur[st.Site]["protect"].Bytes
		totalBytes[1] += cur[st.Site]["keep"].Bytes
		totalBytes[2] += cur[st.Site]["delete"].Bytes
		rows = append(rows, row)
	}
	for _, k := range keys {
		total[k] = sums[k]
	}
	total["protect_bytes"], total["keep_bytes"], total["delete_bytes"] = totalBytes[0], totalBytes[1], totalBytes[2]
	ok(c, "", map[string]any{"operation": "deletion", "cycle": cy.ID, "cycle_policy": cy.PolicyFile, "comment": cy.Message,
		"cycle_timestamp": cy.Started, "partition": cy.Partition, "status": cy.Status, "dry_run": cy.DryRun,
		"previous_cycle": prev, "next_cycle": next, "site_data": append([]map[string]any{total}, rows...)})
}

// compatDetoxSiteDetail is Dynamo's per-site decision list of a cycle:
// each dataset replica with its size (GB), decision and deciding line
// (condition_id), and the text of every line used.
func (s *Server) compatDetoxSiteDetail(c *gin.Context) {
	p, err := readCompatParams(c, "partition", "cycle", "latest", "site")
	if err != nil {
		s.abort(c, err)
		return
	}
	site := p.one("site")
	if site == "" {
		s.abort(c, fieldErr("site", "missing"))
		return
	}
	cy, err := s.detoxCycle(c, p)
	if err != nil {
		s.abort(c, err)
		return
	}
	h := detox.NewHistory(s.store.d)
	var rows []detox.CycleReplicaRow
	for off := 0; ; off += 1000 {
		page, err := h.Replicas(c.Request.Context(), cy.ID, site, "", 1000, off)
		if err != nil {
			s.abort(c, err)
			return
		}
		rows = append(rows, page...)
		if len(page) < 1000 {
			break
		}
	}
	// Dynamo marks a dataset with several decisions at the site
	// (block-level actions) with " *".
	count := map[string]int{}
	for _, r := range rows {
		count[r.Dataset]++
	}
	datasets := make([]map[string]any, 0, len(rows))
	conditions := map[string]string{}
	for _, r := range rows {
		d := r.Decision
		if count[r.Dataset] > 1 {
			d += " *"
		}
		m := map[string]any{"name": r.Dataset, "size": float64(r.Size) / 1e9, "decision": d, "condition_id": r.Line,
			"reason": r.Reason, "size_bytes": r.Size}
		if r.Blocks != "" {
			m["blocks"] = r.Blocks
		}
		datasets = append(datasets, m)
		conditions[strconv.Itoa(r.Line)] = r.RuleText
	}
	ok(c, "", map[string]any{"cycle": cy.ID, "partition": cy.Partition,
		"content": map[string]any{"name": site, "datasets": datasets}, "conditions": conditions})
}

// historyParams are the filters of transfers/history and deletions/history.
var historyParams = []string{"site", "dataset", "since", "until", "outcome", "before", "limit"}

// compatFileHistory lists fileop's recorded attempts of op, newest first,
// filtered by site (globs; transfers also source and destination),
// dataset, time and outcome, paged with before (data.next).
func (s *Server) compatFileHistory(op fileop.Op) gin.HandlerFunc {
	return func(c *gin.Context) {
		allowed := historyParams
		if op == fileop.OpTransfer {
			allowed = append(slices.Clone(historyParams), "source", "destination")
		}
		p, err := readCompatParams(c, allowed...)
		if err != nil {
			s.abort(c, err)
			return
		}
		snap, err := s.snapshot()
		if err != nil {
			s.abort(c, err)
			return
		}
		q := fileop.HistoryQuery{Op: op}
		sitesOf := func(field string) ([]int32, error) {
			var ids []int32
			for _, g := range p.list(field) {
				pat, err := glob.Compile(g)
				if err != nil {
					return nil, fieldErr(field, "%v", err)
				}
				for _, st := range snap.Sites() {
					if pat.Match(st.Name) {
						ids = append(ids, int32(st.ID))
					}
				}
			}
			if len(p.list(field)) > 0 && len(ids) == 0 {
				return nil, fieldErr(field, "%q matches no site", strings.Join(p.list(field), ","))
			}
			return ids, nil
		}
		for _, f := range []struct {
			name string
			dst  *[]int32
		}{{"site", &q.Sites}, {"source", &q.Sources}, {"destination", &q.Destinations}} {
			if *f.dst, err = sitesOf(f.name); err != nil {
				s.abort(c, err)
				return
			}
		}
		if name := p.one("dataset"); name != "" {
			d, found := snap.DatasetByName(name)
			if !found {
				s.abort(c, fieldErr("dataset", "%q: no such dataset in the inventory", name))
				return
			}
			for b := range snap.Blocks(d.ID) {
				q.Blocks = append(q.Blocks, int32(b.ID))
			}
			if len(q.Blocks) == 0 {
				ok(c, "", Page[map[string]any]{Items: []map[string]any{}})
				return
			}
		}
		for _, tf := range []struct {
			name string
			dst  *int64
		}{{"since", &q.Since}, {"until", &q.Until}} {
			if v := p.one(tf.name); v != "" {
				t, err := ParseTime(v)
				if err != nil {
					s.abort(c, fieldErr(tf.name, "%v", err))
					return
				}
				*tf.dst = t.Unix()
			}
		}
		for _, o := range p.list("outcome") {
			if o != "done" && o != "failed" {
				s.abort(c, fieldErr("outcome", "%q: want done or failed", o))
				return
			}
			q.Outcomes = append(q.Outcomes, o)
		}
		if v := p.one("before"); v != "" {
			if q.Before, err = strconv.ParseInt(v, 10, 64); err != nil || q.Before <= 0 {
				s.abort(c, fieldErr("before", "%q: want an attempt id (data.next of the previous page)", v))
				return
			}
		}
		if q.Limit, err = compatLimit(p, 100); err != nil {
			s.abort(c, err)
			return
		}
		rows, err := fileop.QueryHistory(c.Request.Context(), s.store.d, q)
		if err != nil {
			s.abort(c, err)
			return
		}
		siteName := func(id int32) any {
			if id == 0 {
				return nil
			}
			if st, found := snap.Site(inventory.SiteID(id)); found {
				return st.Name
			}
			return fmt.Sprintf("(site %d)", id)
		}
		items := make([]map[string]any, 0, len(rows))
		for _, r := range rows {
			m := map[string]any{"id": r.ID, "subscription_id": r.Subscription, "lfn": r.LFN, "site": siteName(r.Site),
				"outcome": r.Outcome, "bytes": r.Bytes, "duration": float64(r.DurationNS) / 1e9, "exit_code": r.ExitCode,
				"code": r.Code, "message": r.Message, "finished": dtime(r.Finished), "finished_unix": r.Finished, "backend": r.Backend}
			if op == fileop.OpTransfer {
				m["source"], m["destination"] = siteName(r.SourceSite), siteName(r.Site)
				delete(m, "site")
			}
			if r.Block != 0 {
				if b, found := snap.Block(inventory.BlockID(r.Block)); found {
					if d, found := snap.Dataset(b.Dataset); found {
						m["dataset"], m["block"] = d.Name, b.Name
					}
				}
			}
			items = append(items, m)
		}
		page := Page[map[string]any]{Items: items}
		if len(rows) == q.Limit {
			page.Next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
		}
		ok(c, "", page)
	}
}
