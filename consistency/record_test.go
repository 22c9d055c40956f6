package consistency

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRecordFrontCoding: names round-trip whatever they share with the
// previous one (all of it, none, a longer or shorter one), in both record
// kinds, and a file without the current header is refused, not misread.
func TestRecordFrontCoding(t *testing.T) {
	names := []string{"/store/a/b/file1", "/store/a/b/file1x", "/store/a/b/file1", "/store/a/c", "/x", "/store/a/c/" + string(make([]byte, 300)), "/store/a/d"}
	dir := t.TempDir()
	site, exp := filepath.Join(dir, "site.bin"), filepath.Join(dir, "exp.bin")
	w, err := createRecordFile(site)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		w.WriteSite(&SiteFile{LFN: n, Size: int64(i), ModTime: 7, Adler32: "01234567"})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = createRecordFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		w.writeExpected([]byte(n), nil, int64(i), int64(i)+1, 3, StateIncoming, 9)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := openRecordFile(site, 16)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		n, size, mt, ck, ok := r.nextSite()
		if !ok {
			break
		}
		if size != int64(len(got)) || mt != 7 || string(ck) != "01234567" {
			t.Errorf("site record %d: size %d mtime %d ck %q", len(got), size, mt, ck)
		}
		got = append(got, string(n))
	}
	r.Close()
	if r.err != nil || !slices.Equal(got, names) {
		t.Fatalf("site names %q (err %v), want %q", got, r.err, names)
	}

	e, err := openExpRun(exp)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for e.Next() {
		rec := e.Rec()
		if rec.Size != int64(len(got)) || rec.FileID != rec.Size+1 || rec.BlockID != 3 || rec.State != StateIncoming || rec.ReplicaUpdate != 9 {
			t.Errorf("expected record %d: %+v", len(got), rec)
		}
		got = append(got, string(rec.LFN))
	}
	e.Close()
	if e.Err() != nil || !slices.Equal(got, names) {
		t.Fatalf("expected names %q (err %v), want %q", got, e.Err(), names)
	}

	// A file of the earlier format (no header) is refused.
	old := filepath.Join(dir, "old.bin")
	os.WriteFile(old, []byte("\x04/a/b\x01\x02\x00"), 0o644)
	if _, err := openRecordFile(old, 16); !errors.Is(err, errCorrupt) {
		t.Errorf("headerless file: %v, want errCorrupt", err)
	}
}
