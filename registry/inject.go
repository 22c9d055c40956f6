package registry

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// Injection states.
const (
	InjectQueued  = "queued"
	InjectApplied = "applied"
	InjectFailed  = "failed"
)

// Injection is a queued injection document and what became of it.
type Injection struct {
	ID      int64  `json:"id" db:"id"`
	Queued  int64  `json:"queued" db:"queued"`
	User    string `json:"user" db:"user_name"`
	Status  string `json:"status" db:"status"`
	Applied int64  `json:"applied,omitempty" db:"applied"`
	Result  string `json:"result,omitempty" db:"result"` // the change-log range, or the error
}

// QueueInjection stores a validated injection document for the next
// writer to apply (asynchronous injection).
func (s *Store) QueueInjection(ctx context.Context, doc *inventory.InjectDoc, user string, at time.Time) (Injection, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return Injection{}, err
	}
	res, err := s.d.ExecContext(ctx, "INSERT INTO queued_injections (queued, user_name, doc, status, applied, result) VALUES (?,?,?,?,0,'')",
		at.Unix(), user, string(b), InjectQueued)
	if err != nil {
		return Injection{}, fmt.Errorf("queue injection: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Injection{}, err
	}
	return s.Injection(ctx, id)
}

// Injection returns one queued injection, or ErrNotFound.
func (s *Store) Injection(ctx context.Context, id int64) (Injection, error) {
	var in Injection
	err := s.d.GetContext(ctx, &in, "SELECT id, queued, user_name, status, applied, result FROM queued_injections WHERE id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("%w: injection %d", ErrNotFound, id)
	}
	return in, err
}

// ApplyQueuedInjections applies queued injection documents to store in
// queue order, at most limit of them (0: all), and returns how many it
// applied. It is called by the inventory's writer (the scheduler's, or the
// registry's own loop in `dynamo serve`). A document that the inventory
// rejects is marked failed with the reason and does not block the ones
// after it; a database error stops the run and leaves the rest queued.
//
// Marking a document applied happens after Store.Inject commits, so a crash
// in between applies it again on the next run; injection upserts by name,
// so that is harmless.
func ApplyQueuedInjections(ctx context.Context, store *inventory.Store, log *logrus.Entry, limit int) (int, error) {
	d := store.DB()
	q := "SELECT id, doc FROM queued_injections WHERE status = ? ORDER BY id"
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	var rows []struct {
		ID  int64  `db:"id"`
		Doc string `db:"doc"`
	}
	if err := d.SelectContext(ctx, &rows, q, InjectQueued); err != nil {
		return 0, fmt.Errorf("queued injections: %w", err)
	}
	n := 0
	for _, r := range rows {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		status, result := InjectApplied, ""
		doc, err := inventory.DecodeInjectDoc(bytes.NewReader([]byte(r.Doc)))
		if err == nil {
			var res inventory.WriteResult
			res, err = store.Inject(ctx, time.Now(), doc)
			result = fmt.Sprintf("%d updates, change log %d..%d", res.Updates, res.FirstSeq, res.LastSeq)
		}
		if err != nil {
			if isTransient(err) {
				return n, fmt.Errorf("injection %d: %w", r.ID, err)
			}
			status, result = InjectFailed, err.Error()
		}
		if _, err := d.ExecContext(ctx, "UPDATE queued_injections SET status = ?, applied = ?, result = ? WHERE id = ? AND status = ?",
			status, time.Now().Unix(), truncate(result, 4000), r.ID, InjectQueued); err != nil {
			return n, fmt.Errorf("injection %d: mark %s: %w", r.ID, status, err)
		}
		log.WithFields(logrus.Fields{"injection": r.ID, "status": status, "result": result}).Info("applied queued injection")
		if status == InjectApplied {
			n++
		}
	}
	return n, nil
}

// isTransient tells a database or availability failure (retry later) from
// a document the inventory refuses (mark failed, answer 400).
// inventory.Inject does not wrap all of its validation errors in
// ErrInvalid, so this looks for what a database failure is made of instead.
func isTransient(err error) bool {
	if errors.Is(err, inventory.ErrInvalid) {
		return false
	}
	if errors.Is(err, inventory.ErrStale) {
		return true
	}
	var me *mysql.MySQLError
	var coder interface{ Code() int }
	var ne net.Error
	return db.Retryable(err) || errors.As(err, &me) || errors.As(err, &coder) || errors.As(err, &ne) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, sql.ErrTxDone) || errors.Is(err, driver.ErrBadConn)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// RunInjectionLoop applies queued injections every interval until ctx
// ends. It is the registry's stand-in writer until the scheduler calls
// ApplyQueuedInjections itself.
func RunInjectionLoop(ctx context.Context, store *inventory.Store, log *logrus.Entry, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			_, err := ApplyQueuedInjections(ctx, store, log, 100)
			if errors.Is(err, inventory.ErrStale) {
				// Another process wrote the inventory: replay its changes,
				// then the next tick applies the queue.
				_, err = store.CatchUp(ctx)
			}
			if err != nil && ctx.Err() == nil {
				log.WithError(err).Warn("applying queued injections")
			}
		}
	}
}
