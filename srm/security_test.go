package srm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/srm/client"
	"github.com/dynamo-go/dynamo/srm/fs/fstest"
)

// escapeRig is a running SE whose area root holds escape routes (symbolic
// links to a directory, a file, "..", "/", chains, a hard link) into a
// sentinel tree outside it, with a raw SOAP and HTTPS client.
type escapeRig struct {
	t        *testing.T
	se       *testSE
	hc       *http.Client
	srmURL   string // https://localhost:PORT/srm/managerv2
	dataURL  string // https://localhost:PORT
	outside  string
	before   map[string]string
	attempts int
	secrets  []string // texts that must never appear in a response
}

func newEscapeRig(t *testing.T) *escapeRig {
	se := startSE(t, nil, func(c *Config) {
		c.Engine.ImmediateMaxFiles = 1 // answers in the call, no polling
		c.Engine.PutLifetime = time.Hour
	})
	_, hc, _ := clientFor(t, se)
	g := &escapeRig{t: t, se: se, hc: hc,
		srmURL:  "https://localhost:" + port(se.SRMAddr().String()) + "/srm/managerv2",
		dataURL: "https://localhost:" + port(se.DataAddr().String()),
		outside: fstest.Sentinel(t)}
	must(t, os.WriteFile(filepath.Join(se.Root, "plant"), []byte("inside"), 0o644))
	g.replant()
	g.before = fstest.Snapshot(t, g.outside)
	g.secrets = []string{"outside secret", "do not delete", "deeper", g.outside, filepath.Dir(g.outside), se.Root}
	return g
}

// replant restores the traps an attempt may legitimately have removed or
// replaced inside the root (removing a link, replacing a link by a file).
func (g *escapeRig) replant() {
	root := g.se.Root
	for _, n := range append(fstest.LinkNames, "hardlink") {
		os.RemoveAll(filepath.Join(root, n)) // a link is removed as a link
	}
	fstest.Traps(g.t, root, g.outside)
}

// check asserts the attempt left the outside tree as it was and said
// nothing about it.
func (g *escapeRig) check(what, response string) {
	g.t.Helper()
	g.attempts++
	for _, s := range g.secrets {
		if strings.Contains(response, s) {
			g.t.Errorf("%s: the response reveals %q:\n%s", what, s, response)
		}
	}
	fstest.SameSnapshot(g.t, what, g.before, fstest.Snapshot(g.t, g.outside))
	g.replant()
}

