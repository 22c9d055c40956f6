// Package drivertest is the conformance suite every storage driver must pass:
// Run(t, newDriver, caps) exercises the core contract of driver.Driver and
// the optional capabilities the driver declares in Caps. A capability not
// declared must be absent, or report driver.ErrUnsupported, so declarations
// cannot silently drift from reality.
package drivertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// Caps declares what the driver under test can do beyond the core.
type Caps struct {
	// Checksum: the driver implements driver.Checksummer for adler32 against
	// this server.
	Checksum bool
	// Space: driver.SpaceReporter works against this server.
	Space bool
	// Rename: driver.Renamer works.
	Rename bool
	// AtomicPut: a failed or canceled Put leaves no file at the target name.
	AtomicPut bool
	// ListEntries is the number of files the big-listing test creates
	// (default 1000). Drivers whose Put costs a process start use fewer.
	ListEntries int
	// Populate, if set, creates n empty files named f00000..f<n-1> in dir by
	// a faster path than n Put calls (e.g. directly in the server's data
	// directory). The listing under test still goes through the driver.
	Populate func(t *testing.T, dir string, n int)
}

// NewFunc returns a driver rooted at a fresh, empty, writable location.
type NewFunc func(t *testing.T) driver.Driver

// Run runs the suite. Each subtest works in its own directory under the root.
func Run(t *testing.T, newDriver NewFunc, caps Caps) {
	if caps.ListEntries == 0 {
		caps.ListEntries = 1000
	}
	d := newDriver(t)
	s := &suite{d: d, caps: caps}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, string)
	}{
		{"PutGetRoundTrip", s.putGet},
		{"Range", s.rangeRead},
		{"Stat", s.stat},
		{"NotFound", s.notFound},
		{"MkdirParents", s.mkdir},
		{"RemoveFile", s.remove},
		{"Rmdir", s.rmdir},
		{"Overwrite", s.overwrite},
		{"PutOverDir", s.putOverDir},
		{"ZeroByte", s.zeroByte},
		{"Spaces", s.spaces},
		{"PutCreatesParents", s.putParents},
		{"SizeMismatch", s.sizeMismatch},
		{"InvalidPath", s.invalidPath},
		{"ListMany", s.listMany},
		{"ListStops", s.listStops},
		{"Canceled", s.canceled},
		{"Timeout", s.timeout},
		{"Checksum", s.checksum},
		{"Space", s.space},
		{"Rename", s.rename},
		{"Copy", s.copy},
		{"RemoveAll", s.removeAll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := "dt-" + strings.ToLower(tc.name)
			tc.fn(t, dir)
		})
	}
}

type suite struct {
	d    driver.Driver
	caps Caps
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func sum(b []byte) string { return driver.FormatAdler32(adler32.Checksum(b)) }

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantKind(t *testing.T, err error, kind error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("%s: error %q is not %v", what, err, kind)
	}
	var de *driver.Error
	if !errors.As(err, &de) {
		t.Fatalf("%s: error %q (%T) is not a *driver.Error", what, err, err)
	}
}

func (s *suite) put(t *testing.T, p string, b []byte) {
	t.Helper()
	must(t, s.d.Put(ctxT(t), p, bytes.NewReader(b), int64(len(b))), "put "+p)
}

func (s *suite) get(t *testing.T, p string, r driver.Range) []byte {
	t.Helper()
	rc, err := s.d.Open(ctxT(t), p, r)
	must(t, err, "open "+p)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	must(t, err, "read "+p)
	return b
}

func (s *suite) names(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	must(t, s.d.List(ctxT(t), dir, func(e driver.Entry) error {
		if e.IsDir {
			out = append(out, e.Name+"/")
		} else {
			out = append(out, e.Name)
		}
		return nil
	}), "list "+dir)
	sort.Strings(out)
	return out
}

func (s *suite) putGet(t *testing.T, dir string) {
	data := randBytes(3<<20+17, 1)
	p := dir + "/data.bin"
	s.put(t, p, data)
	got := s.get(t, p, driver.Range{})
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, adler32 %s; wrote %d, adler32 %s", len(got), sum(got), len(data), sum(data))
	}
}

