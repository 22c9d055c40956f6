package srm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// HTTP third-party copy as gfal2 and FTS drive it (WLCG HTTP-TPC):
//
//   - pull: COPY on the destination with Source: the SE GETs the source and
//     writes it here, verified (size, and adler32 against the source's
//     Digest) before the atomic rename;
//   - push: COPY on the source with Destination on another server: the SE
//     PUTs this file there, declaring its adler32 in Digest, and checks the
//     destination's checksum afterwards.
//
// The SE acts only with the credentials the client handed it in
// TransferHeader* headers (TransferHeaderAuthorization: Bearer <token or
// macaroon obtained from the other side), never with its own host
// certificate: otherwise any user could make this SE read or write
// whatever the SE itself may (the confused deputy). The reply is 202 with a
// text/plain stream of performance markers ending in "success: Created" or
// "failure: <reason>". Copies are bounded in number (tpc.max_concurrent),
// total time (tpc.timeout) and stall (tpc.idle_timeout).

// tpcHTTPClient returns the client for third-party copies: no client
// certificate, peers verified against the current CA pool (so CA reloads
// apply), redirects followed only to https.
func (s *Server) tpcHTTPClient() *http.Client {
	s.tpcOnce.Do(func() {
		verify := func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the remote server presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: s.cas.Pool(), Intermediates: inter})
			return err
		}
		s.tpc = &http.Client{
			Transport: &http.Transport{
				TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12,
					// Verified in VerifyConnection against the live CA pool.
					InsecureSkipVerify: true, VerifyConnection: verify},
				MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: time.Minute,
				// Large buffers: a copy is one long stream.
				WriteBufferSize: 256 << 10, ReadBufferSize: 256 << 10,
			},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if req.URL.Scheme != "https" || len(via) > 5 {
					return errors.New("redirect refused")
				}
				return nil
			},
		}
	})
	return s.tpc
}

// transferHeaders are the client's TransferHeader* headers without the
// prefix: the only credentials a copy uses.
func transferHeaders(r *http.Request) http.Header {
	h := http.Header{}
	for k, v := range r.Header {
		if name, ok := strings.CutPrefix(k, "Transferheader"); ok && name != "" {
			h[http.CanonicalHeaderKey(name)] = v
		}
	}
	return h
}

// remoteURL accepts https (and gfal2's davs) URLs of the other side.
func remoteURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", errors.New("not a URL")
	}
	switch u.Scheme {
	case "https":
	case "davs":
		u.Scheme = "https"
	default:
		return "", errors.New("only https (or davs) URLs are supported")
	}
	return u.String(), nil
}

// digestAdler32 extracts adler32 from a Digest header ("" if absent).
func digestAdler32(h string) string {
	for _, p := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(k, "adler32") {
			v = strings.ToLower(strings.TrimSpace(v))
			for len(v) < 8 {
				v = "0" + v
			}
			return v
		}
	}
	return ""
}

// tpcSlot takes a copy slot, or answers 503.
func (s *Server) tpcSlot(w http.ResponseWriter) bool {
	select {
	case s.tpcSlots <- struct{}{}:
		return true
	default:
		w.Header().Set("Retry-After", "30")
		httpError(w, http.StatusServiceUnavailable, "too many third-party copies running: retry later")
		return false
	}
}

// tpcRun streams performance markers while copy runs, then the outcome.
// The copy's context ends at tpc.timeout, or when no byte moves for
// tpc.idle_timeout, or when the client goes away.
func (s *Server) tpcRun(w http.ResponseWriter, ctx context.Context, cancel context.CancelFunc, moved *atomic.Int64, remote string,
	copy func(ctx context.Context) error) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusAccepted)
	flusher, _ := w.(http.Flusher)
	host := ""
	if u, err := url.Parse(remote); err == nil {
		host = u.Host
	}
	marker := func() {
		fmt.Fprintf(w, "Perf Marker\nTimestamp: %d\nStripe Index: 0\nStripe Bytes Transferred: %d\nTotal Stripe Count: 1\nRemoteConnections: tcp:%s\nEnd\n",
			time.Now().Unix(), moved.Load(), host)
		if flusher != nil {
			flusher.Flush()
		}
	}
	marker()
	done := make(chan error, 1)
	go func() { done <- copy(ctx) }()
	tick := time.NewTicker(s.cfg.TPC.PerfMarkerInterval)
	defer tick.Stop()
	last, lastMove := moved.Load(), time.Now()
	stalled := false
	for {
		select {
		case <-tick.C:
			marker()
			if n := moved.Load(); n != last {
				last, lastMove = n, time.Now()
			} else if time.Since(lastMove) > s.cfg.TPC.IdleTimeout {
				stalled = true
				cancel()
			}
		case err := <-done:
			if err != nil {
				if stalled {
					err = fmt.Errorf("no data moved for %s", s.cfg.TPC.IdleTimeout)
				} else if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					err = fmt.Errorf("the copy did not finish within %s", s.cfg.TPC.Timeout)
				}
				fmt.Fprintf(w, "failure: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
				return
			}
			marker()
			fmt.Fprint(w, "success: Created\n")
			return
		}
	}
}

