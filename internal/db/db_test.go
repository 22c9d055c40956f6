package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		dialect db.Dialect
		errPart string
	}{
		{"sqlite:./var/x.db", db.SQLite, ""},
		{"sqlite:", "", "needs a path"},
		{"mysql://u:p@127.0.0.1:3307/dyn", db.MySQL, ""},
		{"mysql://u:p@127.0.0.1:3307/", "", "DBNAME"},
		{"postgres://x", "", "unknown kind"},
	} {
		d, _, err := db.ParseDSN(tc.dsn)
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("%s: want error containing %q, got %v", tc.dsn, tc.errPart, err)
			}
			continue
		}
		if err != nil || d != tc.dialect {
			t.Errorf("%s: got %s, %v", tc.dsn, d, err)
		}
	}
	if _, _, err := db.ParseDSN("mysql://u:secret@:1/"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("password must not appear in errors: %v", err)
	}
}

func TestMigrateIdempotentAndUpsert(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		again, err := d.Migrate(ctx)
		if err != nil || len(again) != 0 {
			t.Fatalf("second migrate applied %v, err %v", again, err)
		}
		q := d.Upsert("sites", []string{"id", "name", "storage_type", "status"}, []string{"id"}, []string{"status"})
		for _, st := range []string{"ready", "morgue"} {
			if _, err := d.Exec(q, 1, "T2_A", "disk", st); err != nil {
				t.Fatal(err)
			}
		}
		var st string
		if err := d.Get(&st, "SELECT status FROM sites WHERE id=1"); err != nil || st != "morgue" {
			t.Fatalf("upsert did not update: %q %v", st, err)
		}
		_, err = d.Exec("INSERT INTO sites (id, name, storage_type, status) VALUES (2, 'T2_A', 'disk', 'ready')")
		if !db.IsDuplicate(err) {
			t.Fatalf("duplicate name not classified as duplicate: %v", err)
		}
	})
}

func TestInTxRollsBackOnError(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		boom := errors.New("boom")
		err := d.InTx(context.Background(), func(tx *sqlx.Tx) error {
			if _, err := tx.Exec("INSERT INTO partitions (id, name) VALUES (1, 'P')"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("want boom, got %v", err)
		}
		var n int
		if err := d.Get(&n, "SELECT COUNT(*) FROM partitions"); err != nil || n != 0 {
			t.Fatalf("rolled-back row visible: %d %v", n, err)
		}
	})
}