func (s *suite) rangeRead(t *testing.T, dir string) {
	data := randBytes(100_000, 2)
	p := dir + "/r.bin"
	s.put(t, p, data)
	for _, r := range []driver.Range{{Offset: 10, Length: 100}, {Offset: 99_000}, {Length: 1}, {Offset: 50_000, Length: 50_000}} {
		want := data[r.Offset:]
		if r.Length > 0 {
			want = want[:r.Length]
		}
		if got := s.get(t, p, r); !bytes.Equal(got, want) {
			t.Fatalf("range %+v: got %d bytes, want %d (or wrong content)", r, len(got), len(want))
		}
	}
}

func (s *suite) stat(t *testing.T, dir string) {
	ctx := ctxT(t)
	data := randBytes(1234, 3)
	s.put(t, dir+"/f.txt", data)
	e, err := s.d.Stat(ctx, dir+"/f.txt")
	must(t, err, "stat file")
	if e.IsDir || e.Size != 1234 || e.Name != "f.txt" {
		t.Fatalf("stat file = %+v, want f.txt size 1234 not dir", e)
	}
	if !e.ModTime.IsZero() && time.Since(e.ModTime).Abs() > time.Hour {
		t.Fatalf("stat file: mtime %v is far from now", e.ModTime)
	}
	e, err = s.d.Stat(ctx, dir)
	must(t, err, "stat dir")
	if !e.IsDir {
		t.Fatalf("stat dir = %+v, want a directory", e)
	}
	e, err = s.d.Stat(ctx, "/"+dir+"/")
	must(t, err, "stat dir with slashes")
	if !e.IsDir {
		t.Fatalf("stat /dir/ = %+v, want a directory", e)
	}
	e, err = s.d.Stat(ctx, "")
	must(t, err, "stat root")
	if !e.IsDir {
		t.Fatalf("stat root = %+v, want a directory", e)
	}
}

func (s *suite) notFound(t *testing.T, dir string) {
	ctx := ctxT(t)
	must(t, s.d.Mkdir(ctx, dir), "mkdir")
	missing := dir + "/missing"
	_, err := s.d.Stat(ctx, missing)
	wantKind(t, err, driver.ErrNotFound, "stat missing")
	if driver.Recoverable(err) {
		t.Fatalf("not-found classified as recoverable: %v", err)
	}
	_, err = s.d.Open(ctx, missing, driver.Range{})
	wantKind(t, err, driver.ErrNotFound, "open missing")
	wantKind(t, s.d.Remove(ctx, missing), driver.ErrNotFound, "remove missing")
	wantKind(t, s.d.Rmdir(ctx, missing), driver.ErrNotFound, "rmdir missing")
	wantKind(t, s.d.List(ctx, missing, func(driver.Entry) error { return nil }), driver.ErrNotFound, "list missing")
}

func (s *suite) mkdir(t *testing.T, dir string) {
	ctx := ctxT(t)
	deep := dir + "/a/b c/d"
	must(t, s.d.Mkdir(ctx, deep), "mkdir -p")
	for _, p := range []string{dir, dir + "/a", dir + "/a/b c", deep} {
		e, err := s.d.Stat(ctx, p)
		must(t, err, "stat "+p)
		if !e.IsDir {
			t.Fatalf("%s is not a directory after mkdir -p", p)
		}
	}
	must(t, s.d.Mkdir(ctx, deep), "mkdir of an existing directory")
	s.put(t, dir+"/file", []byte("x"))
	err := s.d.Mkdir(ctx, dir+"/file")
	if err == nil || !(errors.Is(err, driver.ErrExists) || errors.Is(err, driver.ErrNotDir)) {
		t.Fatalf("mkdir over a file: %v, want ErrExists or ErrNotDir", err)
	}
	if got := s.names(t, dir); strings.Join(got, ",") != "a/,file" {
		t.Fatalf("list after mkdir = %v", got)
	}
}

func (s *suite) remove(t *testing.T, dir string) {
	ctx := ctxT(t)
	s.put(t, dir+"/f", []byte("hello"))
	s.put(t, dir+"/keep", []byte("hello"))
	must(t, s.d.Remove(ctx, dir+"/f"), "remove")
	_, err := s.d.Stat(ctx, dir+"/f")
	wantKind(t, err, driver.ErrNotFound, "stat after remove")
	wantKind(t, s.d.Remove(ctx, dir), driver.ErrIsDir, "remove of a directory")
	if got := s.names(t, dir); strings.Join(got, ",") != "keep" {
		t.Fatalf("list after remove = %v, want [keep]", got)
	}
}

