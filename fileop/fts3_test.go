package fileop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testutil"
)

// fakeFTS3 is an FTS3 REST stand-in: no FTS3 server can run here. It
// checks the request shapes documented by FTS3 (fts-rest-flask
// submit_schema: "files" with sources/destinations/checksum/filesize/
// metadata or "delete", and "params"; bulk status GET /jobs/a,b?files=...;
// DELETE /jobs/{id}) and answers like FTS3 (job_id on submit, 409 on a
// repeated deterministic sid, 207 multi-status list on bulk status).
type fakeFTS3 struct {
	t  *testing.T
	mu sync.Mutex
	// jobs by id; sids seen.
	jobs      map[string]*fakeJob
	sids      map[string]string
	submits   int
	cancelled []string
	// fail names destination (or deletion) URLs that FAIL with the reason.
	fail map[string]string
	// polls before files finish
	delay int
}

type fakeJob struct {
	ID    string
	Meta  map[string]any
	Files []map[string]any
	polls int
}

func newFakeFTS3(t *testing.T) (*fakeFTS3, *httptest.Server) {
	f := &fakeFTS3{t: t, jobs: map[string]*fakeJob{}, sids: map[string]string{}, fail: map[string]string{}, delay: 1}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeFTS3) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/jobs":
		f.submit(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/jobs":
		var out []map[string]any
		for _, j := range f.jobs {
			out = append(out, map[string]any{"job_id": j.ID, "job_metadata": j.Meta, "job_state": "ACTIVE"})
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/jobs/"):
		if !strings.Contains(r.URL.Query().Get("files"), "file_state") {
			f.t.Errorf("bulk status without files=file_state: %s", r.URL.RawQuery)
		}
		var out []map[string]any
		for _, id := range strings.Split(strings.TrimPrefix(r.URL.Path, "/jobs/"), ",") {
			j, ok := f.jobs[id]
			if !ok {
				out = append(out, map[string]any{"job_id": id, "http_status": "404 Not Found"})
				continue
			}
			j.polls++
			state := "ACTIVE"
			for _, fl := range j.Files {
				if j.polls > f.delay {
					fl["file_state"] = "FINISHED"
					if reason, bad := f.fail[fl["dest_surl"].(string)+fl["source_surl"].(string)]; bad {
						fl["file_state"], fl["reason"] = "FAILED", reason
					}
					state = "FINISHED"
				}
			}
			out = append(out, map[string]any{"job_id": id, "job_state": state, "files": j.Files})
		}
		w.WriteHeader(http.StatusMultiStatus)
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/jobs/"):
		f.cancelled = append(f.cancelled, strings.TrimPrefix(r.URL.Path, "/jobs/"))
		w.Write([]byte(`[]`))
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusNotFound)
	}
}

