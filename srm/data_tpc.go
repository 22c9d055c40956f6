package srm

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// HTTP third-party copy, pull mode (WLCG HTTP-TPC): COPY on a destination
// TURL with a Source header makes this SE fetch the source and write it
// here. The source is fetched with the SE's host credential (we have no
// delegation endpoint: gfal2's "Credential: gridsite" is answered with the
// host certificate), plus any TransferHeader* headers with the prefix
// stripped (e.g. a bearer token for the source). The source must therefore
// admit this SE's host DN. The reply is 202 with a text/plain stream of perf
// markers ending in "success: Created" or "failure: <reason>".

// perfMarkerInterval is how often progress is reported during a pull.
const perfMarkerInterval = 5 * time.Second

// tpcHTTPClient returns the server's client for third-party pulls: it
// presents the host credential and verifies sources against the current CA
// pool (so CA reloads apply).
func (s *Server) tpcHTTPClient() *http.Client {
	s.tpcOnce.Do(func() {
		verify := func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("source presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: s.cas.Pool(), Intermediates: inter})
			return err
		}
		s.tpc = &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12,
				// Verified in VerifyConnection against the live CA pool.
				InsecureSkipVerify: true, VerifyConnection: verify},
			MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: time.Minute,
		}}
	})
	return s.tpc
}

func (s *Server) dataCopy(w http.ResponseWriter, r *http.Request, loc *Location) {
	src := r.Header.Get("Source")
	if src == "" {
		http.Error(w, "only pull-mode third-party COPY (with a Source header) is supported", http.StatusNotImplemented)
		return
	}
	if !strings.HasPrefix(src, "https://") {
		http.Error(w, "Source must be an https URL", http.StatusBadRequest)
		return
	}
	u := s.engine.heldBy(loc.StFN)
	if u == nil {
		http.Error(w, "no srmPrepareToPut is in progress for this path", http.StatusConflict)
		return
	}
	greq, err := http.NewRequestWithContext(r.Context(), http.MethodGet, src, nil)
	if err != nil {
		http.Error(w, "bad Source: "+err.Error(), http.StatusBadRequest)
		return
	}
	for k, v := range r.Header {
		if name, ok := strings.CutPrefix(k, "Transferheader"); ok && name != "" {
			greq.Header[http.CanonicalHeaderKey(name)] = v
		}
	}
	resp, err := s.tpcHTTPClient().Do(greq)
	if err != nil {
		s.log.WithError(err).WithField("stfn", loc.StFN).Warn("third-party pull: fetching the source failed")
		http.Error(w, "fetching the source failed", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		http.Error(w, fmt.Sprintf("the source answered HTTP %d", resp.StatusCode), http.StatusBadGateway)
		return
	}
	limit, status, msg := s.uploadLimit(r.Context(), loc, u, resp.ContentLength)
	if status != 0 {
		http.Error(w, msg, status)
		return
	}
	if limit >= 0 && resp.ContentLength > limit {
		http.Error(w, "the source is larger than the upload's reservation or the free space", http.StatusInsufficientStorage)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusAccepted)
	flusher, _ := w.(http.Flusher)
	var moved atomic.Int64
	marker := func() {
		fmt.Fprintf(w, "Perf Marker\nTimestamp: %d\nStripe Index: 0\nStripe Bytes Transferred: %d\nTotal Stripe Count: 1\nEnd\n",
			time.Now().Unix(), moved.Load())
		if flusher != nil {
			flusher.Flush()
		}
	}
	marker()
	done := make(chan error, 1)
	go func() {
		// Written to the upload's staging name like a PUT: the target is
		// untouched until srmPutDone, and a failed pull leaves nothing.
		n, err := writeStaged(r.Context(), loc, u.token, &countingReader{r: resp.Body, n: &moved}, limit, resp.ContentLength)
		switch {
		case errors.Is(err, errTooLarge):
			err = errors.New("the source is larger than the upload's reservation or the free space")
		case errors.Is(err, rootfs.ErrSizeMismatch):
			err = fmt.Errorf("short transfer: %d of %d bytes", n, resp.ContentLength)
		case err != nil:
			s.log.WithError(err).WithField("stfn", loc.StFN).Warn("third-party pull: writing failed")
			err = errors.New("writing the copy failed")
		}
		done <- err
	}()
	tick := time.NewTicker(perfMarkerInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			marker()
		case err := <-done:
			if err != nil {
				s.log.WithError(err).WithField("stfn", loc.StFN).Warn("third-party pull failed")
				fmt.Fprintf(w, "failure: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
				return
			}
			marker()
			fmt.Fprint(w, "success: Created\n")
			return
		}
	}
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
