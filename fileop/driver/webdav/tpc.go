package webdav

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// CopyFrom implements driver.ThirdPartyCopier in WLCG HTTP-TPC pull mode:
// COPY sent to the destination with a Source header; the destination server
// fetches srcURL itself. The reply is a stream of performance markers
// ending in "success: ..." or "failure: ...", read to the end.
func (w *WebDAV) CopyFrom(ctx context.Context, dstPath, srcURL string, opts driver.TPCOptions) error {
	t, err := w.resolve(dstPath, false)
	if err != nil {
		return err
	}
	src := srcURL
	// The active party speaks HTTP; our dav(s) schemes mean the same.
	if rest, ok := strings.CutPrefix(src, "davs://"); ok {
		src = "https://" + rest
	} else if rest, ok := strings.CutPrefix(src, "dav://"); ok {
		src = "http://" + rest
	}
	hdr := map[string]string{
		"Source":              src,
		"Credential":          "none",
		"X-Number-Of-Streams": strconv.Itoa(opts.Streams),
		"Overwrite":           "T",
	}
	if opts.SourceAuthorization != "" {
		hdr["TransferHeaderAuthorization"] = opts.SourceAuthorization
	}
	resp, err := w.do(ctx, "COPY", t, nil, 0, hdr)
	if err != nil {
		return w.fail(ctx, "tpc", t, nil, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		return w.fail(ctx, "tpc", t, resp, nil)
	}
	defer resp.Body.Close()
	return readMarkers(ctx, t.String(), bufio.NewScanner(resp.Body), opts.OnProgress)
}

// readMarkers consumes a WLCG TPC marker stream.
func readMarkers(ctx context.Context, where string, sc *bufio.Scanner, progress func(int64)) error {
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "success:"):
			return nil
		case strings.HasPrefix(line, "failure:"):
			msg := strings.TrimSpace(strings.TrimPrefix(line, "failure:"))
			return driver.NewError(ctx, "tpc", where, driver.KindFromMessage(msg), "", errors.New(msg))
		case strings.HasPrefix(line, "Stripe Bytes Transferred:") && progress != nil:
			if n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Stripe Bytes Transferred:")), 10, 64); err == nil {
				progress(n)
			}
		}
	}
	cause := errors.New("marker stream ended without success or failure")
	if err := sc.Err(); err != nil {
		cause = fmt.Errorf("reading markers: %w", err)
	}
	return driver.NewError(ctx, "tpc", where, driver.ErrServer, "", cause)
}
