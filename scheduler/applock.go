package scheduler

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// AppLockState is who holds Dynamo's application lock of an app: the
// user and service of the oldest queued entry, when it was taken, its
// note, and Depth, how many entries that user and service hold (each
// unlock removes one). Service is "" when none was given.
type AppLockState struct {
	App      string    `json:"app"`
	User     string    `json:"user"`
	Service  string    `json:"service"`
	LockTime time.Time `json:"lock_time"`
	Note     *string   `json:"note,omitempty"`
	Depth    int       `json:"depth"`
}

type activityRow struct {
	ID      int64          `db:"id"`
	App     string         `db:"app"`
	User    string         `db:"user_name"`
	Service string         `db:"service"`
	Note    sql.NullString `db:"note"`
	At      int64          `db:"locked_at"`
}

// holder folds an app's queue (oldest first) into its state; nil when
// the queue is empty.
func holder(rows []activityRow) *AppLockState {
	if len(rows) == 0 {
		return nil
	}
	first := rows[0]
	st := &AppLockState{App: first.App, User: first.User, Service: first.Service, LockTime: time.Unix(0, first.At).UTC(), Depth: 0}
	if first.Note.Valid {
		n := first.Note.String
		st.Note = &n
	}
	for _, r := range rows {
		if r.User == first.User && r.Service == first.Service {
			st.Depth++
		}
	}
	return st
}

func (h history) activityQueue(ctx context.Context, app string) ([]activityRow, error) {
	var rows []activityRow
	if err := h.d.SelectContext(ctx, &rows, `SELECT id, app, user_name, service, note, locked_at
		FROM scheduler_activity_locks WHERE app = ? ORDER BY id`, app); err != nil {
		return nil, fmt.Errorf("application lock of %s: %w", app, err)
	}
	return rows, nil
}

// activityHolders is the holder of every locked app.
func (h history) activityHolders(ctx context.Context) (map[string]*AppLockState, error) {
	var rows []activityRow
	if err := h.d.SelectContext(ctx, &rows, `SELECT id, app, user_name, service, note, locked_at
		FROM scheduler_activity_locks ORDER BY app, id`); err != nil {
		return nil, fmt.Errorf("application locks: %w", err)
	}
	out := map[string]*AppLockState{}
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].App == rows[i].App {
			j++
		}
		out[rows[i].App] = holder(rows[i:j])
		i = j
	}
	return out, nil
}

// CheckAppLock returns the holder of app's application lock, nil when
// nobody holds it. The app must be registered (ErrUnknownApp).
func (s *Scheduler) CheckAppLock(ctx context.Context, app string) (*AppLockState, error) {
	if _, err := s.lookup(app); err != nil {
		return nil, err
	}
	rows, err := s.hist.activityQueue(ctx, app)
	if err != nil {
		return nil, err
	}
	return holder(rows), nil
}

// AppLocks returns the holder of every locked application.
func (s *Scheduler) AppLocks(ctx context.Context) (map[string]*AppLockState, error) {
	return s.hist.activityHolders(ctx)
}

// LockApp queues an application lock of app for user and service (Dynamo's
// applock/lock): the app is not scheduled while any entry is queued. It
// returns the holder after the insert, which is the caller when nobody
// else held the lock (or the caller held it already, one level deeper);
// otherwise the caller waits behind the holder. Works on any server: the
// queue lives in the database.
func (s *Scheduler) LockApp(ctx context.Context, app, user, service string, note *string) (*AppLockState, error) {
	if _, err := s.lookup(app); err != nil {
		return nil, err
	}
	var n sql.NullString
	if note != nil {
		n = sql.NullString{String: truncate(*note, 512), Valid: true}
	}
	if _, err := s.hist.d.ExecContext(ctx, `INSERT INTO scheduler_activity_locks (app, user_name, service, note, locked_at)
		VALUES (?, ?, ?, ?, ?)`, app, truncate(user, 128), truncate(service, 128), n, time.Now().UnixNano()); err != nil {
		return nil, fmt.Errorf("lock application %s: %w", app, err)
	}
	st, err := s.CheckAppLock(ctx, app)
	if err == nil {
		s.log.WithFields(logrus.Fields{"app": app, "user": user, "service": service}).Info("application lock queued")
	}
	return st, err
}

// UnlockApp removes the newest application-lock entry of user and service
// on app (Dynamo's applock/unlock; nothing happens when they have none)
// and returns the holder afterwards, nil when the app is free.
func (s *Scheduler) UnlockApp(ctx context.Context, app, user, service string) (*AppLockState, error) {
	if _, err := s.lookup(app); err != nil {
		return nil, err
	}
	// MAX over no rows is NULL: the caller holds no entry.
	var newest sql.NullInt64
	if err := s.hist.d.GetContext(ctx, &newest, `SELECT MAX(id) FROM scheduler_activity_locks WHERE app = ? AND user_name = ? AND service = ?`,
		app, user, service); err != nil {
		return nil, fmt.Errorf("unlock application %s: %w", app, err)
	}
	id := newest.Int64
	if id > 0 {
		if _, err := s.hist.d.ExecContext(ctx, `DELETE FROM scheduler_activity_locks WHERE id = ?`, id); err != nil {
			return nil, fmt.Errorf("unlock application %s: %w", app, err)
		}
		s.log.WithFields(logrus.Fields{"app": app, "user": user, "service": service}).Info("application lock released")
	}
	return s.CheckAppLock(ctx, app)
}
