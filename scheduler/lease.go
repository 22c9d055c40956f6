package scheduler

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
)

// leaseName is the row of the inventory writer lease.
const leaseName = "writer"

// LeaseInfo describes the writer lease as stored.
type LeaseInfo struct {
	Holder    string    `json:"holder"`
	Acquired  time.Time `json:"acquired"`
	Heartbeat time.Time `json:"heartbeat"`
	Expires   time.Time `json:"expires"`
	Epoch     int64     `json:"epoch"`
	// Address is the holder's REST API as it advertises it ("" if none).
	Address string `json:"address,omitempty"`
}

// Live reports whether someone holds the lease at now.
func (l LeaseInfo) Live(now time.Time) bool { return l.Holder != "" && now.Before(l.Expires) }

// lease is one server's handle on the writer lease row. Expiry is judged
// by the servers' clocks (keep them in NTP sync); the inventory change
// log's sequence numbers are the final fence, so a clock error can cost a
// failed write, never a duplicated or lost one.
type lease struct {
	d      *db.DB
	self   string
	period time.Duration

	addrMu  sync.Mutex
	address string // advertised with the lease

	mu    sync.Mutex
	epoch int64     // our epoch while we hold it, 0 if not
	until time.Time // by our clock, we hold it strictly before this
}

// ensure creates the lease row if it does not exist.
func (l *lease) ensure(ctx context.Context) error {
	_, err := l.d.ExecContext(ctx, `INSERT INTO scheduler_lease (name, holder, acquired_at, heartbeat_at, expires_at, epoch)
		VALUES (?, '', 0, 0, 0, 0)`, leaseName)
	if err != nil && !db.IsDuplicate(err) {
		return fmt.Errorf("writer lease: %w", err)
	}
	return nil
}

// tryAcquire takes the lease if it is free, expired, or was held under
// our own server id (a restart). It reports whether we hold it now.
func (l *lease) tryAcquire(ctx context.Context, now time.Time) (bool, error) {
	exp := now.Add(l.period)
	var epoch int64
	l.addrMu.Lock()
	addr := l.address
	l.addrMu.Unlock()
	err := l.d.InTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE scheduler_lease SET holder = ?, acquired_at = ?, heartbeat_at = ?, expires_at = ?,
			epoch = epoch + 1, address = ? WHERE name = ? AND (holder = '' OR holder = ? OR expires_at < ?)`,
			l.self, now.UnixNano(), now.UnixNano(), exp.UnixNano(), addr, leaseName, l.self, now.UnixNano())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			epoch = 0
			return err
		}
		return tx.GetContext(ctx, &epoch, "SELECT epoch FROM scheduler_lease WHERE name = ?", leaseName)
	})
	if err != nil {
		return false, fmt.Errorf("acquire writer lease: %w", err)
	}
	if epoch == 0 {
		return false, nil
	}
	l.mu.Lock()
	l.epoch, l.until = epoch, exp
	l.mu.Unlock()
	return true, nil
}

// renew extends the lease. It returns false when another server took it
// (our epoch is gone); an error means the database could not be reached,
// and the caller steps down once valid() turns false.
func (l *lease) renew(ctx context.Context, now time.Time) (bool, error) {
	l.mu.Lock()
	epoch := l.epoch
	l.mu.Unlock()
	if epoch == 0 {
		return false, nil
	}
	exp := now.Add(l.period)
	res, err := l.d.ExecContext(ctx, `UPDATE scheduler_lease SET heartbeat_at = ?, expires_at = ? WHERE name = ? AND holder = ? AND epoch = ?`,
		now.UnixNano(), exp.UnixNano(), leaseName, l.self, epoch)
	if err != nil {
		return false, fmt.Errorf("renew writer lease: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("renew writer lease: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n == 0 {
		l.epoch, l.until = 0, time.Time{}
		return false, nil
	}
	l.until = exp
	return true, nil
}

// valid reports whether we hold the lease at now with at least margin to
// spare (the margin covers the time a write takes).
func (l *lease) valid(now time.Time, margin time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch != 0 && now.Add(margin).Before(l.until)
}

// drop forgets the lease locally (after a loss).
func (l *lease) drop() {
	l.mu.Lock()
	l.epoch, l.until = 0, time.Time{}
	l.mu.Unlock()
}

// release gives the lease up so that a standby takes over at once.
func (l *lease) release(ctx context.Context) error {
	l.mu.Lock()
	epoch := l.epoch
	l.epoch, l.until = 0, time.Time{}
	l.mu.Unlock()
	if epoch == 0 {
		return nil
	}
	_, err := l.d.ExecContext(ctx, "UPDATE scheduler_lease SET holder = '', expires_at = 0 WHERE name = ? AND holder = ? AND epoch = ?",
		leaseName, l.self, epoch)
	if err != nil {
		return fmt.Errorf("release writer lease: %w", err)
	}
	return nil
}

// ReadLease returns the lease row (zero LeaseInfo if none).
func ReadLease(ctx context.Context, d *db.DB) (LeaseInfo, error) {
	var r struct {
		Holder    string `db:"holder"`
		Acquired  int64  `db:"acquired_at"`
		Heartbeat int64  `db:"heartbeat_at"`
		Expires   int64  `db:"expires_at"`
		Epoch     int64  `db:"epoch"`
		Address   string `db:"address"`
	}
	err := d.GetContext(ctx, &r, "SELECT holder, acquired_at, heartbeat_at, expires_at, epoch, address FROM scheduler_lease WHERE name = ?", leaseName)
	if errors.Is(err, sql.ErrNoRows) {
		return LeaseInfo{}, nil
	}
	if err != nil {
		return LeaseInfo{}, fmt.Errorf("read writer lease: %w", err)
	}
	return LeaseInfo{Holder: r.Holder, Acquired: time.Unix(0, r.Acquired).UTC(), Heartbeat: time.Unix(0, r.Heartbeat).UTC(),
		Expires: time.Unix(0, r.Expires).UTC(), Epoch: r.Epoch, Address: r.Address}, nil
}
