package consistency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
	_ "github.com/dynamo-go/dynamo/fileop/driver/local"
)

// flaky wraps a driver: List fails with a recoverable error on the first
// attempt at every directory in failOnce, and cancels the context after
// cancelAfter successful listings.
type flaky struct {
	driver.Driver
	failOnce    map[string]*atomic.Bool
	listed      atomic.Int64
	cancelAfter int64
	cancel      context.CancelFunc
}

func (f *flaky) List(ctx context.Context, dir string, fn driver.ListFunc) error {
	if b, ok := f.failOnce[dir]; ok && !b.Swap(true) {
		// Deliver part of the directory first: a retry must not keep it twice.
		if err := f.Driver.List(ctx, dir, func(e driver.Entry) error { fn(e); return errors.New("stop") }); err == nil {
			return errors.New("unexpected")
		}
		return &driver.Error{Op: "list", URL: dir, Kind: driver.ErrUnavailable}
	}
	if f.cancel != nil && f.listed.Load() >= f.cancelAfter {
		f.cancel()
		return driver.NewError(ctx, "list", dir, nil, "", ctx.Err())
	}
	err := f.Driver.List(ctx, dir, fn)
	f.listed.Add(1)
	return err
}

func makeTree(t *testing.T) string {
	root := t.TempDir()
	for d := 0; d < 12; d++ {
		for s := 0; s < 3; s++ {
			dir := filepath.Join(root, "store", fmt.Sprintf("d%02d", d), fmt.Sprintf("s%d", s))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for f := 0; f < 5; f++ {
				os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d-%d", f, d)), make([]byte, f), 0o644)
			}
		}
	}
	os.MkdirAll(filepath.Join(root, "store", "empty"), 0o755)
	return root
}

func collect(t *testing.T, runs []string) []string {
	t.Helper()
	s, err := MergeRuns(runs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []string
	for s.Next() {
		out = append(out, fmt.Sprintf("%s %d", s.Rec().LFN, s.Rec().Size))
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestListResumeSameResult: a listing cancelled part way and resumed from
// its checkpoint yields exactly the files of an uninterrupted listing, each
// once; directory retries after a partial listing keep nothing twice.
func TestListResumeSameResult(t *testing.T) {
	root := makeTree(t)
	ctx := context.Background()
	d, err := driver.Open(ctx, "file://"+root, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Tiny spool budget: many runs, so resumption must merge old and new.
	// Tiny directory spill: directories of 5 files go to runs of their own
	// in part, including those whose listing fails half way.
	opts := ListOptions{Paths: []string{"/store"}, Concurrency: 3, SpoolBudget: 500, RetryWait: 1, DirSpill: 2}
	full, err := List(ctx, d, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := collect(t, full.Runs)
	if len(want) != 12*3*5 {
		t.Fatalf("full listing has %d files", len(want))
	}
	if len(full.EmptyDirs) != 1 || full.EmptyDirs[0].Path != "/store/empty" {
		t.Errorf("empty dirs: %+v", full.EmptyDirs)
	}

	work := t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	fl := &flaky{Driver: d, cancelAfter: 20, cancel: cancel, failOnce: map[string]*atomic.Bool{"/store/d03/s1": {}, "/store/d07": {}}}
	if _, err := List(cctx, fl, work, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted listing: err %v, want canceled", err)
	}
	cp, err := readCheckpoint(work)
	if err != nil || cp == nil || cp.Done || len(cp.Pending) == 0 || cp.Files == 0 {
		t.Fatalf("checkpoint after interruption: %+v %v", cp, err)
	}
	stray := filepath.Join(work, "run-999999.bin")
	os.WriteFile(stray, []byte("garbage from after the last checkpoint"), 0o644)
	fl2 := &flaky{Driver: d, failOnce: map[string]*atomic.Bool{"/store/d10/s2": {}}}
	res, err := List(ctx, fl2, work, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed {
		t.Error("not resumed")
	}
	if got := collect(t, res.Runs); !slices.Equal(got, want) {
		t.Errorf("resumed listing differs: %d files, want %d", len(got), len(want))
	}
	if res.Progress.Files != int64(len(want)) || res.Progress.Retries == 0 {
		t.Errorf("progress %+v", res.Progress)
	}
	if strays, _ := filepath.Glob(filepath.Join(work, "*.tmp")); len(strays) > 0 {
		t.Errorf("temp files left: %v", strays)
	}
	// A run written after the last checkpoint is not the checkpoint's: it
	// was removed, not merged (it would not even decode).
	if _, err := os.Stat(stray); err == nil {
		t.Error("stray run kept")
	}
	// A finished listing is returned as is.
	again, err := List(ctx, d, work, opts)
	if err != nil || !slices.Equal(collect(t, again.Runs), want) {
		t.Errorf("finished listing not reused: %v", err)
	}
	// Other paths: refused rather than mixed.
	if _, err := List(ctx, d, work, ListOptions{Paths: []string{"/other"}}); !errors.Is(err, ErrCheckpointMismatch) {
		t.Errorf("listing other paths in the same work dir: %v", err)
	}
}

// TestListMissingTopPath: a configured path that does not exist fails the
// listing instead of reporting every file under it missing.
func TestListMissingTopPath(t *testing.T) {
	root := makeTree(t)
	d, _ := driver.Open(context.Background(), "file://"+root, driver.Options{})
	_, err := List(context.Background(), d, t.TempDir(), ListOptions{Paths: []string{"/nope"}})
	if !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("err %v, want not found", err)
	}
}

// TestListRetriesExhausted: a directory failing every attempt fails the
// listing after Retries retries.
func TestListRetriesExhausted(t *testing.T) {
	root := makeTree(t)
	d, _ := driver.Open(context.Background(), "file://"+root, driver.Options{})
	_, err := List(context.Background(), alwaysFail{d}, t.TempDir(), ListOptions{Paths: []string{"/store"}, Retries: 2, RetryWait: 1})
	if !errors.Is(err, driver.ErrUnavailable) {
		t.Errorf("err %v", err)
	}
}

type alwaysFail struct{ driver.Driver }

func (alwaysFail) List(ctx context.Context, dir string, fn driver.ListFunc) error {
	return &driver.Error{Op: "list", URL: dir, Kind: driver.ErrUnavailable}
}
