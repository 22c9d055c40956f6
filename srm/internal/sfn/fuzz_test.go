package sfn

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/posixfs"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// FuzzParseSURL: whatever ParseSURL accepts has a host and an absolute
// path without NUL.
func FuzzParseSURL(f *testing.F) {
	for _, s := range []string{"srm://h/x", "srm://h:8444/srm/managerv2?SFN=/a/b", "srm://h/x?SFN=rel", "srm:///x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		u, err := ParseSURL(in)
		if err != nil {
			return
		}
		if u.Host == "" || strings.Contains(u.Host, "/") || !strings.HasPrefix(u.Path, "/") || strings.ContainsRune(u.Path, 0) {
			t.Fatalf("ParseSURL(%q) = %+v", in, u)
		}
	})
}

// FuzzMap: the namespace resolver, end to end: no site file name maps to a
// name a driver would refuse as unclean or reserved, or to another area's
// prefix, and none reaches the secret outside the areas through the links
// planted in them, whatever the driver is then asked.
func FuzzMap(f *testing.F) {
	for _, s := range []string{"/dteam/out/key", "/dteam/../secret/key", "/dteam/in/f", "/dteam2/x", "/dteam/.dynamo-put-x", "/dteam/%2e%2e/secret"} {
		f.Add(s)
	}
	base := f.TempDir()
	for _, d := range []string{"dteam/sub", "dteam2", "secret"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	const secret = "the secret"
	if err := os.WriteFile(filepath.Join(base, "secret/key"), []byte(secret), 0o600); err != nil {
		f.Fatal(err)
	}
	for link, target := range map[string]string{
		"dteam/out": "../secret", "dteam/abs": filepath.Join(base, "secret"), "dteam/sibling": "../dteam2",
		"dteam/in": "sub", "dteam/dangling": "../nowhere/x", "dteam/sub/up": "../..",
	} {
		if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
			f.Fatal(err)
		}
	}
	prefixes := []string{"/dteam", "/dteam2"}
	var drivers []fs.Driver
	for _, p := range prefixes {
		d, err := posixfs.New(filepath.Join(base, p))
		if err != nil {
			f.Fatal(err)
		}
		drivers = append(drivers, d)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, stfn string) {
		i, clean, rel, err := Map(stfn, prefixes)
		if err != nil {
			return
		}
		if _, err := rootfs.CleanName(rel); err != nil || rootfs.IsReserved(rel) {
			t.Fatalf("Map(%q) = %q: unclean or reserved", stfn, rel)
		}
		if !Under(clean, prefixes[i], "/") || (i == 0 && Under(clean, prefixes[1], "/")) {
			t.Fatalf("Map(%q) = %s in area %s", stfn, clean, prefixes[i])
		}
		d := drivers[i]
		if r, err := d.Open(ctx, rel); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) == secret {
				t.Fatalf("Map(%q) = %q read the secret", stfn, rel)
			}
		}
		if l, err := d.List(ctx, rel); err == nil {
			for _, fi := range l {
				if fi.Name == "key" {
					t.Fatalf("Map(%q) = %q listed the secret's directory", stfn, rel)
				}
			}
		}
	})
}