// soap sends one raw SOAP 1.1 call and returns the response body.
func (g *escapeRig) soap(op, inner string) string {
	g.t.Helper()
	env := `<?xml version="1.0"?><e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:s="` + NSSRM + `"><e:Body><s:` +
		op + `><` + op + `Request>` + inner + `</` + op + `Request></s:` + op + `></e:Body></e:Envelope>`
	req, err := http.NewRequest(http.MethodPost, g.srmURL, strings.NewReader(env))
	must(g.t, err)
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("SOAPAction", op)
	resp, err := g.hc.Do(req)
	must(g.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (g *escapeRig) http(method, url string, body []byte, hdr ...string) (int, string) {
	g.t.Helper()
	resp, b := httpDo(g.t, g.hc, method, url, body, hdr...)
	return resp.StatusCode, string(b)
}

var (
	reToken = regexp.MustCompile(`<requestToken>([^<]+)</requestToken>`)
	reTURL  = regexp.MustCompile(`<transferURL>([^<]+)</transferURL>`)
)

func arr(wrapper, item string, v ...string) string {
	var b strings.Builder
	b.WriteString("<" + wrapper + ">")
	for _, x := range v {
		b.WriteString("<" + item + ">" + xmlEscape(x) + "</" + item + ">")
	}
	return b.String() + "</" + wrapper + ">"
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func xmlEscape(s string) string { return xmlEscaper.Replace(s) }

// escapePaths are site file names that try to leave the area root.
func escapePaths() []string {
	var out []string
	for _, l := range fstest.LinkNames {
		out = append(out, "/"+l, "/"+l+"/secret", "/"+l+"/sub/victim", "/"+l+"/outside/secret")
	}
	return append(out,
		"/hardlink",
		"/../outside/secret", "/d/../../outside/secret", "/%2e%2e/outside/secret", "/..%2foutside/secret",
		"/d/up/outside/sub", "/chain1/sub/victim", "/./linkdir/./sub", "/linkdir/../linkdir/secret",
	)
}

// surlForms gives each path as a short SURL and as a ?SFN= SURL.
func (g *escapeRig) surlForms(p string) []string {
	port := port(g.se.SRMAddr().String())
	return []string{"srm://localhost" + p, "srm://localhost:" + port + "/srm/managerv2?SFN=" + p}
}

// TestEscapeSRMMethods attacks every SRM method that takes a path, through
// every escape route, and checks on disk that nothing outside the root was
// read, listed, created, changed or deleted.
func TestEscapeSRMMethods(t *testing.T) {
	g := newEscapeRig(t)
	for _, p := range escapePaths() {
		for _, surl := range g.surlForms(p) {
			one := arr("arrayOfSURLs", "urlArray", surl)
			g.check("srmLs full "+surl, g.soap("srmLs", one+"<fullDetailedList>true</fullDetailedList><numOfLevels>3</numOfLevels>"))
			g.check("srmLs recursive "+surl, g.soap("srmLs", one+"<allLevelRecursive>true</allLevelRecursive>"))
			g.check("srmMkdir "+surl, g.soap("srmMkdir", "<SURL>"+xmlEscape(surl+"/mk")+"</SURL>"))
			g.check("srmRmdir -r "+surl, g.soap("srmRmdir", "<SURL>"+xmlEscape(surl)+"</SURL><recursive>true</recursive>"))
			g.check("srmRm "+surl, g.soap("srmRm", one))
			g.check("srmMv from "+surl, g.soap("srmMv", "<fromSURL>"+xmlEscape(surl)+"</fromSURL><toSURL>srm://localhost/stolen</toSURL>"))
			g.check("srmMv to "+surl, g.soap("srmMv", "<fromSURL>srm://localhost/plant</fromSURL><toSURL>"+xmlEscape(surl+"/moved")+"</toSURL>"))
			g.check("srmSetPermission "+surl, g.soap("srmSetPermission", "<SURL>"+xmlEscape(surl)+"</SURL><permissionType>CHANGE</permissionType><ownerPermission>RWX</ownerPermission><otherPermission>RWX</otherPermission>"))
			g.check("srmGetPermission "+surl, g.soap("srmGetPermission", one))
			g.check("srmCheckPermission "+surl, g.soap("srmCheckPermission", one))
			g.check("srmExtendFileLifeTime "+surl, g.soap("srmExtendFileLifeTime", one+"<newFileLifeTime>10</newFileLifeTime>"))
			g.check("srmPurgeFromSpace "+surl, g.soap("srmPurgeFromSpace", one))
			g.check("srmBringOnline "+surl, g.soap("srmBringOnline",
				"<arrayOfFileRequests><requestArray><sourceSURL>"+xmlEscape(surl)+"</sourceSURL></requestArray></arrayOfFileRequests>"))
			// A get: any TURL handed out must not serve outside data.
			resp := g.soap("srmPrepareToGet", "<arrayOfFileRequests><requestArray><sourceSURL>"+xmlEscape(surl)+
				"</sourceSURL></requestArray></arrayOfFileRequests>"+protos("https"))
			g.check("srmPrepareToGet "+surl, resp)
			if m := reTURL.FindStringSubmatch(resp); m != nil {
				_, body := g.http("GET", m[1], nil)
				g.check("GET of a get TURL "+surl, body)
			}
			// A put with overwrite: data, then put-done, then abort.
			resp = g.soap("srmPrepareToPut", "<arrayOfFileRequests><requestArray><targetSURL>"+xmlEscape(surl)+
				"</targetSURL><expectedFileSize>8</expectedFileSize></requestArray></arrayOfFileRequests><overwriteOption>ALWAYS</overwriteOption>"+protos("https"))
			g.check("srmPrepareToPut "+surl, resp)
			tok := reToken.FindStringSubmatch(resp)
			if m := reTURL.FindStringSubmatch(resp); m != nil {
				code, body := g.http("PUT", m[1], []byte("attacker"))
				g.check(fmt.Sprintf("PUT to a put TURL %s (%d)", surl, code), body)
			}
			if tok != nil {
				g.check("srmPutDone "+surl, g.soap("srmPutDone", "<requestToken>"+tok[1]+"</requestToken>"+one))
				g.check("srmAbortRequest "+surl, g.soap("srmAbortRequest", "<requestToken>"+tok[1]+"</requestToken>"))
			}
		}
	}
	if g.attempts < 50 {
		t.Errorf("only %d escape attempts", g.attempts)
	}
	t.Logf("%d SRM escape attempts", g.attempts)
	// The hard link was replaced as a name at put-done, never written
	// through: the outside file is intact (checked above) and the name
	// inside now holds the upload.
}

func protos(p ...string) string {
	return "<transferParameters>" + arr("arrayOfTransferProtocols", "stringArray", p...) + "</transferParameters>"
}

// TestEscapeDataPlane attacks the HTTPS data endpoint (every method) and
// third-party copy in both directions through the escape routes.
func TestEscapeDataPlane(t *testing.T) {
	g := newEscapeRig(t)
	// A legitimate held upload, to aim third-party pulls at outside data.
	resp := g.soap("srmPrepareToPut", "<arrayOfFileRequests><requestArray><targetSURL>srm://localhost/tpcdst</targetSURL></requestArray></arrayOfFileRequests>"+protos("https"))
	m := reTURL.FindStringSubmatch(resp)
	if m == nil {
		t.Fatalf("no TURL for a legitimate put: %s", resp)
	}
	dst := m[1]
	tok := reToken.FindStringSubmatch(resp)[1]
	for _, p := range escapePaths() {
		u := g.dataURL + p
		for _, method := range []string{"GET", "HEAD", "PUT", "DELETE", "MKCOL", "PROPFIND", "OPTIONS"} {
			code, body := g.http(method, u, []byte("attacker"), "Want-Digest", "adler32", "Depth", "infinity")
			g.check(fmt.Sprintf("%s %s (%d)", method, p, code), body)
		}
		code, body := g.http("MOVE", g.dataURL+"/plant", nil, "Destination", u+"/moved")
		g.check(fmt.Sprintf("MOVE to %s (%d)", p, code), body)
		code, body = g.http("MOVE", u, nil, "Destination", g.dataURL+"/stolen")
		g.check(fmt.Sprintf("MOVE from %s (%d)", p, code), body)
		// Pull outside data into a legitimate upload, then push to an escape.
		code, body = g.http("COPY", dst, nil, "Source", u)
		g.check(fmt.Sprintf("COPY pull from %s (%d)", p, code), body)
		code, body = g.http("COPY", u, nil, "Source", g.dataURL+"/plant")
		g.check(fmt.Sprintf("COPY to %s (%d)", p, code), body)
	}
	// No pull delivered outside data into the upload.
	g.soap("srmPutDone", "<requestToken>"+tok+"</requestToken>"+arr("arrayOfSURLs", "urlArray", "srm://localhost/tpcdst"))
	if b, err := os.ReadFile(filepath.Join(g.se.Root, "tpcdst")); err == nil && bytes.Contains(b, []byte("outside")) {
		t.Errorf("a third-party pull copied outside data: %q", b)
	}
	if g.attempts < 50 {
		t.Errorf("only %d escape attempts", g.attempts)
	}
	t.Logf("%d data-plane escape attempts", g.attempts)
}

// TestRecursionNeverCrossesLinks: recursive rmdir and ls of a directory
// holding links to outside remove/list the links themselves only.
func TestRecursionNeverCrossesLinks(t *testing.T) {
	g := newEscapeRig(t)
	// d holds "up" (-> ../..) and "innerok" (-> ../d); add links to the
	// outside tree and a real file.
	must(t, os.Symlink(g.outside, filepath.Join(g.se.Root, "d", "out")))
	must(t, os.WriteFile(filepath.Join(g.se.Root, "d", "own"), []byte("x"), 0o644))
	resp := g.soap("srmLs", arr("arrayOfSURLs", "urlArray", "srm://localhost/")+"<allLevelRecursive>true</allLevelRecursive><fullDetailedList>true</fullDetailedList>")
	if !strings.Contains(resp, "<path>/d/out</path>") || !strings.Contains(resp, "LINK") {
		t.Errorf("links are not listed as links: %s", resp)
	}
	g.attempts++
	for _, s := range g.secrets {
		if strings.Contains(resp, s) {
			t.Errorf("recursive ls reveals %q", s)
		}
	}
	if strings.Contains(resp, "victim") || strings.Contains(resp, "/secret") {
		t.Errorf("recursive ls listed outside names: %s", resp)
	}
	resp = g.soap("srmRmdir", "<SURL>srm://localhost/d</SURL><recursive>true</recursive>")
	if !strings.Contains(resp, "SRM_SUCCESS") {
		t.Errorf("rmdir -r of a directory with links: %s", resp)
	}
	fstest.SameSnapshot(t, "rmdir -r through links", g.before, fstest.Snapshot(t, g.outside))
	if _, err := os.Lstat(filepath.Join(g.se.Root, "d")); !os.IsNotExist(err) {
		t.Errorf("d survived rmdir -r: %v", err)
	}
}

// TestPutToAbortedTURL: a data PUT that reaches the server after its
// srmPrepareToPut was aborted (a client that gave up mid-body and aborted
// at once) is refused: it neither becomes a WebDAV write that holds the
// SURL busy or creates the file, nor blocks the next put of the SURL.
func TestPutToAbortedTURL(t *testing.T) {
	se := startSE(t, nil, nil)
	c, hc, S := clientFor(t, se)
	ctx := context.Background()
	turl, tok, err := c.PutTURL(ctx, S+"late", 4, true, "https")
	must(t, err)
	if _, err := c.AbortFiles(ctx, tok, S+"late"); err != nil {
		t.Fatal(err)
	}
	if resp, b := httpDo(t, hc, "PUT", turl, []byte("late")); resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT to an aborted TURL: %d %s, want 409", resp.StatusCode, b)
	}
	if _, err := c.Stat(ctx, S+"late"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Stat after the late PUT: %v, want not found", err)
	}
	if ents, _ := os.ReadDir(se.Root); len(ents) != 0 {
		t.Errorf("the late PUT left %d entries in the root", len(ents))
	}
	// The TURL of an earlier upload does not write into a later one.
	turl2, tok2, err := c.PutTURL(ctx, S+"late", 4, true, "https")
	must(t, err)
	if resp, _ := httpDo(t, hc, "PUT", turl, []byte("old!")); resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT to the TURL of an earlier upload: %d, want 409", resp.StatusCode)
	}
	if resp, b := httpDo(t, hc, "PUT", turl2, []byte("new!")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	if fs, err := c.PutDone(ctx, tok2, S+"late"); err != nil || fs[0].Code != "SRM_SUCCESS" {
		t.Fatalf("PutDone: %+v %v", fs, err)
	}
	if b, _ := os.ReadFile(filepath.Join(se.Root, "late")); string(b) != "new!" {
		t.Errorf("content %q, want the second upload's", b)
	}
}

// TestOverwriteIsAtomic: a put with overwrite keeps the previous file until
// srmPutDone; abort keeps it for good; a hard-linked name is replaced,
// never written through.
func TestOverwriteIsAtomic(t *testing.T) {
	se := startSE(t, nil, nil)
	c, hc, S := clientFor(t, se)
	ctx := context.Background()
	orig := filepath.Join(se.Root, "keep")
	must(t, os.WriteFile(orig, []byte("original"), 0o644))
	turl, tok, err := c.PutTURL(ctx, S+"keep", 7, true, "https")
	must(t, err)
	if b, _ := os.ReadFile(orig); string(b) != "original" {
		t.Errorf("PrepareToPut ALWAYS changed the file: %q", b)
	}
	if resp, b := httpDo(t, hc, "PUT", turl, []byte("changed")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	if b, _ := os.ReadFile(orig); string(b) != "original" {
		t.Errorf("PUT before PutDone changed the file: %q", b)
	}
	must(t, c.AbortRequest(ctx, tok))
	if b, _ := os.ReadFile(orig); string(b) != "original" {
		t.Errorf("abort after overwrite lost the original: %q", b)
	}
	if ents, _ := os.ReadDir(se.Root); len(ents) != 1 {
		t.Errorf("abort left %d entries in the root, want 1", len(ents))
	}
	// A PUT larger than the reservation is refused.
	turl, tok, err = c.PutTURL(ctx, S+"keep", 3, true, "https")
	must(t, err)
	if resp, _ := httpDo(t, hc, "PUT", turl, []byte("too long")); resp.StatusCode < 400 {
		t.Errorf("PUT beyond expectedFileSize: %d", resp.StatusCode)
	}
	must(t, c.AbortRequest(ctx, tok))

	// Hard link to a file outside: replaced as a name at put-done.
	outside := fstest.Sentinel(t)
	before := fstest.Snapshot(t, outside)
	hl := filepath.Join(se.Root, "hl")
	if err := os.Link(filepath.Join(outside, "secret"), hl); err != nil {
		t.Skipf("no hard links across these directories: %v", err)
	}
	turl, tok, err = c.PutTURL(ctx, S+"hl", 5, true, "https")
	must(t, err)
	if resp, b := httpDo(t, hc, "PUT", turl, []byte("fresh")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	if fs, err := c.PutDone(ctx, tok, S+"hl"); err != nil || fs[0].Code != "SRM_SUCCESS" {
		t.Fatalf("PutDone: %+v %v", fs, err)
	}
	if b, _ := os.ReadFile(hl); string(b) != "fresh" {
		t.Errorf("hard-linked name holds %q", b)
	}
	fstest.SameSnapshot(t, "overwrite of a hard link", before, fstest.Snapshot(t, outside))
}

// TestConcurrentPutsCannotOverfillArea: two 40 kB PrepareToPut with 50 kB
// free: exactly one is granted, and the area never ends over its limit.
func TestConcurrentPutsCannotOverfillArea(t *testing.T) {
	se := startSE(t, nil, func(c *Config) {
		c.Areas[0].OnlineSizeLimit = 50_000
		c.Engine.ImmediateMaxFiles = 1
	})
	c, _, S := clientFor(t, se)
	ctx := context.Background()
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		toks := make([]string, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, toks[i], errs[i] = c.PutTURL(ctx, fmt.Sprintf("%sr%d-%d", S, round, i), 40_000, false, "https")
			}()
		}
		wg.Wait()
		granted := 0
		for i, err := range errs {
			switch {
			case err == nil:
				granted++
			case errors.Is(err, client.ErrNoSpace):
			default:
				t.Fatalf("put %d: %v", i, err)
			}
		}
		if granted != 1 {
			t.Fatalf("round %d: %d of two 40 kB puts granted with 50 kB free", round, granted)
		}
		a := se.Namespace().Areas()[0]
		if a.Used()+a.Pending() > 50_000 {
			t.Fatalf("area over its limit: used %d + pending %d", a.Used(), a.Pending())
		}
		for i, tok := range toks {
			if errs[i] == nil {
				must(t, c.AbortRequest(ctx, tok))
			}
		}
		if a.Pending() != 0 {
			t.Fatalf("abort did not release the reservation: %d pending", a.Pending())
		}
	}
}