func (f *fakeFTS3) submit(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("submit content type %q", ct)
	}
	var body struct {
		Files []struct {
			Sources      []string       `json:"sources"`
			Destinations []string       `json:"destinations"`
			Checksum     string         `json:"checksum"`
			Filesize     int64          `json:"filesize"`
			Metadata     map[string]any `json:"metadata"`
		} `json:"files"`
		Delete []string       `json:"delete"`
		Params map[string]any `json:"params"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		f.t.Errorf("submit body: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if (len(body.Files) == 0) == (len(body.Delete) == 0) {
		f.t.Errorf("submit needs exactly one of files or delete")
	}
	p := body.Params
	if p["id_generator"] != "deterministic" || !strings.HasPrefix(fmt.Sprint(p["sid"]), "dynamo-batch-") || p["overwrite"] != true {
		f.t.Errorf("params %v", p)
	}
	if pr, _ := p["priority"].(float64); pr < 1 || pr > 5 {
		f.t.Errorf("priority %v out of 1..5", p["priority"])
	}
	sid := fmt.Sprint(p["sid"])
	if _, dup := f.sids[sid]; dup {
		http.Error(w, `{"status":"409 Conflict","message":"job already submitted"}`, http.StatusConflict)
		return
	}
	f.submits++
	j := &fakeJob{ID: fmt.Sprintf("job-%d", f.submits), Meta: p["job_metadata"].(map[string]any)}
	for _, fl := range body.Files {
		if len(fl.Sources) != 1 || len(fl.Destinations) != 1 || fl.Filesize <= 0 || !strings.HasPrefix(fl.Checksum, "ADLER32:") || fl.Metadata["dynamo_task"] == nil {
			f.t.Errorf("file %+v", fl)
		}
		j.Files = append(j.Files, map[string]any{"file_state": "SUBMITTED", "source_surl": fl.Sources[0], "dest_surl": fl.Destinations[0],
			"file_metadata": fl.Metadata, "filesize": fl.Filesize, "reason": ""})
	}
	for _, u := range body.Delete {
		j.Files = append(j.Files, map[string]any{"file_state": "SUBMITTED", "source_surl": u, "dest_surl": "", "file_metadata": nil, "reason": ""})
	}
	f.jobs[j.ID], f.sids[sid] = j, j.ID
	json.NewEncoder(w).Encode(map[string]string{"job_id": j.ID})
}

func ftsConfig(url string) fileop.Config {
	cfg := testConfig()
	cfg.Backend = "fts3"
	cfg.FTS3.URL = url
	cfg.FTS3.Poll = 20 * time.Millisecond
	return cfg
}

func TestFTS3TransfersDeletionsAndFailures(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		fake, srv := newFakeFTS3(t)
		e := setup(t, d, 10, 10)
		ctx := context.Background()
		// One file fails irrecoverably at the destination (errno 13).
		bad := e.fed.Files[3]
		fake.fail["file://"+e.fed.DstDir+bad.LFN+"file://"+e.fed.SrcDir+bad.LFN] = "DESTINATION [13] Permission denied"
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, ftsConfig(srv.URL), fileop.Options{}, 20*time.Second)
		if got := e.count(t, "state = 'done'"); got != 9 {
			t.Fatalf("%d done, want 9", got)
		}
		held, _ := fileop.Held(ctx, d, 0)
		if len(held) != 1 || held[0].FileID != int64(bad.ID) || held[0].HoldReason != fileop.HoldAllFailed {
			t.Fatalf("held %+v", held)
		}
		if e.historyCount(t, "backend = 'fts3' AND outcome = 'failed' AND code = 'fts DESTINATION 13' AND exit_code = 13") != 1 {
			t.Fatal("failure not recorded with its FTS3 code")
		}
		rep, _ := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID)
		if rep.NumFiles != 9 || rep.Complete {
			t.Fatalf("replica %+v, want 9 files", rep)
		}
		// Deletion jobs ("delete": [...]) empty and remove the replica.
		if _, err := e.fed.QueueDelete(ctx, t0, e.fed.Dst.ID); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, ftsConfig(srv.URL), fileop.Options{}, 20*time.Second)
		if _, ok := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID); ok {
			t.Fatal("replica not removed after FTS3 deletions")
		}
		if e.count(t, "op = 'deletion' AND state = 'done'") != 9 {
			t.Fatal("deletions not done")
		}
	})
}

// TestFTS3ResubmissionFindsTheJob: a batch whose job id was never
// recorded (crash between POST and the update) is resubmitted on restart;
// FTS3 answers 409 to the deterministic sid and the job is found by its
// metadata: no second job, files completed once.
func TestFTS3ResubmissionFindsTheJob(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		fake, srv := newFakeFTS3(t)
		fake.delay = 1 << 30 // jobs never finish during the first run
		e := setup(t, d, 4, 10)
		ctx := context.Background()
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		dm, err := fileop.New(ftsConfig(srv.URL), e.store, testLog(t), fileop.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- dm.Run(rctx) }()
		// Stop once the job is at FTS3 and its id recorded: the crash
		// simulated below is the one after that.
		testutil.Eventually(t, time.Minute, "the files submitted to FTS3 with their job ids recorded", func() bool {
			var batches, withoutJob int
			if err := d.Get(&batches, "SELECT COUNT(*) FROM "+fileop.TableBatches); err != nil {
				t.Fatal(err)
			}
			if err := d.Get(&withoutJob, "SELECT COUNT(*) FROM "+fileop.TableBatches+" WHERE job_id = ''"); err != nil {
				t.Fatal(err)
			}
			fake.mu.Lock()
			submits := fake.submits
			fake.mu.Unlock()
			return e.count(t, "state = 'inbatch'") == 4 && batches > 0 && withoutJob == 0 && submits > 0
		})
		cancel()
		<-done
		// Simulate the crash window: forget the recorded job ids.
		if _, err := d.Exec("UPDATE " + fileop.TableBatches + " SET job_id = ''"); err != nil {
			t.Fatal(err)
		}
		fake.mu.Lock()
		fake.delay = 0
		submitted := fake.submits
		fake.mu.Unlock()
		e.runUntil(t, ftsConfig(srv.URL), fileop.Options{}, 20*time.Second)
		fake.mu.Lock()
		defer fake.mu.Unlock()
		if fake.submits != submitted {
			t.Fatalf("%d jobs after restart, %d before: resubmission created a new job", fake.submits, submitted)
		}
		if e.count(t, "state = 'done'") != 4 || e.historyCount(t, "outcome = 'done'") != 4 {
			t.Fatal("files not completed exactly once")
		}
	})
}

func TestFTS3Cancel(t *testing.T) {
	fake, srv := newFakeFTS3(t)
	f, err := fileop.NewFTS3(fileop.FTS3Config{URL: srv.URL}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Cancel(context.Background(), fileop.Batch{ID: 1, JobID: "job-7"}); err != nil {
		t.Fatal(err)
	}
	if len(fake.cancelled) != 1 || fake.cancelled[0] != "job-7" {
		t.Fatalf("cancelled %v", fake.cancelled)
	}
}
