package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dynamo-go/dynamo/inventory"
)

// Offline is the writer of a process that is not a server (a CLI write
// run while no server holds the writer lease): it holds the writer lease
// itself for as long as it writes, so that a server starting meanwhile
// stands by instead of writing the same change log, and it seals the
// store so that every write is fenced by that lease, as in `dynamo serve`.
// Close releases the lease.
type Offline struct {
	lease *lease
	raw   *inventory.WriteCapability
	store *inventory.Store
	stop  context.CancelFunc
	done  sync.WaitGroup
}

// TakeOffline takes the writer lease for id (e.g. "cli:host:pid") and
// seals store with it. When a live holder has the lease it fails with an
// inventory.NotWriterError naming it: the work belongs to that server.
func TakeOffline(ctx context.Context, store *inventory.Store, id string, period time.Duration) (*Offline, error) {
	l := &lease{d: store.DB(), self: id, period: period}
	if err := l.ensure(ctx); err != nil {
		return nil, err
	}
	ok, err := l.tryAcquire(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	if !ok {
		cur, _ := ReadLease(ctx, store.DB())
		return nil, fmt.Errorf("%w: %w", ErrNotLeader, &inventory.NotWriterError{Holder: cur.Holder, Address: cur.Address,
			RetryAfter: max(time.Second, time.Until(cur.Expires))})
	}
	// Writes made under another holder since this store was loaded come
	// first.
	if _, err := store.CatchUp(ctx); err != nil {
		_ = l.release(context.WithoutCancel(ctx))
		return nil, err
	}
	o := &Offline{lease: l, store: store}
	if o.raw, err = store.Seal(o); err != nil {
		_ = l.release(context.WithoutCancel(ctx))
		return nil, err
	}
	hctx, stop := context.WithCancel(context.Background())
	o.stop = stop
	o.done.Add(1)
	go func() {
		defer o.done.Done()
		t := time.NewTicker(period / 3)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				_, _ = l.renew(hctx, time.Now()) // a failed renewal shows in valid()
			}
		}
	}()
	return o, nil
}

// Write writes while the lease is held with a third of its period to
// spare; behind the change log, it catches up and retries once.
func (o *Offline) Write(ctx context.Context, at time.Time, fn func(*inventory.Txn) error) (inventory.WriteResult, error) {
	if !o.lease.valid(time.Now(), o.lease.period/3) {
		return inventory.WriteResult{}, ErrLeaseLost
	}
	res, err := o.raw.Write(ctx, at, fn)
	if errors.Is(err, inventory.ErrStale) {
		if _, cerr := o.store.CatchUp(ctx); cerr == nil {
			res, err = o.raw.Write(ctx, at, fn)
		}
	}
	return res, err
}

// Close stops renewing and releases the lease.
func (o *Offline) Close() error {
	o.stop()
	o.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return o.lease.release(ctx)
}
