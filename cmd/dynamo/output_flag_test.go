package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
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
