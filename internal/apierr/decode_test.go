package apierr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
)

type item struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

type body struct {
	IDs     []int64        `json:"ids"`
	Name    string         `json:"name"`
	Wait    bool           `json:"wait"`
	Items   []item         `json:"items"`
	Expires time.Time      `json:"expires"`
	Extra   map[string]int `json:"extra"`
}

// engine serves POST /required, /optional and /none on a bare engine with
// the package's own mapper, answering the decoded body.
func engine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(apierr.Middleware(nil, time.Second))
	e.POST("/required", func(c *gin.Context) {
		var b body
		if err := apierr.DecodeJSON(c, &b); err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, b)
	})
	e.POST("/optional", func(c *gin.Context) {
		var b body
		if err := apierr.DecodeOptionalJSON(c, &b); err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, b)
	})
	e.POST("/none", func(c *gin.Context) {
		if err := apierr.NoBody(c); err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{})
	})
	e.POST("/small", func(c *gin.Context) {
		apierr.SetBodyLimit(c, 64)
		var b body
		if err := apierr.DecodeJSON(c, &b); err != nil {
			apierr.Abort(c, err)
			return
		}
		c.JSON(http.StatusOK, b)
	})
	return e
}

func TestDecodeStrict(t *testing.T) {
	e := engine()
	huge := `{"name": "` + strings.Repeat("x", int(apierr.DefaultBodyLimit)) + `"}`
	cases := []struct {
		name, path, body string
		status           int
		code, field      string
		msg              string // substring of the message
	}{
		{"valid", "/required", `{"ids": [1, 2], "name": "a"}`, 200, "", "", ""},
		{"unknown field", "/required", `{"ids": [1], "idz": [2]}`, 400, apierr.CodeUnknownField, "idz", "unknown field"},
		{"unknown nested field", "/required", `{"items": [{"name": "a", "bytes": 3}]}`, 400, apierr.CodeUnknownField, "bytes", "unknown field"},
		{"wrong type string for ints", "/required", `{"ids": "1,2"}`, 400, apierr.CodeWrongType, "ids", "want an array of integers, got JSON string"},
		{"wrong element type", "/required", `{"ids": [1, "2"]}`, 400, apierr.CodeWrongType, "ids", "want an integer, got JSON string"},
		{"wrong nested type", "/required", `{"items": [{"size": "big"}]}`, 400, apierr.CodeWrongType, "items.size", "want an integer"},
		{"bool as string", "/required", `{"wait": "yes"}`, 400, apierr.CodeWrongType, "wait", "want a boolean"},
		{"time as number", "/required", `{"expires": 5}`, 400, apierr.CodeWrongType, "expires", "not a JSON string"},
		{"object for map of ints", "/required", `{"extra": {"a": true}}`, 400, apierr.CodeWrongType, "extra", "want an integer"},
		{"array for object", "/required", `[1]`, 400, apierr.CodeWrongType, "body", "want an object, got JSON array"},
		{"overflow", "/required", `{"ids": [1e400]}`, 400, apierr.CodeWrongType, "ids", "want an integer"},
		{"bad time", "/required", `{"expires": "tomorrow"}`, 400, apierr.CodeWrongType, "expires", "tomorrow"},
		{"not json", "/required", `ids=1`, 400, apierr.CodeInvalidJSON, "", "invalid JSON"},
		{"truncated", "/required", `{"ids": [1`, 400, apierr.CodeInvalidJSON, "", "unexpected end"},
		{"trailing value", "/required", `{"ids": [1]} {"ids": [2]}`, 400, apierr.CodeTrailingData, "", "trailing data"},
		{"trailing brace", "/required", `{"ids": [1]}}`, 400, apierr.CodeTrailingData, "", "trailing data"},
		{"empty required", "/required", ``, 400, apierr.CodeEmptyBody, "", "empty"},
		{"blank required", "/required", " \n", 400, apierr.CodeEmptyBody, "", "empty"},
		{"oversized default limit", "/required", huge, 413, apierr.CodeBodyTooLarge, "", fmt.Sprintf("limit of %d bytes", apierr.DefaultBodyLimit)},
		{"oversized route limit", "/small", `{"name": "` + strings.Repeat("x", 100) + `"}`, 413, apierr.CodeBodyTooLarge, "", "limit of 64 bytes"},
		{"empty optional", "/optional", ``, 200, "", "", ""},
		{"unknown optional", "/optional", `{"nope": 1}`, 400, apierr.CodeUnknownField, "nope", ""},
		{"none empty", "/none", ``, 200, "", "", ""},
		{"none empty object", "/none", `{}`, 200, "", "", ""},
		{"none with field", "/none", `{"reason": "x"}`, 400, apierr.CodeUnknownField, "reason", "takes no body"},
		{"none oversized", "/none", huge, 413, apierr.CodeBodyTooLarge, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			e.ServeHTTP(w, httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body)))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status == 200 {
				return
			}
			var b apierr.Body
			dec := json.NewDecoder(w.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil {
				t.Fatalf("not the envelope: %v", err)
			}
			if b.Status != "error" || b.Code != tc.code || b.Field != tc.field || !strings.Contains(b.Error, tc.msg) {
				t.Fatalf("got %+v, want code %q field %q message with %q", b, tc.code, tc.field, tc.msg)
			}
			wantType := map[int]string{400: apierr.TypeBadRequest, 413: apierr.TypeTooLarge}[tc.status]
			if b.ErrorType != wantType {
				t.Fatalf("errorType %q, want %q", b.ErrorType, wantType)
			}
		})
	}
}

