package fileop

import (
	"context"
	"fmt"
	"strings"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// ReplicaActivity is the queue's work on one block replica for one
// operation: what is waiting, running or held, and what was cancelled.
type ReplicaActivity struct {
	Queued    int // live and waiting: new or retry
	Active    int // in a batch at a backend
	Held      int // waiting for an operator
	Cancelled int // cancelled at or after the since time asked for
	// Held and retry rows' messages, by LFN, at most maxNotes: the reason a
	// copy is stuck, naming the failed sources.
	Notes []string
	// CancelNote is the message of one cancelled row ("cancelled by
	// request", "replica queued for deletion").
	CancelNote string
}

// userNote is the part of a subscription's state a request's owner may
// see: the hold reason and which source failed why, never a message that
// did not go through failureMessage (it can name physical paths).
func userNote(hold, msg string) string {
	switch {
	case strings.HasPrefix(msg, "every source failed"), strings.HasPrefix(msg, "no ready site"):
		msg, _, _ = strings.Cut(msg, "; last error:")
	case strings.HasPrefix(msg, "gave up after "), strings.HasPrefix(msg, "from "):
		// failureMessage's: the source and the cause, with the sites'
		// URLs and paths already replaced.
	default:
		msg = ""
	}
	switch {
	case msg == "" && hold == "":
		return "retrying after a failure"
	case msg == "":
		return hold
	case hold == "":
		return "retrying: " + msg
	}
	return hold + ": " + msg
}

// Live reports whether anything is still to happen.
func (a ReplicaActivity) Live() bool { return a.Queued+a.Active+a.Held > 0 }

const maxNotes = 3

// ReplicaActivities summarizes the subscriptions of op on each replica in
// refs: live ones, and those cancelled at or after since (unix seconds).
// Replicas without any are absent from the map. The queries go through the
// state index, so finished history does not slow them down.
func ReplicaActivities(ctx context.Context, d *db.DB, op Op, refs []ReplicaRef, since int64) (map[ReplicaRef]ReplicaActivity, error) {
	out := map[ReplicaRef]ReplicaActivity{}
	want := map[ReplicaRef]bool{}
	var blocks []any
	seen := map[inventory.BlockID]bool{}
	for _, r := range refs {
		want[r] = true
		if !seen[r.Block] {
			seen[r.Block] = true
			blocks = append(blocks, r.Block)
		}
	}
	for start := 0; start < len(blocks); start += 400 {
		chunk := blocks[start:min(start+400, len(blocks))]
		var rows []struct {
			Block   int32  `db:"block_id"`
			Site    int32  `db:"site_id"`
			State   State  `db:"state"`
			Hold    string `db:"hold_reason"`
			LFN     string `db:"lfn"`
			Message string `db:"message"`
		}
		in := "(?" + repeatQ(len(chunk)-1) + ")"
		args := append([]any{op, StateNew, StateInBatch, StateRetry, StateHeld}, chunk...)
		q := "SELECT block_id, site_id, state, hold_reason, lfn, message FROM " + TableSubscriptions +
			" WHERE op = ? AND state IN (?, ?, ?, ?) AND block_id IN " + in
		if err := d.SelectContext(ctx, &rows, q, args...); err != nil {
			return nil, fmt.Errorf("replica activity: %w", err)
		}
		args = append([]any{op, StateCancelled, since}, chunk...)
		var cancelled []struct {
			Block   int32  `db:"block_id"`
			Site    int32  `db:"site_id"`
			N       int    `db:"n"`
			Message string `db:"message"`
		}
		q = "SELECT block_id, site_id, COUNT(*) AS n, MAX(message) AS message FROM " + TableSubscriptions +
			" WHERE op = ? AND state = ? AND updated >= ? AND block_id IN " + in + " GROUP BY block_id, site_id"
		if err := d.SelectContext(ctx, &cancelled, q, args...); err != nil {
			return nil, fmt.Errorf("replica activity: %w", err)
		}
		for _, r := range rows {
			ref := ReplicaRef{Block: inventory.BlockID(r.Block), Site: inventory.SiteID(r.Site)}
			if !want[ref] {
				continue
			}
			a := out[ref]
			switch r.State {
			case StateInBatch:
				a.Active++
			case StateHeld:
				a.Held++
			default:
				a.Queued++
			}
			if (r.State == StateHeld || r.State == StateRetry) && len(a.Notes) < maxNotes {
				if note := userNote(r.Hold, r.Message); note != "" {
					a.Notes = append(a.Notes, r.LFN+": "+note)
				}
			}
			out[ref] = a
		}
		for _, r := range cancelled {
			ref := ReplicaRef{Block: inventory.BlockID(r.Block), Site: inventory.SiteID(r.Site)}
			if !want[ref] {
				continue
			}
			a := out[ref]
			a.Cancelled += r.N
			a.CancelNote = r.Message
			out[ref] = a
		}
	}
	return out, nil
}
