package local

import (
	"context"
	"fmt"
	"hash/adler32"
	"io"

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
	srel, err := sl.rel(ctx, srcPath)
	if err != nil {
		return driver.CopyResult{}, true, err
	}
	rel, err := l.rel(ctx, dstPath)
	if err != nil {
		return driver.CopyResult{}, true, err
	}
	in, err := sl.openFile(srel)
	if err != nil {
		return driver.CopyResult{}, true, sl.fail(ctx, "open", srel, err)
	}
	defer in.Close()
	// The hashing pass reads the same open file (pread at its own offset),
	// not the name again: a name swapped meanwhile cannot give it other
	// bytes than the copy's.
	hin := io.NewSectionReader(in, 0, 1<<62)
	f, r, err := l.create(rel)
	if err != nil {
		return driver.CopyResult{}, true, l.fail(ctx, "put", rel, err)
	}
	defer r.Close()
	defer f.Abort()

	type hashed struct {
		sum uint32
		n   int64
		err error
	}
	hc := make(chan hashed, 1)
	go func() {
		h := adler32.New()
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		n, err := io.CopyBuffer(h, driver.ContextReader(ctx, hin), *bp)
		hc <- hashed{sum: h.Sum32(), n: n, err: err}
	}()
	// CopyN on the bare *os.File source into the unsummed temporary keeps
	// the kernel path (copy_file_range; a wrapped reader would force a
	// user-space copy); chunks let a cancelled context stop the copy.
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
	sum := driver.FormatAdler32(hr.sum)
	if err := l.publish(f, sum); err != nil {
		return driver.CopyResult{Bytes: n}, true, l.fail(ctx, "put", rel, err)
	}
	return driver.CopyResult{Bytes: n, Adler32: sum}, true, nil
}

// minKernelCopy is the size below which the ordinary streamed copy is
// faster: for small files a second descriptor and a hashing goroutine cost
// more than the user-space pass they save.
const minKernelCopy = 4 << 20

var _ driver.LocalCopier = (*Local)(nil)
