package registry

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
)

// Kind says whether a request asks for copies or deletions.
type Kind string

// The request kinds.
const (
	KindCopy     Kind = "copy"
	KindDeletion Kind = "deletion"
)

// Status is where a request is in its life: new -> activated -> completed,
// or rejected (with a reason) or cancelled (by its owner, from new).
type Status string

// The request statuses.
const (
	StatusNew       Status = "new"
	StatusActivated Status = "activated"
	StatusCompleted Status = "completed"
	StatusRejected  Status = "rejected"
	StatusCancelled Status = "cancelled"
)

// ParseStatus parses a request status.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusNew, StatusActivated, StatusCompleted, StatusRejected, StatusCancelled:
		return st, nil
	}
	return "", fmt.Errorf("status %q: want new, activated, completed, rejected or cancelled", s)
}

// Open reports whether the request may still change.
func (s Status) Open() bool { return s == StatusNew || s == StatusActivated }

// Request is a copy or deletion request as stored.
type Request struct {
	ID           int64    `json:"request_id"`
	Kind         Kind     `json:"kind"`
	Items        []string `json:"item"`
	Sites        []string `json:"site"`
	Group        string   `json:"group,omitempty"`
	N            int      `json:"n"`
	User         string   `json:"user"`
	DN           string   `json:"dn,omitempty"`
	FirstRequest int64    `json:"first_request"`
	LastRequest  int64    `json:"last_request"`
	RequestCount int      `json:"request_count"`
	Status       Status   `json:"status"`
	Reason       string   `json:"reason,omitempty"`
	Updated      int64    `json:"updated"`
	// ApprovedBy is who approved a deletion request: an operator, or
	// "policy" when the requester's groups own every replica it deletes.
	ApprovedBy string   `json:"approved_by,omitempty"`
	Actions    []Action `json:"active"`
}

// Action is the state of one item at one site (Dynamo's active_copies,
// Rucio's replica locks). Site is "*" for a copy the Dealer has yet to
// place at one of the request's sites.
type Action struct {
	Item   string `json:"item" db:"item"`
	Site   string `json:"site" db:"site"`
	Status string `json:"status" db:"status"` // see the Action* constants
	Reason string `json:"reason,omitempty" db:"reason"`
	// Files and bytes done and in total: copied for a copy, removed for a
	// deletion.
	FilesDone  int64 `json:"files_done" db:"files_done"`
	FilesTotal int64 `json:"files_total" db:"files_total"`
	BytesDone  int64 `json:"bytes_done" db:"bytes_done"`
	BytesTotal int64 `json:"bytes_total" db:"bytes_total"`
	Created    int64 `json:"created" db:"created"`
	Updated    int64 `json:"updated" db:"updated"`
}

// The states of an action. A copy goes new (waiting for the Dealer to
// place it) -> queued (transfers waiting) -> transferring -> completed, or
// stuck (transfers held; the reason says which sources failed and why) or
// cancelled. A deletion goes new (waiting for approval or the guard) ->
// queued -> deleting -> completed, or stuck, or rejected.
const (
	ActionNew          = "new"
	ActionQueued       = "queued"
	ActionTransferring = "transferring"
	ActionDeleting     = "deleting"
	ActionCompleted    = "completed"
	ActionStuck        = "stuck"
	ActionCancelled    = "cancelled"
	ActionRejected     = "rejected"
)

// ActionDone reports whether an action state is final.
func ActionDone(st string) bool {
	return st == ActionCompleted || st == ActionCancelled || st == ActionRejected
}

// NewRequest is what a client asks for. Items and Sites must already be
// validated and expanded (site globs resolved to names).
type NewRequest struct {
	Kind  Kind
	Items []string
	Sites []string
	Group string
	N     int
	User  string
	DN    string
}

