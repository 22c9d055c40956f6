package delegation

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/caller"
)

// The routes answer in the one error envelope: a token caller (no DN) is
// 403, another's id 403, an unknown delegation 404, an oversized upload
// 413, a refused proxy 400; the whole exchange works for the owner.
func TestRoutes(t *testing.T) {
	f := setup(t, time.Hour)
	gin.SetMode(gin.TestMode)
	log := logrus.New()
	log.SetOutput(io.Discard)
	eng := gin.New()
	eng.Use(apierr.Middleware(log.WithField("component", "test"), time.Second))
	// Stands for the REST server's authentication: header X-Test-DN is the
	// verified certificate DN (none: a token caller).
	eng.Use(func(c *gin.Context) {
		caller.Set(c, c.GetHeader("X-Test-User"), false)
		caller.SetDN(c, c.GetHeader("X-Test-DN"))
	})
	Routes(eng.Group("/api/v1/delegation"), f.store, f.cas)
	srv := httptest.NewServer(eng)
	defer srv.Close()
	call := func(dn, method, path, body string) (int, apierr.Body, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/api/v1/delegation"+path, strings.NewReader(body))
		if dn != "" {
			req.Header.Set("X-Test-DN", dn)
			req.Header.Set("X-Test-User", "alice")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e apierr.Body
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e, string(b)
	}
	id := ID(f.alice.DN)
	if code, e, _ := call("", "GET", "", ""); code != http.StatusForbidden || e.ErrorType != apierr.TypeForbidden || !strings.Contains(e.Error, "client certificate") {
		t.Errorf("token caller: %d %+v", code, e)
	}
	if code, e, _ := call(f.bob.DN, "GET", "/"+id+"/request", ""); code != http.StatusForbidden || !strings.Contains(e.Error, "yours is "+ID(f.bob.DN)) {
		t.Errorf("bob asks for alice's CSR: %d %+v", code, e)
	}
	if code, e, _ := call(f.alice.DN, "GET", "/"+id, ""); code != http.StatusNotFound || e.ErrorType != apierr.TypeNotFound {
		t.Errorf("no delegation yet: %d %+v", code, e)
	}
	code, _, csr := call(f.alice.DN, "GET", "/"+id+"/request", "")
	if code != http.StatusOK {
		t.Fatalf("CSR: %d %s", code, csr)
	}
	if code, e, _ := call(f.alice.DN, "PUT", "/"+id+"/credential", strings.Repeat("x", maxUpload+1)); code != http.StatusRequestEntityTooLarge || e.ErrorType != apierr.TypeTooLarge {
		t.Errorf("oversized upload: %d %+v", code, e)
	}
	bobChain, _, err := SignRequest([]byte(csr), f.bobCred, 10*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, e, _ := call(f.alice.DN, "PUT", "/"+id+"/credential", string(bobChain)); code != http.StatusBadRequest || e.ErrorType != apierr.TypeBadRequest {
		t.Errorf("bob's proxy: %d %+v", code, e)
	}
	chain, _, err := SignRequest([]byte(csr), f.aliceCred, 10*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, _, b := call(f.alice.DN, "POST", "/"+id+"/credential", string(chain)); code != http.StatusCreated || !strings.Contains(b, `"user":"alice"`) {
		t.Fatalf("upload: %d %s", code, b)
	}
	if code, _, b := call(f.alice.DN, "GET", "", ""); code != http.StatusOK || !strings.Contains(b, `"delegation_id":"`+id) || !strings.Contains(b, `"expires"`) {
		t.Errorf("whoami: %d %s", code, b)
	}
	if code, e, _ := call(f.alice.DN, "DELETE", "/"+id, `{"force":true}`); code != http.StatusBadRequest || e.Code != apierr.CodeUnknownField {
		t.Errorf("delete with a body: %d %+v", code, e)
	}
	if code, _, b := call(f.alice.DN, "DELETE", "/"+id, ""); code != http.StatusOK {
		t.Errorf("delete: %d %s", code, b)
	}
	if _, _, err := f.store.Credential("alice"); err == nil {
		t.Error("deleted delegation still usable")
	}
}
