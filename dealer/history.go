package dealer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
)

// ErrNotFound is returned by History for a cycle that does not exist.
var ErrNotFound = apierr.New(apierr.ErrNotFound, "not found")

// Cycle statuses in history.
const (
	CycleDryRun  = "dry-run" // planned and recorded, nothing applied
	CyclePlanned = "planned" // recorded, Apply in progress (or interrupted)
	CycleApplied = "applied"
	CycleFailed  = "failed"
)

// History records cycles, proposals and decisions in the dealer_* tables
// and reads them back for the CLI and the REST API. Safe for concurrent use.
type History struct {
	db *db.DB
}

// NewHistory returns a History on a migrated database.
func NewHistory(d *db.DB) *History { return &History{db: d} }

// CycleRecord is one recorded cycle.
type CycleRecord struct {
	ID            int64           `json:"id" db:"id"`
	StartedNS     int64           `json:"started_ns" db:"started_ns"`
	FinishedNS    int64           `json:"finished_ns" db:"finished_ns"`
	Partition     string          `json:"partition" db:"partition_name"`
	Seed          string          `json:"seed" db:"seed"` // decimal uint64
	SnapshotSeq   int64           `json:"snapshot_seq" db:"snapshot_seq"`
	DryRun        bool            `json:"dry_run" db:"dry_run"`
	Status        string          `json:"status" db:"status"`
	NumProposals  int             `json:"num_proposals" db:"num_proposals"`
	NumCopies     int             `json:"num_copies" db:"num_copies"`
	NumRejections int             `json:"num_rejections" db:"num_rejections"`
	Volume        int64           `json:"volume" db:"volume"`
	Config        json.RawMessage `json:"config,omitempty" db:"-"`
	Error         string          `json:"error,omitempty" db:"-"`
}

// ProposalRecord is one recorded proposal with its decision.
type ProposalRecord struct {
	Index       int    `json:"index" db:"idx"`
	Plugin      string `json:"plugin" db:"plugin"`
	Priority    int    `json:"priority" db:"priority"`
	Item        string `json:"item" db:"item"`
	Destination string `json:"destination,omitempty" db:"destination"`
	Group       string `json:"group,omitempty" db:"group_name"`
	RequestID   int64  `json:"request_id,omitempty" db:"request_id"`
	Note        string `json:"note,omitempty" db:"note"`
	Accepted    bool   `json:"accepted" db:"accepted"`
	Reason      string `json:"reason,omitempty" db:"reason"`
	Site        string `json:"site,omitempty" db:"site"`
	Bytes       int64  `json:"bytes" db:"bytes"`
	Detail      string `json:"detail,omitempty" db:"detail"`
}

