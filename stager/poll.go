package stager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/srm/client"
)

// SRM status codes the poller interprets.
const (
	codeQueued     = "SRM_REQUEST_QUEUED"
	codeInProgress = "SRM_REQUEST_INPROGRESS"
	codePinned     = "SRM_FILE_PINNED"
	codeSuccess    = "SRM_SUCCESS"
	codeSpace      = "SRM_SPACE_AVAILABLE"
	codeInvalidReq = "SRM_INVALID_REQUEST"
)

// Run loads the persisted requests (resuming polls, pending releases and
// owed webhooks of an earlier process) and polls until ctx ends. It
// returns nil on cancellation after its workers stopped; requests in
// flight stay persisted and are resumed by the next Run.
func (s *Stager) Run(ctx context.Context) error {
	active, err := s.loadActive(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("stager: Run called twice")
	}
	s.running = true
	type owedHook struct {
		q   *req
		res Result
	}
	var owed []owedHook
	resumed := 0
	for _, q := range active {
		if _, ok := s.reqs[q.ID]; ok {
			continue // submitted in this process before Run
		}
		resumed++
		s.reqs[q.ID] = q
		if q.Notified == 0 && q.Webhook != "" {
			owed = append(owed, owedHook{q, q.result()})
		}
	}
	s.mu.Unlock()
	s.log.WithField("requests", resumed).Info("stager resumed persisted requests")
	for _, o := range owed {
		s.deliverAsync(ctx, o.q, o.res)
	}

	sem := make(chan struct{}, s.cfg.Workers)
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	gc := time.NewTicker(gcInterval)
	defer gc.Stop()
	defer s.wg.Wait()
	for {
		for _, q := range s.due() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				s.unbusy(q)
				return nil
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-sem }()
				s.step(ctx, q)
			}()
		}
		s.opt.Metrics.setActive(s.Active())
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.wake:
		case <-gc.C:
			if n, err := s.gc(ctx, s.now()); err != nil {
				s.log.WithError(err).Warn("deleting old requests failed")
			} else if n > 0 {
				s.log.WithField("requests", n).Debug("deleted finished requests past retention")
			}
		}
	}
}

// gcInterval is how often finished requests past Config.Retention are
// deleted.
const gcInterval = 10 * time.Minute

// gc deletes the rows of requests that finished (nothing held at the SE,
// nothing owed to a webhook) more than Retention ago.
func (s *Stager) gc(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.d.ExecContext(ctx, `DELETE FROM stager_requests WHERE state IN (?, ?, ?, ?, ?, ?) AND cleanup = 0 AND notified = 1 AND updated < ?`,
		StateDone, StateReleased, StateFailed, StateTimedOut, StateAborted, StateExpired, now.Add(-s.cfg.Retention).UnixNano())
	if err != nil {
		return 0, fmt.Errorf("stager: gc: %w", err)
	}
	return res.RowsAffected()
}

// due marks and returns the requests to work on now.
func (s *Stager) due() []*req {
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*req
	for _, q := range s.reqs {
		if q.busy {
			continue
		}
		work := q.want != "" ||
			(!q.State.Final() && q.State != StateReady && (q.NextPoll <= now || q.Deadline <= now)) ||
			(q.State == StateReady && q.PinUntil <= now) ||
			(q.Cleanup == 1 && q.State.Final() && q.NextPoll <= now)
		if work {
			q.busy = true
			out = append(out, q)
		}
	}
	return out
}

func (s *Stager) unbusy(q *req) {
	s.mu.Lock()
	q.busy = false
	s.prune(q)
	s.mu.Unlock()
}

// prune forgets q once nothing is left to do for it (s.mu held).
func (s *Stager) prune(q *req) {
	if q.State.Final() && q.Cleanup == 0 && q.Notified == 1 && !q.busy && q.want == "" {
		delete(s.reqs, q.ID)
	}
}

