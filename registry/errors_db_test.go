package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/go-sql-driver/mysql"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// Database errors map to statuses by what they mean, whoever wraps them,
// and their driver text never reaches the client. A mounted component
// hands them over with apierr.Abort.
func TestDatabaseErrorsMapWithoutDriverText(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	srv, err := New(Options{Config: DefaultConfig(), DB: testdb.SQLite(t), Log: log.WithField("component", "registry")})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		err  error
		code int
	}{
		"deadline":          {fmt.Errorf("list requests: %w", fmt.Errorf("%w (limit 5s): %w", db.ErrTimeout, mysql.ErrInvalidConn)), http.StatusServiceUnavailable},
		"lost connection":   {fmt.Errorf("get lock: %w", mysql.ErrInvalidConn), http.StatusServiceUnavailable},
		"server shutdown":   {&mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}, http.StatusServiceUnavailable},
		"deadlock":          {fmt.Errorf("%w: %w", ErrBadRequest, &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"}), http.StatusServiceUnavailable},
		"duplicate":         {&mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'x' for key 'name'"}, http.StatusConflict},
		"other driver text": {&mysql.MySQLError{Number: 1146, Message: "Table 'dynamo.secret_table' doesn't exist"}, http.StatusInternalServerError},
	}
	srv.Mount("/api/v1/errtest", Permission{}, func(rg *gin.RouterGroup) {
		rg.GET("/:case", func(c *gin.Context) { apierr.Abort(c, cases[c.Param("case")].err) })
	})
	for name, tc := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/api/v1/errtest/"+strings.ReplaceAll(name, " ", "%20"), nil)
		req.RemoteAddr = "127.0.0.1:1234"
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", name, rec.Code, rec.Body, tc.code)
			continue
		}
		if tc.code == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", name)
		}
		var body ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
			t.Errorf("%s: body %s: %v", name, rec.Body, err)
		}
		for _, leak := range []string{"invalid connection", "Deadlock", "Duplicate", "secret_table", "shutdown", "Error 1"} {
			if strings.Contains(rec.Body.String(), leak) {
				t.Errorf("%s: the answer shows driver text %q: %s", name, leak, rec.Body)
			}
		}
	}
	if errors.Is(cases["duplicate"].err, ErrConflict) {
		t.Fatal("setup: the duplicate case must be a bare driver error")
	}
}
