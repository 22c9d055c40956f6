package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/delegation"
	"github.com/dynamo-go/dynamo/registry/client"
)

func init() { registerCommand(newDelegateCmd) }

// delegationAPIPath is where dynamo serve mounts the delegation routes.
const delegationAPIPath = "/api/v1/delegation"

// whoami is the answer of GET /api/v1/delegation.
type whoami struct {
	ID          string           `json:"delegation_id"`
	DN          string           `json:"dn"`
	MaxLifetime string           `json:"max_lifetime"`
	Delegation  *delegation.Info `json:"delegation"`
}

// askWhoami asks the server who this credential is to it: the DN it
// verified, the delegation id that DN owns and the lifetime cap.
func askWhoami(ctx context.Context, c *client.Client) (whoami, error) {
	var who struct {
		Data whoami `json:"data"`
	}
	err := c.Do(ctx, http.MethodGet, delegationAPIPath, nil, nil, &who)
	return who.Data, err
}

func newDelegateCmd(g *globalOptions) *cobra.Command {
	f := &apiFlags{g: g}
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "delegate",
		Short: "Delegate a short-lived proxy to the server, with which the stager carries out your requests",
		Long: `Delegate a short-lived RFC 3820 proxy of your certificate or proxy (--cert/--key or --proxy)
to the server: the server makes a key pair and sends a certificate request, which is signed here
with your credential and sent back. Your private key never leaves this machine; the server's never
leaves the server. The stager then prepares your gets at the storage elements under your own DN.
--lifetime defaults to the server's maximum (projects.stager.delegation.max_lifetime).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, signer, err := delegateClient(f)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			who, err := askWhoami(ctx, c)
			if err != nil {
				return err
			}
			life := lifetime
			if life == 0 {
				if life, err = time.ParseDuration(who.MaxLifetime); err != nil {
					return fmt.Errorf("the server's max_lifetime %q: %w", who.MaxLifetime, err)
				}
			}
			info, err := delegate(ctx, c, who.ID, signer, life)
			if err != nil {
				return err
			}
			return printDelegation(g, f.asJSON, info)
		},
	}
	addAPIFlags(cmd, f)
	cmd.Flags().DurationVar(&lifetime, "lifetime", 0, "lifetime of the delegated proxy (default: the server's maximum; never beyond your credential's)")
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Show your delegation on the server (DN, expiry)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			who, err := askWhoami(cmd.Context(), c)
			if err != nil {
				return err
			}
			if who.Delegation == nil {
				if f.asJSON {
					return jsonOut(g.stdout, who)
				}
				fmt.Fprintf(g.stdout, "%s has no delegation (id %s); run dynamo delegate\n", who.DN, who.ID)
				return nil
			}
			return printDelegation(g, f.asJSON, *who.Delegation)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "remove",
		Short: "Remove your delegation from the server (your requests then fail until you delegate again)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			who, err := askWhoami(cmd.Context(), c)
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), http.MethodDelete, delegationAPIPath+"/"+who.ID, nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed delegation %s of %s\n", who.ID, who.DN)
			return nil
		},
	})
	return cmd
}

// delegateClient is the REST client and the credential that signs: the
// same certificate or proxy, since the server accepts only a proxy that
// chains to the identity uploading it.
func delegateClient(f *apiFlags) (*client.Client, tls.Certificate, error) {
	o, err := f.resolved()
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	var signer tls.Certificate
	switch {
	case o.Proxy != "":
		signer, err = tls.LoadX509KeyPair(o.Proxy, o.Proxy)
	case o.Cert != "":
		key := o.Key
		if key == "" {
			key = o.Cert
		}
		signer, err = tls.LoadX509KeyPair(o.Cert, key)
	default:
		return nil, signer, usageError{errors.New("delegate needs your certificate (--cert/--key) or proxy (--proxy): the server must see, over TLS, the identity that delegates; a token names none")}
	}
	if err != nil {
		return nil, signer, usageError{fmt.Errorf("credential: %w", err)}
	}
	// A token would be sent instead of the certificate: leave it out.
	o.Token, o.TokenFile = "", ""
	c, err := client.New(o)
	if err != nil {
		return nil, signer, usageError{err}
	}
	return c, signer, nil
}

// delegate does the round trip: the server's certificate request for id,
// signed here into a proxy of signer, sent back.
func delegate(ctx context.Context, c *client.Client, id string, signer tls.Certificate, life time.Duration) (delegation.Info, error) {
	resp, err := c.Send(ctx, http.MethodGet, delegationAPIPath+"/"+id+"/request", nil, nil)
	if err != nil {
		return delegation.Info{}, err
	}
	csr, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return delegation.Info{}, fmt.Errorf("reading the certificate request: %w", err)
	}
	chain, _, err := delegation.SignRequest(csr, signer, life, time.Now())
	if err != nil {
		return delegation.Info{}, err
	}
	var out struct {
		Data delegation.Info `json:"data"`
	}
	err = c.Do(ctx, http.MethodPut, delegationAPIPath+"/"+id+"/credential", nil,
		client.Raw{ContentType: "application/x-pem-file", Data: chain}, &out)
	return out.Data, err
}

func printDelegation(g *globalOptions, asJSON bool, info delegation.Info) error {
	if asJSON {
		return jsonOut(g.stdout, info)
	}
	if info.Expired(time.Now()) {
		fmt.Fprintf(g.stdout, "delegation %s of %s expired at %s; run dynamo delegate\n", info.ID, info.DN, info.Expires.UTC().Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(g.stdout, "delegation %s of %s valid until %s (%s left)\n", info.ID, info.DN,
		info.Expires.UTC().Format(time.RFC3339), time.Until(info.Expires).Round(time.Second))
	return nil
}
