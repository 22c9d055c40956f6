package stager

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// req is a request row; the poller is its only writer once submitted
// (Release and Abort only set want).
type req struct {
	ID          int64  `db:"id"`
	Kind        Kind   `db:"kind"`
	Owner       string `db:"owner"`
	SURL        string `db:"surl"`
	Dest        string `db:"dest"`
	Protocols   string `db:"protocols"`
	State       State  `db:"state"`
	Token       string `db:"token"`
	DestToken   string `db:"dest_token"`
	TURL        string `db:"turl"`
	Error       string `db:"error"`
	ResultJSON  string `db:"result"`
	Created     int64  `db:"created"`
	Deadline    int64  `db:"deadline"`
	NextPoll    int64  `db:"next_poll"`
	Delay       int64  `db:"delay"`
	Polls       int    `db:"polls"`
	PinLifetime int64  `db:"pin_lifetime"`
	PinUntil    int64  `db:"pin_until"`
	Cleanup     int    `db:"cleanup"`
	Webhook     string `db:"webhook"`
	Notified    int    `db:"notified"`
	Updated     int64  `db:"updated"`

	want State // Release/Abort asked for, applied by the poller
	busy bool  // a worker owns it
}

const reqCols = "id, kind, owner, surl, dest, protocols, state, token, dest_token, turl, error, result, created, deadline, next_poll, delay, polls, pin_lifetime, pin_until, cleanup, webhook, notified, updated"

func (q *req) result() Result {
	r := Result{ID: q.ID, Kind: q.Kind, Owner: q.Owner, SURL: q.SURL, Dest: q.Dest, State: q.State,
		TURL: q.TURL, Token: q.Token, Error: q.Error}
	if q.ResultJSON != "" {
		_ = json.Unmarshal([]byte(q.ResultJSON), &r.Entries) // written by us from the same type
	}
	return r
}

func (q *req) protocols() []string {
	if q.Protocols == "" {
		return nil
	}
	return strings.Split(q.Protocols, ",")
}

func (s *Stager) insert(ctx context.Context, q *req) error {
	res, err := s.d.ExecContext(ctx, `INSERT INTO stager_requests (kind, owner, surl, dest, protocols, state, token, dest_token, turl, error, result,
		created, deadline, next_poll, delay, polls, pin_lifetime, pin_until, cleanup, webhook, notified, updated)
		VALUES (?, ?, ?, ?, ?, ?, '', '', '', '', '', ?, ?, ?, 0, 0, ?, 0, 0, ?, ?, ?)`,
		q.Kind, q.Owner, q.SURL, q.Dest, q.Protocols, q.State, q.Created, q.Deadline, q.NextPoll, q.PinLifetime, q.Webhook, q.Notified, q.Updated)
	if err != nil {
		return fmt.Errorf("stager: storing request: %w", err)
	}
	if q.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("stager: request id: %w", err)
	}
	return nil
}

// save writes every mutable column of q.
func (s *Stager) save(ctx context.Context, q *req) error {
	_, err := s.d.ExecContext(ctx, `UPDATE stager_requests SET state = ?, token = ?, dest_token = ?, turl = ?, error = ?, result = ?,
		next_poll = ?, delay = ?, polls = ?, pin_until = ?, cleanup = ?, notified = ?, updated = ? WHERE id = ?`,
		q.State, q.Token, q.DestToken, q.TURL, truncate(q.Error, 2000), q.ResultJSON, q.NextPoll, q.Delay, q.Polls, q.PinUntil,
		q.Cleanup, q.Notified, q.Updated, q.ID)
	if err != nil {
		return fmt.Errorf("stager: saving request %d: %w", q.ID, err)
	}
	return nil
}

func (s *Stager) load(ctx context.Context, id int64) (*req, error) {
	var q req
	err := s.d.GetContext(ctx, &q, "SELECT "+reqCols+" FROM stager_requests WHERE id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("stager: loading request %d: %w", id, err)
	}
	return &q, nil
}

// loadActive reads every request the poller must still look at: not final,
// still holding something at the SE, or owing a webhook.
func (s *Stager) loadActive(ctx context.Context) ([]*req, error) {
	var out []*req
	err := s.d.SelectContext(ctx, &out, "SELECT "+reqCols+` FROM stager_requests
		WHERE state IN (?, ?, ?) OR cleanup = 1 OR notified = 0 ORDER BY id`,
		StateQueued, StatePolling, StateReady)
	if err != nil {
		return nil, fmt.Errorf("stager: loading requests: %w", err)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