// Record stores a planned cycle with its proposals and decisions, in one
// transaction, and returns the cycle id. status is CycleDryRun or
// CyclePlanned.
func (h *History) Record(ctx context.Context, p *Plan, status string, at time.Time) (int64, error) {
	cfg, err := json.Marshal(p.Config)
	if err != nil {
		return 0, fmt.Errorf("record cycle: %w", err)
	}
	rej := 0
	for _, d := range p.Decisions {
		if !d.Accepted {
			rej++
		}
	}
	var id int64
	err = h.db.InTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO dealer_cycles (started_ns, finished_ns, partition_name, seed, snapshot_seq,
			dry_run, status, num_proposals, num_copies, num_rejections, volume, config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.Now.UnixNano(), at.UnixNano(), p.Partition, strconv.FormatUint(p.Seed, 10), int64(p.SnapshotSeq),
			boolInt(status == CycleDryRun), status, len(p.Proposals), len(p.Copies), rej, p.Volume, string(cfg))
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		const batch = 200
		for lo := 0; lo < len(p.Proposals); lo += batch {
			hi := min(lo+batch, len(p.Proposals))
			var sb, sd strings.Builder
			var ap, ad []any
			sb.WriteString("INSERT INTO dealer_proposals (cycle_id, idx, plugin, priority, item, destination, group_name, request_id, note) VALUES ")
			sd.WriteString("INSERT INTO dealer_decisions (cycle_id, idx, accepted, reason, site, bytes, detail) VALUES ")
			for i := lo; i < hi; i++ {
				if i > lo {
					sb.WriteString(", ")
					sd.WriteString(", ")
				}
				sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
				sd.WriteString("(?, ?, ?, ?, ?, ?, ?)")
				pr, d := &p.Proposals[i], &p.Decisions[i]
				dest := ""
				if pr.Destination != 0 {
					dest = d.Site
				}
				ap = append(ap, id, i, pr.Plugin, pr.Priority, clip(pr.Item, 1024), dest, pr.Group, pr.RequestID, clip(pr.Note, 512))
				ad = append(ad, id, i, boolInt(d.Accepted), string(d.Reason), d.Site, d.Bytes, clip(d.Detail, 1024))
			}
			if _, err := tx.ExecContext(ctx, sb.String(), ap...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, sd.String(), ad...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("record cycle: %w", err)
	}
	return id, nil
}

// Finish sets a recorded cycle's final status (CycleApplied or
// CycleFailed, with the error text).
func (h *History) Finish(ctx context.Context, id int64, status string, at time.Time, cause error) error {
	var msg sql.NullString
	if cause != nil {
		msg = sql.NullString{String: clip(cause.Error(), 4000), Valid: true}
	}
	_, err := h.db.ExecContext(ctx, "UPDATE dealer_cycles SET status = ?, finished_ns = ?, error = ? WHERE id = ?", status, at.UnixNano(), msg, id)
	if err != nil {
		return fmt.Errorf("finish cycle %d: %w", id, err)
	}
	return nil
}

const cycleCols = `id, started_ns, finished_ns, partition_name, seed, snapshot_seq, dry_run, status, num_proposals,
	num_copies, num_rejections, volume`

// Cycles returns recorded cycles, newest first.
func (h *History) Cycles(ctx context.Context, limit, offset int) ([]CycleRecord, error) {
	out := []CycleRecord{}
	err := h.db.SelectContext(ctx, &out, "SELECT "+cycleCols+" FROM dealer_cycles ORDER BY id DESC LIMIT ? OFFSET ?", limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list cycles: %w", err)
	}
	return out, nil
}

// Cycle returns one cycle with its configuration; ErrNotFound if absent.
func (h *History) Cycle(ctx context.Context, id int64) (CycleRecord, error) {
	var row struct {
		CycleRecord
		Config string         `db:"config"`
		Error  sql.NullString `db:"error"`
	}
	err := h.db.GetContext(ctx, &row, "SELECT "+cycleCols+", config, error FROM dealer_cycles WHERE id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return CycleRecord{}, fmt.Errorf("cycle %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return CycleRecord{}, fmt.Errorf("cycle %d: %w", id, err)
	}
	c := row.CycleRecord
	c.Config = json.RawMessage(row.Config)
	c.Error = row.Error.String
	return c, nil
}

// ProposalFilter selects recorded proposals.
type ProposalFilter struct {
	Plugin   string // "" any
	Reason   string // "" any
	Rejected bool   // only rejected ones
	Limit    int    // 0: 1000
	Offset   int
}

// Proposals returns a cycle's proposals with their decisions, in merged
// order; ErrNotFound if the cycle does not exist.
func (h *History) Proposals(ctx context.Context, id int64, f ProposalFilter) ([]ProposalRecord, error) {
	if _, err := h.Cycle(ctx, id); err != nil {
		return nil, err
	}
	q := `SELECT p.idx, p.plugin, p.priority, p.item, p.destination, p.group_name, p.request_id, p.note,
		d.accepted, d.reason, d.site, d.bytes, d.detail
		FROM dealer_proposals p JOIN dealer_decisions d ON d.cycle_id = p.cycle_id AND d.idx = p.idx
		WHERE p.cycle_id = ?`
	args := []any{id}
	if f.Plugin != "" {
		q += " AND p.plugin = ?"
		args = append(args, f.Plugin)
	}
	if f.Reason != "" {
		q += " AND d.reason = ?"
		args = append(args, f.Reason)
	}
	if f.Rejected {
		q += " AND d.accepted = 0"
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	q += " ORDER BY p.idx LIMIT ? OFFSET ?"
	args = append(args, f.Limit, f.Offset)
	out := []ProposalRecord{}
	if err := h.db.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("cycle %d proposals: %w", id, err)
	}
	return out, nil
}

// ReasonCounts returns the number of rejections per reason in a cycle.
func (h *History) ReasonCounts(ctx context.Context, id int64) (map[string]int, error) {
	if _, err := h.Cycle(ctx, id); err != nil {
		return nil, err
	}
	var rows []struct {
		Reason string `db:"reason"`
		N      int    `db:"n"`
	}
	if err := h.db.SelectContext(ctx, &rows, "SELECT reason, COUNT(*) AS n FROM dealer_decisions WHERE cycle_id = ? AND accepted = 0 GROUP BY reason", id); err != nil {
		return nil, fmt.Errorf("cycle %d reasons: %w", id, err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Reason] = r.N
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// clip shortens s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
