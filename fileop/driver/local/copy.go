package local

import (
	"context"
	"fmt"
	"hash/adler32"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// CopyLocal implements driver.LocalCopier for two file:// sites on one
// machine. The bytes are copied by the kernel (io.Copy between two files
// uses copy_file_range), as cp does, instead of crossing user space twice;
// meanwhile another goroutine reads the source through its own descriptor
// (from the page cache) to compute the adler32, so the check costs the other
// core rather than time. Atomicity and durability are Put's: temp file,
// fsync, rename.
func (l *Local) CopyLocal(ctx context.Context, dstPath string, src driver.Driver, srcPath string, size int64) (driver.CopyResult, bool, error) {
	sl, ok := src.(*Local)
	if !ok || size >= 0 && size < minKernelCopy {
		return driver.CopyResult{}, false, nil
	}
	sa, srel, err := sl.abs(ctx, srcPath)
	if err != nil {
		return driver.CopyResult{}, true, err
	}
	a, rel, err := l.abs(ctx, dstPath)
	if err != nil {
		return driver.CopyResult{}, true, err
	}
	if rel == "" {
		return driver.CopyResult{}, true, l.fail(ctx, "put", rel, syscall.EISDIR)
	}
	in, err := os.Open(sa)
	if err != nil {
		return driver.CopyResult{}, true, sl.fail(ctx, "open", srel, err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || fi.IsDir() {
		if err == nil {
			err = syscall.EISDIR
		}
		return driver.CopyResult{}, true, sl.fail(ctx, "open", srel, err)
	}
	if fi, err := os.Stat(a); err == nil && fi.IsDir() {
		return driver.CopyResult{}, true, l.fail(ctx, "put", rel, syscall.EISDIR)
	}
	dir := filepath.Dir(a)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return driver.CopyResult{}, true, l.fail(ctx, "put", rel, err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return driver.CopyResult{}, true, l.fail(ctx, "put", rel, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()

	type hashed struct {
		sum uint32
		n   int64
		err error
	}
	hc := make(chan hashed, 1)
	go func() {
		h := adler32.New()
		hf, err := os.Open(sa)
		if err != nil {
			hc <- hashed{err: err}
			return
		}
		defer hf.Close()
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		n, err := io.CopyBuffer(h, driver.ContextReader(ctx, struct{ io.Reader }{hf}), *bp)
		hc <- hashed{sum: h.Sum32(), n: n, err: err}
	}()
	// CopyN on the bare *os.File keeps the kernel path (a wrapped reader
	// would hide the file and force a user-space copy); chunks let a
	// cancelled context stop the copy.
	var n int64
	for {
		if err = ctx.Err(); err != nil {
			break
		}
		var k int64
		k, err = io.CopyN(f, in, 64<<20)
		n += k
		if err == io.EOF {
			err = nil
			break
		}
		if err != nil {
			break
		}
	}
	hr := <-hc
	if err != nil {
		return driver.CopyResult{Bytes: n}, true, l.fail(ctx, "put", rel, err)
	}
	if hr.err != nil {
		return driver.CopyResult{Bytes: n}, true, sl.fail(ctx, "read", srel, hr.err)
	}
	if hr.n != n || size >= 0 && n != size {
		// The source changed while it was copied, or was not what the
		// caller announced: nothing trustworthy was written.
		return driver.CopyResult{Bytes: n}, true, driver.NewError(ctx, "put", driver.JoinURLPath(l.url, rel), driver.ErrSizeMismatch, "",
			fmt.Errorf("copied %d bytes, hashed %d, announced %d", n, hr.n, size))
	}
	if err := f.Sync(); err != nil {
		return driver.CopyResult{Bytes: n}, true, l.fail(ctx, "put", rel, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return driver.CopyResult{Bytes: n}, true, l.fail(ctx, "put", rel, err)
	}
	sum := driver.FormatAdler32(hr.sum)
	if fi, err := f.Stat(); err == nil {
		storeSum(f, fi, sum)
	}
	if err := f.Close(); err != nil {
		return driver.CopyResult{Bytes: n}, true, l.fail(ctx, "put", rel, err)
	}
	if err := publish(tmp, a); err != nil {
		return driver.CopyResult{Bytes: n}, true, l.fail(ctx, "put", rel, err)
	}
	done = true
	return driver.CopyResult{Bytes: n, Adler32: sum}, true, nil
}

// minKernelCopy is the size below which the ordinary streamed copy is
// faster: for small files a second descriptor and a hashing goroutine cost
// more than the user-space pass they save.
const minKernelCopy = 4 << 20

var _ driver.LocalCopier = (*Local)(nil)
