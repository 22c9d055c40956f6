package stager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/srm/client"
)

// runSync carries out ls, mkdir, delete and copy in the worker. The SE
// answers these directly (copy polls its own get and put here), so the
// request stays "queued" in the database while it runs: a restart redoes
// it (each is idempotent; a copy first gives back its earlier tokens).
func (s *Stager) runSync(ctx context.Context, q *req) {
	a, err := s.access(q)
	if err != nil {
		q.State, q.Error = StateFailed, err.Error()
		return
	}
	c, err := a.Resolver(q.SURL)
	if err != nil {
		q.State, q.Error = StateFailed, err.Error()
		return
	}
	cctx, cancel := context.WithDeadline(ctx, time.Unix(0, q.Deadline))
	defer cancel()
	switch q.Kind {
	case KindLs:
		var ents []client.Entry
		if ents, err = c.List(cctx, q.SURL, 0); err == nil {
			b, _ := json.Marshal(ents) // plain structs
			q.ResultJSON = string(b)
		}
	case KindMkdir:
		if err = c.Mkdir(cctx, q.SURL); errors.Is(err, client.ErrExists) {
			err = nil
		}
	case KindDelete:
		var st []client.FileStatus
		st, err = c.Rm(cctx, q.SURL)
		if errors.Is(err, client.ErrNotFound) || (len(st) == 1 && st[0].Code == "SRM_INVALID_PATH") {
			err = nil
		}
	case KindCopy:
		err = s.copy(cctx, a, c, q)
	}
	s.opt.Metrics.poll()
	switch _, srmErr := srmFailure(err); {
	case err == nil:
		q.State, q.Error = StateDone, ""
		q.Cleanup = hasTokens(q)
	case srmErr || errors.Is(err, errCopy):
		q.State, q.Error = StateFailed, err.Error()
		q.Cleanup = hasTokens(q)
	case ctx.Err() != nil:
		// Shutting down: leave it queued for the next Run.
	default:
		s.retry(q, err, string(q.Kind))
	}
}

// errCopy marks copy failures that retrying will not fix.
var errCopy = errors.New("copy failed")

// copy: get at the source, put at the destination (overwriting: a retried
// copy must succeed), move the bytes, put done. The tokens are persisted as
// soon as known so that a crash still releases them.
func (s *Stager) copy(ctx context.Context, a Access, src SRM, q *req) error {
	if hasTokens(q) == 1 { // a previous attempt's leftovers
		if err := s.cleanup(ctx, q); err != nil {
			return err
		}
		q.Token, q.DestToken = "", ""
	}
	if a.Mover == nil {
		return fmt.Errorf("%w: %w", errCopy, ErrNoMover)
	}
	dst, err := a.Resolver(q.Dest)
	if err != nil {
		return fmt.Errorf("%w: %w", errCopy, err)
	}
	g, err := src.PrepareToGet(ctx, []string{q.SURL}, q.protocols(), time.Duration(q.PinLifetime))
	if err != nil {
		return err
	}
	q.Token = g.Token
	s.persist(ctx, q)
	srcTURL, err := s.wait(ctx, src, q, g, codePinned, codeSuccess)
	if err != nil {
		return err
	}
	p, err := dst.PrepareToPut(ctx, []client.PutFile{{SURL: q.Dest, Size: -1}}, q.protocols(), true)
	if err != nil {
		return err
	}
	q.DestToken = p.Token
	s.persist(ctx, q)
	dstTURL, err := s.wait(ctx, dst, q, p, codeSpace, codeSuccess)
	if err != nil {
		return err
	}
	if err := a.Mover.Move(ctx, srcTURL, dstTURL); err != nil {
		return fmt.Errorf("%w: moving %s to %s: %w", errCopy, srcTURL, dstTURL, err)
	}
	st, err := dst.PutDone(ctx, p.Token, q.Dest)
	if err == nil && len(st) == 1 {
		err = st[0].Err("srmPutDone")
	}
	if err != nil {
		return err
	}
	q.TURL = dstTURL
	return nil
}

// wait polls r with the stager's backoff until its file reaches one of ok.
func (s *Stager) wait(ctx context.Context, c SRM, q *req, r *client.Request, ok ...string) (string, error) {
	var delay time.Duration
	for {
		if len(r.Files) == 1 {
			f := r.Files[0]
			for _, o := range ok {
				if f.Code == o {
					return f.TURL, nil
				}
			}
			if f.Code != codeQueued && f.Code != codeInProgress {
				return "", f.Err(r.Type)
			}
			delay = nextDelay(delay, f.EstimatedWait, s.cfg.BackoffStart, s.cfg.BackoffCap)
		} else {
			delay = nextDelay(delay, 0, s.cfg.BackoffStart, s.cfg.BackoffCap)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(delay):
		}
		if err := c.Status(ctx, r); err != nil {
			return "", err
		}
		q.Polls++
	}
}

func (s *Stager) persist(ctx context.Context, q *req) {
	q.Updated = s.now().UnixNano()
	if err := s.save(context.WithoutCancel(ctx), q); err != nil {
		s.log.WithError(err).WithField("request", q.ID).Error("persisting request token")
	}
}