func (s *suite) rmdir(t *testing.T, dir string) {
	ctx := ctxT(t)
	must(t, s.d.Mkdir(ctx, dir+"/empty"), "mkdir")
	s.put(t, dir+"/full/f", []byte("x"))
	must(t, s.d.Rmdir(ctx, dir+"/empty"), "rmdir empty")
	_, err := s.d.Stat(ctx, dir+"/empty")
	wantKind(t, err, driver.ErrNotFound, "stat after rmdir")
	wantKind(t, s.d.Rmdir(ctx, dir+"/full"), driver.ErrNotEmpty, "rmdir non-empty")
	if got := s.get(t, dir+"/full/f", driver.Range{}); string(got) != "x" {
		t.Fatalf("file inside a non-empty dir damaged by rmdir: %q", got)
	}
	wantKind(t, s.d.Rmdir(ctx, dir+"/full/f"), driver.ErrNotDir, "rmdir of a file")
}

func (s *suite) overwrite(t *testing.T, dir string) {
	p := dir + "/o"
	s.put(t, p, randBytes(50_000, 4))
	short := []byte("short")
	s.put(t, p, short)
	if got := s.get(t, p, driver.Range{}); !bytes.Equal(got, short) {
		t.Fatalf("after overwrite read %d bytes, want %q", len(got), short)
	}
	e, err := s.d.Stat(ctxT(t), p)
	must(t, err, "stat")
	if e.Size != int64(len(short)) {
		t.Fatalf("size after overwrite = %d, want %d", e.Size, len(short))
	}
}

func (s *suite) putOverDir(t *testing.T, dir string) {
	ctx := ctxT(t)
	s.put(t, dir+"/sub/f", []byte("x"))
	err := s.d.Put(ctx, dir+"/sub", bytes.NewReader([]byte("data")), 4)
	wantKind(t, err, driver.ErrIsDir, "put over a directory")
	if got := s.get(t, dir+"/sub/f", driver.Range{}); string(got) != "x" {
		t.Fatalf("directory content damaged by a put over it: %q", got)
	}
	if got := s.names(t, dir+"/sub"); strings.Join(got, ",") != "f" {
		t.Fatalf("put over a directory left %v behind", got)
	}
}

func (s *suite) zeroByte(t *testing.T, dir string) {
	p := dir + "/empty"
	s.put(t, p, nil)
	e, err := s.d.Stat(ctxT(t), p)
	must(t, err, "stat")
	if e.IsDir || e.Size != 0 {
		t.Fatalf("zero-byte stat = %+v", e)
	}
	if got := s.get(t, p, driver.Range{}); len(got) != 0 {
		t.Fatalf("zero-byte file read %d bytes", len(got))
	}
	if c, ok := s.d.(driver.Checksummer); ok && s.caps.Checksum {
		v, err := c.Checksum(ctxT(t), p, driver.AlgoAdler32)
		must(t, err, "checksum")
		if v != "00000001" {
			t.Fatalf("adler32 of empty file = %q, want 00000001", v)
		}
	}
}

func (s *suite) spaces(t *testing.T, dir string) {
	ctx := ctxT(t)
	p := dir + "/a dir/file name +#%&;=.dat"
	s.put(t, p, []byte("spaces"))
	if got := s.get(t, p, driver.Range{}); string(got) != "spaces" {
		t.Fatalf("read %q", got)
	}
	e, err := s.d.Stat(ctx, p)
	must(t, err, "stat")
	if e.Name != "file name +#%&;=.dat" {
		t.Fatalf("stat name = %q", e.Name)
	}
	if got := s.names(t, dir+"/a dir"); strings.Join(got, ",") != "file name +#%&;=.dat" {
		t.Fatalf("list = %q", got)
	}
	must(t, s.d.Remove(ctx, p), "remove")
	must(t, s.d.Rmdir(ctx, dir+"/a dir"), "rmdir")
}

func (s *suite) putParents(t *testing.T, dir string) {
	p := dir + "/x/y/z/f"
	s.put(t, p, []byte("deep"))
	if got := s.get(t, p, driver.Range{}); string(got) != "deep" {
		t.Fatalf("read %q", got)
	}
}

