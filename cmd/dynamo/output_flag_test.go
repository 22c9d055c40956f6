package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/db"
)

// Every listing command takes -o json (the same switch as --json) and
// prints JSON: one document, or one per line for streamed listings; -o
// table prints the table; another format is refused.
func TestListingCommandsOutputJSON(t *testing.T) {
	url := startAPI(t)
	t.Setenv("DYNAMO_SERVER", url)
	t.Setenv("X509_CERT_DIR", "")
	ds := "/ZeroBias/Run2018A-17Sep2018-v1/MINIAOD"
	if _, err := run(t, "request", "copy", ds, "--site", "T2_*", "--token", "tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "lock", "add", ds, "--expires", "2099-01-01", "--token", "tok"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"request", "list"},
		{"request", "list", "--deletion"},
		{"lock", "list"},
		{"inventory", "sites"},
		{"inventory", "datasets", "/ZeroBias/*"},
		{"inventory", "replicas", ds},
	} {
		out, err := run(t, append(args, "-o", "json")...)
		if err != nil {
			t.Errorf("%v -o json: %v", args, err)
			continue
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(out)))
		n := 0
		for dec.More() {
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Errorf("%v -o json: not JSON: %v\n%s", args, err, out)
				break
			}
			n++
		}
		if n == 0 && strings.TrimSpace(out) != "" {
			t.Errorf("%v -o json printed %q", args, out)
		}
		table, err := run(t, append(args, "-o", "table")...)
		if err != nil || json.Valid([]byte(strings.TrimSpace(table))) && strings.TrimSpace(table) != "" {
			t.Errorf("%v -o table: %v\n%s", args, err, table)
		}
	}
	if _, err := run(t, "request", "list", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "want table or json") {
		t.Errorf("-o yaml: %v", err)
	}
}

// fileop's listings on the local database: a table by default and with
// -o table, one JSON array of the documented rows with -o json (an empty
// listing is [], not null).
func TestFileopListingsOutputJSON(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "d.db")
	if _, err := run(t, "--db", dsn, "migrate"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"fileop", "held"}, {"fileop", "history"}, {"dealer", "cycles"}} {
		out, err := run(t, append([]string{"--db", dsn}, append(args, "-o", "json")...)...)
		if err != nil || strings.TrimSpace(out) != "[]" {
			t.Errorf("%v -o json on an empty queue: %q %v", args, out, err)
		}
	}
	d, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO fileop_subscriptions (id, op, file_id, block_id, site_id, lfn, size, state, hold_reason, live, created, updated, tries, message)
			VALUES (7, 'transfer', 1, 1, 2, '/store/x/1.root', 10, 'held', 'no_source', 1, 1, 1, 3, 'every source failed')`,
		`INSERT INTO fileop_history (subscription_id, op, file_id, lfn, source_site_id, site_id, backend, outcome, bytes, finished, message)
			VALUES (7, 'transfer', 1, '/store/x/1.root', 3, 2, 'native', 'failed', 0, 1700000000, 'source unreachable')`,
	} {
		if _, err := d.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	for _, c := range []struct {
		args []string
		keys []string
	}{
		{[]string{"fileop", "status"}, []string{"op", "state", "hold_reason", "count", "bytes"}},
		{[]string{"fileop", "held"}, []string{"id", "op", "lfn", "site_id", "state", "hold_reason", "tries", "message"}},
		{[]string{"fileop", "history"}, []string{"id", "subscription_id", "op", "lfn", "site_id", "outcome", "finished", "message"}},
	} {
		out, err := run(t, append([]string{"--db", dsn}, append(c.args, "-o", "json")...)...)
		if err != nil {
			t.Fatalf("%v -o json: %v", c.args, err)
		}
		var rows []map[string]any
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
			t.Fatalf("%v -o json: want one row in an array: %v\n%s", c.args, err, out)
		}
		for _, k := range c.keys {
			if _, ok := rows[0][k]; !ok {
				t.Errorf("%v -o json: row lacks %q: %v", c.args, k, rows[0])
			}
		}
		for _, table := range [][]string{c.args, append(c.args, "-o", "table")} {
			out, err := run(t, append([]string{"--db", dsn}, table...)...)
			if err != nil || json.Valid([]byte(strings.TrimSpace(out))) || !strings.Contains(out, "OP") {
				t.Errorf("%v: want a table: %v\n%s", table, err, out)
			}
		}
	}
}
