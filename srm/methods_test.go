package srm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testservers"

	"github.com/dynamo-go/dynamo/srm/client"
)

// TestRequestLifecycle covers abort-files, extend, summary, tokens,
// bring-online on disk, purge on a disk-only area and request timeouts.
func TestRequestLifecycle(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		se := startSE(t, d, nil)
		c, _, S := clientFor(t, se)
		ctx := context.Background()
		for _, n := range []string{"a", "b"} {
			must(t, os.WriteFile(filepath.Join(se.Root, n), []byte(n), 0o644))
		}
		r, err := c.PrepareToGet(ctx, []string{S + "a", S + "b", S + "missing"}, []string{"https"}, time.Minute)
		must(t, err)
		must(t, c.Wait(ctx, r))
		if r.Code != "SRM_PARTIAL_SUCCESS" || r.Files[2].Code != "SRM_INVALID_PATH" {
			t.Fatalf("get of 2 present + 1 missing: %s %+v", r.Code, r.Files)
		}
		fs, err := c.AbortFiles(ctx, r.Token, S+"a")
		if err != nil || fs[0].Code != "SRM_SUCCESS" {
			t.Errorf("AbortFiles: %+v %v", fs, err)
		}
		if fs, _ := c.AbortFiles(ctx, r.Token, S+"a"); fs[0].Code != "SRM_SUCCESS" {
			t.Errorf("duplicate abort must succeed [5.12.2 h)]: %+v", fs)
		}
		if fs, _ := c.AbortFiles(ctx, r.Token, S+"missing"); fs[0].Code != "SRM_FAILURE" {
			t.Errorf("abort of a final file: %+v", fs)
		}
		if fs, _ := c.AbortFiles(ctx, r.Token, S+"zzz"); fs[0].Code != "SRM_INVALID_PATH" {
			t.Errorf("abort of a SURL not in the request: %+v", fs)
		}
		must(t, c.Status(ctx, r))
		if r.Files[0].Code != "SRM_ABORTED" || r.Files[1].Code != "SRM_FILE_PINNED" {
			t.Errorf("after AbortFiles: %+v", r.Files)
		}

		// Extend: pin of b; both lifetimes at once is invalid.
		ext := func(body string) string {
			resp, err := se.dispatch(&call{ctx: ctx, id: identityOf(t, se)}, "srmExtendFileLifeTime", mustNode(t, "srmExtendFileLifeTime", body))
			must(t, err)
			return resp.(extendResponse).ReturnStatus.StatusCode
		}
		if got := ext("<requestToken>" + r.Token + "</requestToken><arrayOfSURLs><urlArray>" + S + "b</urlArray></arrayOfSURLs><newPinLifeTime>600</newPinLifeTime>"); got != "SRM_SUCCESS" {
			t.Errorf("extend pin: %s", got)
		}
		if got := ext("<requestToken>" + r.Token + "</requestToken><arrayOfSURLs><urlArray>" + S + "b</urlArray></arrayOfSURLs><newPinLifeTime>1</newPinLifeTime><newFileLifeTime>1</newFileLifeTime>"); got != "SRM_INVALID_REQUEST" {
			t.Errorf("extend both: %s", got)
		}

		// Summary and tokens.
		resp, err := se.dispatch(&call{ctx: ctx, id: identityOf(t, se)}, "srmGetRequestSummary",
			mustNode(t, "srmGetRequestSummary", "<arrayOfRequestTokens><stringArray>"+r.Token+"</stringArray><stringArray>nope</stringArray></arrayOfRequestTokens>"))
		must(t, err)
		sum := resp.(requestSummaryResponse)
		if sum.ReturnStatus.StatusCode != "SRM_PARTIAL_SUCCESS" || *sum.Summaries.Items[0].Total != 3 || *sum.Summaries.Items[0].Failed != 2 ||
			sum.Summaries.Items[0].RequestType != "PREPARE_TO_GET" || sum.Summaries.Items[1].Status.StatusCode != "SRM_INVALID_REQUEST" {
			t.Errorf("summary: %+v", sum)
		}
		resp, err = se.dispatch(&call{ctx: ctx, id: identityOf(t, se)}, "srmGetRequestTokens", mustNode(t, "srmGetRequestTokens", ""))
		must(t, err)
		if toks := resp.(requestTokensResponse); toks.Tokens == nil || toks.Tokens.Items[0].RequestToken != r.Token {
			t.Errorf("tokens: %+v", toks)
		}

		// Bring-online of a disk file succeeds at once; release by SURL.
		b, err := c.BringOnline(ctx, []string{S + "a"}, time.Hour)
		must(t, err)
		must(t, c.Wait(ctx, b))
		if b.Files[0].Code != "SRM_SUCCESS" {
			t.Errorf("bring-online on disk: %+v", b.Files)
		}
		if fs, err := c.ReleaseFiles(ctx, "", S+"a"); err != nil || fs[0].Code != "SRM_SUCCESS" {
			t.Errorf("release by SURL: %+v %v", fs, err)
		}

		// Purge on a disk-only area: the only copy.
		resp, err = se.dispatch(&call{ctx: ctx, id: identityOf(t, se)}, "srmPurgeFromSpace",
			mustNode(t, "srmPurgeFromSpace", "<arrayOfSURLs><urlArray>"+S+"b</urlArray></arrayOfSURLs><spaceToken>DEFAULT</spaceToken>"))
		must(t, err)
		if p := resp.(surlStatuses); p.Files.Items[0].Status.StatusCode != "SRM_FILE_BUSY" {
			t.Errorf("purge of a pinned file: %+v", p.Files.Items)
		}
		must(t, c.AbortRequest(ctx, r.Token))
		resp, _ = se.dispatch(&call{ctx: ctx, id: identityOf(t, se)}, "srmPurgeFromSpace",
			mustNode(t, "srmPurgeFromSpace", "<arrayOfSURLs><urlArray>"+S+"b</urlArray></arrayOfSURLs><spaceToken>DEFAULT</spaceToken>"))
		if p := resp.(surlStatuses); p.Files.Items[0].Status.StatusCode != "SRM_LAST_COPY" {
			t.Errorf("purge of the only copy: %+v", p.Files.Items)
		}

		// A request past its desiredTotalRequestTime times out.
		_, err = se.db.Exec("UPDATE srm_requests SET status = ?, deadline = ? WHERE token = ?", SRM_REQUEST_INPROGRESS, time.Now().Unix()-1, b.Token)
		must(t, err)
		must(t, se.engine.expire(ctx, time.Now()))
		must(t, c.Status(ctx, b))
		if b.Code != "SRM_REQUEST_TIMED_OUT" {
			t.Errorf("expired request: %s", b.Code)
		}
		// Another client cannot read this client's requests.
		other := *identityOf(t, se)
		other.DN = "/DC=org/DC=example/CN=Someone Else"
		resp, _ = se.dispatch(&call{ctx: ctx, id: &other}, "srmStatusOfGetRequest", mustNode(t, "srmStatusOfGetRequest", "<requestToken>"+r.Token+"</requestToken>"))
		if got := resp.(getResponse).ReturnStatus.StatusCode; got != "SRM_AUTHORIZATION_FAILURE" {
			t.Errorf("foreign status query: %s", got)
		}
		if err := c.AbortRequest(ctx, "no-such-token"); !errors.As(err, new(*client.Error)) {
			t.Errorf("abort of unknown token: %v", err)
		}
	})
}

