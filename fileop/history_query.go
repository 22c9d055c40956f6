package fileop

import (
	"context"
	"fmt"
	"strings"
)

// HistoryQuery selects recorded attempts of one operation. Empty fields
// do not filter. Sites match either end of a transfer; Sources and
// Destinations one end each. Blocks limits to files of those blocks (a
// dataset's). Since and Until bound the finish time (unix seconds,
// inclusive). Before pages: only attempts with a smaller id. Limit is
// 1..1000 (0: 100).
type HistoryQuery struct {
	Op           Op
	Sites        []int32
	Sources      []int32
	Destinations []int32
	Blocks       []int32
	Since, Until int64
	Outcomes     []string
	Before       int64
	Limit        int
}

// QueryHistory returns the attempts matching q, newest first, each with
// the block of its file.
func QueryHistory(ctx context.Context, d interface {
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}, q HistoryQuery) ([]HistoryEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit = min(q.Limit, 1000)
	where := []string{"h.op = ?"}
	args := []any{string(q.Op)}
	in := func(col string, ids []int32) {
		if len(ids) == 0 {
			return
		}
		where = append(where, col+" IN (?"+strings.Repeat(", ?", len(ids)-1)+")")
		for _, id := range ids {
			args = append(args, id)
		}
	}
	if len(q.Sites) > 0 {
		ph := "?" + strings.Repeat(", ?", len(q.Sites)-1)
		where = append(where, "(h.site_id IN ("+ph+") OR h.source_site_id IN ("+ph+"))")
		for range 2 {
			for _, id := range q.Sites {
				args = append(args, id)
			}
		}
	}
	in("h.source_site_id", q.Sources)
	in("h.site_id", q.Destinations)
	in("s.block_id", q.Blocks)
	if len(q.Outcomes) > 0 {
		where = append(where, "h.outcome IN (?"+strings.Repeat(", ?", len(q.Outcomes)-1)+")")
		for _, o := range q.Outcomes {
			args = append(args, o)
		}
	}
	if q.Since > 0 {
		where, args = append(where, "h.finished >= ?"), append(args, q.Since)
	}
	if q.Until > 0 {
		where, args = append(where, "h.finished <= ?"), append(args, q.Until)
	}
	if q.Before > 0 {
		where, args = append(where, "h.id < ?"), append(args, q.Before)
	}
	args = append(args, q.Limit)
	out := []HistoryEntry{}
	err := d.SelectContext(ctx, &out, `SELECT h.id, h.subscription_id, h.op, h.file_id, h.lfn, h.source_site_id, h.site_id, h.backend,
		h.outcome, h.mode, h.bytes, h.duration_ns, h.checksum, h.exit_code, h.code, h.message, h.finished, COALESCE(s.block_id, 0) AS block_id
		FROM `+TableHistory+` h LEFT JOIN `+TableSubscriptions+` s ON s.id = h.subscription_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY h.id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s history: %w", q.Op, err)
	}
	return out, nil
}