func (s *suite) sizeMismatch(t *testing.T, dir string) {
	ctx := ctxT(t)
	must(t, s.d.Mkdir(ctx, dir), "mkdir")
	err := s.d.Put(ctx, dir+"/short", bytes.NewReader([]byte("12345")), 10)
	if err == nil {
		t.Fatal("put with a short body succeeded")
	}
	if !errors.Is(err, driver.ErrSizeMismatch) && !driver.Recoverable(err) {
		t.Fatalf("short put: %v, want ErrSizeMismatch or a recoverable error", err)
	}
	if s.caps.AtomicPut {
		_, err := s.d.Stat(ctx, dir+"/short")
		wantKind(t, err, driver.ErrNotFound, "stat after a failed put")
	}
}

func (s *suite) invalidPath(t *testing.T, _ string) {
	_, err := s.d.Stat(ctxT(t), "../outside")
	wantKind(t, err, driver.ErrInvalidPath, "stat ../outside")
	err = s.d.Put(ctxT(t), "a/../../outside", bytes.NewReader(nil), 0)
	wantKind(t, err, driver.ErrInvalidPath, "put a/../../outside")
}

func (s *suite) listMany(t *testing.T, dir string) {
	ctx := ctxT(t)
	n := s.caps.ListEntries
	if s.caps.Populate != nil {
		must(t, s.d.Mkdir(ctx, dir), "mkdir")
		s.caps.Populate(t, dir, n)
	} else {
		for i := 0; i < n; i++ {
			s.put(t, fmt.Sprintf("%s/f%05d", dir, i), nil)
		}
	}
	s.put(t, dir+"/sized", []byte("0123456789"))
	must(t, s.d.Mkdir(ctx, dir+"/sub"), "mkdir sub")
	seen := map[string]driver.Entry{}
	must(t, s.d.List(ctx, dir, func(e driver.Entry) error {
		if _, dup := seen[e.Name]; dup {
			return fmt.Errorf("entry %q listed twice", e.Name)
		}
		seen[e.Name] = e
		return nil
	}), "list")
	if len(seen) != n+2 {
		t.Fatalf("listed %d entries, want %d", len(seen), n+2)
	}
	for i := 0; i < n; i++ {
		if e, ok := seen[fmt.Sprintf("f%05d", i)]; !ok || e.IsDir || e.Size != 0 {
			t.Fatalf("entry f%05d missing or wrong: %+v", i, e)
		}
	}
	if e := seen["sized"]; e.Size != 10 || e.IsDir {
		t.Fatalf("sized = %+v", e)
	}
	if e := seen["sub"]; !e.IsDir {
		t.Fatalf("sub = %+v, want a directory", e)
	}
}

func (s *suite) listStops(t *testing.T, dir string) {
	for i := 0; i < 5; i++ {
		s.put(t, fmt.Sprintf("%s/f%d", dir, i), nil)
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.d.List(ctxT(t), dir, func(driver.Entry) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("list with a failing callback: err %v after %d calls, want the callback's error after 1", err, calls)
	}
}

// slowReader yields a few bytes then blocks until ctx is done, like a stalled
// network source.
type slowReader struct {
	ctx  context.Context
	sent bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, "partial data"), nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func (s *suite) canceled(t *testing.T, dir string) {
	must(t, s.d.Mkdir(ctxT(t), dir), "mkdir")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.d.Stat(ctx, dir)
	wantKind(t, err, driver.ErrCanceled, "stat with a canceled ctx")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v does not wrap context.Canceled", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	err = s.d.Put(ctx, dir+"/stalled", &slowReader{ctx: ctx}, 1<<20)
	wantKind(t, err, driver.ErrCanceled, "put canceled mid-stream")
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("canceled put returned after %v", el)
	}
	if s.caps.AtomicPut {
		_, err := s.d.Stat(ctxT(t), dir+"/stalled")
		wantKind(t, err, driver.ErrNotFound, "stat after a canceled put")
	}
}

func (s *suite) timeout(t *testing.T, dir string) {
	must(t, s.d.Mkdir(ctxT(t), dir), "mkdir")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.d.Put(ctx, dir+"/slow", &slowReader{ctx: ctx}, 1<<20)
	wantKind(t, err, driver.ErrTimeout, "put past its deadline")
	if !driver.Recoverable(err) {
		t.Fatalf("timeout classified as irrecoverable: %v", err)
	}
}