// tpcPull is COPY with Source on loc (the destination).
func (s *Server) tpcPull(w http.ResponseWriter, r *http.Request, loc *Location) {
	src, err := remoteURL(r.Header.Get("Source"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "Source: "+err.Error())
		return
	}
	drv := loc.Area.drv
	prev, statErr := drv.Stat(r.Context(), loc.Name)
	exists := statErr == nil
	acc := accCreate
	if exists {
		acc = accModify
	}
	if !s.allow(w, r, loc, acc) {
		return
	}
	if loc.Name == "" || (exists && prev.IsDir()) {
		httpError(w, http.StatusConflict, "the destination is a collection")
		return
	}
	held := s.engine.heldBy(loc.StFN)
	srmUpload := held != nil && !strings.HasPrefix(held.token, davHoldPrefix)
	if exists && !srmUpload && strings.EqualFold(r.Header.Get("Overwrite"), "F") {
		httpError(w, http.StatusPreconditionFailed, "the destination exists and Overwrite is F")
		return
	}
	if !srmUpload && !s.parentIsCollection(w, r, loc) {
		return
	}
	requireSum := strings.EqualFold(r.Header.Get("RequireChecksumVerification"), "true")
	if !s.tpcSlot(w) {
		return
	}
	defer func() { <-s.tpcSlots }()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.TPC.Timeout)
	defer cancel()
	// The copy ends with the client too: nobody would learn its outcome.
	stop := context.AfterFunc(r.Context(), cancel)
	defer stop()

	greq, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		httpError(w, http.StatusBadRequest, "Source: not a usable URL")
		return
	}
	greq.Header = transferHeaders(r)
	if greq.Header.Get("Want-Digest") == "" {
		greq.Header.Set("Want-Digest", "adler32")
	}
	resp, err := s.tpcHTTPClient().Do(greq)
	if err != nil {
		s.log.WithError(err).WithField("stfn", loc.StFN).Info("third-party pull: the source did not answer")
		httpError(w, http.StatusBadGateway, "the source could not be reached")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		httpError(w, http.StatusBadGateway, fmt.Sprintf("the source answered HTTP %d", resp.StatusCode))
		return
	}
	sum := digestAdler32(resp.Header.Get("Digest"))
	if requireSum && sum == "" {
		httpError(w, http.StatusBadGateway, "RequireChecksumVerification: the source gave no adler32 digest")
		return
	}
	size := resp.ContentLength
	var moved atomic.Int64
	body := &countingReader{r: resp.Body, n: &moved}
	var write func(ctx context.Context) error
	if srmUpload {
		// The TURL of an srmPrepareToPut: written to the upload's staging
		// name, published at srmPutDone like a PUT.
		limit, status, msg := s.uploadLimit(r.Context(), loc, held, size)
		if status != 0 {
			httpError(w, status, msg)
			return
		}
		if limit >= 0 && size > limit {
			httpError(w, http.StatusInsufficientStorage, "the source is larger than the upload's reservation or the free space")
			return
		}
		write = func(ctx context.Context) error {
			_, err := writeAtomic(ctx, drv, stageName(loc.Name, held.token), body, limit, size, sum, true)
			return tpcWriteError(err, moved.Load(), size)
		}
	} else {
		if loc.Area.Config.OnlineSizeLimit > 0 && size < 0 {
			httpError(w, http.StatusLengthRequired, "the source did not announce the size and this storage area needs it")
			return
		}
		u, ok := s.holdForWrite(w, loc, size)
		if !ok {
			return
		}
		defer s.engine.releasePut(loc.StFN, u.token)
		limit := int64(-1)
		if loc.Area.Config.OnlineSizeLimit > 0 {
			limit = size
		}
		write = func(ctx context.Context) error {
			_, err := s.writeFile(ctx, loc, body, limit, size, sum, true)
			return tpcWriteError(err, moved.Load(), size)
		}
	}
	s.tpcRun(w, ctx, cancel, &moved, src, write)
}

