package detox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// ErrNoCycle: the requested cycle is not in the history.
var ErrNoCycle = apierr.New(apierr.ErrNotFound, "no such detox cycle")

// Cycle statuses.
const (
	StatusPlanned = "planned" // planned, not applied (dry run)
	StatusApplied = "applied"
	StatusFailed  = "failed"
)

// CycleRow is one cycle of the history.
type CycleRow struct {
	ID              int64  `db:"id" json:"id"`
	Partition       string `db:"partition_name" json:"partition"`
	PolicyFile      string `db:"policy_file" json:"policy_file"`
	PolicyText      string `db:"policy_text" json:"policy_text,omitempty"`
	InventorySeq    int64  `db:"inventory_seq" json:"inventory_seq"`
	Started         int64  `db:"started" json:"started"`
	Finished        int64  `db:"finished" json:"finished"`
	Status          string `db:"status" json:"status"`
	DryRun          bool   `db:"dry_run" json:"dry_run"`
	Iterations      int    `db:"iterations" json:"iterations"`
	DeletedBytes    int64  `db:"deleted_bytes" json:"deleted_bytes"`
	DeletedReplicas int64  `db:"deleted_replicas" json:"deleted_replicas"`
	Message         string `db:"message" json:"message"`
}

// CycleSiteRow is the summary of one target site in a cycle.
type CycleSiteRow struct {
	CycleID         int64  `db:"cycle_id" json:"cycle_id"`
	Site            string `db:"site_name" json:"site"`
	Quota           int64  `db:"quota" json:"quota"`
	Before          int64  `db:"before_bytes" json:"before_bytes"`
	After           int64  `db:"after_bytes" json:"after_bytes"`
	Triggered       bool   `db:"triggered" json:"triggered"`
	Released        bool   `db:"released" json:"released"`
	DeletedBytes    int64  `db:"deleted_bytes" json:"deleted_bytes"`
	DeletedReplicas int64  `db:"deleted_replicas" json:"deleted_replicas"`
	DeletedFiles    int64  `db:"deleted_files" json:"deleted_files"`
	ProtectedBytes  int64  `db:"protected_bytes" json:"protected_bytes"`
	Iterations      int    `db:"iterations" json:"iterations"`
}

// CycleReplicaRow is one decision of a cycle. Blocks is empty when the
// decision covers every block replica of the dataset replica; otherwise
// block names (the part after '#') separated by spaces. RuleText is the
// policy line's text (filled by readers from the stored policy).
type CycleReplicaRow struct {
	CycleID  int64  `db:"cycle_id" json:"cycle_id"`
	Site     string `db:"site_name" json:"site"`
	Dataset  string `db:"dataset_name" json:"dataset"`
	Blocks   string `db:"blocks" json:"blocks,omitempty"`
	Decision string `db:"decision" json:"decision"`
	Action   string `db:"action" json:"action"`
	Line     int    `db:"line" json:"line"`
	Reason   string `db:"reason" json:"reason"`
	Size     int64  `db:"size" json:"size"`
	Files    int64  `db:"files" json:"files"`
	RuleText string `db:"-" json:"rule"`
}

// History records cycles and reads them back. Safe for concurrent use.
type History struct{ d *db.DB }

// NewHistory returns the history stored in d (migrations applied).
func NewHistory(d *db.DB) *History { return &History{d: d} }

