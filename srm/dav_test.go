package srm

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/srm/fs"
)

func davsBase(se *testSE) string { return "davs://localhost:" + port(se.DataAddr().String()) }
func httpsBase(se *testSE) string {
	return "https://localhost:" + port(se.DataAddr().String())
}

// TestLitmus runs the litmus WebDAV suites basic, copymove, props and http
// with the test user's certificate as PKCS#12; every test must pass.
func TestLitmus(t *testing.T) {
	testservers.Need(t, "litmus")
	se := startSE(t, nil, nil)
	p12 := filepath.Join(t.TempDir(), "user.p12")
	if out, err := exec.Command("openssl", "pkcs12", "-export", "-in", filepath.Join(se.PKI, "usercert.pem"),
		"-inkey", filepath.Join(se.PKI, "userkey.pem"), "-out", p12, "-passout", "pass:").CombinedOutput(); err != nil {
		t.Fatalf("pkcs12: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "litmus", "-c", p12, httpsBase(se)+"/")
	cmd.Env = append(os.Environ(), "TESTS=basic copymove props http")
	cmd.Dir = t.TempDir() // litmus writes debug.log here
	out, err := cmd.CombinedOutput()
	text := strings.ReplaceAll(string(out), "\r", "\n")
	sums := regexp.MustCompile("summary for `(\\w+)': of (\\d+) tests run: (\\d+) passed, (\\d+) failed").FindAllStringSubmatch(text, -1)
	if err != nil || len(sums) != 4 {
		t.Fatalf("litmus: %v\n%s", err, text)
	}
	for _, s := range sums {
		if s[2] != s[3] || s[4] != "0" {
			t.Errorf("litmus suite %s: %s of %s passed\n%s", s[1], s[3], s[2], text)
		}
	}
}

func TestDavix(t *testing.T) {
	for _, tool := range []string{"davix-ls", "davix-put", "davix-get", "davix-mkdir", "davix-rm"} {
		testservers.Need(t, tool)
	}
	se := startSE(t, nil, nil)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	payload := bytes.Repeat([]byte("davix "), 20000)
	must(t, os.WriteFile(src, payload, 0o644))
	B := httpsBase(se)
	run := func(args ...string) string {
		t.Helper()
		args = append(args, "--capath", filepath.Join(se.PKI, "certificates"), "--cert", filepath.Join(se.PKI, "proxy.pem"))
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("davix-mkdir", B+"/dx")
	run("davix-put", src, B+"/dx/f.bin")
	if out := run("davix-ls", "-l", B+"/dx"); !strings.Contains(out, "f.bin") || !strings.Contains(out, "120000") {
		t.Errorf("davix-ls -l: %s", out)
	}
	run("davix-get", B+"/dx/f.bin", filepath.Join(dir, "back"))
	if got, _ := os.ReadFile(filepath.Join(dir, "back")); !bytes.Equal(got, payload) {
		t.Fatalf("davix-get content differs (%d bytes)", len(got))
	}
	run("davix-rm", B+"/dx/f.bin")
	run("davix-rm", B+"/dx")
	if _, err := os.Stat(filepath.Join(se.Root, "dx")); !os.IsNotExist(err) {
		t.Errorf("davix-rm left the collection: %v", err)
	}
	if used := se.Namespace().Areas()[0].Used(); used != 0 {
		t.Errorf("area used after put and rm: %d", used)
	}
}

// addTapeArea adds a nearline area /tape to a test SE configuration.
func addTapeArea(t *testing.T, c *Config) {
	tape := filepath.Join(t.TempDir(), "tape-root")
	must(t, os.Mkdir(tape, 0o755))
	c.Areas = append(c.Areas, AreaConfig{Name: "tape", Prefix: "/tape", Root: tape, SpaceToken: "TAPE",
		RetentionPolicy: "CUSTODIAL", AccessLatency: "NEARLINE", Driver: "nearline",
		Nearline: NearlineConfig{RecallDelay: 300 * time.Millisecond}, Allow: []Rule{{DN: "*"}}})
}

// TestGfal2Davs drives WebDAV with the real gfal2 CLI over davs://.
func TestGfal2Davs(t *testing.T) {
	se := startSE(t, nil, func(c *Config) { addTapeArea(t, c) })
	g := newGfal(t, se)
	S := davsBase(se)
	local := t.TempDir()
	src := filepath.Join(local, "src.bin")
	payload := bytes.Repeat([]byte("dynamo-go webdav "), 9000)
	must(t, os.WriteFile(src, payload, 0o644))

	g.ok("gfal-mkdir", "-p", S+"/dteam/a/b/c")
	if st, err := os.Stat(filepath.Join(se.Root, "dteam/a/b/c")); err != nil || !st.IsDir() {
		t.Fatalf("gfal-mkdir -p: %v", err)
	}
	g.ok("gfal-copy", "-K", "ADLER32", "file://"+src, S+"/dteam/a/up.bin")
	if got, _ := os.ReadFile(filepath.Join(se.Root, "dteam/a/up.bin")); !bytes.Equal(got, payload) {
		t.Fatalf("uploaded content differs (%d bytes)", len(got))
	}
	if out := g.ok("gfal-ls", "-l", S+"/dteam/a"); !strings.Contains(out, "up.bin") || !strings.Contains(out, "153000") {
		t.Errorf("gfal-ls -l: %s", out)
	}
	if out := g.ok("gfal-stat", S+"/dteam/a/up.bin"); !strings.Contains(out, "153000") || !strings.Contains(out, "regular file") {
		t.Errorf("gfal-stat: %s", out)
	}
	if out := g.ok("gfal-sum", S+"/dteam/a/up.bin", "ADLER32"); !strings.Contains(out, adler32Hex(payload)) {
		t.Errorf("gfal-sum: %s", out)
	}
	if out := g.fail("gfal-copy", "file://"+src, S+"/dteam/a/up.bin"); !strings.Contains(out, "exists") {
		t.Errorf("copy onto an existing file without -f: %s", out)
	}
	back := filepath.Join(local, "back.bin")
	g.ok("gfal-copy", "-K", "ADLER32", S+"/dteam/a/up.bin", "file://"+back)
	if got, _ := os.ReadFile(back); !bytes.Equal(got, payload) {
		t.Fatalf("downloaded content differs (%d bytes)", len(got))
	}
	if out := g.ok("gfal-xattr", S+"/dteam/a/up.bin", "user.status"); strings.TrimSpace(out) != "ONLINE" {
		t.Errorf("user.status on disk: %q", out)
	}
	g.ok("gfal-rename", S+"/dteam/a/up.bin", S+"/dteam/a/moved.bin")
	if _, err := os.Stat(filepath.Join(se.Root, "dteam/a/moved.bin")); err != nil {
		t.Errorf("rename: %v", err)
	}
	g.ok("gfal-rm", "-r", S+"/dteam/a")
	if _, err := os.Stat(filepath.Join(se.Root, "dteam/a")); !os.IsNotExist(err) {
		t.Errorf("gfal-rm -r left the directory: %v", err)
	}

	// Tape over https: a written file is migrated; after eviction it is
	// NEARLINE until gfal-bringonline (Tape REST) recalls it.
	g.ok("gfal-copy", "file://"+src, S+"/tape/t1.bin")
	if out := g.ok("gfal-xattr", S+"/tape/t1.bin", "user.status"); strings.TrimSpace(out) != "ONLINE_AND_NEARLINE" {
		t.Errorf("user.status after migration: %q", out)
	}
	loc, err := se.Namespace().Resolve("/tape/t1.bin")
	must(t, err)
	must(t, loc.Area.Driver().(fs.Stager).Purge(context.Background(), loc.Name))
	if out := g.ok("gfal-xattr", S+"/tape/t1.bin", "user.status"); strings.TrimSpace(out) != "NEARLINE" {
		t.Errorf("user.status after eviction: %q", out)
	}
	if out := g.fail("gfal-copy", S+"/tape/t1.bin", "file://"+filepath.Join(local, "early")); !strings.Contains(strings.ToLower(out), "tape") && !strings.Contains(out, "503") {
		t.Errorf("reading a file on tape only: %s", out)
	}
	https := strings.Replace(S, "davs://", "https://", 1)
	if out := g.ok("gfal-bringonline", "--polling-timeout", "30", https+"/tape/t1.bin"); !strings.Contains(out, "READY") {
		t.Errorf("gfal-bringonline: %s", out)
	}
	if out := g.ok("gfal-xattr", S+"/tape/t1.bin", "user.status"); strings.TrimSpace(out) != "ONLINE_AND_NEARLINE" {
		t.Errorf("user.status after bring-online: %q", out)
	}
	g.ok("gfal-copy", "-K", "ADLER32", S+"/tape/t1.bin", "file://"+filepath.Join(local, "tape.bin"))
}

// TestThirdPartyCopy copies between two SEs with gfal2 in pull and push
// mode, streaming fallback off: the bytes move SE to SE, authorized by the
// macaroons gfal2 obtains and hands over.
func TestThirdPartyCopy(t *testing.T) {
	se1 := startSE(t, nil, nil)
	se2 := startSE(t, nil, nil)
	g := newGfal(t, se1)
	payload := bytes.Repeat([]byte("third party "), 30000)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.WriteFile(src, payload, 0o644))
	A, B := davsBase(se1), davsBase(se2)
	g.ok("gfal-copy", "-p", "file://"+src, A+"/d/f.bin")
	for _, mode := range []string{"pull", "push"} {
		g.ok("gfal-copy", "-p", "--copy-mode", mode, "-K", "ADLER32", "-D", "HTTP PLUGIN:ENABLE_FALLBACK_TPC_COPY=false",
			A+"/d/f.bin", B+"/e/"+mode+".bin")
		if got, _ := os.ReadFile(filepath.Join(se2.Root, "e", mode+".bin")); !bytes.Equal(got, payload) {
			t.Fatalf("%s: content differs (%d bytes)", mode, len(got))
		}
		// Overwrite semantics: without -f the existing destination stays.
		if out := g.fail("gfal-copy", "--copy-mode", mode, "-D", "HTTP PLUGIN:ENABLE_FALLBACK_TPC_COPY=false",
			A+"/d/f.bin", B+"/e/"+mode+".bin"); !strings.Contains(out, "exists") {
			t.Errorf("%s onto an existing file: %s", mode, out)
		}
		g.ok("gfal-copy", "-f", "--copy-mode", mode, "-D", "HTTP PLUGIN:ENABLE_FALLBACK_TPC_COPY=false", A+"/d/f.bin", B+"/e/"+mode+".bin")
	}
	if used := se2.Namespace().Areas()[0].Used(); used != int64(2*len(payload)) {
		t.Errorf("destination area used %d, want %d", used, 2*len(payload))
	}
}

// TestConfusedDeputy: a client must not get one SE to read or write, with
// the SE's own identity, what the client itself may not. SE1 lets its peer
// SE's host DN read /private (sites do that for peers); the user may not.
func TestConfusedDeputy(t *testing.T) {
	var privRoot string
	se1 := startSE(t, nil, func(c *Config) {
		privRoot = filepath.Join(t.TempDir(), "private")
		must(t, os.Mkdir(privRoot, 0o755))
		c.Areas = append(c.Areas, AreaConfig{Name: "private", Prefix: "/private", Root: privRoot,
			Allow: []Rule{{DN: "/DC=org/DC=example/CN=localhost"}}})
	})
	se2 := startSE(t, nil, nil)
	must(t, os.WriteFile(filepath.Join(privRoot, "secret"), []byte("secret data"), 0o644))
	must(t, os.WriteFile(filepath.Join(se1.Root, "open"), []byte("open data"), 0o644))
	_, hc, _ := clientFor(t, se1)
	B := httpsBase(se2)
	A := httpsBase(se1)
	copyTo := func(dst, source string, hdr ...string) (int, string) {
		resp, out := httpDo(t, hc, "COPY", B+dst, nil, append([]string{"Source", source}, hdr...)...)
		return resp.StatusCode, string(out)
	}
	// Pull of a file the user may not read: refused, nothing written.
	code, out := copyTo("/stolen", A+"/private/secret")
	if code == http.StatusAccepted && strings.Contains(out, "success") {
		t.Fatalf("pull of an unreadable file succeeded: %s", out)
	}
	if _, err := os.Stat(filepath.Join(se2.Root, "stolen")); !os.IsNotExist(err) {
		t.Fatalf("the confused deputy wrote the file: %v", err)
	}
	// A macaroon for another path does not help either.
	_, mac := mintMacaroon(t, hc, A+"/open", nil, "activity:DOWNLOAD")
	if code, out := copyTo("/stolen", A+"/private/secret", "TransferHeaderAuthorization", "Bearer "+mac); code == http.StatusAccepted && strings.Contains(out, "success") {
		t.Fatalf("pull with a macaroon for another path succeeded: %s", out)
	}
	// The right macaroon works: the copy acts for the user.
	if code, out := copyTo("/copied", A+"/open", "TransferHeaderAuthorization", "Bearer "+mac); code != http.StatusAccepted || !strings.Contains(out, "success: Created") {
		t.Fatalf("pull with the user's macaroon: %d %s", code, out)
	}
	if got, _ := os.ReadFile(filepath.Join(se2.Root, "copied")); string(got) != "open data" {
		t.Fatalf("copied content %q", got)
	}
	// Push: SE1 must not write into SE2 with its own identity either.
	resp, pout := httpDo(t, hc, "COPY", A+"/open", nil, "Destination", B+"/pushed")
	if resp.StatusCode == http.StatusAccepted && strings.Contains(string(pout), "success") {
		t.Fatalf("push without credentials succeeded: %s", pout)
	}
	if _, err := os.Stat(filepath.Join(se2.Root, "pushed")); !os.IsNotExist(err) {
		t.Fatalf("push without credentials wrote the file: %v", err)
	}
}

// TestTokenWrites covers token scopes on WebDAV writes.
func TestTokenWrites(t *testing.T) {
	e := startTokenSE(t)
	B := e.base
	create := e.jwt(t, e.key, func(c jwt.MapClaims) { c["scope"] = "storage.create:/tok/up storage.read:/tok" })
	if resp, out := httpDo(t, e.bare, "MKCOL", B+"/tok/up", nil, bearer(create)...); resp.StatusCode != 201 {
		t.Fatalf("MKCOL with storage.create: %d %s", resp.StatusCode, out)
	}
	if resp, out := httpDo(t, e.bare, "PUT", B+"/tok/up/f", []byte("new"), bearer(create)...); resp.StatusCode != 201 {
		t.Fatalf("PUT with storage.create: %d %s", resp.StatusCode, out)
	}
	if resp, _ := httpDo(t, e.bare, "PUT", B+"/tok/up/f", []byte("over"), bearer(create)...); resp.StatusCode != 403 {
		t.Errorf("overwrite with storage.create only: %d", resp.StatusCode)
	}
	if resp, _ := httpDo(t, e.bare, "DELETE", B+"/tok/up/f", nil, bearer(create)...); resp.StatusCode != 403 {
		t.Errorf("DELETE with storage.create only: %d", resp.StatusCode)
	}
	if resp, _ := httpDo(t, e.bare, "PUT", B+"/tok/elsewhere", []byte("x"), bearer(create)...); resp.StatusCode != 403 {
		t.Errorf("PUT outside the scope path: %d", resp.StatusCode)
	}
	modify := e.jwt(t, e.key, func(c jwt.MapClaims) { c["scope"] = "storage.modify:/tok/up" })
	if resp, _ := httpDo(t, e.bare, "PUT", B+"/tok/up/f", []byte("over"), bearer(modify)...); resp.StatusCode != 204 {
		t.Errorf("overwrite with storage.modify: %d", resp.StatusCode)
	}
	if resp, _ := httpDo(t, e.bare, "DELETE", B+"/tok/up/f", nil, bearer(modify)...); resp.StatusCode != 204 {
		t.Errorf("DELETE with storage.modify: %d", resp.StatusCode)
	}
	// A PROPFIND listing with a read token.
	resp, out := httpDo(t, e.bare, "PROPFIND", B+"/tok", nil, append(bearer(create), "Depth", "1")...)
	if resp.StatusCode != 207 || !strings.Contains(string(out), "/tok/up/") {
		t.Errorf("PROPFIND: %d %s", resp.StatusCode, out)
	}
	// Infinity is refused; the area root cannot be deleted.
	if resp, _ := httpDo(t, e.cert, "PROPFIND", B+"/", nil, "Depth", "infinity"); resp.StatusCode != 403 {
		t.Errorf("PROPFIND Depth infinity: %d", resp.StatusCode)
	}
	if resp, _ := httpDo(t, e.cert, "DELETE", B+"/", nil); resp.StatusCode != 403 {
		t.Errorf("DELETE of the area root: %d", resp.StatusCode)
	}
	_ = json.Valid
}

// Dead properties follow the SRM namespace operations too: srmMv moves
// them, srmRm drops them, so a later file of the name starts clean.
func TestPropsFollowSRM(t *testing.T) {
	se := startSE(t, nil, nil)
	c, hc, S := clientFor(t, se)
	B := httpsBase(se)
	ctx := context.Background()
	if resp, _ := httpDo(t, hc, "PUT", B+"/f", []byte("x")); resp.StatusCode != 201 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><z:color xmlns:z="urn:z">blue</z:color></D:prop></D:set></D:propertyupdate>`
	if resp, out := httpDo(t, hc, "PROPPATCH", B+"/f", []byte(patch)); resp.StatusCode != 207 || !strings.Contains(string(out), "200") {
		t.Fatalf("PROPPATCH: %d %s", resp.StatusCode, out)
	}
	must(t, c.Mv(ctx, S+"f", S+"g"))
	find := func(p string) string {
		_, out := httpDo(t, hc, "PROPFIND", B+p, nil, "Depth", "0")
		return string(out)
	}
	if out := find("/g"); !strings.Contains(out, "blue") {
		t.Errorf("property lost by srmMv: %s", out)
	}
	_, err := c.Rm(ctx, S+"g")
	must(t, err)
	if resp, _ := httpDo(t, hc, "PUT", B+"/g", []byte("y")); resp.StatusCode != 201 {
		t.Fatalf("PUT again: %d", resp.StatusCode)
	}
	if out := find("/g"); strings.Contains(out, "blue") {
		t.Errorf("a new file inherited the removed file's property: %s", out)
	}
}
