package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// slowQuery runs far longer than any call budget of the test.
func slowQuery(d *db.DB) string {
	if d.Dialect == db.MySQL {
		return "SELECT SLEEP(60)"
	}
	return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5000000000) SELECT count(*) FROM c"
}

// Under WithCallTimeout every kind of call ends with ErrTimeout, which
// classifies as unavailable, instead of running on; without it, calls are
// not bounded (background work may run long statements).
func TestCallTimeoutBoundsEveryKindOfCall(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		slow := slowQuery(d)
		calls := map[string]func(ctx context.Context) error{
			"exec": func(ctx context.Context) error { _, err := d.ExecContext(ctx, slow); return err },
			"get":  func(ctx context.Context) error { var n int64; return d.GetContext(ctx, &n, slow) },
			"select": func(ctx context.Context) error {
				var n []int64
				return d.SelectContext(ctx, &n, slow)
			},
			"query": func(ctx context.Context) error {
				rows, err := d.QueryContext(ctx, slow)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
				}
				return rows.Err()
			},
			"statement in a transaction": func(ctx context.Context) error {
				return d.InTx(ctx, func(tx *sqlx.Tx) error { _, err := tx.ExecContext(ctx, slow); return err })
			},
		}
		for name, call := range calls {
			ctx, cancel := db.WithCallTimeout(context.Background(), 300*time.Millisecond)
			err := call(ctx)
			cancel()
			if !db.Unavailable(err) {
				t.Errorf("%s: %v; want a deadline error classified unavailable", name, err)
			}
			if name != "query" && !errors.Is(err, db.ErrTimeout) {
				t.Errorf("%s: %v; want db.ErrTimeout", name, err)
			}
		}
		// The pool recovers: the next bounded call answers.
		ctx, cancel := db.WithCallTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var one int
		if err := d.GetContext(ctx, &one, "SELECT 1"); err != nil || one != 1 {
			t.Fatalf("after the timeouts: %d %v", one, err)
		}
		// A fast transaction under a budget commits and does not cancel
		// the request context afterwards.
		if err := d.InTx(ctx, func(tx *sqlx.Tx) error { _, err := tx.ExecContext(ctx, "SELECT 1"); return err }); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("a transaction within its budget cancelled the request context")
		}
	})
}
