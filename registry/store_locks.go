package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Lock is a detox lock: it protects the replicas of Item (a dataset glob
// or one block "dataset#block") at Sites (all when empty) owned by Groups
// (any when empty) from deletion until Expires, unless unlocked earlier.
type Lock struct {
	ID       int64    `json:"lockid"`
	User     string   `json:"user"`
	DN       string   `json:"dn,omitempty"`
	Item     string   `json:"item"`
	Locked   int64    `json:"locked"`
	Expires  int64    `json:"expires"`
	Unlocked int64    `json:"unlocked,omitempty"` // 0 while in force
	Service  string   `json:"service,omitempty"`
	Sites    []string `json:"sites,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Comment  string   `json:"comment,omitempty"`
}

// ActiveAt reports whether the lock protects at t: locked, not unlocked,
// not expired (expiry is exclusive: at Expires it no longer protects).
func (l Lock) ActiveAt(t int64) bool {
	return l.Locked <= t && t < l.Expires && (l.Unlocked == 0 || t < l.Unlocked)
}

// LockSpec is what a client asks to lock; validated by the API.
type LockSpec struct {
	Item    string
	Expires int64
	Sites   []string
	Groups  []string
	Comment string
	Service string
}

// LockFilter selects locks. Empty fields match everything.
type LockFilter struct {
	IDs           []int64
	Item          string // exact item
	Users         []string
	Service       *string // nil: any service; "" selects locks without service
	Sites         []string
	Groups        []string
	CreatedBefore int64
	CreatedAfter  int64
	ExpiresBefore int64
	ExpiresAfter  int64
	History       bool  // include unlocked (and expired) locks
	After         int64 // ids greater than this
	Limit         int
}

type lockRow struct {
	ID       int64  `db:"id"`
	Item     string `db:"item"`
	Sites    string `db:"site_names"`
	Groups   string `db:"group_names"`
	Locked   int64  `db:"locked"`
	Expires  int64  `db:"expires"`
	Unlocked int64  `db:"unlocked"`
	User     string `db:"user_name"`
	DN       string `db:"dn"`
	Service  string `db:"service"`
	Comment  string `db:"comment"`
}

func (r lockRow) lock() Lock {
	l := Lock{ID: r.ID, User: r.User, DN: r.DN, Item: r.Item, Locked: r.Locked, Expires: r.Expires, Unlocked: r.Unlocked,
		Service: r.Service, Comment: r.Comment}
	_ = json.Unmarshal([]byte(r.Sites), &l.Sites)
	_ = json.Unmarshal([]byte(r.Groups), &l.Groups)
	return l
}

func jsonList(xs []string) string {
	xs = dedupe(xs)
	if xs == nil {
		xs = []string{}
	}
	b, _ := json.Marshal(xs)
	return string(b)
}

const lockCols = "id, item, site_names, group_names, locked, expires, unlocked, user_name, dn, service, comment"

// AddLock creates a lock, or, when the same user already holds an active
// lock on the same item, sites, groups and service, updates its expiry
// and comment (updated = true).
func (s *Store) AddLock(ctx context.Context, spec LockSpec, user, dn string, at time.Time) (l Lock, updated bool, err error) {
	now := at.Unix()
	sites, groups := jsonList(spec.Sites), jsonList(spec.Groups)
	var id int64
	err = s.d.InTx(ctx, func(tx *sqlx.Tx) error {
		id, updated = 0, false
		var ids []int64
		if err := tx.SelectContext(ctx, &ids, `SELECT id FROM detox_locks WHERE user_name = ? AND service = ? AND item = ?
			AND site_names = ? AND group_names = ? AND unlocked = 0 AND expires > ? ORDER BY id LIMIT 1`+s.d.ForUpdate(),
			user, spec.Service, spec.Item, sites, groups, now); err != nil {
			return err
		}
		if len(ids) == 1 {
			id, updated = ids[0], true
			_, err := tx.ExecContext(ctx, "UPDATE detox_locks SET expires = ?, comment = ? WHERE id = ?", spec.Expires, spec.Comment, id)
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO detox_locks (item, site_names, group_names, locked, expires, unlocked, user_name, dn, service, comment)
			VALUES (?,?,?,?,?,0,?,?,?,?)`, spec.Item, sites, groups, now, spec.Expires, user, dn, spec.Service, spec.Comment)
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return Lock{}, false, fmt.Errorf("lock %s: %w", spec.Item, err)
	}
	ls, err := s.ListLocks(ctx, LockFilter{IDs: []int64{id}, History: true}, at)
	if err != nil || len(ls) != 1 {
		return Lock{}, false, fmt.Errorf("lock %s: read back: %w", spec.Item, err)
	}
	return ls[0], updated, nil
}

