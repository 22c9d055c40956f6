package fileop

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// TestCompareAndSet: a transition from the wrong state is ErrConflict and
// changes nothing; a transition that rewrites identical values still
// counts as matched on MySQL (ClientFoundRows), like on SQLite.
func TestCompareAndSet(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.Exec("INSERT INTO " + TableSubscriptions + " (op, file_id, block_id, site_id, lfn, size, state, hold_reason, live, created, updated) VALUES ('transfer', 1, 1, 1, '/a', 1, 'held', 'no_source', 1, 5, 5)"); err != nil {
			t.Fatal(err)
		}
		run := func(from State, set string, args ...any) error {
			return d.InTx(ctx, func(tx *sqlx.Tx) error { return cas(ctx, tx, 5, 1, []State{from}, set, args...) })
		}
		if err := run(StateNew, "state = ?", StateInBatch); !errors.Is(err, ErrConflict) {
			t.Fatalf("from the wrong state: %v, want ErrConflict", err)
		}
		s, err := Get(ctx, d, 1)
		if err != nil || s.State != StateHeld {
			t.Fatalf("row changed by a failed CAS: %+v %v", s, err)
		}
		if err := run(StateHeld, "state = ?, hold_reason = ?", StateHeld, HoldNoSource); err != nil {
			t.Fatalf("identical rewrite: %v (ClientFoundRows missing?)", err)
		}
	})
}
