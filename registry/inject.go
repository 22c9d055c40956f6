package registry

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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
// registry's own loop in `dynamo serve`). A document that cannot be
// applied (invalid, or refused by a database constraint) is marked failed
// with the reason and does not block the ones after it. Only a temporary
// failure (see injectTemporary) stops the run and leaves the document and
// the rest queued for the next one.
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
			if ctx.Err() != nil || injectTemporary(err) {
				return n, fmt.Errorf("injection %d: %w", r.ID, err)
			}
			status, result = InjectFailed, injectFailure(err)
			log.WithError(err).WithField("injection", r.ID).Warn("queued injection failed; going on with the next")
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

// injectTemporary tells a failure that says nothing about the document
// (retry it later) from one that does (mark it failed, answer 400). Only
// what the database layer classifies as temporary (retryable transactions,
// lost or refused connections, deadlines), a writer that is behind the
// change log, and a process that is not (or no longer) the writer are
// temporary. Everything else, a database constraint the document violates
// included, is the document's: treating it as temporary would block every
// document queued behind it, forever.
func injectTemporary(err error) bool {
	return errors.Is(err, inventory.ErrStale) || errors.Is(err, inventory.ErrNotWriter) || db.Temporary(err)
}

// injectFailure is the reason recorded for a failed document, shown to
// anyone who asks for the injection: the inventory's own message, or for a
// database refusal a description without the driver's text.
func injectFailure(err error) string {
	if !db.FromDatabase(err) {
		return err.Error()
	}
	if db.IsDuplicate(err) {
		return "the database refused the document: it conflicts with existing records (a name or LFN already used); nothing was injected"
	}
	return "the database refused the document; nothing was injected (the server log has the details)"
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
