package estimator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/dynamo-go/dynamo/srm/client"
)

// Statter is the SRM call the SRM source needs; *client.Client has it.
type Statter interface {
	Stat(ctx context.Context, surl string) (client.Entry, error)
}

// SRMSource learns localities with srmLs (one call per SURL, Parallel at
// a time; the SE answers fileLocality). A missing file is LOST; any other
// failure leaves the SURL unknown.
type SRMSource struct {
	Resolve func(surl string) (Statter, error)
	// Parallel bounds the calls in flight; default 8.
	Parallel int
}

// Localities implements Source.
func (s SRMSource) Localities(ctx context.Context, surls []string) (map[string]Locality, error) {
	par := s.Parallel
	if par <= 0 {
		par = 8
	}
	var mu sync.Mutex
	out := map[string]Locality{}
	var firstErr error
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, u := range surls {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var l Locality
			c, err := s.Resolve(u)
			if err == nil {
				var e client.Entry
				e, err = c.Stat(ctx, u)
				switch {
				case errors.Is(err, client.ErrNotFound):
					l, err = Lost, nil
				case err == nil:
					l = Locality(e.Locality)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmpErr(firstErr, err)
				return
			}
			out[u] = l
		}()
	}
	wg.Wait()
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	return out, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// TapeREST learns localities from a WLCG Tape REST API endpoint's
// archiveinfo call (POST <Endpoint>/archiveinfo {"paths": [...]}). Use it
// for sites that publish one; it answers many files in one call.
type TapeREST struct {
	// Endpoint is the API base, e.g. https://tape.example.org:8443/api/v1.
	Endpoint string
	// HTTP carries the credential; nil means http.DefaultClient.
	HTTP *http.Client
	// Path maps a SURL to the path the API knows; nil uses the SURL's
	// path (or its SFN query parameter).
	Path func(surl string) string
}

var tapeLocality = map[string]Locality{
	"DISK": Online, "TAPE": Nearline, "DISK_AND_TAPE": OnlineAndNearline,
	"LOST": Lost, "NONE": None, "UNAVAILABLE": Unavailable,
}

// Localities implements Source. Files the API answers with an error are
// unknown.
func (t TapeREST) Localities(ctx context.Context, surls []string) (map[string]Locality, error) {
	path := t.Path
	if path == nil {
		path = surlPath
	}
	byPath := map[string][]string{}
	var paths []string
	for _, u := range surls {
		p := path(u)
		if _, ok := byPath[p]; !ok {
			paths = append(paths, p)
		}
		byPath[p] = append(byPath[p], u)
	}
	body, _ := json.Marshal(map[string][]string{"paths": paths})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(t.Endpoint, "/")+"/archiveinfo", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("tape rest archiveinfo: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := t.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("tape rest archiveinfo: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("tape rest archiveinfo: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("tape rest archiveinfo: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var items []struct {
		Path     string `json:"path"`
		Locality string `json:"locality"`
		Error    string `json:"error"`
	}
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, fmt.Errorf("tape rest archiveinfo: answer: %w", err)
	}
	out := map[string]Locality{}
	for _, it := range items {
		l, ok := tapeLocality[it.Locality]
		if it.Error != "" || !ok {
			continue
		}
		for _, u := range byPath[it.Path] {
			out[u] = l
		}
	}
	return out, nil
}

func surlPath(surl string) string {
	u, err := url.Parse(surl)
	if err != nil {
		return surl
	}
	if sfn := u.Query().Get("SFN"); sfn != "" {
		return sfn
	}
	return u.Path
}

// Chain asks each source in turn for the SURLs the previous ones left
// unknown.
type Chain []Source

// Localities implements Source.
func (c Chain) Localities(ctx context.Context, surls []string) (map[string]Locality, error) {
	out := map[string]Locality{}
	left := surls
	var lastErr error
	for _, s := range c {
		if len(left) == 0 {
			break
		}
		got, err := s.Localities(ctx, left)
		if err != nil {
			lastErr = err
		}
		var next []string
		for _, u := range left {
			if l := got[u]; l != Unknown {
				out[u] = l
			} else {
				next = append(next, u)
			}
		}
		left = next
	}
	if len(out) == 0 && lastErr != nil {
		return nil, lastErr
	}
	return out, nil
}

// ByHost routes each SURL to the source of its host ("host:port" as in
// the SURL); SURLs of other hosts are left unknown. Use it in a Chain to
// ask a site's Tape REST API where there is one and srmLs elsewhere.
type ByHost map[string]Source

// Localities implements Source.
func (b ByHost) Localities(ctx context.Context, surls []string) (map[string]Locality, error) {
	groups := map[string][]string{}
	for _, s := range surls {
		if u, err := url.Parse(s); err == nil && b[u.Host] != nil {
			groups[u.Host] = append(groups[u.Host], s)
		}
	}
	out := map[string]Locality{}
	var firstErr error
	for h, ss := range groups {
		got, err := b[h].Localities(ctx, ss)
		if err != nil {
			firstErr = cmpErr(firstErr, fmt.Errorf("%s: %w", h, err))
			continue
		}
		for k, v := range got {
			out[k] = v
		}
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}
