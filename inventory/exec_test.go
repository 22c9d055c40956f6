package inventory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// TestExecRunsInTheWriteTransaction: SQL registered with Txn.Exec commits
// with the updates, and a failing Exec rolls back both the updates and
// the SQL, leaving memory unchanged.
func TestExecRunsInTheWriteTransaction(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.ExecContext(ctx, "CREATE TABLE exec_probe (v INT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		s := load(t, d)
		count := func() int {
			var n int
			if err := d.GetContext(ctx, &n, "SELECT COUNT(*) FROM exec_probe"); err != nil {
				t.Fatal(err)
			}
			return n
		}
		insert := func(ctx context.Context, tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO exec_probe (v) VALUES (1)")
			return err
		}
		// Commit: the group and the probe row both land.
		if _, err := s.Write(ctx, t0, func(tx *inventory.Txn) error {
			tx.Exec(insert)
			return tx.Add(inventory.UpsertGroup{Group: inventory.Group{ID: tx.NewGroupID(), Name: "G1"}})
		}); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Snapshot().GroupByName("G1"); !ok || count() != 1 {
			t.Fatalf("after commit: group present %v, probe rows %d", ok, count())
		}
		// Failing Exec: neither the group nor the probe row.
		boom := errors.New("boom")
		_, err := s.Write(ctx, t0, func(tx *inventory.Txn) error {
			tx.Exec(insert)
			tx.Exec(func(context.Context, *sqlx.Tx) error { return boom })
			return tx.Add(inventory.UpsertGroup{Group: inventory.Group{ID: tx.NewGroupID(), Name: "G2"}})
		})
		if !errors.Is(err, boom) {
			t.Fatalf("want boom, got %v", err)
		}
		if _, ok := s.Snapshot().GroupByName("G2"); ok || count() != 1 {
			t.Fatalf("after rollback: group present %v, probe rows %d", ok, count())
		}
		var changes int
		if err := d.GetContext(ctx, &changes, "SELECT COUNT(*) FROM inventory_changes WHERE body LIKE '%G2%'"); err != nil || changes != 0 {
			t.Fatalf("change log has the rolled-back group: %d %v", changes, err)
		}
		// Exec alone (no updates) still runs and commits; seq unchanged.
		seq := s.Seq()
		if _, err := s.Write(ctx, t0, func(tx *inventory.Txn) error { tx.Exec(insert); return nil }); err != nil {
			t.Fatal(err)
		}
		if count() != 2 || s.Seq() != seq {
			t.Fatalf("exec-only write: probe rows %d, seq %d -> %d", count(), seq, s.Seq())
		}
	})
}
