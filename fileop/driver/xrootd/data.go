package xrootd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"path"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// Open implements driver.Driver: "xrdcp SRC -" streams the file to our
// stdout pipe. The first byte (or EOF) is awaited before returning, so a
// missing file or a directory is reported by Open, not by the first Read.
// Ranges are applied client-side (xrdcp has no range option): the skipped
// bytes still cross the network.
func (x *XRootD) Open(ctx context.Context, p string, r driver.Range) (io.ReadCloser, error) {
	_, abs, err := x.resolve(p)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	cmd := x.command(cctx, x.xrdcp, "-N", "-f", x.urlOf(abs), "-")
	errb := &strings.Builder{}
	cmd.Stderr = errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, driver.NewError(ctx, "open", x.urlOf(abs), driver.ErrServer, "", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, driver.NewError(ctx, "open", x.urlOf(abs), driver.ErrUnsupported, "", err)
	}
	rc := &toolReader{x: x, ctx: ctx, abs: abs, cmd: cmd, cancel: cancel, stderr: errb, br: bufio.NewReaderSize(stdout, 256<<10)}
	if _, err := rc.br.Peek(1); err != nil {
		// EOF: an empty file or a failure; the exit status tells which.
		if werr := rc.finish(); werr != nil {
			return nil, werr
		}
	}
	if r.Offset > 0 {
		if _, err := io.CopyN(io.Discard, rc, r.Offset); err != nil && !errors.Is(err, io.EOF) {
			rc.Close()
			return nil, err
		}
	}
	if r.Length > 0 {
		return limited{io.LimitReader(rc, r.Length), rc}, nil
	}
	return rc, nil
}

type limited struct {
	io.Reader
	io.Closer
}

// toolReader reads xrdcp's stdout; at EOF it waits for the tool and turns
// a failed exit into the read error, so a transfer that dies midway never
// looks like a short file.
type toolReader struct {
	x      *XRootD
	ctx    context.Context
	abs    string
	cmd    interface{ Wait() error }
	cancel context.CancelFunc
	stderr *strings.Builder
	br     *bufio.Reader
	done   bool
	err    error
}

func (t *toolReader) finish() error {
	if !t.done {
		t.done = true
		if err := t.cmd.Wait(); err != nil {
			t.err = t.x.toolError(t.ctx, "open", t.abs, err, t.stderr.String())
		}
		t.cancel()
	}
	return t.err
}

func (t *toolReader) Read(p []byte) (int, error) {
	if t.done && t.br.Buffered() == 0 {
		// The pipe is closed once the tool has been waited for.
		if t.err != nil {
			return 0, t.err
		}
		return 0, io.EOF
	}
	n, err := t.br.Read(p)
	if errors.Is(err, io.EOF) {
		if ferr := t.finish(); ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

// Close stops the tool if the caller did not read to the end.
func (t *toolReader) Close() error {
	if !t.done {
		t.cancel()
		t.done = true
		_ = t.cmd.Wait()
	}
	return nil
}

// Put implements driver.Driver: xrdcp reads src from stdin into a hidden
// temporary name in the target directory (created with -p), which "xrdfs
// mv" then renames over the target. XRootD has no atomic upload, and
// xrdcp --posc leaves a visible zero-length file when the client dies, so
// the rename is what keeps a failed or canceled upload invisible.
func (x *XRootD) Put(ctx context.Context, p string, src io.Reader, size int64) error {
	rel, abs, err := x.resolve(p)
	if err != nil {
		return err
	}
	if rel == "" {
		return driver.NewError(ctx, "put", x.urlOf(abs), driver.ErrIsDir, "", nil)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(abs), tmpPrefix+hex.EncodeToString(rnd[:]))
	body := &driver.SizeReader{R: driver.ContextReader(ctx, src), Want: size}
	cmd := x.command(ctx, x.xrdcp, "-N", "-f", "-p", "--posc", "-", x.urlOf(tmp))
	cmd.Stdin = body
	var errb strings.Builder
	cmd.Stderr, cmd.Stdout = &errb, &errb
	runErr := cmd.Run()
	if runErr != nil || body.Mismatch != nil {
		x.cleanup(tmp)
		switch {
		case body.Mismatch != nil:
			return driver.NewError(ctx, "put", x.urlOf(abs), driver.ErrSizeMismatch, "", body.Mismatch)
		case ctx.Err() != nil:
			return driver.NewError(ctx, "put", x.urlOf(abs), nil, "", runErr)
		}
		return x.toolError(ctx, "put", abs, runErr, errb.String())
	}
	if _, err := x.xrdfsRun(ctx, "put", abs, "mv", tmp, abs); err != nil {
		x.cleanup(tmp)
		if e, serr := x.Stat(ctx, rel); serr == nil && e.IsDir {
			return driver.NewError(ctx, "put", x.urlOf(abs), driver.ErrIsDir, "", err)
		}
		return err
	}
	return nil
}

// cleanup removes a temporary upload, best effort, with its own short
// deadline because the operation's ctx may be what failed.
func (x *XRootD) cleanup(tmp string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := x.xrdfsRun(ctx, "cleanup", tmp, "rm", tmp); err != nil && !errors.Is(err, driver.ErrNotFound) {
		x.opts.Log.WithError(err).WithField("path", tmp).Warn("could not remove temporary upload")
	}
}
