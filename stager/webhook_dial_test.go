package stager

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// Webhooks to loopback, link-local and private addresses are refused
// unless allow_hosts names them: a literal address at submission, a name
// at connection time, after resolving it (so a name that resolves to an
// internal address, or rebinds to one, is refused too).
func TestWebhookInternalAddressesRefused(t *testing.T) {
	var none WebhookConfig
	for _, host := range []string{"127.0.0.1", "::1", "[::1]", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.169.254", "0.0.0.0", "100.64.1.1", "fe80::1", "::ffff:127.0.0.1"} {
		if err := none.checkWebhookHost(host); !errors.Is(err, ErrWebhookAddress) {
			t.Errorf("%s: %v, want refused", host, err)
		}
	}
	for _, host := range []string{"8.8.8.8", "2001:4860:4860::8888", "cb.example.org"} {
		if err := none.checkWebhookHost(host); err != nil {
			t.Errorf("%s: %v, want accepted at submission", host, err)
		}
	}
	if err := (WebhookConfig{AllowHosts: []string{"10.1.2.3"}}).checkWebhookHost("10.1.2.3"); err != nil {
		t.Errorf("named internal address: %v", err)
	}

	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	post := func(w WebhookConfig, url string) error {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader([]byte("{}")))
		resp, err := w.webhookClient().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := post(none, byName); !errors.Is(err, ErrWebhookAddress) || hits.Load() != 0 {
		t.Fatalf("localhost without allow_hosts: %v, %d calls", err, hits.Load())
	}
	if err := post(WebhookConfig{AllowHosts: []string{"localhost"}}, byName); err != nil || hits.Load() != 1 {
		t.Fatalf("localhost named in allow_hosts: %v, %d calls", err, hits.Load())
	}
	// A redirect is not followed (it could lead anywhere).
	redir := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusFound))
	defer redir.Close()
	if err := post(WebhookConfig{AllowHosts: []string{"127.0.0.1"}}, redir.URL); err != nil || hits.Load() != 1 {
		t.Fatalf("redirect: %v, %d calls", err, hits.Load())
	}
}
