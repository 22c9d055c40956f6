package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// callBudget is what WithCallTimeout attaches to a context.
type callBudget struct {
	d time.Duration
	// abort cancels the whole request context. InTx uses it because the
	// statements of a transaction run with the caller's context, which
	// only the caller's cancel can interrupt.
	abort context.CancelCauseFunc
}

type callBudgetKey struct{}

// WithCallTimeout returns a context under which every call of a DB (a
// query with the reading of its rows, an exec, or a whole InTx
// transaction) ends after at most d with an error classified
// KindUnavailable (ErrTimeout), and its cancel function, to call when the
// work is done.
//
// Request handlers use it: a stalled or unreachable database then fails a
// request in bounded time instead of holding it (and a pooled connection)
// forever. Background work does not: it may legitimately run statements
// longer than a request should wait. A transaction that runs past d
// cancels the whole returned context, since its statements run with it:
// the request is failing by then anyway.
func WithCallTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ctx = context.WithValue(ctx, callBudgetKey{}, callBudget{d: d, abort: cancel})
	return ctx, func() { cancel(nil) }
}

// CallTimeout returns the per-call deadline that WithCallTimeout attached
// to ctx, or 0.
func CallTimeout(ctx context.Context) time.Duration {
	b, _ := ctx.Value(callBudgetKey{}).(callBudget)
	return b.d
}

// bound returns ctx limited to its call budget (ctx itself without one)
// and the function that releases the limit.
func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	b, ok := ctx.Value(callBudgetKey{}).(callBudget)
	if !ok || b.d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, b.d, ErrTimeout)
}

// boundRows is bound for calls that return rows the caller reads later:
// the limit is released by its own timer instead of at return, so that it
// covers reading the rows too.
func boundRows(ctx context.Context) context.Context {
	b, ok := ctx.Value(callBudgetKey{}).(callBudget)
	if !ok || b.d <= 0 {
		return ctx
	}
	cctx, cancel := context.WithCancelCause(ctx)
	time.AfterFunc(b.d, func() { cancel(ErrTimeout) })
	return cctx
}

// timedOut turns the error of a call whose bounded context ended because
// of its budget into one that says so (ErrTimeout, KindUnavailable). The
// driver reports such a call in its own words ("invalid connection",
// "context canceled"); those must neither reach a client nor be mistaken
// for a problem with the statement.
func timedOut(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || !errors.Is(context.Cause(ctx), ErrTimeout) || errors.Is(err, ErrTimeout) {
		return err
	}
	return fmt.Errorf("%w (limit %s): %w", ErrTimeout, CallTimeout(ctx), err)
}

// The methods below shadow *sqlx.DB's so that every call made through a DB
// honours a call budget. Calls inside a transaction go through *sqlx.Tx
// and are covered by InTx's budget.

// ExecContext is sqlx's, bounded by the context's call budget.
func (d *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	bctx, cancel := bound(ctx)
	defer cancel()
	r, err := d.DB.ExecContext(bctx, query, args...)
	return r, timedOut(bctx, err)
}

// GetContext is sqlx's, bounded by the context's call budget.
func (d *DB) GetContext(ctx context.Context, dest any, query string, args ...any) error {
	bctx, cancel := bound(ctx)
	defer cancel()
	return timedOut(bctx, d.DB.GetContext(bctx, dest, query, args...))
}

// SelectContext is sqlx's, bounded by the context's call budget.
func (d *DB) SelectContext(ctx context.Context, dest any, query string, args ...any) error {
	bctx, cancel := bound(ctx)
	defer cancel()
	return timedOut(bctx, d.DB.SelectContext(bctx, dest, query, args...))
}

// NamedExecContext is sqlx's, bounded by the context's call budget.
func (d *DB) NamedExecContext(ctx context.Context, query string, arg any) (sql.Result, error) {
	bctx, cancel := bound(ctx)
	defer cancel()
	r, err := d.DB.NamedExecContext(bctx, query, arg)
	return r, timedOut(bctx, err)
}

// PingContext is sqlx's, bounded by the context's call budget.
func (d *DB) PingContext(ctx context.Context) error {
	bctx, cancel := bound(ctx)
	defer cancel()
	return timedOut(bctx, d.DB.PingContext(bctx))
}

// QueryContext is sqlx's; the call budget covers reading the rows.
func (d *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	bctx := boundRows(ctx)
	r, err := d.DB.QueryContext(bctx, query, args...)
	return r, timedOut(bctx, err)
}

// QueryxContext is sqlx's; the call budget covers reading the rows.
func (d *DB) QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error) {
	bctx := boundRows(ctx)
	r, err := d.DB.QueryxContext(bctx, query, args...)
	return r, timedOut(bctx, err)
}

// QueryRowContext is sqlx's; the call budget covers scanning the row.
func (d *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.DB.QueryRowContext(boundRows(ctx), query, args...)
}

// QueryRowxContext is sqlx's; the call budget covers scanning the row.
func (d *DB) QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row {
	return d.DB.QueryRowxContext(boundRows(ctx), query, args...)
}

// BeginTxx is sqlx's; the call budget covers the whole transaction.
func (d *DB) BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error) {
	bctx := boundRows(ctx)
	tx, err := d.DB.BeginTxx(bctx, opts)
	return tx, timedOut(bctx, err)
}

// txBudget arms the call budget of ctx for a whole transaction: when it
// runs out, the caller's context (the one its statements use) is cancelled
// with ErrTimeout as the cause. stop disarms it.
func txBudget(ctx context.Context) (stop func() bool) {
	b, ok := ctx.Value(callBudgetKey{}).(callBudget)
	if !ok || b.d <= 0 {
		return func() bool { return true }
	}
	t := time.AfterFunc(b.d, func() { b.abort(ErrTimeout) })
	return t.Stop
}
