package inventory_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// A document naming one object twice is rejected whole, as invalid, with
// an error naming both places. Before this check, an LFN in two blocks
// reached the database's unique key halfway through the write, and a site
// listed twice silently kept its last entry.
func TestInjectRejectsObjectsListedTwice(t *testing.T) {
	const ds = `"status": "valid", "data_type": "mc"`
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"lfn in two blocks", `{"datasets": [{"name": "/A/B/C", ` + ds + `, "blocks": [
			{"name": "b1", "files": [{"lfn": "/store/x/1.root", "size": 1}, {"lfn": "/store/x/dup.root", "size": 1}]},
			{"name": "b2", "files": [{"lfn": "/store/x/dup.root", "size": 1}]}]}]}`,
			[]string{"/store/x/dup.root", "datasets[0].blocks[1].files[0] (/A/B/C#b2)", "datasets[0].blocks[0].files[1] (/A/B/C#b1)"}},
		{"lfn in two datasets", `{"datasets": [
			{"name": "/A/B/C", ` + ds + `, "blocks": [{"name": "b", "files": [{"lfn": "/store/y", "size": 1}]}]},
			{"name": "/A/B/D", ` + ds + `, "blocks": [{"name": "b", "files": [{"lfn": "/store/y", "size": 1}]}]}]}`,
			[]string{"/store/y", "/A/B/D#b", "/A/B/C#b"}},
		{"lfn twice in one block", `{"datasets": [{"name": "/A/B/C", ` + ds + `, "blocks": [
			{"name": "b", "files": [{"lfn": "/store/z", "size": 1}, {"lfn": "/store/z", "size": 1}]}]}]}`,
			[]string{"/store/z", "files[1]", "files[0]"}},
		{"site twice", `{"sites": [{"name": "T2_X", "storage_type": "disk", "status": "ready"}, {"name": "T2_Y", "storage_type": "disk", "status": "ready"},
			{"name": "T2_X", "storage_type": "disk", "status": "morgue"}]}`,
			[]string{"sites[2] (T2_X)", "listed twice", "sites[0]"}},
		{"group twice", `{"groups": [{"name": "G", "olevel": "block"}, {"name": "G", "olevel": "dataset"}]}`,
			[]string{"groups[1] (G)", "groups[0]"}},
		{"dataset twice", `{"datasets": [{"name": "/A/B/C", ` + ds + `}, {"name": "/A/B/C", ` + ds + `}]}`,
			[]string{"datasets[1] (/A/B/C)", "datasets[0]"}},
		{"block twice", `{"datasets": [{"name": "/A/B/C", ` + ds + `, "blocks": [
			{"name": "b", "size": 1, "num_files": 1}, {"name": "b", "size": 2, "num_files": 1}]}]}`,
			[]string{"blocks[1] (/A/B/C#b)", "blocks[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, d *db.DB) {
				s := load(t, d)
				seq := s.Seq()
				doc, err := inventory.DecodeInjectDoc(strings.NewReader(tc.doc))
				if err != nil {
					t.Fatal(err)
				}
				_, err = s.Inject(context.Background(), t0, doc)
				if !errors.Is(err, inventory.ErrInvalid) {
					t.Fatalf("error %v: want inventory.ErrInvalid", err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				if db.FromDatabase(err) {
					t.Errorf("caught by the database, not by validation: %v", err)
				}
				if s.Seq() != seq {
					t.Errorf("a rejected document changed the inventory: seq %d -> %d", seq, s.Seq())
				}
			})
		})
	}
}
