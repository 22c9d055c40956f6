package scheduler

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
)

// Run statuses, as recorded in scheduler_runs.status.
const (
	StatusQueued    = "queued"    // waiting for a slot (the writer slot or a reader slot)
	StatusRunning   = "running"   // executing
	StatusOK        = "ok"        // finished; a writer's plan was applied
	StatusFailed    = "failed"    // the app returned an error or panicked, or its plan could not be applied
	StatusTimeout   = "timeout"   // exceeded its timeout; a writer's plan was discarded
	StatusCancelled = "cancelled" // stopped by shutdown or lease loss
	StatusSkipped   = "skipped"   // the app was paused
	StatusAbandoned = "abandoned" // its server died while it ran (found by the next lease holder)
)

// Trigger kinds.
const (
	TriggerCron     = "cron"
	TriggerSequence = "sequence"
	TriggerManual   = "manual"
)

// Run is one row of the run history.
type Run struct {
	ID          int64      `json:"id"`
	App         string     `json:"app"`
	Args        []string   `json:"args"`
	Writer      bool       `json:"writer"` // ran write-enabled (false for readers and dry runs)
	Trigger     string     `json:"trigger"`
	TriggerName string     `json:"trigger_name,omitempty"`
	Server      string     `json:"server"`
	Started     time.Time  `json:"started"`
	Ended       *time.Time `json:"ended,omitempty"`
	Status      string     `json:"status"`
	Error       string     `json:"error,omitempty"`
	Updates     int        `json:"updates"` // inventory updates applied
	Planned     int        `json:"planned"` // updates in the plan
	FirstSeq    uint64     `json:"first_seq,omitempty"`
	LastSeq     uint64     `json:"last_seq,omitempty"`
}

// Duration is the run's wall time so far (or in total once ended).
func (r Run) Duration(now time.Time) time.Duration {
	if r.Ended != nil {
		return r.Ended.Sub(r.Started)
	}
	return now.Sub(r.Started)
}

type runRow struct {
	ID          int64  `db:"id"`
	App         string `db:"app"`
	Args        string `db:"args"`
	Writer      int    `db:"writer"`
	TriggerKind string `db:"trigger_kind"`
	TriggerName string `db:"trigger_name"`
	Server      string `db:"server"`
	StartedAt   int64  `db:"started_at"`
	EndedAt     int64  `db:"ended_at"`
	Status      string `db:"status"`
	Error       string `db:"error"`
	Updates     int    `db:"updates"`
	Planned     int    `db:"planned"`
	FirstSeq    int64  `db:"first_seq"`
	LastSeq     int64  `db:"last_seq"`
}

const runCols = "id, app, args, writer, trigger_kind, trigger_name, server, started_at, ended_at, status, error, updates, planned, first_seq, last_seq"

func (r runRow) run() Run {
	out := Run{ID: r.ID, App: r.App, Writer: r.Writer != 0, Trigger: r.TriggerKind, TriggerName: r.TriggerName,
		Server: r.Server, Started: time.Unix(0, r.StartedAt).UTC(), Status: r.Status, Error: r.Error,
		Updates: r.Updates, Planned: r.Planned, FirstSeq: uint64(r.FirstSeq), LastSeq: uint64(r.LastSeq)}
	_ = json.Unmarshal([]byte(r.Args), &out.Args)
	if out.Args == nil {
		out.Args = []string{}
	}
	if r.EndedAt != 0 {
		t := time.Unix(0, r.EndedAt).UTC()
		out.Ended = &t
	}
	return out
}

// history is the scheduler's tables.
type history struct{ d *db.DB }

// insertRun records a new run and returns its id.
func (h history) insertRun(ctx context.Context, r Run) (int64, error) {
	args, _ := json.Marshal(r.Args)
	var ended int64
	if r.Ended != nil {
		ended = r.Ended.UnixNano()
	}
	res, err := h.d.ExecContext(ctx, `INSERT INTO scheduler_runs (app, args, writer, trigger_kind, trigger_name, server,
		started_at, ended_at, status, error, updates, planned, first_seq, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0)`,
		r.App, string(args), b2i(r.Writer), r.Trigger, r.TriggerName, r.Server, r.Started.UnixNano(), ended, r.Status, r.Error)
	if err != nil {
		return 0, fmt.Errorf("record run of %s: %w", r.App, err)
	}
	return res.LastInsertId()
}

// markRunning moves a queued run to running.
func (h history) markRunning(ctx context.Context, id int64, at time.Time) error {
	_, err := h.d.ExecContext(ctx, "UPDATE scheduler_runs SET status = ?, started_at = ? WHERE id = ?", StatusRunning, at.UnixNano(), id)
	return err
}

// finishRun records a run's outcome.
func (h history) finishRun(ctx context.Context, r Run) error {
	_, err := h.d.ExecContext(ctx, `UPDATE scheduler_runs SET ended_at = ?, status = ?, error = ?, updates = ?, planned = ?,
		first_seq = ?, last_seq = ? WHERE id = ?`,
		r.Ended.UnixNano(), r.Status, truncate(r.Error, 4000), r.Updates, r.Planned, int64(r.FirstSeq), int64(r.LastSeq), r.ID)
	if err != nil {
		return fmt.Errorf("record end of run %d (%s): %w", r.ID, r.App, err)
	}
	return nil
}

