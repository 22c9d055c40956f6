package fileop

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/inventory"
)

// SourceFailure is the failure memory of one (subscription, source) pair.
type SourceFailure struct {
	Site        int32
	Failures    int
	Recoverable bool   // of the last failure
	Code        string // the last failure's error class
}

// SourceCandidate is a site holding a complete copy of the file.
type SourceCandidate struct {
	Site inventory.SiteID
	Tape bool
}

// SelectSource picks the source of a transfer: an untried disk source,
// else an untried tape source, else the source whose last failure was
// recoverable with the fewest failures (disk first on ties). It returns
// HoldNoSource when there is no candidate and HoldAllFailed when every
// candidate's last failure was irrecoverable. Pure: candidates in
// preference order (the caller passes them sorted by site id so the
// choice is reproducible).
func SelectSource(cands []SourceCandidate, failures map[int32]SourceFailure) (inventory.SiteID, HoldReason) {
	if len(cands) == 0 {
		return 0, HoldNoSource
	}
	for _, tape := range []bool{false, true} {
		for _, c := range cands {
			if _, tried := failures[int32(c.Site)]; !tried && c.Tape == tape {
				return c.Site, ""
			}
		}
	}
	best, bestN, bestTape := inventory.SiteID(0), 0, true
	for _, c := range cands {
		f := failures[int32(c.Site)]
		if !f.Recoverable {
			continue
		}
		if best == 0 || f.Failures < bestN || f.Failures == bestN && bestTape && !c.Tape {
			best, bestN, bestTape = c.Site, f.Failures, c.Tape
		}
	}
	if best == 0 {
		return 0, HoldAllFailed
	}
	return best, ""
}

type hold struct {
	sub    Subscription
	reason HoldReason
	msg    string
}

type batchKey struct {
	op       Op
	src, dst int32
}

