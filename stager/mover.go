package stager

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// HTTPMover moves a copy's bytes between two http(s) TURLs: a streaming GET
// from the source piped into a PUT to the destination. Client carries the
// credential the SEs' data endpoints accept.
type HTTPMover struct {
	Client *http.Client
}

// Move implements Mover.
func (m HTTPMover) Move(ctx context.Context, src, dst string) error {
	get, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return err
	}
	resp, err := m.Client.Do(get)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", src, resp.Status)
	}
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, dst, resp.Body)
	if err != nil {
		return err
	}
	put.ContentLength = resp.ContentLength
	presp, err := m.Client.Do(put)
	if err != nil {
		return err
	}
	defer presp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(presp.Body, 1<<16))
	if presp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: %s", dst, presp.Status)
	}
	return nil
}

var _ Mover = HTTPMover{}
