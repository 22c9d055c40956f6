package webdav

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// Checksum implements driver.Checksummer: HEAD with "Want-Digest: adler32"
// (RFC 3230), as gfal2 and davix do. Servers that send no Digest header for
// it (Apache mod_dav) give ErrUnsupported.
func (w *WebDAV) Checksum(ctx context.Context, p, algo string) (string, error) {
	t, err := w.resolve(p, false)
	if err != nil {
		return "", err
	}
	if algo != driver.AlgoAdler32 {
		return "", driver.NewError(ctx, "checksum", t.String(), driver.ErrUnsupported, "", fmt.Errorf("algorithm %q", algo))
	}
	ctx, cancel := w.metaCtx(ctx)
	defer cancel()
	resp, err := w.do(ctx, http.MethodHead, t, nil, 0, map[string]string{"Want-Digest": "adler32"})
	if err != nil {
		return "", w.fail(ctx, "checksum", t, nil, err)
	}
	if resp.StatusCode/100 != 2 {
		return "", w.fail(ctx, "checksum", t, resp, nil)
	}
	resp.Body.Close()
	v, ok := digest(resp.Header.Values("Digest"), "adler32")
	if !ok {
		return "", driver.NewError(ctx, "checksum", t.String(), driver.ErrUnsupported, "", errors.New("no adler32 Digest header in the reply"))
	}
	sum, err := normAdler32(v)
	if err != nil {
		return "", driver.NewError(ctx, "checksum", t.String(), driver.ErrServer, "", err)
	}
	return sum, nil
}

// digest finds algo in Digest header values ("adler32=0a1b2c3d, md5=...").
func digest(values []string, algo string) (string, bool) {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && strings.EqualFold(k, algo) {
				return strings.TrimSpace(val), true
			}
		}
	}
	return "", false
}

// normAdler32 accepts the hex form servers use (any case, leading zeros
// possibly dropped) and, defensively, 4-byte base64; it returns 8 lowercase
// hex digits.
func normAdler32(v string) (string, error) {
	h := strings.ToLower(v)
	if len(h) <= 8 && h != "" {
		if _, err := hex.DecodeString(strings.Repeat("0", 8-len(h)) + h); err == nil {
			return strings.Repeat("0", 8-len(h)) + h, nil
		}
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == 4 {
		return hex.EncodeToString(b), nil
	}
	return "", fmt.Errorf("unparseable adler32 digest %q", v)
}