func (s *suite) checksum(t *testing.T, dir string) {
	c, ok := s.d.(driver.Checksummer)
	data := randBytes(300_001, 5)
	s.put(t, dir+"/c", data)
	if !s.caps.Checksum {
		if ok {
			_, err := c.Checksum(ctxT(t), dir+"/c", driver.AlgoAdler32)
			wantKind(t, err, driver.ErrUnsupported, "checksum on a server declared without it")
		}
		return
	}
	if !ok {
		t.Fatal("Caps.Checksum set but the driver is no driver.Checksummer")
	}
	v, err := c.Checksum(ctxT(t), dir+"/c", driver.AlgoAdler32)
	must(t, err, "checksum")
	if v != sum(data) {
		t.Fatalf("adler32 = %q, want %q", v, sum(data))
	}
	_, err = c.Checksum(ctxT(t), dir+"/missing", driver.AlgoAdler32)
	wantKind(t, err, driver.ErrNotFound, "checksum of a missing file")
	_, err = c.Checksum(ctxT(t), dir+"/c", "sha3-1024")
	wantKind(t, err, driver.ErrUnsupported, "unknown algorithm")
}

func (s *suite) space(t *testing.T, dir string) {
	sr, ok := s.d.(driver.SpaceReporter)
	if !s.caps.Space {
		if ok {
			_, err := sr.Space(ctxT(t), "")
			wantKind(t, err, driver.ErrUnsupported, "space on a server declared without it")
		}
		return
	}
	if !ok {
		t.Fatal("Caps.Space set but the driver is no driver.SpaceReporter")
	}
	sp, err := sr.Space(ctxT(t), "")
	must(t, err, "space")
	if sp.Total <= 0 || sp.Used < 0 || sp.Used > sp.Total {
		t.Fatalf("space = %+v", sp)
	}
}

func (s *suite) rename(t *testing.T, dir string) {
	r, ok := s.d.(driver.Renamer)
	if !s.caps.Rename {
		return
	}
	if !ok {
		t.Fatal("Caps.Rename set but the driver is no driver.Renamer")
	}
	ctx := ctxT(t)
	s.put(t, dir+"/from", []byte("moved"))
	s.put(t, dir+"/to", []byte("old"))
	must(t, r.Rename(ctx, dir+"/from", dir+"/to"), "rename over an existing file")
	if got := s.get(t, dir+"/to", driver.Range{}); string(got) != "moved" {
		t.Fatalf("after rename read %q", got)
	}
	_, err := s.d.Stat(ctx, dir+"/from")
	wantKind(t, err, driver.ErrNotFound, "stat old name")
	wantKind(t, r.Rename(ctx, dir+"/from", dir+"/x"), driver.ErrNotFound, "rename missing")
}

func (s *suite) copy(t *testing.T, dir string) {
	ctx := ctxT(t)
	data := randBytes(1<<20, 6)
	s.put(t, dir+"/src", data)
	res, err := driver.Copy(ctx, s.d, dir+"/dst", s.d, dir+"/src", int64(len(data)), sum(data))
	must(t, err, "copy")
	if res.Bytes != int64(len(data)) || res.Adler32 != sum(data) {
		t.Fatalf("copy result %+v", res)
	}
	_, err = driver.Copy(ctx, s.d, dir+"/bad", s.d, dir+"/src", int64(len(data)), "deadbeef")
	wantKind(t, err, driver.ErrChecksumMismatch, "copy with a wrong expected checksum")
	_, err = s.d.Stat(ctx, dir+"/bad")
	wantKind(t, err, driver.ErrNotFound, "bad copy must be removed")
}

func (s *suite) removeAll(t *testing.T, dir string) {
	ctx := ctxT(t)
	s.put(t, dir+"/keep", []byte("k"))
	for _, p := range []string{"tree/a", "tree/b/c", "tree/b/d d/e", "tree/z"} {
		s.put(t, dir+"/"+p, []byte(p))
	}
	must(t, s.d.Mkdir(ctx, dir+"/tree/empty/deeper"), "mkdir")
	must(t, driver.RemoveAll(ctx, s.d, dir+"/tree"), "RemoveAll")
	_, err := s.d.Stat(ctx, dir+"/tree")
	wantKind(t, err, driver.ErrNotFound, "stat after RemoveAll")
	if got := s.names(t, dir); strings.Join(got, ",") != "keep" {
		t.Fatalf("RemoveAll touched its siblings: %v", got)
	}
	must(t, driver.RemoveAll(ctx, s.d, dir+"/tree"), "RemoveAll of a missing dir")
}
