package stager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// ErrWebhookAddress: a webhook would reach an internal address (loopback,
// link-local, private, unspecified, multicast) whose host allow_hosts does
// not name.
var ErrWebhookAddress = errors.New("webhook address refused")

// internalAddr reports whether ip is an address a user's webhook must not
// make the server reach unless an operator allowed it by name: the
// server's own machine and the networks behind it.
func internalAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsPrivate() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() ||
		// 100.64.0.0/10 (carrier-grade NAT) is not public either.
		netip.MustParsePrefix("100.64.0.0/10").Contains(ip)
}

// named reports whether allow_hosts names host explicitly (the list being
// empty names nothing).
func (w WebhookConfig) named(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range w.AllowHosts {
		a = strings.ToLower(a)
		if host == a || (strings.HasPrefix(a, ".") && strings.HasSuffix(host, a)) {
			return true
		}
	}
	return false
}

// checkWebhookHost refuses at submission what the dialer would refuse for
// sure: a literal internal address not named in allow_hosts.
func (w WebhookConfig) checkWebhookHost(host string) error {
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && internalAddr(ip) && !w.named(host) {
		return fmt.Errorf("%w: %s is an internal address; an operator must name it in webhook.allow_hosts", ErrWebhookAddress, host)
	}
	return nil
}

// webhookClient is the HTTP client of webhook deliveries. It resolves the
// host itself and connects to the address it checked, so a name that
// resolves to a public address when checked and to an internal one when
// connecting (DNS rebinding) cannot reach an internal address: the check
// and the connection use the same resolution. It follows no redirect and
// uses no proxy.
func (w WebhookConfig) webhookClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		var firstErr error
		for _, ip := range ips {
			if internalAddr(ip) && !w.named(host) {
				if firstErr == nil {
					firstErr = fmt.Errorf("%w: %s resolves to the internal address %s; an operator must name it in webhook.allow_hosts", ErrWebhookAddress, host, ip.Unmap())
				}
				continue
			}
			c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("%s: no address", host)
		}
		return nil, firstErr
	}
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DialContext: dial, TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
