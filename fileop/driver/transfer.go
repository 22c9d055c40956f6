package driver

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
)

// FormatAdler32 renders an adler32 sum the canonical way: 8 lowercase hex digits.
func FormatAdler32(sum uint32) string { return fmt.Sprintf("%08x", sum) }

// Adler32Reader computes adler32 over the bytes read through it.
type Adler32Reader struct {
	r io.Reader
	h hash.Hash32
	n int64
}

// NewAdler32Reader wraps r.
func NewAdler32Reader(r io.Reader) *Adler32Reader {
	return &Adler32Reader{r: r, h: adler32.New()}
}

func (a *Adler32Reader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	a.h.Write(p[:n])
	a.n += int64(n)
	return n, err
}

// Sum returns the adler32 of the bytes read so far, formatted.
func (a *Adler32Reader) Sum() string { return FormatAdler32(a.h.Sum32()) }

// N returns the number of bytes read so far.
func (a *Adler32Reader) N() int64 { return a.n }

// CopyResult reports what Copy moved.
type CopyResult struct {
	Bytes   int64
	Adler32 string
}

// Copy streams srcPath on src to dstPath on dst through this process,
// computing adler32 on the fly (no second read of either side). size is the
// expected length or -1. If wantAdler32 is non-empty and differs from the
// streamed sum, the destination file is removed and the error wraps
// ErrChecksumMismatch. This is the data path of the native transfer engine.
func Copy(ctx context.Context, dst Driver, dstPath string, src Driver, srcPath string, size int64, wantAdler32 string) (CopyResult, error) {
	var res CopyResult
	handled := false
	if lc, ok := dst.(LocalCopier); ok {
		var err error
		if res, handled, err = lc.CopyLocal(ctx, dstPath, src, srcPath, size); err != nil {
			return res, err
		}
	}
	if !handled {
		rc, err := src.Open(ctx, srcPath, Range{})
		if err != nil {
			return CopyResult{}, err
		}
		defer rc.Close()
		ar := NewAdler32Reader(rc)
		if err := dst.Put(ctx, dstPath, ar, size); err != nil {
			return CopyResult{Bytes: ar.N()}, err
		}
		res = CopyResult{Bytes: ar.N(), Adler32: ar.Sum()}
	}
	if wantAdler32 != "" && res.Adler32 != wantAdler32 {
		rmErr := dst.Remove(ctx, dstPath)
		if rmErr != nil && !errors.Is(rmErr, ErrNotFound) {
			rmErr = fmt.Errorf("removing the bad copy: %w", rmErr)
		} else {
			rmErr = nil
		}
		return res, NewError(ctx, "copy", dst.String()+" "+dstPath, ErrChecksumMismatch, "",
			errors.Join(fmt.Errorf("adler32 %s, expected %s", res.Adler32, wantAdler32), rmErr))
	}
	return res, nil
}

// ContextReader returns a reader that fails with ctx.Err() once ctx is done,
// checked before every Read, so a long stream copy notices cancellation.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// SizeReader passes bytes through, counting them, and when Want >= 0 fails
// (error wrapping ErrSizeMismatch, also kept in Mismatch) as soon as the
// source proves shorter or longer than Want. Drivers wrap Put sources in it
// so a truncated source never becomes a complete-looking file.
type SizeReader struct {
	R        io.Reader
	Want     int64
	N        int64
	Mismatch error
}

func (s *SizeReader) Read(p []byte) (int, error) {
	if s.Want >= 0 && s.N >= s.Want {
		// Everything announced has been read; any further byte is surplus.
		var one [1]byte
		if k, _ := s.R.Read(one[:]); k > 0 {
			s.Mismatch = fmt.Errorf("%w: source has more than the announced %d bytes", ErrSizeMismatch, s.Want)
			return 0, s.Mismatch
		}
		return 0, io.EOF
	}
	if s.Want >= 0 && int64(len(p)) > s.Want-s.N {
		p = p[:s.Want-s.N]
	}
	k, err := s.R.Read(p)
	s.N += int64(k)
	if errors.Is(err, io.EOF) && s.Want >= 0 && s.N < s.Want {
		s.Mismatch = fmt.Errorf("%w: source ended after %d of the announced %d bytes", ErrSizeMismatch, s.N, s.Want)
		return k, s.Mismatch
	}
	return k, err
}
