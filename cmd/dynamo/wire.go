package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/registry"
)

// This file connects components that do not import each other: each
// declares the narrow interface it needs, and the adapters here implement
// those interfaces over the component that has the data.

// registryRequests gives the Dealer the registry's copy requests.
type registryRequests struct{ s *registry.Store }

var _ dealer.RequestSource = registryRequests{}

func (r registryRequests) OpenCopyRequests(ctx context.Context) ([]dealer.CopyRequest, error) {
	reqs, err := r.s.ListRequests(ctx, registry.RequestFilter{Kind: registry.KindCopy,
		Statuses: []registry.Status{registry.StatusNew, registry.StatusActivated}})
	if err != nil {
		return nil, err
	}
	out := make([]dealer.CopyRequest, len(reqs))
	for i, q := range reqs {
		out[i] = dealer.CopyRequest{ID: q.ID, User: q.User, Status: dealer.RequestStatus(q.Status),
			Items: q.Items, Sites: q.Sites, Group: q.Group, N: q.N}
	}
	return out, nil
}

// UpdateCopyRequests moves each request to its new status. It is
// idempotent as the Dealer requires: a request already in the target
// status is left alone (the registry answers ErrConflict for it).
func (r registryRequests) UpdateCopyRequests(ctx context.Context, us []dealer.RequestUpdate) error {
	now := time.Now()
	for _, u := range us {
		to := registry.Status(u.Status)
		t := registry.Transition{To: to, Reason: u.Reason, Actor: "dealer",
			From: []registry.Status{registry.StatusNew, registry.StatusActivated}}
		err := r.s.UpdateRequest(ctx, registry.KindCopy, u.ID, t, now)
		if errors.Is(err, registry.ErrConflict) {
			cur, gerr := r.s.GetRequest(ctx, registry.KindCopy, u.ID)
			if gerr == nil && cur.Status == to {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("copy request %d -> %s: %w", u.ID, to, err)
		}
	}
	return nil
}
