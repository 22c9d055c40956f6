package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/db"
)

// recordedAccesses gives the Dealer's popularity plugin the dataset
// accesses the system records (detox_accesses: `dynamo access record`,
// `dynamo access import` of an experiment's own popularity feed, and the
// files projects deliver), summed over sites per dataset and day.
type recordedAccesses struct{ d *db.DB }

var _ dealer.AccessSource = recordedAccesses{}

func (a recordedAccesses) DatasetAccesses(ctx context.Context, since int64) ([]dealer.DatasetAccess, error) {
	var rows []struct {
		Dataset string `db:"dataset_name"`
		Day     int64  `db:"day"`
		N       int64  `db:"n"`
	}
	if err := a.d.SelectContext(ctx, &rows, `SELECT dataset_name, day, SUM(num_access) AS n FROM detox_accesses
		WHERE day >= ? GROUP BY dataset_name, day`, since); err != nil {
		return nil, fmt.Errorf("read dataset accesses: %w", err)
	}
	out := make([]dealer.DatasetAccess, len(rows))
	for i, r := range rows {
		out[i] = dealer.DatasetAccess{Dataset: r.Dataset, Time: r.Day, Count: int(min(r.N, int64(^uint32(0)>>1)))}
	}
	return out, nil
}

// detoxProtection gives the Dealer's balancer what the latest Detox cycle
// of the partition decided: per site, the protected bytes over the quota,
// and the datasets kept there only because they are last copies (the
// balancer's candidates to copy elsewhere).
type detoxProtection struct{ h *detox.History }

var _ dealer.ProtectionSource = detoxProtection{}

func (p detoxProtection) LatestProtection(ctx context.Context, partition string) (*dealer.Protection, error) {
	c, err := p.h.Latest(ctx, partition)
	if errors.Is(err, detox.ErrNoCycle) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sites, err := p.h.Sites(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	out := &dealer.Protection{Cycle: c.ID, Fractions: map[string]float64{}, LastCopies: map[string][]string{}}
	for _, s := range sites {
		if s.Quota > 0 {
			out.Fractions[s.Site] = float64(s.ProtectedBytes) / float64(s.Quota)
		}
	}
	const page = 5000
	for off := 0; ; off += page {
		rows, err := p.h.Replicas(ctx, c.ID, "", "", page, off)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.Decision == detox.DecisionProtect.String() && r.Reason == string(detox.ReasonLastCopy) {
				out.LastCopies[r.Site] = append(out.LastCopies[r.Site], r.Dataset)
			}
		}
		if len(rows) < page {
			return out, nil
		}
	}
}