var errWidgetMissing = apierr.New(apierr.ErrNotFound, "no such widget")

// TestDescribe: kinds decide the status, a component's sentinel keeps its
// identity, and an error of no kind never shows its text.
func TestDescribe(t *testing.T) {
	wrapped := fmt.Errorf("widget 7: %w", errWidgetMissing)
	if !errors.Is(wrapped, errWidgetMissing) {
		t.Fatal("sentinel identity lost")
	}
	cases := []struct {
		err        error
		status     int
		typ, code  string
		msg        string
		hiddenText string
	}{
		{wrapped, 404, apierr.TypeNotFound, apierr.TypeNotFound, "widget 7: no such widget", ""},
		{&apierr.Error{Kind: apierr.ErrConflict, Code: "paused", Msg: "app x is paused"}, 409, apierr.TypeConflict, "paused", "app x is paused", ""},
		{&apierr.FieldError{Field: "limit", Msg: "want 1..10"}, 400, apierr.TypeBadRequest, apierr.CodeInvalidValue, "limit: want 1..10", ""},
		{fmt.Errorf("%w: who are you", apierr.ErrUnauthenticated), 401, apierr.TypeUnauthenticated, apierr.TypeUnauthenticated, "who are you", ""},
		{errors.New("open /data/se/secret/path: permission denied"), 500, apierr.TypeInternal, apierr.TypeInternal, "see the server log", "/data/se"},
		{fmt.Errorf("%w: shutting down", apierr.ErrUnavailable), 503, apierr.TypeUnavailable, apierr.TypeUnavailable, "shutting down", ""},
	}
	for _, tc := range cases {
		p := apierr.Describe(tc.err, time.Second)
		if p.Status != tc.status || p.Body.ErrorType != tc.typ || p.Body.Code != tc.code || !strings.Contains(p.Body.Error, tc.msg) {
			t.Errorf("%v: got %d %+v", tc.err, p.Status, p.Body)
		}
		if tc.hiddenText != "" && strings.Contains(p.Body.Error, tc.hiddenText) {
			t.Errorf("%v: body shows %q", tc.err, tc.hiddenText)
		}
	}
	if p := apierr.Describe(fmt.Errorf("%w: loading", apierr.ErrUnavailable), time.Second); p.Header["Retry-After"] == "" {
		t.Error("503 without Retry-After")
	}
}