// TestVOMSGroupRule: an area open to the /dteam VOMS group admits the VOMS
// proxy and refuses the plain proxy of the same user.
func TestVOMSGroupRule(t *testing.T) {
	testservers.Need(t, "voms-proxy-fake")
	var pki string
	se := startSE(t, nil, func(c *Config) {
		c.Areas[0].Allow = []Rule{{Group: "/dteam"}}
		pki = filepath.Dir(c.CADir)
		c.VOMSDir = filepath.Join(pki, "vomsdir")
	})
	ctx := context.Background()
	plain, _, S := clientFor(t, se)
	if _, err := plain.Stat(ctx, S); !errors.Is(err, client.ErrDenied) {
		t.Errorf("plain proxy: %v, want authorization failure", err)
	}
	cred, err := client.LoadCredential(filepath.Join(se.PKI, "vomsproxy.pem"), "")
	must(t, err)
	vc, err := client.New("srm://localhost:"+port(se.SRMAddr().String()), client.Options{Certificate: cred, CADir: filepath.Join(se.PKI, "certificates")})
	must(t, err)
	defer vc.CloseIdle()
	if _, err := vc.Stat(ctx, S); err != nil {
		t.Errorf("VOMS proxy: %v", err)
	}
	// ACs signed by a self-made server with the trusted DN, or claiming
	// another VO's group, give no group: the DN alone is not admitted.
	for _, name := range []string{"vomsproxy-forged.pem", "vomsproxy-wrongvo.pem"} {
		cred, err := client.LoadCredential(filepath.Join(se.PKI, name), "")
		must(t, err)
		fc, err := client.New("srm://localhost:"+port(se.SRMAddr().String()), client.Options{Certificate: cred, CADir: filepath.Join(se.PKI, "certificates")})
		must(t, err)
		if _, err := fc.Stat(ctx, S); !errors.Is(err, client.ErrDenied) {
			t.Errorf("%s: %v, want authorization failure", name, err)
		}
		fc.CloseIdle()
	}
}