// dispatch runs one pass: it reads pending subscriptions in order, holds
// those that cannot run, groups the others into batches within the limits,
// claims them (one transaction), and submits the batches. It returns the
// number of operations dispatched.
func (d *Daemon) dispatch(ctx context.Context) (int, error) {
	d.mu.Lock()
	free, busy := d.cfg.MaxPending-len(d.active), len(d.active) > 0
	d.mu.Unlock()
	// While work is in flight, wait until a worthwhile amount of capacity
	// is free: a pass reads and sorts pending rows, and running one per
	// finished file would cost more than the files.
	if free <= 0 || busy && free < min(d.cfg.BatchSize, d.cfg.MaxPending/4) {
		return 0, nil
	}
	now := d.now()
	// The window read per pass: enough to fill the free slots past rows
	// that are throttled or held, and wide enough for a Prioritizer to
	// reorder (it only sees this window).
	window := min(max(2*free, 500), 20000)
	var subs []Subscription
	if err := d.db.SelectContext(ctx, &subs, "SELECT "+subCols+" FROM "+TableSubscriptions+
		" WHERE state IN (?, ?) AND next_try_ns <= ? ORDER BY priority DESC, created, id LIMIT ?",
		StateNew, StateRetry, now.UnixNano(), window); err != nil {
		return 0, err
	}
	if len(subs) == 0 {
		return 0, nil
	}
	failures, err := d.loadFailures(ctx, subs)
	if err != nil {
		return 0, err
	}
	forced, err := forcedSources(ctx, d.db)
	if err != nil {
		return 0, err
	}
	snap := d.store.Snapshot()

	var holds []hold
	var cands []*activeSub
	d.mu.Lock()
	for i := range subs {
		s := subs[i]
		opp := OpDeletion
		if s.Op == OpDeletion {
			opp = OpTransfer
		}
		if d.keys[opKey{opp, s.FileID, s.SiteID}] {
			continue // the opposite operation on this file is running: wait for it
		}
		dst, ok := snap.Site(inventory.SiteID(s.SiteID))
		if !ok || dst.Status != inventory.SiteReady {
			holds = append(holds, hold{s, HoldSiteUnavailable, fmt.Sprintf("site %d (%s) is not ready", s.SiteID, dst.Name)})
			continue
		}
		a := &activeSub{sub: s, dstName: dst.Name, backend: d.backend.Name()}
		if a.dstURL, err = d.pfnOf(dst, s.LFN); err != nil {
			holds = append(holds, hold{s, HoldSiteUnavailable, err.Error()})
			continue
		}
		if s.Op == OpTransfer {
			var sc []SourceCandidate
			for r := range snap.BlockReplicas(inventory.BlockID(s.BlockID)) {
				// A suspicious replica (checksum mismatches, or declared
				// bad) is no source until an operator clears it.
				if !r.Complete || r.Suspicious || r.Site == inventory.SiteID(s.SiteID) {
					continue
				}
				if f, ok := forced[s.ID]; ok && r.Site != f {
					continue // an operator named the source
				}
				if site, ok := snap.Site(r.Site); ok && site.Status == inventory.SiteReady {
					sc = append(sc, SourceCandidate{Site: r.Site, Tape: site.StorageType == inventory.StorageMSS})
				}
			}
			src, reason := SelectSource(sc, failures[s.ID])
			if reason != "" {
				holds = append(holds, hold{s, reason, holdMessage(snap, reason, sc, failures[s.ID], s.Message)})
				continue
			}
			ss, _ := snap.Site(src)
			a.src, a.srcName = int32(src), ss.Name
			if a.srcURL, err = d.pfnOf(ss, s.LFN); err != nil {
				holds = append(holds, hold{s, HoldNoSource, err.Error()})
				continue
			}
		}
		cands = append(cands, a)
	}
	links, sites := copyCounts(d.links), copyCounts(d.sites)
	d.mu.Unlock()
	d.orderCandidates(ctx, cands)

	groups := map[batchKey][]*activeSub{}
	var order []batchKey
	for _, a := range cands {
		if free == 0 {
			break
		}
		s := a.sub
		l := link{a.src, s.SiteID}
		if links[l] >= d.cfg.PerLink || sites[s.SiteID] >= d.cfg.PerSite || a.src != 0 && sites[a.src] >= d.cfg.PerSite {
			continue // throttled: stays pending, in order, for the next pass
		}
		links[l]++
		sites[s.SiteID]++
		if a.src != 0 {
			sites[a.src]++
		}
		k := batchKey{s.Op, a.src, s.SiteID}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], a)
		free--
	}

	var batches []Batch
	var claimed []*activeSub
	err = d.db.InTx(ctx, func(tx *sqlx.Tx) error {
		batches, claimed = batches[:0], claimed[:0]
		ts := now.Unix()
		for _, h := range holds {
			// A row cancelled or moved meanwhile is simply skipped.
			if _, err := execN(ctx, tx, "UPDATE "+TableSubscriptions+" SET state = ?, hold_reason = ?, message = ?, updated = ? WHERE id = ? AND state = ?",
				StateHeld, h.reason, clip(h.msg), ts, h.sub.ID, h.sub.State); err != nil {
				return err
			}
		}
		for _, k := range order {
			as := groups[k]
			for start := 0; start < len(as); start += d.cfg.BatchSize {
				chunk := as[start:min(start+d.cfg.BatchSize, len(as))]
				res, err := tx.ExecContext(ctx, "INSERT INTO "+TableBatches+" (op, backend, source_site_id, site_id, state, created, updated) VALUES (?, ?, ?, ?, 'open', ?, ?)",
					k.op, d.backend.Name(), k.src, k.dst, ts, ts)
				if err != nil {
					return err
				}
				id, err := res.LastInsertId()
				if err != nil {
					return err
				}
				b := Batch{ID: id, Op: k.op, SourceSite: chunk[0].srcName, Site: chunk[0].dstName}
				// One statement per chunk: a row cancelled or moved since we
				// read it is not new/retry any more and is not matched.
				args := []any{StateInBatch, id, k.src, ts, StateNew, StateRetry}
				for _, a := range chunk {
					args = append(args, a.sub.ID)
				}
				n, err := execN(ctx, tx, "UPDATE "+TableSubscriptions+" SET state = ?, batch_id = ?, source_site_id = ?, hold_reason = '', updated = ? "+
					"WHERE state IN (?, ?) AND id IN (?"+repeatQ(len(chunk)-1)+")", args...)
				if err != nil {
					return err
				}
				got := map[int64]bool{}
				if int(n) != len(chunk) {
					var ids []int64
					if err := tx.SelectContext(ctx, &ids, "SELECT id FROM "+TableSubscriptions+" WHERE batch_id = ? AND state = ?", id, StateInBatch); err != nil {
						return err
					}
					for _, i := range ids {
						got[i] = true
					}
				}
				for _, a := range chunk {
					if int(n) != len(chunk) && !got[a.sub.ID] {
						continue
					}
					c := *a
					c.batch, c.sub.BatchID, c.sub.State, c.sub.SourceSite = id, id, StateInBatch, a.src
					claimed = append(claimed, &c)
					b.Tasks = append(b.Tasks, Task{SubID: a.sub.ID, LFN: a.sub.LFN, Size: a.sub.Size, Adler32: a.sub.Adler32, Source: a.srcURL, Target: a.dstURL})
				}
				if len(b.Tasks) == 0 {
					if _, err := tx.ExecContext(ctx, "DELETE FROM "+TableBatches+" WHERE id = ?", id); err != nil {
						return err
					}
					continue
				}
				batches = append(batches, b)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	d.log.WithField("claimed", len(claimed)).WithField("batches", len(batches)).WithField("seconds", time.Since(now).Seconds()).Debug("dispatched")
	if len(holds) > 0 {
		d.log.WithField("held", len(holds)).Info("subscriptions held")
	}
	d.mu.Lock()
	for _, a := range claimed {
		d.addActive(a)
	}
	d.mu.Unlock()
	for _, b := range batches {
		if err := d.submit(ctx, b); err != nil {
			return len(claimed), err
		}
	}
	return len(claimed), nil
}

// loadFailures reads the per-source failure memory of the transfer
// subscriptions that have failed before.
func (d *Daemon) loadFailures(ctx context.Context, subs []Subscription) (map[int64]map[int32]SourceFailure, error) {
	var ids []any
	for _, s := range subs {
		if s.Op == OpTransfer && s.Tries > 0 {
			ids = append(ids, s.ID)
		}
	}
	out := map[int64]map[int32]SourceFailure{}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		var rows []struct {
			Sub         int64  `db:"subscription_id"`
			Site        int32  `db:"source_site_id"`
			Failures    int    `db:"failures"`
			Recoverable bool   `db:"recoverable"`
			Code        string `db:"code"`
		}
		q := "SELECT subscription_id, source_site_id, failures, recoverable, code FROM " + TableSourceFailures +
			" WHERE subscription_id IN (?" + repeatQ(len(chunk)-1) + ")"
		if err := d.db.SelectContext(ctx, &rows, q, chunk...); err != nil {
			return nil, err
		}
		for _, r := range rows {
			if out[r.Sub] == nil {
				out[r.Sub] = map[int32]SourceFailure{}
			}
			out[r.Sub][r.Site] = SourceFailure{Site: r.Site, Failures: r.Failures, Recoverable: r.Recoverable, Code: r.Code}
		}
	}
	return out, nil
}

func copyCounts[K comparable](m map[K]int) map[K]int {
	c := make(map[K]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func clip(s string) string {
	if len(s) > 1000 {
		s = s[:1000]
	}
	return strings.ToValidUTF8(s, "?")
}

// holdMessage says why a transfer is held in terms an operator can act on:
// which sources were tried, how often each failed and with what, and the
// last error seen.
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func holdMessage(snap *inventory.Snapshot, reason HoldReason, cands []SourceCandidate, failures map[int32]SourceFailure, last string) string {
	if reason == HoldNoSource {
		return "no ready site holds a complete copy of the file"
	}
	var b strings.Builder
	b.WriteString("every source failed irrecoverably:")
	for i, c := range cands {
		f := failures[int32(c.Site)]
		name := fmt.Sprintf("site %d", c.Site)
		if s, ok := snap.Site(c.Site); ok {
			name = s.Name
		}
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s (%s, last: %s)", name, plural(f.Failures, "failure"), cmp.Or(f.Code, "error"))
	}
	if last != "" && last != "released" {
		b.WriteString("; last error: ")
		b.WriteString(last)
	}
	return clip(b.String())
}