// step advances one request. The caller marked it busy, so no other worker
// touches it; step works on a private copy and publishes it under s.mu,
// so that Lookup and Release never see a half-made change.
func (s *Stager) step(ctx context.Context, shared *req) {
	defer s.unbusy(shared)
	s.mu.Lock()
	want := shared.want
	shared.want = ""
	cp := *shared
	s.mu.Unlock()
	q := &cp
	before := q.State
	now := s.now()
	switch {
	case q.State == StateReady && want != "":
		q.State = want
		q.Cleanup = 1
		if want == StateAborted {
			q.Error = "aborted by its owner"
		}
	case q.State == StateReady && now.UnixNano() >= q.PinUntil:
		q.State, q.Cleanup = StateExpired, 1
		q.Error = fmt.Sprintf("not released within the pin lifetime %v", time.Duration(q.PinLifetime))
	case !q.State.Final() && want != "":
		q.State, q.Error = StateAborted, "aborted by its owner before completion"
		q.Cleanup = hasTokens(q)
	case !q.State.Final() && now.UnixNano() >= q.Deadline:
		q.State, q.Error = StateTimedOut, fmt.Sprintf("not complete after %v", time.Duration(q.Deadline-q.Created))
		q.Cleanup = hasTokens(q)
	case q.State == StateQueued && q.Kind == KindGet:
		s.submitGet(ctx, q)
	case q.State == StatePolling:
		s.pollGet(ctx, q)
	case q.State == StateQueued:
		s.runSync(ctx, q)
	}
	if q.Cleanup == 1 && q.State.Final() {
		if err := s.cleanup(ctx, q); err != nil {
			s.log.WithError(err).WithField("request", q.ID).Warn("releasing at the SE failed; will retry")
			q.Delay = int64(nextDelay(time.Duration(q.Delay), 0, s.cfg.BackoffStart, s.cfg.BackoffCap))
			q.NextPoll = s.now().Add(time.Duration(q.Delay)).UnixNano()
		} else {
			q.Cleanup = 0
		}
	}
	notify := q.State != before && (q.State == StateReady || (q.State.Final() && q.State != StateReleased))
	q.Updated = s.now().UnixNano()
	s.mu.Lock()
	if notify && q.Webhook != "" {
		shared.Notified = 0
	}
	q.Notified = shared.Notified // owned by the webhook delivery
	w, b := shared.want, shared.busy
	*shared = *q
	shared.want, shared.busy = w, b
	s.mu.Unlock()
	if err := s.save(context.WithoutCancel(ctx), q); err != nil {
		s.log.WithError(err).WithField("request", q.ID).Error("persisting request state")
	}
	if q.State != before {
		s.log.WithField("request", q.ID).WithField("kind", q.Kind).WithField("state", q.State).WithField("error", q.Error).Debug("stager request changed")
		if q.State.Final() {
			s.opt.Metrics.finished(q.Kind, q.State)
		}
	}
	if notify {
		s.notify(ctx, shared, q.result())
	}
}

func hasTokens(q *req) int {
	if q.Token != "" || q.DestToken != "" {
		return 1
	}
	return 0
}

// srmFailure reports whether err is the SE's answer (as opposed to a
// transport problem worth retrying).
func srmFailure(err error) (*client.Error, bool) {
	var e *client.Error
	if errors.As(err, &e) && !errors.Is(err, client.ErrInternal) {
		return e, true
	}
	return nil, false
}

// retry schedules the next attempt after a transport error.
func (s *Stager) retry(q *req, err error, what string) {
	s.opt.Metrics.srmError()
	s.log.WithError(err).WithField("request", q.ID).Warn(what + " failed; will retry")
	q.Error = err.Error()
	q.Delay = int64(nextDelay(time.Duration(q.Delay), 0, s.cfg.BackoffStart, s.cfg.BackoffCap))
	q.NextPoll = s.now().Add(time.Duration(q.Delay)).UnixNano()
}

func (s *Stager) callCtx(ctx context.Context, q *req) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, minTime(s.now().Add(s.cfg.CallTimeout), time.Unix(0, q.Deadline)))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *Stager) submitGet(ctx context.Context, q *req) {
	c, err := s.resolve(q, q.SURL)
	if err != nil {
		q.State, q.Error = StateFailed, err.Error()
		return
	}
	// Neither the request's deadline nor a shutdown (Run's ctx) cuts the
	// submission short: an SE that stored the request must get the chance
	// to hand us its token, or nobody could ever release it. Run waits for
	// this worker before returning.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CallTimeout)
	defer cancel()
	r, err := c.PrepareToGet(cctx, []string{q.SURL}, q.protocols(), time.Duration(q.PinLifetime))
	s.opt.Metrics.poll()
	if err != nil {
		if e, ok := srmFailure(err); ok {
			q.State, q.Error = StateFailed, e.Error()
			return
		}
		s.retry(q, err, "srmPrepareToGet")
		return
	}
	q.Token, q.Delay = r.Token, 0
	s.applyGet(q, r)
}