func lockWhere(f LockFilter, now int64) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if !f.History {
		add("unlocked = 0 AND expires > ?", now)
	}
	if len(f.IDs) > 0 {
		add("id IN (?)", f.IDs)
	}
	if f.Item != "" {
		add("item = ?", f.Item)
	}
	if len(f.Users) > 0 {
		add("user_name IN (?)", f.Users)
	}
	if f.Service != nil {
		add("service = ?", *f.Service)
	}
	if f.CreatedBefore > 0 {
		add("locked < ?", f.CreatedBefore)
	}
	if f.CreatedAfter > 0 {
		add("locked > ?", f.CreatedAfter)
	}
	if f.ExpiresBefore > 0 {
		add("expires < ?", f.ExpiresBefore)
	}
	if f.ExpiresAfter > 0 {
		add("expires > ?", f.ExpiresAfter)
	}
	if f.After > 0 {
		add("id > ?", f.After)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// matchesLists applies the site and group filters, which live in JSON
// columns: a lock matches a site when it names it or names no site.
func (f LockFilter) matchesLists(l Lock) bool {
	for _, s := range f.Sites {
		if len(l.Sites) > 0 && !slices.Contains(l.Sites, s) {
			return false
		}
	}
	for _, g := range f.Groups {
		if len(l.Groups) > 0 && !slices.Contains(l.Groups, g) {
			return false
		}
	}
	return true
}

// ListLocks returns the locks matching f at time at (which decides what
// "active" means), by ascending id.
func (s *Store) ListLocks(ctx context.Context, f LockFilter, at time.Time) ([]Lock, error) {
	w, args := lockWhere(f, at.Unix())
	q := "SELECT " + lockCols + " FROM detox_locks" + w + " ORDER BY id"
	if f.Limit > 0 && len(f.Sites) == 0 && len(f.Groups) == 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	q, args, err := sqlx.In(q, args...)
	if err != nil {
		return nil, err
	}
	var rows []lockRow
	if err := s.d.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	out := make([]Lock, 0, len(rows))
	for _, r := range rows {
		if l := r.lock(); f.matchesLists(l) {
			out = append(out, l)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out, nil
}

// ActiveLocks returns the locks that protect at time t, for Detox: expired
// locks stop protecting at their expiry even though nobody unlocked them.
func (s *Store) ActiveLocks(ctx context.Context, t time.Time) ([]Lock, error) {
	now := t.Unix()
	var rows []lockRow
	if err := s.d.SelectContext(ctx, &rows, "SELECT "+lockCols+` FROM detox_locks
		WHERE expires > ? AND locked <= ? AND (unlocked = 0 OR unlocked > ?) ORDER BY id`, now, now, now); err != nil {
		return nil, fmt.Errorf("active locks: %w", err)
	}
	out := make([]Lock, len(rows))
	for i, r := range rows {
		out[i] = r.lock()
	}
	return out, nil
}

// Unlock ends the active locks matching f (moving them to history) and
// returns them as unlocked. owner, when non-empty, restricts it to that
// user's locks.
func (s *Store) Unlock(ctx context.Context, f LockFilter, at time.Time) ([]Lock, error) {
	f.History = false
	now := at.Unix()
	var out []Lock
	err := s.d.InTx(ctx, func(tx *sqlx.Tx) error {
		out = nil
		w, args := lockWhere(f, now)
		q, args, err := sqlx.In("SELECT "+lockCols+" FROM detox_locks"+w+" ORDER BY id"+s.d.ForUpdate(), args...)
		if err != nil {
			return err
		}
		var rows []lockRow
		if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
			return err
		}
		for _, r := range rows {
			l := r.lock()
			if !f.matchesLists(l) {
				continue
			}
			if _, err := tx.ExecContext(ctx, "UPDATE detox_locks SET unlocked = ? WHERE id = ? AND unlocked = 0", now, l.ID); err != nil {
				return err
			}
			l.Unlocked = now
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("unlock: %w", err)
	}
	return out, nil
}

// SetLocks replaces the whole set of active locks of (user, service) with
// specs, atomically: readers see either the old set or the new one.
func (s *Store) SetLocks(ctx context.Context, user, dn, service string, specs []LockSpec, at time.Time) ([]Lock, error) {
	now := at.Unix()
	var ids []int64
	err := s.d.InTx(ctx, func(tx *sqlx.Tx) error {
		ids = ids[:0]
		if _, err := tx.ExecContext(ctx, "UPDATE detox_locks SET unlocked = ? WHERE user_name = ? AND service = ? AND unlocked = 0", now, user, service); err != nil {
			return err
		}
		for _, sp := range specs {
			res, err := tx.ExecContext(ctx, `INSERT INTO detox_locks (item, site_names, group_names, locked, expires, unlocked, user_name, dn, service, comment)
				VALUES (?,?,?,?,?,0,?,?,?,?)`, sp.Item, jsonList(sp.Sites), jsonList(sp.Groups), now, sp.Expires, user, dn, service, sp.Comment)
			if err != nil {
				return err
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("set locks of %s/%s: %w", user, service, err)
	}
	if len(ids) == 0 {
		return []Lock{}, nil
	}
	return s.ListLocks(ctx, LockFilter{IDs: ids, History: true}, at)
}