// Record stores a planned cycle: the cycle row with its policy text, the
// per-site summaries and every replica decision, in one transaction, and
// returns the cycle id. status is StatusPlanned, StatusApplied or
// StatusFailed; msg explains failures.
func (h *History) Record(ctx context.Context, plan *Plan, status string, dryRun bool, msg string, finished time.Time) (int64, error) {
	snap := plan.snap
	var id int64
	err := h.d.InTx(ctx, func(tx *sqlx.Tx) error {
		var deletedReps int64
		for _, s := range plan.Sites {
			deletedReps += int64(s.DeletedReps)
		}
		text, file := "", ""
		if plan.Policy != nil {
			text, file = plan.Policy.Source, plan.Policy.File
		}
		r, err := tx.ExecContext(ctx, `INSERT INTO detox_cycles (partition_name, policy_file, policy_text, inventory_seq,
			started, finished, status, dry_run, iterations, deleted_bytes, deleted_replicas, message)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			plan.Partition, file, text, int64(plan.Seq), plan.At.Unix(), finished.Unix(), status, dryRun,
			plan.Iterations, plan.DeletedBytes(), deletedReps, msg)
		if err != nil {
			return fmt.Errorf("insert cycle: %w", err)
		}
		if id, err = r.LastInsertId(); err != nil {
			return fmt.Errorf("cycle id: %w", err)
		}
		for _, s := range plan.Sites {
			if _, err := tx.ExecContext(ctx, `INSERT INTO detox_cycle_sites (cycle_id, site_name, quota, before_bytes,
				after_bytes, triggered, released, deleted_bytes, deleted_replicas, deleted_files, protected_bytes, iterations)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, s.Name, s.Quota, s.Before, s.After, s.Triggered,
				s.Released, s.Deleted, s.DeletedReps, s.Files, s.Protected, s.Iterations); err != nil {
				return fmt.Errorf("insert cycle site %s: %w", s.Name, err)
			}
		}
		return h.insertReplicas(ctx, tx, id, plan, snap)
	})
	return id, err
}

