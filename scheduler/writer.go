package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/inventory"
)

// OwnInventoryWrites seals the inventory store with the scheduler as its
// one writer: from then on every Store.Write, whoever calls it, goes
// through Scheduler.Write and its lease fence, and only the scheduler holds
// the capability to write the database directly. `dynamo serve` calls it
// once, at assembly; a second call fails (the store is sealed).
func (s *Scheduler) OwnInventoryWrites() error {
	c, err := s.store.Seal(s)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.raw = c
	s.mu.Unlock()
	return nil
}

// SetAddress sets the REST API URL advertised with the writer lease, so
// that a refused write can say where to go. Call it before Run.
func (s *Scheduler) SetAddress(url string) {
	s.lease.addrMu.Lock()
	s.lease.address = url
	s.lease.addrMu.Unlock()
}

// Worker is a background writer that runs only while this server holds
// the writer lease: started when it takes the lease, stopped (its context
// cancelled, and waited for) before it steps down or releases the lease.
type Worker struct {
	Name string
	Run  func(ctx context.Context) error
}

// AddWorker registers a lease-scoped worker. Call it before Run.
func (s *Scheduler) AddWorker(w Worker) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("scheduler: workers must be added before Run")
	}
	s.workers = append(s.workers, w)
	return nil
}

// startWorkers starts every worker for term t.
func (s *Scheduler) startWorkers(t *term) {
	s.mu.Lock()
	ws := append([]Worker(nil), s.workers...)
	s.mu.Unlock()
	for _, w := range ws {
		t.workers.Add(1)
		go func() {
			defer t.workers.Done()
			log := s.log.WithField("worker", w.Name)
			log.Info("worker started: this server holds the writer lease")
			if err := w.Run(t.work); err != nil && t.work.Err() == nil {
				log.WithError(err).Error("worker stopped with an error")
				return
			}
			log.Info("worker stopped")
		}()
	}
}

// stopWorkers cancels the term's workers and waits for them, so that no
// background writer of this server overlaps with the next holder's.
func (s *Scheduler) stopWorkers(t *term) {
	t.stopWork()
	t.workers.Wait()
}

// rawWrite writes through the capability when the store is sealed, else
// through the store (tests, tools that own their database).
func (s *Scheduler) rawWrite(ctx context.Context, at time.Time, fn func(*inventory.Txn) error) (inventory.WriteResult, error) {
	s.mu.Lock()
	c := s.raw
	s.mu.Unlock()
	if c != nil {
		return c.Write(ctx, at, fn)
	}
	return s.store.Write(ctx, at, fn)
}

// fence reports why this server may not write now (nil: it may).
func (s *Scheduler) fence() error {
	if !s.Leader() {
		return s.notWriter()
	}
	if !s.lease.valid(time.Now(), s.cfg.Heartbeat) {
		return fmt.Errorf("%w: %w", ErrLeaseLost, &inventory.NotWriterError{RetryAfter: max(time.Second, s.cfg.Heartbeat)})
	}
	return nil
}

// MayWrite reports why this server may not write the inventory now: nil
// on the lease holder, else an error that is ErrNotLeader or ErrLeaseLost
// and an inventory.NotWriterError naming the holder. The REST API refuses
// writes with it on a standby.
func (s *Scheduler) MayWrite() error { return s.fence() }

// notWriter is ErrNotLeader with the holder as last seen and how long
// until a retry makes sense (the end of its lease, or a heartbeat).
func (s *Scheduler) notWriter() error {
	e := &inventory.NotWriterError{RetryAfter: s.cfg.Heartbeat}
	if l := s.seen.Load(); l != nil {
		if l.Live(time.Now()) {
			e.Holder, e.Address = l.Holder, l.Address
		} else {
			e.RetryAfter = s.cfg.Heartbeat
		}
	}
	if e.RetryAfter < time.Second {
		e.RetryAfter = time.Second
	}
	return fmt.Errorf("%w: %w", ErrNotLeader, e)
}

// fencedWrite is one write under the lease fence. A write that finds the
// change log ahead of this store (another process wrote: a CLI tool, a
// previous holder's last commit) replays the log and is retried once: the
// writer catches up instead of failing until the next heartbeat.
func (s *Scheduler) fencedWrite(ctx context.Context, at time.Time, fn func(*inventory.Txn) error, log *logrus.Entry) (inventory.WriteResult, error) {
	if err := s.fence(); err != nil {
		return inventory.WriteResult{}, err
	}
	res, err := s.rawWrite(ctx, at, fn)
	if err == nil || !errors.Is(err, inventory.ErrStale) {
		return res, err
	}
	n, cerr := s.store.CatchUp(context.WithoutCancel(ctx))
	if cerr != nil {
		log.WithError(cerr).Error("replaying the change log after a conflicting write")
		return res, err
	}
	log.WithField("replayed", n).Warn("the change log was ahead of this writer: replayed it; retrying the write once")
	if ferr := s.fence(); ferr != nil {
		return inventory.WriteResult{}, ferr
	}
	res, err = s.rawWrite(ctx, at, fn)
	if err != nil && errors.Is(err, inventory.ErrStale) {
		if _, cerr := s.store.CatchUp(context.WithoutCancel(ctx)); cerr != nil {
			log.WithError(cerr).Error("replaying the change log after a conflicting write")
		}
		return res, fmt.Errorf("write conflicted twice with another writer of the change log: %w", err)
	}
	return res, err
}

// Write applies fn to the inventory in one transaction on behalf of a
// component other than an application (REST writes, injections, file
// operation results), with the same fence as plans: on a standby it fails
// with ErrNotLeader (an inventory.NotWriterError naming the holder), and
// with ErrLeaseLost when the lease is about to expire. It does not wait for
// the writer slot: the store serializes writes and validates each against
// the current state. Scheduler implements inventory.Writer.
func (s *Scheduler) Write(ctx context.Context, at time.Time, fn func(*inventory.Txn) error) (inventory.WriteResult, error) {
	return s.fencedWrite(ctx, at, fn, s.log)
}

var _ inventory.Writer = (*Scheduler)(nil)

// seenLease is the lease as this server last read it.
type seenLease struct {
	mu sync.Mutex
	l  *LeaseInfo
}

func (p *seenLease) Load() *LeaseInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.l
}

func (p *seenLease) Store(l LeaseInfo) {
	p.mu.Lock()
	p.l = &l
	p.mu.Unlock()
}