func (s *Stager) pollGet(ctx context.Context, q *req) {
	c, err := s.resolve(q, q.SURL)
	if err != nil {
		// The owner's credential is gone (expired): the SE knows the
		// token only under that identity, so cleanup tries with what is
		// left and the SE's pin lifetime does the rest.
		q.State, q.Error, q.Cleanup = StateFailed, err.Error(), hasTokens(q)
		return
	}
	cctx, cancel := s.callCtx(ctx, q)
	defer cancel()
	r := &client.Request{Token: q.Token, Type: "srmPrepareToGet", Code: codeQueued}
	err = c.Status(cctx, r)
	s.opt.Metrics.poll()
	q.Polls++
	if err != nil {
		if e, ok := srmFailure(err); ok {
			q.State, q.Error = StateFailed, e.Error()
			q.Cleanup = 0
			if e.Code != codeInvalidReq { // the SE still knows the token
				q.Cleanup = 1
			}
			return
		}
		s.retry(q, err, "srmStatusOfGetRequest")
		return
	}
	s.applyGet(q, r)
}

// applyGet moves q according to the SE's view of its one file.
func (s *Stager) applyGet(q *req, r *client.Request) {
	now := s.now()
	if len(r.Files) == 0 {
		if r.Code == codeQueued || r.Code == codeInProgress {
			s.later(q, 0)
			return
		}
		q.State, q.Error, q.Cleanup = StateFailed, "srmPrepareToGet: "+r.Code+" without file status", hasTokens(q)
		return
	}
	f := r.Files[0]
	switch f.Code {
	case codePinned, codeSuccess:
		q.State, q.TURL, q.Error = StateReady, f.TURL, ""
		q.PinUntil = now.Add(time.Duration(q.PinLifetime)).UnixNano()
		q.Cleanup = 1
	case codeQueued, codeInProgress:
		s.later(q, f.EstimatedWait)
	default:
		q.State, q.Error, q.Cleanup = StateFailed, f.Err("srmPrepareToGet").Error(), hasTokens(q)
	}
}

// later keeps q polling after the next backoff delay.
func (s *Stager) later(q *req, serverWait time.Duration) {
	q.State = StatePolling
	q.Delay = int64(nextDelay(time.Duration(q.Delay), serverWait, s.cfg.BackoffStart, s.cfg.BackoffCap))
	q.NextPoll = s.now().Add(time.Duration(q.Delay)).UnixNano()
}

// cleanup gives back what q holds at the SE: the pin of a released or
// expired get (srmReleaseFiles), anything else by srmAbortRequest, each
// falling back on the other when the SE says it does not apply. It fails
// only when the SE could not be reached, so that the poller retries.
func (s *Stager) cleanup(ctx context.Context, q *req) error {
	for _, tt := range [][2]string{{q.Token, q.SURL}, {q.DestToken, q.Dest}} {
		tok := tt[0]
		if tok == "" {
			continue
		}
		c, err := s.resolve(q, tt[1])
		if err != nil && OwnerUser(q.Owner) != "" {
			// Without the owner's credential the station tries itself:
			// an SE that lets it release does, one that does not answers
			// so, and then the pin's own lifetime frees it.
			s.log.WithError(err).WithField("request", q.ID).Debug("releasing with the station's credential")
			c, err = s.opt.Resolver(tt[1])
		}
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		release := func() error { _, err := c.ReleaseFiles(cctx, tok); return err }
		abort := func() error { return c.AbortRequest(cctx, tok) }
		first, second := abort, release
		if q.State == StateReleased || q.State == StateExpired || q.State == StateDone {
			first, second = release, abort
		}
		err = first()
		if _, ok := srmFailure(err); ok {
			err = second()
		}
		cancel()
		if e, ok := srmFailure(err); ok {
			// Neither applies: the SE holds nothing for this token any more
			// (final, already released, or forgotten).
			s.log.WithField("request", q.ID).WithField("token", tok).WithField("srm", e.Code).Debug("nothing to release")
			err = nil
		}
		if err != nil {
			s.opt.Metrics.srmError()
			return fmt.Errorf("releasing token %s: %w", tok, err)
		}
	}
	return nil
}