// TestRestart: a second SE process on the same database continues the id
// sequence, still answers for the first one's requests, and requeues what
// the first left in progress.
func TestRestart(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		var token string
		t.Run("first", func(t *testing.T) {
			se := startSE(t, d, nil)
			must(t, os.WriteFile(filepath.Join(se.Root, "f"), []byte("x"), 0o644))
			c, _, S := clientFor(t, se)
			_, tok, err := c.GetTURL(context.Background(), S+"f", "https")
			must(t, err)
			token = tok
		})
		// A request a dead process had picked but not finished.
		_, err := d.Exec("INSERT INTO srm_requests (id, token, rtype, status, client_dn, pin_lifetime, created, deadline, n_files) VALUES (1000, 'ptg-stuck', 'PTG', ?, ?, 60, 0, 0, 1)",
			SRM_REQUEST_INPROGRESS, "/DC=org/DC=example/CN=Test User")
		must(t, err)
		_, err = d.Exec("INSERT INTO srm_files (id, request_id, idx, surl, stfn, status) VALUES (1001, 1000, 0, 'srm://localhost/missing', '/missing', ?)", SRM_REQUEST_INPROGRESS)
		must(t, err)
		t.Run("second", func(t *testing.T) {
			se := startSE(t, d, nil)
			c, _, S := clientFor(t, se)
			ctx := context.Background()
			r := &client.Request{Token: token, Type: "srmPrepareToGet"}
			must(t, c.Status(ctx, r))
			if r.Files[0].Code != "SRM_FILE_PINNED" {
				t.Errorf("first process's request after restart: %+v", r.Files)
			}
			if _, _, err := c.GetTURL(ctx, S+"nope", "https"); !errors.Is(err, client.ErrNotFound) {
				t.Errorf("new request after restart: %v", err)
			}
			stuck := &client.Request{Token: "ptg-stuck", Type: "srmPrepareToGet", Code: "SRM_REQUEST_QUEUED"}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			must(t, c.Wait(wctx, stuck))
			if stuck.Files[0].Code != "SRM_INVALID_PATH" {
				t.Errorf("requeued request: %s %+v", stuck.Code, stuck.Files)
			}
		})
	})
}

// TestSetPermissionHonest: modes are applied as sent; ACL entries (per user
// or per foreign group) are NOT_SUPPORTED and change nothing.
func TestSetPermissionHonest(t *testing.T) {
	se := startSE(t, nil, nil)
	f := filepath.Join(se.Root, "f")
	must(t, os.WriteFile(f, []byte("x"), 0o644))
	ctx := context.Background()
	set := func(inner string) string {
		t.Helper()
		resp, err := se.dispatch(&call{ctx: ctx, id: identityOf(t, se)}, "srmSetPermission",
			mustNode(t, "srmSetPermission", "<SURL>srm://localhost/f</SURL>"+inner))
		must(t, err)
		return resp.(returnOnly).ReturnStatus.StatusCode
	}
	mode := func() os.FileMode {
		st, err := os.Stat(f)
		must(t, err)
		return st.Mode().Perm()
	}
	for _, tc := range []struct {
		inner string
		code  string
		mode  os.FileMode
	}{
		// gfal-chmod 700: owner and other, an empty group list.
		{"<permissionType>CHANGE</permissionType><ownerPermission>7</ownerPermission><arrayOfUserPermissions/><arrayOfGroupPermissions/><otherPermission>0</otherPermission>", "SRM_SUCCESS", 0o700},
		{"<permissionType>ADD</permissionType><otherPermission>R</otherPermission>", "SRM_SUCCESS", 0o704},
		{"<permissionType>CHANGE</permissionType><arrayOfGroupPermissions><groupPermissionArray><groupID>root</groupID><mode>RX</mode></groupPermissionArray></arrayOfGroupPermissions>", "SRM_SUCCESS", 0o754},
		{"<permissionType>REMOVE</permissionType><ownerPermission>W</ownerPermission>", "SRM_SUCCESS", 0o554},
		{"<permissionType>ADD</permissionType><arrayOfUserPermissions><userPermissionArray><userID>/CN=x</userID><mode>RWX</mode></userPermissionArray></arrayOfUserPermissions>", "SRM_NOT_SUPPORTED", 0o554},
		{"<permissionType>ADD</permissionType><arrayOfGroupPermissions><groupPermissionArray><groupID>/atlas</groupID><mode>RWX</mode></groupPermissionArray></arrayOfGroupPermissions>", "SRM_NOT_SUPPORTED", 0o554},
	} {
		if got := set(tc.inner); got != tc.code || mode() != tc.mode {
			t.Errorf("%s: %s, mode %o; want %s, %o", tc.inner, got, mode(), tc.code, tc.mode)
		}
	}
}