// tpcWriteError phrases a failed copy write for the marker stream.
func tpcWriteError(err error, n, size int64) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errTooLarge):
		return errors.New("the source is larger than announced or than the free space")
	case errors.Is(err, rootfs.ErrSizeMismatch):
		return fmt.Errorf("short transfer: %d of %d bytes", n, size)
	case errors.Is(err, errChecksumMismatch):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return errors.New("reading the source or writing the copy failed")
}

// tpcPush is COPY with a remote Destination on loc (the source).
func (s *Server) tpcPush(w http.ResponseWriter, r *http.Request, loc *Location) {
	dst, err := remoteURL(r.Header.Get("Destination"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "Destination: "+err.Error())
		return
	}
	if !s.allow(w, r, loc, accRead) {
		return
	}
	drv := loc.Area.drv
	fi, err := drv.Stat(r.Context(), loc.Name)
	if err != nil {
		davFSError(w, err)
		return
	}
	if !fi.Mode.IsRegular() {
		httpError(w, http.StatusConflict, "only files can be pushed")
		return
	}
	if fi.Locality == fs.Nearline {
		httpError(w, http.StatusServiceUnavailable, "the file is on tape only: stage it first")
		return
	}
	requireSum := strings.EqualFold(r.Header.Get("RequireChecksumVerification"), "true")
	var sum string
	if ck, ok := drv.(fs.Checksummer); ok {
		sum, _ = ck.Adler32(r.Context(), loc.Name, requireSum)
	}
	if !s.tpcSlot(w) {
		return
	}
	defer func() { <-s.tpcSlots }()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.TPC.Timeout)
	defer cancel()
	stop := context.AfterFunc(r.Context(), cancel)
	defer stop()
	creds := transferHeaders(r)
	if strings.EqualFold(r.Header.Get("Overwrite"), "F") {
		hreq, err := http.NewRequestWithContext(ctx, http.MethodHead, dst, nil)
		if err == nil {
			hreq.Header = creds.Clone()
			if resp, err := s.tpcHTTPClient().Do(hreq); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					httpError(w, http.StatusPreconditionFailed, "the destination exists and Overwrite is F")
					return
				}
			}
		}
	}
	f, err := drv.Open(r.Context(), loc.Name)
	if err != nil {
		davFSError(w, err)
		return
	}
	defer f.Close()
	var moved atomic.Int64
	push := func(ctx context.Context) error {
		h := adler32.New()
		body := io.TeeReader(&countingReader{r: f, n: &moved}, h)
		preq, err := http.NewRequestWithContext(ctx, http.MethodPut, dst, io.NopCloser(body))
		if err != nil {
			return errors.New("the destination is not a usable URL")
		}
		preq.ContentLength = fi.Size
		preq.Header = creds.Clone()
		if sum != "" {
			preq.Header.Set("Digest", "adler32="+sum)
		}
		resp, err := s.tpcHTTPClient().Do(preq)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.WithError(err).WithField("stfn", loc.StFN).Info("third-party push: the destination failed")
			return errors.New("the destination could not be reached or broke the connection")
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the destination answered HTTP %d", resp.StatusCode)
		}
		sent := hexSum(h)
		if sum != "" && sent != sum {
			return fmt.Errorf("%w: the file changed while it was sent", errChecksumMismatch)
		}
		return s.verifyRemote(ctx, dst, creds, sent, requireSum)
	}
	s.tpcRun(w, ctx, cancel, &moved, dst, push)
}

func hexSum(h hash.Hash32) string { return hex.EncodeToString(h.Sum(nil)) }

// verifyRemote compares the destination's adler32 with what was sent; a
// destination without Digest support passes unless require.
func (s *Server) verifyRemote(ctx context.Context, dst string, creds http.Header, want string, require bool) error {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodHead, dst, nil)
	if err != nil {
		return err
	}
	hreq.Header = creds.Clone()
	hreq.Header.Set("Want-Digest", "adler32")
	resp, err := s.tpcHTTPClient().Do(hreq)
	if err != nil {
		if require {
			return errors.New("RequireChecksumVerification: the destination could not be asked for its checksum")
		}
		return nil
	}
	resp.Body.Close()
	got := digestAdler32(resp.Header.Get("Digest"))
	switch {
	case got == "" && require:
		return errors.New("RequireChecksumVerification: the destination gave no adler32 digest")
	case got != "" && got != want:
		return fmt.Errorf("%w: the destination has adler32 %s, %s was sent", errChecksumMismatch, got, want)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}
