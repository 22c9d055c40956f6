package srm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynamo-go/dynamo/internal/gridauth"
	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/posixfs"
)

func posixDriver(c AreaConfig) (fs.Driver, error) { return posixfs.New(c.Root) }

// escapeFixture: areas /dteam and /dteam2 (a sibling whose name extends
// /dteam), a secret outside both, and symlinks pointing in and out.
func escapeFixture(t *testing.T) (*Namespace, string) {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{"dteam/sub", "dteam2", "secret"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "secret/key"), []byte("the secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"dteam/out":      "../secret",
		"dteam/abs":      filepath.Join(base, "secret"),
		"dteam/sibling":  "../dteam2",
		"dteam/in":       "sub",
		"dteam/dangling": "../nowhere/x",
	} {
		if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := NewNamespace(context.Background(), []AreaConfig{
		{Name: "dteam", Prefix: "/dteam", Root: filepath.Join(base, "dteam")},
		{Name: "dteam2", Prefix: "/dteam2", Root: filepath.Join(base, "dteam2")},
	}, posixDriver)
	if err != nil {
		t.Fatal(err)
	}
	return ns, base
}

// TestResolveNeverEscapes: Resolve is lexical (clean, match an area,
// refuse reserved names); what a name reaches on disk is the driver's
// business, so every name is tried against the driver too.
func TestResolveNeverEscapes(t *testing.T) {
	ns, base := escapeFixture(t)
	ctx := context.Background()
	reachesOutside := func(p string) {
		t.Helper()
		loc, err := ns.Resolve(p)
		if err != nil {
			return
		}
		if f, err := loc.Area.Driver().Open(ctx, loc.Name); err == nil {
			f.Close()
			t.Errorf("Resolve(%q) = %q: the driver opened it", p, loc.Name)
		}
		if l, err := loc.Area.Driver().List(ctx, loc.Name); err == nil {
			for _, fi := range l {
				if fi.Name == "key" {
					t.Errorf("Resolve(%q) = %q: the driver listed the secret", p, loc.Name)
				}
			}
		}
	}
	for _, p := range []string{
		"/dteam/out/key", "/dteam/out", "/dteam/abs/key", "/dteam/sibling/x",
		"/dteam/dangling", "/dteam/dangling/more", "/dteam/in/f",
		"/dteam/../secret/key", "/dteam/sub/../../secret/key", "/dteam//..//secret", "/../../etc/passwd",
		"/dteam/%2e%2e/secret", "/dteam/..%2fsecret", "/dteam/./sub/./../sub", "/dteam2/../dteam/out",
		"/dteam/sub/..", "/dteam/\x00/x", "dteam/relative", "/dteam/out/../out/key",
	} {
		reachesOutside(p)
	}
	// SURL forms with ?SFN= go through the same path.
	for _, s := range []string{"srm://h/srm/managerv2?SFN=/dteam/../secret/key", "srm://h:1/x?SFN=/dteam/out/key"} {
		if u, err := ParseSURL(s); err == nil {
			reachesOutside(u.Path)
		}
	}
	// Legitimate paths and their area-relative names.
	for p, want := range map[string]string{
		"/dteam":             "",
		"/dteam/sub/f":       "sub/f",
		"/dteam/new/dir/f":   "new/dir/f",
		"/dteam2/x":          "x",
		"/dteam//sub///f":    "sub/f",
		"/dteam/%2e%2e/file": "%2e%2e/file",
		"/dteam/sub/..":      "",
	} {
		loc, err := ns.Resolve(p)
		if err != nil {
			t.Errorf("Resolve(%q): %v", p, err)
			continue
		}
		if loc.Name != want {
			t.Errorf("Resolve(%q) = %q, want %q", p, loc.Name, want)
		}
	}
	for _, p := range []string{"/dteam/.dynamo-put-x", "/dteam/sub/.dynamo-tmp-1/y", "dteam/relative", "/dteam/a\x00b"} {
		if _, err := ns.Resolve(p); !errors.Is(err, ErrEscape) {
			t.Errorf("Resolve(%q): %v, want ErrEscape", p, err)
		}
	}
	if loc, err := ns.Resolve("/dteam2/f"); err != nil || loc.Area.Config.Name != "dteam2" {
		t.Errorf("/dteam2 must not be taken as a child of /dteam: %v %v", loc, err)
	}
	if _, err := ns.Resolve("/other/f"); !errors.Is(err, ErrNoArea) {
		t.Errorf("unmapped path: %v", err)
	}
	_ = base
}

func TestParseSURL(t *testing.T) {
	for in, want := range map[string]string{
		"srm://localhost/dteam/f":                              "/dteam/f",
		"srm://localhost:8444/dteam/f":                         "/dteam/f",
		"srm://se.example.org:8444/srm/managerv2?SFN=/dteam/f": "/dteam/f",
		"srm://se:8444/other?SFN=/a&b=c":                       "/a&b=c",
		"srm://[::1]:8444/x":                                   "/x",
	} {
		u, err := ParseSURL(in)
		if err != nil || u.Path != want {
			t.Errorf("ParseSURL(%q) = %q, %v; want %q", in, u.Path, err, want)
		}
	}
	for _, in := range []string{"", "https://h/x", "srm://", "srm:///x", "srm://h", "srm://h/x?foo=/y", "srm://h/x?SFN=rel", "srm://h/a\x00b"} {
		if _, err := ParseSURL(in); !errors.Is(err, ErrBadSURL) {
			t.Errorf("ParseSURL(%q): err = %v, want ErrBadSURL", in, err)
		}
	}
}

func TestAuthorize(t *testing.T) {
	a := &Area{Config: AreaConfig{Allow: []Rule{
		{DN: "/DC=org/DC=example/CN=Reader*", Ops: []string{OpRead, OpList}},
		{Group: "/dteam", Ops: []string{OpWrite}},
	}}}
	reader := &gridauth.Identity{DN: "/DC=org/DC=example/CN=Reader One"}
	member := &gridauth.Identity{DN: "/CN=x", FQANs: []string{"/dteam/Role=NULL/Capability=NULL"}}
	for _, tc := range []struct {
		id   *gridauth.Identity
		op   string
		want bool
	}{
		{reader, OpRead, true}, {reader, OpList, true}, {reader, OpWrite, false}, {reader, OpDelete, false},
		{member, OpWrite, true}, {member, OpRead, false}, {nil, OpRead, false},
		{&gridauth.Identity{DN: "/CN=x", FQANs: []string{"/atlas"}}, OpWrite, false},
	} {
		if got := a.Authorize(tc.id, tc.op); got != tc.want {
			t.Errorf("Authorize(%v, %s) = %v, want %v", tc.id, tc.op, got, tc.want)
		}
	}
}