// abandonRuns marks runs left queued or running by other servers (which
// died) as abandoned.
func (h history) abandonRuns(ctx context.Context, self string, at time.Time) (int64, error) {
	res, err := h.d.ExecContext(ctx, `UPDATE scheduler_runs SET status = ?, ended_at = ?, error = ?
		WHERE status IN (?, ?) AND server <> ?`, StatusAbandoned, at.UnixNano(),
		"its server stopped before the run ended; "+self+" took over the writer lease", StatusQueued, StatusRunning, self)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// RunFilter selects runs. Zero fields do not filter.
type RunFilter struct {
	App      string
	Status   string
	Since    time.Time // started at or after
	Until    time.Time // started before
	BeforeID int64     // runs with a smaller id (the next page after a page ending at BeforeID)
	Limit    int       // default 100, at most 1000
}

// MaxRunsPage caps RunFilter.Limit.
const MaxRunsPage = 1000

func (h history) runs(ctx context.Context, f RunFilter) ([]Run, error) {
	var where []string
	var args []any
	if f.App != "" {
		where, args = append(where, "app = ?"), append(args, f.App)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "started_at >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "started_at < ?"), append(args, f.Until.UnixNano())
	}
	if f.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > MaxRunsPage {
		f.Limit = MaxRunsPage
	}
	q := "SELECT " + runCols + " FROM scheduler_runs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT %d", f.Limit)
	var rows []runRow
	if err := h.d.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	out := make([]Run, len(rows))
	for i, r := range rows {
		out[i] = r.run()
	}
	return out, nil
}

func (h history) run(ctx context.Context, id int64) (Run, error) {
	var r runRow
	if err := h.d.GetContext(ctx, &r, "SELECT "+runCols+" FROM scheduler_runs WHERE id = ?", id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Run{}, fmt.Errorf("run %d: %w", id, ErrNoRun)
		}
		return Run{}, fmt.Errorf("run %d: %w", id, err)
	}
	return r.run(), nil
}

// lastRuns returns the latest run of every application.
func (h history) lastRuns(ctx context.Context) (map[string]Run, error) {
	var rows []runRow
	err := h.d.SelectContext(ctx, &rows, "SELECT "+prefixCols("r.")+` FROM scheduler_runs r
		JOIN (SELECT MAX(id) AS id FROM scheduler_runs GROUP BY app) m ON r.id = m.id`)
	if err != nil {
		return nil, fmt.Errorf("last runs: %w", err)
	}
	out := make(map[string]Run, len(rows))
	for _, r := range rows {
		out[r.App] = r.run()
	}
	return out, nil
}

func prefixCols(p string) string {
	cols := strings.Split(runCols, ", ")
	for i := range cols {
		cols[i] = p + cols[i]
	}
	return strings.Join(cols, ", ")
}

// Lock is an operator's pause of an application.
type Lock struct {
	App    string    `json:"app" db:"app"`
	By     string    `json:"paused_by" db:"paused_by"`
	Reason string    `json:"reason" db:"reason"`
	At     time.Time `json:"paused_at" db:"-"`
	AtNS   int64     `json:"-" db:"paused_at"`
}

func (h history) pause(ctx context.Context, l Lock) error {
	q := h.d.Upsert("scheduler_app_locks", []string{"app", "paused_by", "reason", "paused_at"}, []string{"app"}, []string{"paused_by", "reason", "paused_at"})
	if _, err := h.d.ExecContext(ctx, q, l.App, truncate(l.By, 128), truncate(l.Reason, 512), l.At.UnixNano()); err != nil {
		return fmt.Errorf("pause %s: %w", l.App, err)
	}
	return nil
}

func (h history) resume(ctx context.Context, app string) (bool, error) {
	res, err := h.d.ExecContext(ctx, "DELETE FROM scheduler_app_locks WHERE app = ?", app)
	if err != nil {
		return false, fmt.Errorf("resume %s: %w", app, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (h history) lock(ctx context.Context, app string) (Lock, bool, error) {
	var l Lock
	err := h.d.GetContext(ctx, &l, "SELECT app, paused_by, reason, paused_at FROM scheduler_app_locks WHERE app = ?", app)
	if errors.Is(err, sql.ErrNoRows) {
		return Lock{}, false, nil
	}
	if err != nil {
		return Lock{}, false, fmt.Errorf("lock of %s: %w", app, err)
	}
	l.At = time.Unix(0, l.AtNS).UTC()
	return l, true, nil
}

func (h history) locks(ctx context.Context) (map[string]Lock, error) {
	var ls []Lock
	if err := h.d.SelectContext(ctx, &ls, "SELECT app, paused_by, reason, paused_at FROM scheduler_app_locks"); err != nil {
		return nil, fmt.Errorf("app locks: %w", err)
	}
	out := make(map[string]Lock, len(ls))
	for _, l := range ls {
		l.At = time.Unix(0, l.AtNS).UTC()
		out[l.App] = l
	}
	return out, nil
}

// seqTerminated is the stored position of a sequence that ran TERMINATE.
const seqTerminated = -1

func (h history) seqPos(ctx context.Context, name string) (int, bool, error) {
	var pos int
	err := h.d.GetContext(ctx, &pos, "SELECT next_step FROM scheduler_sequences WHERE name = ?", name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("sequence %s position: %w", name, err)
	}
	return pos, true, nil
}

func (h history) setSeqPos(ctx context.Context, name string, pos int, at time.Time) error {
	q := h.d.Upsert("scheduler_sequences", []string{"name", "next_step", "updated_at"}, []string{"name"}, []string{"next_step", "updated_at"})
	if _, err := h.d.ExecContext(ctx, q, name, pos, at.UnixNano()); err != nil {
		return fmt.Errorf("sequence %s position: %w", name, err)
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
