package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dynamo-go/dynamo/registry/client"
)

// apiClient is the operator's REST client: the one the CLI uses, with the
// demo operator's token.
type apiClient struct{ c *client.Client }

func newAPIClient(l *layout) (*apiClient, error) {
	c, err := client.New(client.Options{Server: "http://" + l.API, TokenFile: l.OperatorToken})
	if err != nil {
		return nil, fmt.Errorf("demo: REST client: %w", err)
	}
	return &apiClient{c}, nil
}

// do sends a request and decodes the answer into out, unwrapping the
// {"status"|"result", "data"} envelope of the component APIs where the
// answer has one.
func (a *apiClient) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var raw json.RawMessage
	if err := a.c.Do(ctx, method, path, q, body, &raw); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Status *string         `json:"status"`
		Result *string         `json:"result"`
	}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) && json.Unmarshal(raw, &env) == nil && env.Data != nil && (env.Status != nil || env.Result != nil) {
		raw = env.Data
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

func (a *apiClient) get(ctx context.Context, path string, q url.Values, out any) error {
	return a.do(ctx, http.MethodGet, path, q, nil, out)
}

func (a *apiClient) post(ctx context.Context, path string, body, out any) error {
	return a.do(ctx, http.MethodPost, path, nil, body, out)
}