// RequestFilter selects requests for ListRequests. Empty fields match
// everything; lists match any of their values.
type RequestFilter struct {
	Kind     Kind
	IDs      []int64
	Statuses []Status
	Users    []string
	Items    []string
	Sites    []string
	After    int64 // only ids greater than this (pagination)
	Limit    int   // 0: no limit
	Newest   bool  // by descending id: with Limit, the newest requests (the console's list)
}

// Store is the registry's database layer: requests, detox locks and queued
// injections. It is safe for concurrent use; every change is one
// transaction.
type Store struct{ d *db.DB }

// NewStore returns the registry store on a migrated database.
func NewStore(d *db.DB) *Store { return &Store{d: d} }

// Probe runs a trivial query: readiness is the database answering within
// the caller's deadline.
func (s *Store) Probe(ctx context.Context) error {
	if s.d == nil {
		return nil
	}
	var one int
	return s.d.GetContext(ctx, &one, "SELECT 1")
}

func dedupKey(r NewRequest) string {
	items := slices.Clone(r.Items)
	sites := slices.Clone(r.Sites)
	slices.Sort(items)
	slices.Sort(sites)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%d", r.Kind, strings.Join(items, "\x01"), strings.Join(sites, "\x01"), r.Group, r.N)
	return hex.EncodeToString(h.Sum(nil))
}