// insertReplicas writes the decisions in multi-row INSERTs.
func (h *History) insertReplicas(ctx context.Context, tx *sqlx.Tx, id int64, plan *Plan, snap *inventory.Snapshot) error {
	const cols = 10
	const batch = 500
	q := "INSERT INTO detox_cycle_replicas (cycle_id, site_name, dataset_name, blocks, decision, action, line, reason, size, files) VALUES "
	one := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	args := make([]any, 0, batch*cols)
	flush := func() error {
		n := len(args) / cols
		if n == 0 {
			return nil
		}
		stmt := q + strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
		if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
			return fmt.Errorf("insert cycle decisions: %w", err)
		}
		args = args[:0]
		return nil
	}
	for _, r := range plan.Replicas {
		site, _ := snap.Site(r.Site)
		ds, _ := snap.Dataset(r.Dataset)
		var blocks []string
		for _, b := range r.Blocks {
			if bl, ok := snap.Block(b); ok {
				blocks = append(blocks, bl.Name)
			}
		}
		args = append(args, id, site.Name, ds.Name, strings.Join(blocks, " "), r.Decision.String(), r.Action.String(),
			r.Line, string(r.Reason), r.Size, r.Files)
		if len(args) >= batch*cols {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Finish updates a cycle's status after Apply.
func (h *History) Finish(ctx context.Context, id int64, status, msg string, at time.Time) error {
	_, err := h.d.ExecContext(ctx, "UPDATE detox_cycles SET status = ?, message = ?, finished = ? WHERE id = ?", status, msg, at.Unix(), id)
	if err != nil {
		return fmt.Errorf("finish cycle %d: %w", id, err)
	}
	return nil
}

// Cycles lists cycles, newest first; partition "" means all. limit <= 0
// means 100. The policy text is left out (Cycle has it).
func (h *History) Cycles(ctx context.Context, partition string, limit int) ([]CycleRow, error) {
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT id, partition_name, policy_file, '' AS policy_text, inventory_seq, started, finished, status, dry_run,
		iterations, deleted_bytes, deleted_replicas, message FROM detox_cycles`
	var args []any
	if partition != "" {
		q += " WHERE partition_name = ?"
		args = append(args, partition)
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	out := []CycleRow{}
	if err := h.d.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("list detox cycles: %w", err)
	}
	return out, nil
}

// Cycle returns one cycle with its policy text.
func (h *History) Cycle(ctx context.Context, id int64) (*CycleRow, error) {
	var c CycleRow
	err := h.d.GetContext(ctx, &c, "SELECT * FROM detox_cycles WHERE id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", ErrNoCycle, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read detox cycle %d: %w", id, err)
	}
	return &c, nil
}

// Sites returns the per-site summary of a cycle.
func (h *History) Sites(ctx context.Context, id int64) ([]CycleSiteRow, error) {
	out := []CycleSiteRow{}
	if err := h.d.SelectContext(ctx, &out, "SELECT * FROM detox_cycle_sites WHERE cycle_id = ? ORDER BY site_name", id); err != nil {
		return nil, fmt.Errorf("read detox cycle %d sites: %w", id, err)
	}
	return out, nil
}

// Replicas returns a cycle's decisions, filtered by site and/or dataset
// ("" for any), with the text of the deciding line.
func (h *History) Replicas(ctx context.Context, id int64, site, dataset string, limit, offset int) ([]CycleReplicaRow, error) {
	c, err := h.Cycle(ctx, id)
	if err != nil {
		return nil, err
	}
	q := "SELECT cycle_id, site_name, dataset_name, blocks, decision, action, line, reason, size, files FROM detox_cycle_replicas WHERE cycle_id = ?"
	args := []any{id}
	if site != "" {
		q += " AND site_name = ?"
		args = append(args, site)
	}
	if dataset != "" {
		q += " AND dataset_name = ?"
		args = append(args, dataset)
	}
	if limit <= 0 {
		limit = 1000
	}
	q += " ORDER BY site_name, dataset_name, decision LIMIT ? OFFSET ?"
	args = append(args, limit, max(offset, 0))
	out := []CycleReplicaRow{}
	if err := h.d.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("read detox cycle %d decisions: %w", id, err)
	}
	lines := strings.Split(c.PolicyText, "\n")
	for i := range out {
		if l := out[i].Line; l > 0 && l <= len(lines) {
			out[i].RuleText = strings.TrimSpace(lines[l-1])
		} else {
			out[i].RuleText = "(default) " + out[i].Action
		}
	}
	return out, nil
}

// Latest returns the newest cycle of a partition ("" for any).
func (h *History) Latest(ctx context.Context, partition string) (*CycleRow, error) {
	cs, err := h.Cycles(ctx, partition, 1)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("%w for partition %q", ErrNoCycle, partition)
	}
	return h.Cycle(ctx, cs[0].ID)
}

// SiteCycle is one target site's occupancy in one cycle: the points of a
// site's occupancy-over-time chart.
type SiteCycle struct {
	CycleID   int64  `db:"cycle_id" json:"cycle_id"`
	Partition string `db:"partition_name" json:"partition"`
	Started   int64  `db:"started" json:"started"`
	Quota     int64  `db:"quota" json:"quota"`
	Before    int64  `db:"before_bytes" json:"before_bytes"`
	After     int64  `db:"after_bytes" json:"after_bytes"`
	Triggered bool   `db:"triggered" json:"triggered"`
	DryRun    bool   `db:"dry_run" json:"dry_run"`
}

// SiteHistory returns the site's summaries over its newest limit cycles
// (<= 0: 200), oldest first.
func (h *History) SiteHistory(ctx context.Context, site string, limit int) ([]SiteCycle, error) {
	if limit <= 0 {
		limit = 200
	}
	out := []SiteCycle{}
	err := h.d.SelectContext(ctx, &out, `SELECT s.cycle_id, c.partition_name, c.started, s.quota, s.before_bytes, s.after_bytes,
		s.triggered, c.dry_run FROM detox_cycle_sites s JOIN detox_cycles c ON c.id = s.cycle_id
		WHERE s.site_name = ? ORDER BY s.cycle_id DESC LIMIT ?`, site, limit)
	if err != nil {
		return nil, fmt.Errorf("read detox history of site %s: %w", site, err)
	}
	slices.Reverse(out)
	return out, nil
}

// DatasetDecisions returns the decisions about a dataset over the newest
// cycles, newest first, at most limit (<= 0: 200), with the text of each
// deciding line.
func (h *History) DatasetDecisions(ctx context.Context, dataset string, limit int) ([]CycleReplicaRow, error) {
	if limit <= 0 {
		limit = 200
	}
	var ids []int64
	if err := h.d.SelectContext(ctx, &ids, `SELECT DISTINCT cycle_id FROM detox_cycle_replicas WHERE dataset_name = ?
		ORDER BY cycle_id DESC LIMIT ?`, dataset, limit); err != nil {
		return nil, fmt.Errorf("search detox decisions for %s: %w", dataset, err)
	}
	out := []CycleReplicaRow{}
	for _, id := range ids {
		rs, err := h.Replicas(ctx, id, "", dataset, limit-len(out), 0)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}
