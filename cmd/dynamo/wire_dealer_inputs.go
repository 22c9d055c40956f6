package main

import (
	"context"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
)

// recordedAccesses gives the Dealer's popularity plugin the dataset
// accesses Detox records, summed over sites per dataset and day.
type recordedAccesses struct{ detox.DBAccesses }

var _ dealer.AccessSource = recordedAccesses{}

func (a recordedAccesses) DatasetAccesses(ctx context.Context, since int64) ([]dealer.DatasetAccess, error) {
	rows, err := a.DailyAccesses(ctx, since)
	if err != nil {
		return nil, err
	}
	out := make([]dealer.DatasetAccess, len(rows))
	for i, r := range rows {
		out[i] = dealer.DatasetAccess{Dataset: r.Dataset, Time: r.Day, Count: int(min(r.Count, int64(^uint32(0)>>1)))}
	}
	return out, nil
}

// detoxProtection gives the Dealer's balancer what the latest Detox cycle
// of the partition protected.
type detoxProtection struct{ h *detox.History }

var _ dealer.ProtectionSource = detoxProtection{}

func (p detoxProtection) LatestProtection(ctx context.Context, partition string) (*dealer.Protection, error) {
	q, err := p.h.LatestProtection(ctx, partition)
	if q == nil || err != nil {
		return nil, err
	}
	return &dealer.Protection{Cycle: q.Cycle, Fractions: q.Fractions, LastCopies: q.LastCopies}, nil
}
