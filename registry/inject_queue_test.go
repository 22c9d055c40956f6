package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testutil"
	"github.com/dynamo-go/dynamo/inventory"
)

// poisonDoc puts one LFN into two blocks. Queued, it used to fail on the
// database's unique key, count as a temporary error and block every
// document behind it forever.
const poisonDoc = `{"datasets": [{"name": "/Poison/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [
  {"name": "b1", "files": [{"lfn": "/store/poison/1.root", "size": 1}]},
  {"name": "b2", "files": [{"lfn": "/store/poison/1.root", "size": 1}]}]}]}`

// The poison document through the REST queue as users use it, with the
// injection loop `dynamo serve` runs: the good document queued behind it
// is applied, the poison one is failed with a reason naming the LFN and
// both blocks, and the queue goes on.
func TestPoisonDocumentDoesNotBlockTheQueue(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		var bad, good, after Injection
		e.must("ada", "POST", "/api/v1/injections", poisonDoc, 202, &bad)
		e.must("ada", "POST", "/api/v1/injections", `{"sites": [{"name": "T2_GOOD", "storage_type": "disk", "status": "ready"}]}`, 202, &good)

		log := logrus.New()
		log.SetOutput(io.Discard)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- RunInjectionLoop(ctx, e.inv, log.WithField("component", "test"), 10*time.Millisecond) }()
		t.Cleanup(func() { cancel(); <-done })

		waitFor(t, "the good document to be applied", func() bool {
			e.must("anon", "GET", "/api/v1/injections/"+itoa(good.ID), nil, 200, &good)
			return good.Status != InjectQueued
		})
		if good.Status != InjectApplied {
			t.Fatalf("good document: %+v", good)
		}
		e.must("anon", "GET", "/api/v1/injections/"+itoa(bad.ID), nil, 200, &bad)
		if bad.Status != InjectFailed {
			t.Fatalf("poison document: %+v; want failed", bad)
		}
		for _, w := range []string{"/store/poison/1.root", "/Poison/R-v1/AOD#b1", "/Poison/R-v1/AOD#b2"} {
			if !strings.Contains(bad.Result, w) {
				t.Errorf("reason %q does not name %s", bad.Result, w)
			}
		}
		e.must("ada", "GET", "/api/v1/sites/T2_GOOD", nil, 200, nil)
		if _, ok := e.inv.Snapshot().DatasetByName("/Poison/R-v1/AOD"); ok {
			t.Error("part of the failed document was injected")
		}

		// The queue keeps moving after it.
		e.must("ada", "POST", "/api/v1/injections", `{"groups": [{"name": "After", "olevel": "block"}]}`, 202, &after)
		waitFor(t, "the next document to be applied", func() bool {
			e.must("anon", "GET", "/api/v1/injections/"+itoa(after.ID), nil, 200, &after)
			return after.Status == InjectApplied
		})
	})
}

// The synchronous route answers 400 naming the objects, and writes nothing.
func TestSyncInjectionRejectsObjectsListedTwice(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	seq := e.inv.Seq()
	for _, tc := range []struct {
		doc  string
		want []string
	}{
		{poisonDoc, []string{"/store/poison/1.root", "/Poison/R-v1/AOD#b1", "/Poison/R-v1/AOD#b2"}},
		{`{"sites": [{"name": "T2_T", "storage_type": "disk", "status": "ready"}, {"name": "T2_T", "storage_type": "mss", "status": "ready"}]}`,
			[]string{"sites[1] (T2_T)", "listed twice", "sites[0]"}},
	} {
		var body ErrorBody
		e.must("ada", "POST", "/api/v1/injections/sync", tc.doc, 400, &body)
		for _, w := range tc.want {
			if !strings.Contains(body.Error, w) {
				t.Errorf("error %q does not name %s", body.Error, w)
			}
		}
	}
	if e.inv.Seq() != seq {
		t.Errorf("rejected documents changed the inventory: seq %d -> %d", seq, e.inv.Seq())
	}
}

// Which failures leave a document queued: only those the database layer
// classifies as temporary, with real errors of each kind.
func TestInjectionFailureIsFinalUnlessTheDatabaseIsAway(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		_, err := d.ExecContext(ctx, "INSERT INTO partitions (id, name) VALUES (900, 'Twice')")
		if err != nil {
			t.Fatal(err)
		}
		_, dup := d.ExecContext(ctx, "INSERT INTO partitions (id, name) VALUES (901, 'Twice')")
		if !db.IsDuplicate(dup) {
			t.Fatalf("setup: want a duplicate-key error, got %v", dup)
		}
		if injectTemporary(dup) {
			t.Errorf("a constraint violation is temporary: %v", dup)
		}
		reason := injectFailure(dup)
		for _, leak := range []string{"UNIQUE", "Duplicate", "1062", "constraint failed", "partitions"} {
			if strings.Contains(reason, leak) {
				t.Errorf("reason %q shows driver internals (%s)", reason, leak)
			}
		}
	})
	// A server that refuses connections: nothing listens on port 1.
	x, err := sqlx.Open("mysql", "root@tcp(127.0.0.1:1)/dynamo?timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	_, refused := x.Exec("SELECT 1")
	if refused == nil || !injectTemporary(refused) {
		t.Errorf("a refused connection is not temporary: %v", refused)
	}
	for _, err := range []error{
		&mysql.MySQLError{Number: 1213, Message: "Deadlock found"},
		&mysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded"},
		&mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"},
		mysql.ErrInvalidConn,
		db.ErrTimeout,
		fmt.Errorf("lease lost: %w", &inventory.NotWriterError{Holder: "other:1"}), // the lease moved mid-queue
	} {
		if !injectTemporary(err) {
			t.Errorf("%v is not temporary", err)
		}
	}
	for _, err := range []error{
		&mysql.MySQLError{Number: 1406, Message: "Data too long for column"},
		errors.New("file /store/x already belongs to another block"),
	} {
		if injectTemporary(err) {
			t.Errorf("%v is temporary", err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, what, cond)
}
