package srm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/gridauth"
	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/posixfs"
)

func posixDriver(AreaConfig) (fs.Driver, error) { return posixfs.New(), nil }

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
	if err := os.WriteFile(filepath.Join(base, "secret/key"), []byte("x"), 0o600); err != nil {
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

func TestResolveNeverEscapes(t *testing.T) {
	ns, base := escapeFixture(t)
	real, _ := filepath.EvalSymlinks(base)
	root := filepath.Join(real, "dteam")
	bad := []string{
		"/dteam/out/key", "/dteam/out", "/dteam/abs/key", "/dteam/sibling/x",
		"/dteam/dangling", "/dteam/dangling/more",
	}
	for _, p := range bad {
		if loc, err := ns.Resolve(p); err == nil {
			t.Errorf("Resolve(%q) = %s, want an error", p, loc.Phys)
		} else if !errors.Is(err, ErrEscape) {
			t.Errorf("Resolve(%q): err = %v, want ErrEscape", p, err)
		}
	}
	// Lexical tricks resolve to somewhere that is still inside an area, or
	// to no area at all; never outside.
	tricky := []string{
		"/dteam/../secret/key", "/dteam/sub/../../secret/key", "/dteam//..//secret", "/../../etc/passwd",
		"/dteam/%2e%2e/secret", "/dteam/..%2fsecret", "/dteam/./sub/./../sub", "/dteam2/../dteam/out",
		"/dteam/sub/..", "/dteam/\x00/x", "dteam/relative",
	}
	for _, p := range tricky {
		loc, err := ns.Resolve(p)
		if err != nil {
			continue
		}
		if !under(loc.Phys, root, "/") && !under(loc.Phys, filepath.Join(real, "dteam2"), "/") {
			t.Errorf("Resolve(%q) = %s: outside every area", p, loc.Phys)
		}
		if strings.Contains(loc.Phys, "secret") && !strings.Contains(loc.Phys, "%2") {
			t.Errorf("Resolve(%q) = %s reaches the secret", p, loc.Phys)
		}
	}
	// SURL forms with ?SFN= go through the same path.
	for _, s := range []string{"srm://h/srm/managerv2?SFN=/dteam/../secret/key", "srm://h:1/x?SFN=/dteam/out/key"} {
		u, err := ParseSURL(s)
		if err != nil {
			continue
		}
		if loc, err := ns.Resolve(u.Path); err == nil && strings.Contains(loc.Phys, "secret") {
			t.Errorf("%s resolved to %s", s, loc.Phys)
		}
	}
	// Legitimate paths, including a symlink inside the area and new leaves.
	for p, want := range map[string]string{
		"/dteam":             root,
		"/dteam/sub/f":       filepath.Join(root, "sub/f"),
		"/dteam/in/f":        filepath.Join(root, "sub/f"),
		"/dteam/new/dir/f":   filepath.Join(root, "new/dir/f"),
		"/dteam2/x":          filepath.Join(real, "dteam2/x"),
		"/dteam//sub///f":    filepath.Join(root, "sub/f"),
		"/dteam/%2e%2e/file": filepath.Join(root, "%2e%2e/file"),
	} {
		loc, err := ns.Resolve(p)
		if err != nil {
			t.Errorf("Resolve(%q): %v", p, err)
			continue
		}
		if loc.Phys != want {
			t.Errorf("Resolve(%q) = %s, want %s", p, loc.Phys, want)
		}
	}
	if loc, err := ns.Resolve("/dteam2/f"); err != nil || loc.Area.Config.Name != "dteam2" {
		t.Errorf("/dteam2 must not be taken as a child of /dteam: %v %v", loc, err)
	}
	if _, err := ns.Resolve("/other/f"); !errors.Is(err, ErrNoArea) {
		t.Errorf("unmapped path: %v", err)
	}
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
