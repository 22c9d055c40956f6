package detox

import (
	"context"
	"errors"
	"fmt"
)

// What Detox records that the Dealer plans with: the recorded dataset
// accesses (its popularity plugin) and the latest cycle's protection (its
// balancer). They are read here, where the tables and the decisions are
// defined; the Dealer sees them through its own source interfaces.

// DailyAccess is a dataset's accesses on one day, summed over sites.
type DailyAccess struct {
	Dataset string
	Day     int64 // Unix seconds of the day's start (UTC)
	Count   int64
}

// DailyAccesses sums the recorded accesses (RecordAccess: `dynamo access
// record|import`, the files projects deliver) per dataset and day, from
// the day starting at since (Unix seconds) on.
func (s DBAccesses) DailyAccesses(ctx context.Context, since int64) ([]DailyAccess, error) {
	var rows []struct {
		Dataset string `db:"dataset_name"`
		Day     int64  `db:"day"`
		N       int64  `db:"n"`
	}
	if err := s.DB.SelectContext(ctx, &rows, `SELECT dataset_name, day, SUM(num_access) AS n FROM detox_accesses
		WHERE day >= ? GROUP BY dataset_name, day`, since); err != nil {
		return nil, fmt.Errorf("read dataset accesses: %w", err)
	}
	out := make([]DailyAccess, len(rows))
	for i, r := range rows {
		out[i] = DailyAccess{Dataset: r.Dataset, Day: r.Day, Count: r.N}
	}
	return out, nil
}

// Protection is what one cycle decided about protected data: per site,
// the protected bytes over the quota, and the datasets kept there only
// because they are last copies (what a balancer would copy elsewhere to
// free the site).
type Protection struct {
	Cycle      int64
	Fractions  map[string]float64  // by site name
	LastCopies map[string][]string // site name -> dataset names
}

// LatestProtection is the Protection of the partition's latest cycle, or
// nil when it has none yet.
func (h *History) LatestProtection(ctx context.Context, partition string) (*Protection, error) {
	c, err := h.Latest(ctx, partition)
	if errors.Is(err, ErrNoCycle) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sites, err := h.Sites(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	out := &Protection{Cycle: c.ID, Fractions: map[string]float64{}, LastCopies: map[string][]string{}}
	for _, s := range sites {
		if s.Quota > 0 {
			out.Fractions[s.Site] = float64(s.ProtectedBytes) / float64(s.Quota)
		}
	}
	const page = 5000
	for off := 0; ; off += page {
		rows, err := h.Replicas(ctx, c.ID, "", "", page, off)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.Decision == DecisionProtect.String() && r.Reason == string(ReasonLastCopy) {
				out.LastCopies[r.Site] = append(out.LastCopies[r.Site], r.Dataset)
			}
		}
		if len(rows) < page {
			return out, nil
		}
	}
}