// CreateRequest stores a new request, or, when an identical open request
// (same kind, items, sites, group and n, whoever made it) exists, counts
// one more request of it instead. It returns the request and whether it
// was reused.
func (s *Store) CreateRequest(ctx context.Context, r NewRequest, at time.Time) (Request, bool, error) {
	key := dedupKey(r)
	now := at.Unix()
	var id int64
	var reused bool
	err := s.d.InTx(ctx, func(tx *sqlx.Tx) error {
		id, reused = 0, false
		err := tx.GetContext(ctx, &id, "SELECT id FROM requests WHERE dedup_key = ? AND status IN ('new','activated') ORDER BY id LIMIT 1"+s.d.ForUpdate(), key)
		switch {
		case err == nil:
			reused = true
			_, err = tx.ExecContext(ctx, "UPDATE requests SET request_count = request_count + 1, last_request = ?, updated = ? WHERE id = ?", now, now, id)
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO requests (kind, group_name, num_copies, user_name, dn, first_request, last_request,
			request_count, status, reason, updated, dedup_key) VALUES (?,?,?,?,?,?,?,1,?,'',?,?)`,
			r.Kind, r.Group, r.N, r.User, r.DN, now, now, StatusNew, now, key)
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		for _, it := range dedupe(r.Items) {
			if _, err := tx.ExecContext(ctx, "INSERT INTO request_items (request_id, item) VALUES (?, ?)", id, it); err != nil {
				return err
			}
		}
		for _, site := range dedupe(r.Sites) {
			if _, err := tx.ExecContext(ctx, "INSERT INTO request_sites (request_id, site) VALUES (?, ?)", id, site); err != nil {
				return err
			}
		}
		return addHistory(ctx, tx, id, now, StatusNew, "", r.User)
	})
	if err != nil {
		return Request{}, false, fmt.Errorf("create %s request: %w", r.Kind, err)
	}
	req, err := s.GetRequest(ctx, r.Kind, id)
	return req, reused, err
}

func addHistory(ctx context.Context, tx *sqlx.Tx, id, at int64, st Status, reason, actor string) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO request_history (request_id, at, status, reason, actor) VALUES (?,?,?,?,?)", id, at, st, reason, actor)
	return err
}

func dedupe(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}

// GetRequest returns one request of the given kind, or ErrNotFound.
func (s *Store) GetRequest(ctx context.Context, kind Kind, id int64) (Request, error) {
	rs, err := s.ListRequests(ctx, RequestFilter{Kind: kind, IDs: []int64{id}})
	if err != nil {
		return Request{}, err
	}
	if len(rs) == 0 {
		return Request{}, fmt.Errorf("%w: %s request %d", ErrNotFound, kind, id)
	}
	return rs[0], nil
}

type requestRow struct {
	ID           int64  `db:"id"`
	Kind         Kind   `db:"kind"`
	Group        string `db:"group_name"`
	N            int    `db:"num_copies"`
	User         string `db:"user_name"`
	DN           string `db:"dn"`
	FirstRequest int64  `db:"first_request"`
	LastRequest  int64  `db:"last_request"`
	RequestCount int    `db:"request_count"`
	Status       Status `db:"status"`
	Reason       string `db:"reason"`
	Updated      int64  `db:"updated"`
}

// ListRequests returns the requests matching f, by ascending id (f.Newest:
// descending), with their items, sites and actions.
func (s *Store) ListRequests(ctx context.Context, f RequestFilter) ([]Request, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.Kind != "" {
		add("kind = ?", f.Kind)
	}
	if len(f.IDs) > 0 {
		add("id IN (?)", f.IDs)
	}
	if len(f.Statuses) > 0 {
		add("status IN (?)", f.Statuses)
	}
	if len(f.Users) > 0 {
		add("user_name IN (?)", f.Users)
	}
	if len(f.Items) > 0 {
		add("id IN (SELECT request_id FROM request_items WHERE item IN (?))", f.Items)
	}
	if len(f.Sites) > 0 {
		add("id IN (SELECT request_id FROM request_sites WHERE site IN (?))", f.Sites)
	}
	if f.After > 0 {
		add("id > ?", f.After)
	}
	q := "SELECT id, kind, group_name, num_copies, user_name, dn, first_request, last_request, request_count, status, reason, updated FROM requests"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Newest {
		q += " ORDER BY id DESC"
	} else {
		q += " ORDER BY id"
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	q, args, err := sqlx.In(q, args...)
	if err != nil {
		return nil, err
	}
	var rows []requestRow
	if err := s.d.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	out := make([]Request, len(rows))
	pos := map[int64]int{}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = Request{ID: r.ID, Kind: r.Kind, Group: r.Group, N: r.N, User: r.User, DN: r.DN, FirstRequest: r.FirstRequest,
			LastRequest: r.LastRequest, RequestCount: r.RequestCount, Status: r.Status, Reason: r.Reason, Updated: r.Updated,
			Items: []string{}, Sites: []string{}, Actions: []Action{}}
		pos[r.ID] = i
		ids[i] = r.ID
	}
	var kids []struct {
		ID  int64  `db:"request_id"`
		Val string `db:"val"`
	}
	for _, part := range []struct {
		q   string
		dst func(i int, v string)
	}{
		{"SELECT request_id, item AS val FROM request_items WHERE request_id IN (?) ORDER BY request_id, item", func(i int, v string) { out[i].Items = append(out[i].Items, v) }},
		{"SELECT request_id, site AS val FROM request_sites WHERE request_id IN (?) ORDER BY request_id, site", func(i int, v string) { out[i].Sites = append(out[i].Sites, v) }},
	} {
		kids = kids[:0]
		q, a, err := sqlx.In(part.q, ids)
		if err != nil {
			return nil, err
		}
		if err := s.d.SelectContext(ctx, &kids, q, a...); err != nil {
			return nil, fmt.Errorf("list requests: %w", err)
		}
		for _, k := range kids {
			part.dst(pos[k.ID], k.Val)
		}
	}
	var acts []struct {
		ID int64 `db:"request_id"`
		Action
	}
	q, a, err := sqlx.In(`SELECT a.request_id, a.item, a.site, a.status, a.reason, a.created, a.updated,
		COALESCE(p.files_done, 0) AS files_done, COALESCE(p.files_total, 0) AS files_total,
		COALESCE(p.bytes_done, 0) AS bytes_done, COALESCE(p.bytes_total, 0) AS bytes_total
		FROM request_actions a LEFT JOIN request_progress p ON p.request_id = a.request_id AND p.item = a.item AND p.site = a.site
		WHERE a.request_id IN (?) ORDER BY a.request_id, a.item, a.site`, ids)
	if err != nil {
		return nil, err
	}
	if err := s.d.SelectContext(ctx, &acts, q, a...); err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	for _, k := range acts {
		i := pos[k.ID]
		out[i].Actions = append(out[i].Actions, k.Action)
	}
	var apps []struct {
		ID int64  `db:"request_id"`
		By string `db:"approved_by"`
	}
	q, a, err = sqlx.In("SELECT request_id, approved_by FROM request_approvals WHERE request_id IN (?)", ids)
	if err != nil {
		return nil, err
	}
	if err := s.d.SelectContext(ctx, &apps, q, a...); err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	for _, k := range apps {
		out[pos[k.ID]].ApprovedBy = k.By
	}
	return out, nil
}

// Transition is a status change other components (the Dealer for copies,
// Detox for deletions) make: from one of From to To, with a reason, and
// the actions to record (upserted by item and site).
type Transition struct {
	From    []Status
	To      Status
	Reason  string
	Actor   string
	Actions []Action
	// Drop removes actions (by item and site) that no longer apply, such
	// as the "*" placeholder of a copy the Dealer has now placed.
	Drop []Action
}

// UpdateRequest applies t to request id as a compare-and-set on its
// status: if the request is not in one of t.From it returns ErrConflict
// and changes nothing. To equal to the current status only records actions.
func (s *Store) UpdateRequest(ctx context.Context, kind Kind, id int64, t Transition, at time.Time) error {
	if len(t.From) == 0 {
		return errors.New("update request: Transition.From is empty")
	}
	now := at.Unix()
	return s.d.InTx(ctx, func(tx *sqlx.Tx) error {
		var cur Status
		err := tx.GetContext(ctx, &cur, "SELECT status FROM requests WHERE id = ? AND kind = ?"+s.d.ForUpdate(), id, kind)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s request %d", ErrNotFound, kind, id)
		}
		if err != nil {
			return err
		}
		if !slices.Contains(t.From, cur) {
			return fmt.Errorf("%w: %s request %d is %s, not %v", ErrConflict, kind, id, cur, t.From)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE requests SET status = ?, reason = ?, updated = ? WHERE id = ?", t.To, t.Reason, now, id); err != nil {
			return err
		}
		up := s.d.Upsert("request_actions", []string{"request_id", "item", "site", "status", "reason", "created", "updated"},
			[]string{"request_id", "item", "site"}, []string{"status", "reason", "updated"})
		prog := s.d.Upsert("request_progress", []string{"request_id", "item", "site", "files_done", "files_total", "bytes_done", "bytes_total"},
			[]string{"request_id", "item", "site"}, []string{"files_done", "files_total", "bytes_done", "bytes_total"})
		for _, a := range t.Actions {
			if a.Created == 0 {
				a.Created = now
			}
			if a.Updated == 0 {
				a.Updated = now
			}
			if _, err := tx.ExecContext(ctx, up, id, a.Item, a.Site, a.Status, a.Reason, a.Created, a.Updated); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, prog, id, a.Item, a.Site, a.FilesDone, a.FilesTotal, a.BytesDone, a.BytesTotal); err != nil {
				return err
			}
		}
		for _, a := range t.Drop {
			for _, tbl := range []string{"request_actions", "request_progress"} {
				if _, err := tx.ExecContext(ctx, "DELETE FROM "+tbl+" WHERE request_id = ? AND item = ? AND site = ?", id, a.Item, a.Site); err != nil {
					return err
				}
			}
		}
		if cur != t.To {
			return addHistory(ctx, tx, id, now, t.To, t.Reason, t.Actor)
		}
		return nil
	})
}

// CancelRequest cancels an open request. A copy request that was already
// activated is cleaned up by the request tracker: its pending transfers
// are cancelled and its incomplete replicas removed. A deletion request can
// be cancelled only while new: once activated its replicas are already
// pending deletion (ErrConflict).
func (s *Store) CancelRequest(ctx context.Context, kind Kind, id int64, actor string, at time.Time) (Request, error) {
	from := []Status{StatusNew, StatusActivated}
	if kind == KindDeletion {
		from = []Status{StatusNew}
	}
	err := s.UpdateRequest(ctx, kind, id, Transition{From: from, To: StatusCancelled, Reason: "cancelled by " + actor, Actor: actor}, at)
	if err != nil {
		return Request{}, err
	}
	return s.GetRequest(ctx, kind, id)
}

// HistoryEntry is one status change of a request.
type HistoryEntry struct {
	At     int64  `json:"at" db:"at"`
	Status Status `json:"status" db:"status"`
	Reason string `json:"reason,omitempty" db:"reason"`
	Actor  string `json:"actor,omitempty" db:"actor"`
}

// RequestHistory returns the status changes of a request, oldest first.
func (s *Store) RequestHistory(ctx context.Context, id int64) ([]HistoryEntry, error) {
	var out []HistoryEntry
	err := s.d.SelectContext(ctx, &out, "SELECT at, status, reason, actor FROM request_history WHERE request_id = ? ORDER BY id", id)
	return out, err
}

// ApproveRequest records the approval of a new deletion request, by an
// operator or by the request tracker's policy ("policy"). It is
// idempotent; a request that is no longer new is ErrConflict.
func (s *Store) ApproveRequest(ctx context.Context, id int64, by string, at time.Time) (Request, error) {
	err := s.d.InTx(ctx, func(tx *sqlx.Tx) error {
		var cur Status
		err := tx.GetContext(ctx, &cur, "SELECT status FROM requests WHERE id = ? AND kind = ?"+s.d.ForUpdate(), id, KindDeletion)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: deletion request %d", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		if cur != StatusNew {
			return fmt.Errorf("%w: deletion request %d is %s; only a new request can be approved", ErrConflict, id, cur)
		}
		var n int
		if err := tx.GetContext(ctx, &n, "SELECT COUNT(*) FROM request_approvals WHERE request_id = ?", id); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO request_approvals (request_id, approved_by, at) VALUES (?,?,?)", id, by, at.Unix()); err != nil {
			return err
		}
		return addHistory(ctx, tx, id, at.Unix(), StatusNew, "approved by "+by, by)
	})
	if err != nil {
		return Request{}, err
	}
	return s.GetRequest(ctx, KindDeletion, id)
}

// UnfinishedCancelled returns the cancelled requests of a kind that still
// have an action in progress: the request tracker's clean-up work.
func (s *Store) UnfinishedCancelled(ctx context.Context, kind Kind) ([]Request, error) {
	var ids []int64
	err := s.d.SelectContext(ctx, &ids, `SELECT DISTINCT r.id FROM requests r JOIN request_actions a ON a.request_id = r.id
		WHERE r.kind = ? AND r.status = ? AND a.status NOT IN (?, ?, ?) ORDER BY r.id`,
		kind, StatusCancelled, ActionCompleted, ActionCancelled, ActionRejected)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return s.ListRequests(ctx, RequestFilter{Kind: kind, IDs: ids})
}

// CopiesWaiting reports whether a copy request waits for placement: new,
// or activated with a copy not placed yet (an action still new).
func (s *Store) CopiesWaiting(ctx context.Context) (bool, error) {
	reqs, err := s.ListRequests(ctx, RequestFilter{Kind: KindCopy, Statuses: []Status{StatusNew, StatusActivated}})
	if err != nil {
		return false, err
	}
	for _, r := range reqs {
		if r.Status == StatusNew {
			return true, nil
		}
		for _, a := range r.Actions {
			if a.Status == ActionNew {
				return true, nil
			}
		}
	}
	return false, nil
}
