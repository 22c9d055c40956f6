package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/testservers"
)

// throwawayMariaDB starts a MariaDB of its own (scripts/mariadb.sh) on a
// free port, for a test that freezes or stops it: the shared test server
// must not be. It returns the DSN and the server's pid. Without mariadbd
// the test is skipped, or fails with CI=true.
func throwawayMariaDB(t *testing.T) (dsn string, pid int, stop func()) {
	t.Helper()
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("mariadbd not found and CI=true: scripts/install-test-deps.sh installs it")
			}
			t.Skip("mariadbd not found")
		}
	}
	dir := t.TempDir()
	script, _ := filepath.Abs(filepath.Join("..", "..", "scripts", "mariadb.sh"))
	cmd := exec.Command(script, "start", dir, freePortNumber(t))
	cmd.Env = append(os.Environ(), "DYNAMO_MARIADB_POOL=32M")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mariadb.sh start: %v\n%s", err, out)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = syscall.Kill(pid, syscall.SIGCONT) // a frozen server cannot stop
			_ = exec.Command(script, "stop", dir).Run()
		}
	}
	t.Cleanup(stop)
	raw, err := os.ReadFile(filepath.Join(dir, "mysqld.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), pid, stop
}

// allThreadsStopped reports whether every thread of pid is stopped
// (state T in /proc).
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// pid (comm) state ...: comm may contain spaces, the state follows
		// the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

func freePortNumber(t *testing.T) string {
	t.Helper()
	// Released before the server binds it: drawn below the ephemeral range
	// so no outgoing connection takes it meanwhile (testservers.FreePort).
	return strconv.Itoa(testservers.FreePort(t))
}

type apiAnswer struct {
	code       int
	retryAfter string
	body       string
	err        error
}

// apiCall is a REST call with a client timeout well above the server's
// database deadline: a call that reaches it means the server held the
// request instead of answering.
func apiCall(method, url, token, body string) apiAnswer {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return apiAnswer{err: err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	cl := &http.Client{Timeout: 20 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return apiAnswer{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apiAnswer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(b)}
}

// driverWords are what a database error says in the driver's words; none
// may reach a client.
var driverWords = []string{"invalid connection", "i/o timeout", "connection refused", "driver", "mysql", "Error 1", "dial tcp", "127.0.0.1:", "context"}

// checkUnavailable asserts a 503 that says to retry and shows no driver text.
func checkUnavailable(t *testing.T, what string, a apiAnswer) {
	t.Helper()
	if a.err != nil {
		t.Fatalf("%s: %v (the server held the request past the client's timeout)", what, a.err)
	}
	if a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
		t.Fatalf("%s: %d Retry-After %q: %s; want 503 with Retry-After", what, a.code, a.retryAfter, a.body)
	}
	for _, w := range driverWords {
		if strings.Contains(a.body, w) {
			t.Errorf("%s: the answer shows driver internals (%q): %s", what, w, a.body)
		}
	}
}

// `dynamo serve` on a MariaDB that is frozen (SIGSTOP), thawed, then
// stopped. Frozen: REST calls that need the database answer 503 with
// Retry-After instead of hanging, /readyz turns not-ready; thawed: ready
// again and calls succeed; stopped: 503, not 500 with the driver's
// message. Along the way, the poison injection document through the REST
// queue fails alone while the good one behind it is applied.
func TestServeOnAStalledDatabase(t *testing.T) {
	dsn, pid, stopDB := throwawayMariaDB(t)
	bin := buildDynamo(t)
	dir := t.TempDir()
	port := freePortNumber(t)
	const token = "stall-test-token"
	cfg := filepath.Join(dir, "dynamo.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`database: %s
registry:
  listen: 127.0.0.1:%s
  db_timeout: 1s
  inject_interval: 100ms
  users: [{name: ops, roles: {"*": admin}}]
  tokens: [{user: ops, token: %s}]
`, dsn, port, token)), 0o644))
	startServeArgs(t, bin, dir, "serve", "serve", "--config", cfg)
	base := "http://127.0.0.1:" + port
	waitUntil(t, "the server to be ready", 90*time.Second, func() bool {
		return apiCall("GET", base+"/readyz", "", "").code == http.StatusOK
	})
	// Writes go to the writer-lease holder only (a server still deciding
	// answers 503 not_writer): wait for this one to hold it.
	waitUntil(t, "the server to hold the writer lease", 30*time.Second, func() bool {
		return strings.Contains(apiCall("GET", base+"/api/v1/apps", token, "").body, `"leader":true`)
	})

	// The poison document, then a good one, through the REST queue.
	var bad, good struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
		Result string `json:"result"`
	}
	for _, q := range []struct {
		doc string
		out any
	}{
		{`{"datasets": [{"name": "/Poison/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [
			{"name": "b1", "files": [{"lfn": "/store/poison/1.root", "size": 1}]},
			{"name": "b2", "files": [{"lfn": "/store/poison/1.root", "size": 1}]}]}]}`, &bad},
		{`{"sites": [{"name": "T2_AFTER_POISON", "storage_type": "disk", "status": "ready"}]}`, &good},
	} {
		// Writes wait for the server to take the writer lease (503
		// not_writer until then).
		var a apiAnswer
		waitUntil(t, "the server to accept writes", 60*time.Second, func() bool {
			a = apiCall("POST", base+"/api/v1/injections", token, q.doc)
			return a.code != http.StatusServiceUnavailable
		})
		if a.code != http.StatusAccepted {
			t.Fatalf("queue injection: %d %s %v", a.code, a.body, a.err)
		}
		must(t, json.Unmarshal([]byte(a.body), q.out))
	}
	waitUntil(t, "the good document to be applied", 30*time.Second, func() bool {
		a := apiCall("GET", base+"/api/v1/injections/"+strconv.FormatInt(good.ID, 10), "", "")
		return a.code == http.StatusOK && json.Unmarshal([]byte(a.body), &good) == nil && good.Status == "applied"
	})
	a := apiCall("GET", base+"/api/v1/injections/"+strconv.FormatInt(bad.ID, 10), "", "")
	must(t, json.Unmarshal([]byte(a.body), &bad))
	if bad.Status != "failed" || !strings.Contains(bad.Result, "/store/poison/1.root") {
		t.Fatalf("poison document: %+v; want failed naming the LFN", bad)
	}
	if a := apiCall("GET", base+"/api/v1/sites/T2_AFTER_POISON", "", ""); a.code != http.StatusOK {
		t.Fatalf("the good document's site: %d %s", a.code, a.body)
	}

	dbRead := base + "/api/v1/copy-requests"
	if a := apiCall("GET", dbRead, "", ""); a.code != http.StatusOK {
		t.Fatalf("before the freeze: %d %s %v", a.code, a.body, a.err)
	}

	// Frozen.
	must(t, syscall.Kill(pid, syscall.SIGSTOP))
	// kill returns before every thread of the server has stopped.
	waitUntil(t, "MariaDB to stop", 30*time.Second, func() bool { return allThreadsStopped(pid) })
	checkUnavailable(t, "a database read while MariaDB is frozen", apiCall("GET", dbRead, "", ""))
	checkUnavailable(t, "a database write while MariaDB is frozen",
		apiCall("POST", base+"/api/v1/injections/sync", token, `{"groups": [{"name": "Frozen", "olevel": "block"}]}`))
	waitUntil(t, "/readyz to turn not-ready", 30*time.Second, func() bool {
		return apiCall("GET", base+"/readyz", "", "").code == http.StatusServiceUnavailable
	})
	checkUnavailable(t, "/readyz while MariaDB is frozen", apiCall("GET", base+"/readyz", "", ""))

	// Thawed.
	must(t, syscall.Kill(pid, syscall.SIGCONT))
	waitUntil(t, "/readyz to be ready again", 60*time.Second, func() bool {
		return apiCall("GET", base+"/readyz", "", "").code == http.StatusOK
	})
	waitUntil(t, "database reads to succeed again", 30*time.Second, func() bool {
		return apiCall("GET", dbRead, "", "").code == http.StatusOK
	})
	// A write succeeds again once this server is the writer again (the
	// freeze may have cost it the lease).
	var thawed apiAnswer
	waitUntil(t, "writes to succeed again", 90*time.Second, func() bool {
		thawed = apiCall("POST", base+"/api/v1/injections/sync", token, `{"groups": [{"name": "Thawed", "olevel": "block"}]}`)
		return thawed.code != http.StatusServiceUnavailable
	})
	if thawed.code != http.StatusOK {
		t.Fatalf("a write after the thaw: %d %s %v", thawed.code, thawed.body, thawed.err)
	}

	// Stopped.
	stopDB()
	waitUntil(t, "database reads to fail", 30*time.Second, func() bool {
		return apiCall("GET", dbRead, "", "").code != http.StatusOK
	})
	checkUnavailable(t, "a database read with MariaDB stopped", apiCall("GET", dbRead, "", ""))
	checkUnavailable(t, "/readyz with MariaDB stopped", apiCall("GET", base+"/readyz", "", ""))
}

// startServeArgs starts `dynamo ARGS...` logging to DIR/NAME.log, killed
// when the test ends; its log is shown when the test fails.
func startServeArgs(t *testing.T, bin, dir, name string, args ...string) *exec.Cmd {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, tail(string(b), 80))
		}
	})
	return cmd
}
