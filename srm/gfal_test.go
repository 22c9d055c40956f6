package srm

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/srm/fs"
)

// gfal runs the real Debian gfal2 CLI against a test SE.
type gfal struct {
	t    *testing.T
	env  []string
	base string // srm://localhost:PORT
}

func newGfal(t *testing.T, se *testSE) *gfal {
	t.Helper()
	for _, tool := range []string{"gfal-ls", "gfal-copy", "gfal-stat", "gfal-mkdir", "gfal-rm", "gfal-rename", "gfal-sum", "gfal-xattr", "gfal-bringonline", "gfal-chmod"} {
		testservers.Need(t, tool)
	}
	// A copy of the gfal2 configuration with BDII off, so short SURLs never
	// trigger a network lookup (INTEROP §1).
	conf := filepath.Join(t.TempDir(), "gfal2.d")
	if out, err := exec.Command("cp", "-r", "/etc/gfal2.d", conf).CombinedOutput(); err != nil {
		t.Fatalf("copying /etc/gfal2.d: %v %s", err, out)
	}
	bdii := filepath.Join(conf, "bdii.conf")
	data, err := os.ReadFile(bdii)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bdii, bytes.ReplaceAll(data, []byte("ENABLED=true"), []byte("ENABLED=false")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(se.SRMAddr().String())
	env := append(os.Environ(),
		"GFAL_PYTHONBIN=/usr/bin/python3",
		"GFAL_CONFIG_DIR="+conf+"/",
		"X509_USER_PROXY="+filepath.Join(se.PKI, "proxy.pem"),
		"X509_CERT_DIR="+filepath.Join(se.PKI, "certificates"),
	)
	return &gfal{t: t, env: env, base: "srm://localhost:" + port}
}

// run executes one gfal command; it returns stdout and fails the test on a
// non-zero exit unless wantFail.
func (g *gfal) run(wantFail bool, args ...string) string {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = g.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if wantFail && err == nil {
		g.t.Fatalf("%s: succeeded, want failure\n%s", strings.Join(args, " "), out.String())
	}
	if !wantFail && err != nil {
		g.t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

func (g *gfal) ok(args ...string) string   { g.t.Helper(); return g.run(false, args...) }
func (g *gfal) fail(args ...string) string { g.t.Helper(); return g.run(true, args...) }

// TestGfal2 drives the SE with the real, unmodified gfal2 CLI: namespace
// operations, copies in both directions (queued and immediate), checksums,
// and the tape workflow (locality, bring-online) on a nearline area.
func TestGfal2(t *testing.T) {
	for _, mode := range []struct {
		name      string
		immediate int
	}{{"queued", 0}, {"immediate", 100}} {
		t.Run(mode.name, func(t *testing.T) {
			se := startSE(t, nil, func(c *Config) {
				c.Engine.ImmediateMaxFiles = mode.immediate
				tape := filepath.Join(t.TempDir(), "tape-root")
				if err := os.Mkdir(tape, 0o755); err != nil {
					t.Fatal(err)
				}
				c.Areas = append(c.Areas, AreaConfig{Name: "tape", Prefix: "/tape", Root: tape, SpaceToken: "TAPE",
					RetentionPolicy: "CUSTODIAL", AccessLatency: "NEARLINE", Driver: "nearline",
					Nearline: NearlineConfig{RecallDelay: time.Second}, Protocols: []string{"https"}, Allow: []Rule{{DN: "*"}}})
			})
			g := newGfal(t, se)
			S := g.base
			local := t.TempDir()
			src := filepath.Join(local, "src.bin")
			payload := bytes.Repeat([]byte("dynamo-go srm "), 7000) // ~100 kB
			if err := os.WriteFile(src, payload, 0o644); err != nil {
				t.Fatal(err)
			}

			g.ok("gfal-mkdir", "-p", S+"/dteam/a/b/c")
			if st, err := os.Stat(filepath.Join(se.Root, "dteam/a/b/c")); err != nil || !st.IsDir() {
				t.Fatalf("gfal-mkdir -p did not create the directory: %v", err)
			}
			g.ok("gfal-copy", "file://"+src, S+"/dteam/a/up.bin")
			got, err := os.ReadFile(filepath.Join(se.Root, "dteam/a/up.bin"))
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("uploaded content differs (err %v, %d bytes)", err, len(got))
			}
			// Full SURL form too.
			g.ok("gfal-stat", S+"/srm/managerv2?SFN=/dteam/a/up.bin")
			if out := g.ok("gfal-ls", "-l", S+"/dteam/a"); !strings.Contains(out, "up.bin") || !strings.Contains(out, "b") ||
				!strings.Contains(out, fmt.Sprint(len(payload))) {
				t.Errorf("gfal-ls -l: %s", out)
			}
			sum := g.ok("gfal-sum", S+"/dteam/a/up.bin", "ADLER32")
			if want := adler32Hex(payload); !strings.Contains(sum, want) {
				t.Errorf("gfal-sum = %q, want %s", sum, want)
			}
			// Existing target without -f: EEXIST.
			if out := g.fail("gfal-copy", "file://"+src, S+"/dteam/a/up.bin"); !strings.Contains(out, "exists") {
				t.Errorf("copy onto existing file: %s", out)
			}
			g.ok("gfal-copy", "-f", "file://"+src, S+"/dteam/a/up.bin")
			back := filepath.Join(local, "back.bin")
			g.ok("gfal-copy", S+"/dteam/a/up.bin", "file://"+back)
			if got, _ := os.ReadFile(back); !bytes.Equal(got, payload) {
				t.Fatalf("downloaded content differs (%d bytes)", len(got))
			}
			// srm -> srm: gfal2's default HTTP third-party pull (COPY with
			// Source) on our data endpoint; no fallback to streaming allowed.
			g.ok("gfal-copy", "-D", "HTTP PLUGIN:ENABLE_FALLBACK_TPC_COPY=false", S+"/dteam/a/up.bin", S+"/dteam/tpc.bin")
			if got, _ := os.ReadFile(filepath.Join(se.Root, "dteam/tpc.bin")); !bytes.Equal(got, payload) {
				t.Fatalf("third-party copy content differs (%d bytes)", len(got))
			}
			g.ok("gfal-rename", S+"/dteam/a/up.bin", S+"/dteam/a/moved.bin")
			if _, err := os.Stat(filepath.Join(se.Root, "dteam/a/moved.bin")); err != nil {
				t.Errorf("rename: %v", err)
			}
			if out := g.fail("gfal-stat", S+"/dteam/a/up.bin"); !strings.Contains(out, "No such file") {
				t.Errorf("stat of moved-away file: %s", out)
			}
			if out := g.ok("gfal-xattr", S+"/dteam/a/moved.bin", "user.status"); !strings.Contains(out, "ONLINE") {
				t.Errorf("user.status on disk: %q", out)
			}
			// Modes are applied as sent: 700 clears the group and other
			// bits. (srm-ifce never transmits group bits, so over SRM a
			// group mode cannot be set: 604 is what gfal-chmod can ask.)
			for _, m := range []os.FileMode{0o700, 0o604, 0o705} {
				g.ok("gfal-chmod", fmt.Sprintf("%o", m), S+"/dteam/a/moved.bin")
				if st, err := os.Stat(filepath.Join(se.Root, "dteam/a/moved.bin")); err != nil || st.Mode().Perm() != m {
					t.Errorf("gfal-chmod %o: mode %v %v", m, st.Mode().Perm(), err)
				}
			}
			g.ok("gfal-rm", "-r", S+"/dteam/a")
			if _, err := os.Stat(filepath.Join(se.Root, "dteam/a")); !os.IsNotExist(err) {
				t.Errorf("gfal-rm -r left the directory: %v", err)
			}

			// Tape: upload (migrated at PutDone), purge the disk copy, then
			// the file is NEARLINE until gfal-bringonline recalls it.
			g.ok("gfal-copy", "file://"+src, S+"/tape/t1.bin")
			if out := g.ok("gfal-xattr", S+"/tape/t1.bin", "user.status"); !strings.Contains(out, "ONLINE_AND_NEARLINE") {
				t.Errorf("user.status after migration: %q", out)
			}
			loc, err := se.Namespace().Resolve("/tape/t1.bin")
			if err != nil {
				t.Fatal(err)
			}
			if err := loc.Area.Driver().(fs.Stager).Purge(context.Background(), loc.Name); err != nil {
				t.Fatal(err)
			}
			if out := g.ok("gfal-xattr", S+"/tape/t1.bin", "user.status"); strings.TrimSpace(out) != "NEARLINE" {
				t.Errorf("user.status after purge: %q", out)
			}
			// Without --polling-timeout gfal-bringonline only submits.
			if out := g.ok("gfal-bringonline", "--polling-timeout", "30", S+"/tape/t1.bin"); !strings.Contains(out, "READY") {
				t.Errorf("gfal-bringonline: %s", out)
			}
			if out := g.ok("gfal-xattr", S+"/tape/t1.bin", "user.status"); !strings.Contains(out, "ONLINE_AND_NEARLINE") {
				t.Errorf("user.status after bring-online: %q", out)
			}
			// A get of a purged file recalls it (StoRM's PtG does the same).
			if err := loc.Area.Driver().(fs.Stager).Purge(context.Background(), loc.Name); err != nil {
				t.Fatal(err)
			}
			tape2 := filepath.Join(local, "tape.bin")
			g.ok("gfal-copy", S+"/tape/t1.bin", "file://"+tape2)
			if got, _ := os.ReadFile(tape2); !bytes.Equal(got, payload) {
				t.Fatalf("recalled content differs (%d bytes)", len(got))
			}
		})
	}
}
