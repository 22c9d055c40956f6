// Package xrootd is the root:// driver. No pure-Go XRootD client is
// available, so it drives Debian's XRootD client tools: xrdfs for metadata
// (stat, ls -l, mkdir -p, rm, rmdir, mv, query checksum, spaceinfo) and
// xrdcp for data, streaming through stdin/stdout. Every tool run is bound to
// the operation's context; errors are classified from the kXR_* code xrdfs
// and xrdcp print ("[3011] ..."), with the message as a fallback.
package xrootd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

func init() {
	driver.Register(driver.Info{Name: "xrootd", Schemes: []string{"root", "xroot"}, New: New})
}

// XRootD is the root:// driver. Use New (or driver.Open).
type XRootD struct {
	addr  string // host[:port] (with user@ if given), for xrdfs
	root  string // absolute path of the driver root on the server, "/data"
	shown string
	xrdfs string
	xrdcp string
	env   []string
	opts  driver.Options
}

// New opens root://host[:port]//abs/path. The tools must be on PATH
// (Debian package xrootd-client); otherwise ErrUnsupported.
func New(_ context.Context, u *url.URL, opts driver.Options) (driver.Driver, error) {
	shown := driver.Redact(u)
	if u.Host == "" {
		return nil, &driver.Error{Op: "open", URL: shown, Kind: driver.ErrInvalidPath, Err: errors.New("no host")}
	}
	x := &XRootD{addr: u.Host, shown: shown, opts: opts}
	if u.User != nil {
		x.addr = u.User.Username() + "@" + u.Host
	}
	x.root = path.Clean("/" + strings.TrimLeft(u.Path, "/"))
	for _, t := range []struct {
		dst  *string
		name string
	}{{&x.xrdfs, "xrdfs"}, {&x.xrdcp, "xrdcp"}} {
		p, err := exec.LookPath(t.name)
		if err != nil {
			return nil, &driver.Error{Op: "open", URL: shown, Kind: driver.ErrUnsupported, Err: fmt.Errorf("%s not found (install xrootd-client): %w", t.name, err)}
		}
		*t.dst = p
	}
	x.env = toolEnv(opts)
	return x, nil
}

// toolEnv passes the credentials to the XRootD security plugins through
// their standard variables, overriding the inherited ones.
func toolEnv(o driver.Options) []string {
	set := map[string]string{}
	if o.CACertDir != "" {
		set["X509_CERT_DIR"] = o.CACertDir
	}
	if o.Proxy != "" {
		set["X509_USER_PROXY"] = o.Proxy
	}
	if o.Cert != "" {
		set["X509_USER_CERT"], set["X509_USER_KEY"] = o.Cert, o.Key
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, over := set[k]; !over {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// String returns the root URL as opened.
func (x *XRootD) String() string { return x.shown }

// resolve returns the clean relative path and the absolute server path.
func (x *XRootD) resolve(p string) (rel, abs string, err error) {
	rel, err = driver.CleanPath(p)
	if err != nil {
		return "", "", &driver.Error{Op: "path", URL: x.shown + "/" + p, Kind: driver.ErrInvalidPath, Err: err}
	}
	// '?' starts the opaque (CGI) part of an XRootD URL and a newline
	// would split an ls line: such names cannot round-trip through the tools.
	if strings.ContainsAny(rel, "?\n") {
		return "", "", &driver.Error{Op: "path", URL: x.shown + "/" + p, Kind: driver.ErrInvalidPath, Err: errors.New("'?' and newlines are not supported in root:// names")}
	}
	if rel == "" {
		return "", x.root, nil
	}
	return rel, path.Join(x.root, rel), nil
}

func (x *XRootD) urlOf(abs string) string { return "root://" + x.addr + "/" + abs }

func (x *XRootD) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = x.env
	// After a kill, do not wait forever for stdout/stderr copiers.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// xrdfsRun runs one xrdfs subcommand and returns its stdout.
func (x *XRootD) xrdfsRun(ctx context.Context, op, abs string, args ...string) ([]byte, error) {
	var out, errb bytes.Buffer
	cmd := x.command(ctx, x.xrdfs, append([]string{x.addr}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), x.toolError(ctx, op, abs, err, errb.String()+out.String())
	}
	return out.Bytes(), nil
}

var (
	codeRe = regexp.MustCompile(`\[(\d{4})\]\s*([^\n]*)`)
	msgRe  = regexp.MustCompile(`\[(?:ERROR|FATAL)\]\s*([^\n]*)`)
)

// toolError classifies a failed tool run: the kXR code if the server sent
// one; the message when the code is generic (3005 kXR_FSError carries
// "directory not empty", "not a directory") or absent.
func (x *XRootD) toolError(ctx context.Context, op, abs string, runErr error, output string) error {
	where := x.urlOf(abs)
	if m := codeRe.FindAllStringSubmatch(output, -1); m != nil {
		last := m[len(m)-1]
		code, _ := strconv.Atoi(last[1])
		kind := driver.KindFromXRootD(code)
		if kind == driver.ErrServer {
			if mk := driver.KindFromMessage(last[2]); mk != driver.ErrServer {
				kind = mk
			}
		}
		return driver.NewError(ctx, op, where, kind, "xrootd "+last[1], errors.New(strings.TrimSpace(last[2])))
	}
	msg := strings.TrimSpace(output)
	if m := msgRe.FindAllStringSubmatch(output, -1); m != nil {
		msg = strings.TrimSpace(m[len(m)-1][1])
	}
	if msg == "" {
		msg = runErr.Error()
	}
	kind := driver.KindFromMessage(msg)
	if kind == driver.ErrServer && (strings.Contains(msg, "Connection") || strings.Contains(msg, "Socket")) {
		kind = driver.ErrUnavailable
	}
	return driver.NewError(ctx, op, where, kind, "", errors.New(msg))
}

func (x *XRootD) metaCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, x.opts.OpTimeout)
}

var (
	_ driver.Driver        = (*XRootD)(nil)
	_ driver.Checksummer   = (*XRootD)(nil)
	_ driver.SpaceReporter = (*XRootD)(nil)
	_ driver.Renamer       = (*XRootD)(nil)
)
