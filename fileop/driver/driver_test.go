package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"syscall"
	"testing"
)

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "/": "", "a": "a", "/a/b/": "a/b", "a//b/./c": "a/b/c", "a/../b": "b", "a b/c#d": "a b/c#d",
	} {
		got, err := CleanPath(in)
		if err != nil || got != want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"..", "../x", "a/../../x", "/../x", "a\x00b"} {
		if _, err := CleanPath(bad); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("CleanPath(%q): %v, want ErrInvalidPath", bad, err)
		}
	}
}

func TestSplitURL(t *testing.T) {
	for in, want := range map[string][2]string{
		"davs://se:443/store/mc/f.root": {"davs://se:443/", "store/mc/f.root"},
		"root://se:1094//store/f":       {"root://se:1094//", "store/f"},
		"file:///data/x/y":              {"file:///", "data/x/y"},
		"https://se/a%20b/c?x=1":        {"https://se/", "a b/c"},
	} {
		root, rel, err := SplitURL(in)
		if err != nil || root != want[0] || rel != want[1] {
			t.Errorf("SplitURL(%q) = %q, %q, %v; want %q, %q", in, root, rel, err, want[0], want[1])
		}
	}
	if _, _, err := SplitURL("/no/scheme"); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("SplitURL without scheme: %v", err)
	}
}

func TestKinds(t *testing.T) {
	for _, tc := range []struct {
		got, want   error
		recoverable bool
	}{
		{KindFromHTTP(404), ErrNotFound, false},
		{KindFromHTTP(403), ErrPermission, false},
		{KindFromHTTP(401), ErrPermission, false},
		{KindFromHTTP(507), ErrNoSpace, true},
		{KindFromHTTP(503), ErrUnavailable, true},
		{KindFromHTTP(500), ErrServer, true},
		{KindFromHTTP(400), ErrInvalid, false},
		{KindFromErrno(syscall.ENOENT), ErrNotFound, false},
		{KindFromErrno(syscall.EACCES), ErrPermission, false},
		{KindFromErrno(syscall.ENOTEMPTY), ErrNotEmpty, false},
		{KindFromErrno(syscall.ENOSPC), ErrNoSpace, true},
		{KindFromErrno(syscall.EIO), ErrServer, true},
		{KindFromXRootD(3011), ErrNotFound, false},
		{KindFromXRootD(3010), ErrPermission, false},
		{KindFromXRootD(3016), ErrIsDir, false},
		{KindFromXRootD(3018), ErrExists, false},
		{KindFromXRootD(3024), ErrUnavailable, true},
		{KindFromXRootD(3019), ErrChecksumMismatch, true},
		{KindFromXRootD(3005), ErrServer, true},
		{KindFromMessage("globus: proxy expired"), ErrPermission, false},
		{KindFromMessage("SRM_INVALID_PATH: No such file or directory"), ErrNotFound, false},
		{KindFromMessage("Connection refused"), ErrUnavailable, true},
		{KindFromMessage("something odd"), ErrServer, true},
	} {
		if tc.got != tc.want {
			t.Errorf("got kind %v, want %v", tc.got, tc.want)
		}
		err := &Error{Op: "x", URL: "u", Kind: tc.got}
		if Recoverable(err) != tc.recoverable {
			t.Errorf("Recoverable(%v) = %v, want %v", tc.got, !tc.recoverable, tc.recoverable)
		}
	}
	if !Recoverable(fmt.Errorf("opaque")) {
		t.Error("an unclassified error must count as recoverable")
	}
}

func TestNewErrorPrefersContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := NewError(ctx, "stat", "file:///x", ErrNotFound, "errno ENOENT", errors.New("boom"))
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotFound) {
		t.Fatalf("error after cancel = %v; want ErrCanceled wrapping context.Canceled and not ErrNotFound", err)
	}
	e := NewError(context.Background(), "stat", "file:///x", ErrNotFound, "errno ENOENT", errors.New("boom"))
	if want := "stat file:///x: not found (errno ENOENT): boom"; e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
}

func TestOpenUnknownScheme(t *testing.T) {
	_, err := Open(context.Background(), "gsiftp://se/x", Options{})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "gsiftp") {
		t.Fatalf("Open(gsiftp) = %v", err)
	}
	_, err = Open(context.Background(), "/just/a/path", Options{})
	if !errors.Is(err, ErrInvalidPath) {
		t.Fatalf("Open(path) = %v", err)
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	newf := func(context.Context, *url.URL, Options) (Driver, error) { return nil, nil }
	Register(Info{Name: "t1", Schemes: []string{"dup-test"}, New: newf})
	defer func() {
		if recover() == nil {
			t.Fatal("second registration of a scheme did not panic")
		}
	}()
	Register(Info{Name: "t2", Schemes: []string{"DUP-TEST"}, New: newf})
}

func TestOptionsValidate(t *testing.T) {
	err := Options{CABundle: "/nonexistent/ca.pem", Cert: "/etc/hostname"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "ca_bundle") || !strings.Contains(err.Error(), "cert and key") {
		t.Fatalf("Validate = %v; want both problems named", err)
	}
}

func TestSizeReader(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want int64
		bad  bool
	}{{"12345", 5, false}, {"123", 5, true}, {"1234567", 5, true}, {"abc", -1, false}} {
		r := &SizeReader{R: strings.NewReader(tc.src), Want: tc.want}
		_, err := io.ReadAll(r)
		if bad := errors.Is(err, ErrSizeMismatch); bad != tc.bad || (err != nil && !bad) {
			t.Errorf("SizeReader(%q, %d): err %v, want mismatch=%v", tc.src, tc.want, err, tc.bad)
		}
	}
}
