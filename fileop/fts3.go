package fileop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// FTS3Config configures the FTS3 backend.
type FTS3Config struct {
	// URL is the FTS3 REST endpoint, e.g. https://fts3.example.org:8446.
	URL string `yaml:"url"`
	// Poll is the status polling interval (default 30s).
	Poll time.Duration `yaml:"poll"`
	// Retry is FTS3's own per-file retry count (params.retry, default 3).
	Retry int `yaml:"retry"`
	// Priority is params.priority, 1..5 (default 3).
	Priority int `yaml:"priority"`
	// TLS and the X.509 credential presented to FTS3.
	TLS driver.Options `yaml:"tls"`
}

func (c *FTS3Config) applyDefaults() {
	if c.Poll == 0 {
		c.Poll = 30 * time.Second
	}
	if c.Retry == 0 {
		c.Retry = 3
	}
	if c.Priority == 0 {
		c.Priority = 3
	}
}

func (c FTS3Config) validate() error {
	var errs []error
	if !strings.HasPrefix(c.URL, "https://") && !strings.HasPrefix(c.URL, "http://") {
		errs = append(errs, fmt.Errorf("fileop.fts3.url: %q: want an http(s) URL", c.URL))
	}
	if c.Priority < 1 || c.Priority > 5 {
		errs = append(errs, fmt.Errorf("fileop.fts3.priority: %d out of range 1..5", c.Priority))
	}
	if c.Poll < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("fileop.fts3.poll: %v too short", c.Poll))
	}
	return errors.Join(errs...)
}

// FTS3 drives an FTS3 server through its documented REST API (POST /jobs
// with "files" and "params" or "delete", bulk GET /jobs/{id,id,...}?files=
// for status, DELETE /jobs/{id} to cancel). No FTS3 server runs in this
// project's test environment: it is tested against an httptest fake that
// checks the request shapes of the FTS3 documentation (fts3_test.go).
//
// Submission is idempotent: every job carries id_generator=deterministic
// with sid "dynamo-batch-<id>" and job_metadata {"dynamo_batch": id}; a
// batch resubmitted after a crash that lost its job id gets 409 from FTS3
// and its job is found again by that metadata.
type FTS3 struct {
	cfg    FTS3Config
	log    *logrus.Entry
	client *http.Client

	mu   sync.Mutex
	jobs map[string]*ftsJob
}

type ftsJob struct {
	batch    Batch
	byTask   map[string]Task // transfer: metadata dynamo_task; deletion: surl
	reported map[int64]bool
	started  time.Time
}

// NewFTS3 returns the FTS3 backend.
func NewFTS3(cfg FTS3Config, log *logrus.Entry) (*FTS3, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if strings.HasPrefix(cfg.URL, "https://") {
		o := cfg.TLS
		o.ApplyDefaults()
		tc, err := o.TLSConfig()
		if err != nil {
			return nil, fmt.Errorf("fileop.fts3.tls: %w", err)
		}
		tr.TLSClientConfig = tc
	}
	return &FTS3{cfg: cfg, log: log, client: &http.Client{Transport: tr, Timeout: 2 * time.Minute}, jobs: map[string]*ftsJob{}}, nil
}

// Name implements Backend.
func (f *FTS3) Name() string { return "fts3" }

type ftsFile struct {
	Sources      []string       `json:"sources"`
	Destinations []string       `json:"destinations"`
	Checksum     string         `json:"checksum,omitempty"`
	Filesize     int64          `json:"filesize,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
}

type ftsSubmit struct {
	Files  []ftsFile      `json:"files,omitempty"`
	Delete []string       `json:"delete,omitempty"`
	Params map[string]any `json:"params"`
}

// Submit implements Backend.
func (f *FTS3) Submit(ctx context.Context, b Batch) (string, error) {
	if b.JobID != "" {
		f.track(b.JobID, b)
		return b.JobID, nil
	}
	body := ftsSubmit{Params: map[string]any{
		"overwrite": true, "retry": f.cfg.Retry, "priority": f.cfg.Priority,
		"job_metadata": map[string]any{"dynamo_batch": b.ID}, "id_generator": "deterministic",
		"sid": "dynamo-batch-" + strconv.FormatInt(b.ID, 10), "verify_checksum": "none",
	}}
	if b.Op == OpDeletion {
		for _, t := range b.Tasks {
			body.Delete = append(body.Delete, t.Target)
		}
	} else {
		for _, t := range b.Tasks {
			ff := ftsFile{Sources: []string{t.Source}, Destinations: []string{t.Target}, Filesize: t.Size,
				Metadata: map[string]any{"dynamo_task": t.SubID}}
			if t.Adler32 != "" {
				ff.Checksum = "ADLER32:" + t.Adler32
				body.Params["verify_checksum"] = "both"
			}
			body.Files = append(body.Files, ff)
		}
	}
	buf, _ := json.Marshal(body)
	resp, err := f.do(ctx, http.MethodPost, "/jobs", buf)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var job string
	switch {
	case resp.StatusCode == http.StatusConflict:
		if job, err = f.findJob(ctx, b.ID); err != nil {
			return "", err
		}
	case resp.StatusCode/100 == 2:
		var r struct {
			JobID string `json:"job_id"`
		}
		if err := json.Unmarshal(data, &r); err != nil || r.JobID == "" {
			return "", fmt.Errorf("fts3 submit: response without job_id: %.200s", data)
		}
		job = r.JobID
	default:
		return "", driver.NewError(ctx, "fts3 submit", f.cfg.URL, driver.KindFromHTTP(resp.StatusCode), "http "+strconv.Itoa(resp.StatusCode), fmt.Errorf("%.300s", data))
	}
	f.track(job, b)
	return job, nil
}

// findJob looks up the job of a batch by its job_metadata.
func (f *FTS3) findJob(ctx context.Context, batch int64) (string, error) {
	resp, err := f.do(ctx, http.MethodGet, "/jobs?limit=500&state_in=SUBMITTED,READY,ACTIVE,STAGING,FINISHED,FAILED,FINISHEDDIRTY,CANCELED", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var jobs []struct {
		JobID string         `json:"job_id"`
		Meta  map[string]any `json:"job_metadata"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jobs); err != nil {
		return "", fmt.Errorf("fts3 job list: %w", err)
	}
	for _, j := range jobs {
		if v, ok := j.Meta["dynamo_batch"].(float64); ok && int64(v) == batch {
			return j.JobID, nil
		}
	}
	return "", fmt.Errorf("fts3: submission of batch %d conflicts (409) but no job carries its metadata", batch)
}

func (f *FTS3) track(job string, b Batch) {
	j := &ftsJob{batch: b, byTask: map[string]Task{}, reported: map[int64]bool{}, started: time.Now()}
	for _, t := range b.Tasks {
		if b.Op == OpDeletion {
			j.byTask[t.Target] = t
		} else {
			j.byTask[strconv.FormatInt(t.SubID, 10)] = t
		}
	}
	f.mu.Lock()
	f.jobs[job] = j
	f.mu.Unlock()
}

// Cancel implements Canceller: DELETE /jobs/{id}.
func (f *FTS3) Cancel(ctx context.Context, b Batch) error {
	if b.JobID == "" {
		return nil
	}
	resp, err := f.do(ctx, http.MethodDelete, "/jobs/"+b.JobID, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return driver.NewError(ctx, "fts3 cancel", f.cfg.URL, driver.KindFromHTTP(resp.StatusCode), "http "+strconv.Itoa(resp.StatusCode), nil)
	}
	return nil
}

// Run implements Backend: polls the tracked jobs, 100 per request.
func (f *FTS3) Run(ctx context.Context, report func(Result)) error {
	tick := time.NewTicker(f.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := f.poll(ctx, report); err != nil && ctx.Err() == nil {
			f.log.WithError(err).Warn("fts3 poll failed")
		}
	}
}

type ftsStatus struct {
	JobID    string `json:"job_id"`
	JobState string `json:"job_state"`
	Files    []struct {
		FileState  string         `json:"file_state"`
		SourceSURL string         `json:"source_surl"`
		DestSURL   string         `json:"dest_surl"`
		Reason     string         `json:"reason"`
		Filesize   int64          `json:"filesize"`
		Metadata   map[string]any `json:"file_metadata"`
	} `json:"files"`
}

func (f *FTS3) poll(ctx context.Context, report func(Result)) error {
	f.mu.Lock()
	ids := make([]string, 0, len(f.jobs))
	for id := range f.jobs {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	for start := 0; start < len(ids); start += 100 {
		chunk := ids[start:min(start+100, len(ids))]
		resp, err := f.do(ctx, http.MethodGet, "/jobs/"+strings.Join(chunk, ",")+
			"?files=file_state,source_surl,dest_surl,reason,filesize,file_metadata", nil)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusMultiStatus {
			return fmt.Errorf("fts3 status: http %d: %.200s", resp.StatusCode, data)
		}
		var sts []ftsStatus
		if err := json.Unmarshal(data, &sts); err != nil {
			var one ftsStatus // a single id may come back as one object
			if err2 := json.Unmarshal(data, &one); err2 != nil {
				return fmt.Errorf("fts3 status: %w", err)
			}
			sts = []ftsStatus{one}
		}
		for _, st := range sts {
			f.absorb(st, report)
		}
	}
	return nil
}

func (f *FTS3) absorb(st ftsStatus, report func(Result)) {
	f.mu.Lock()
	j, ok := f.jobs[st.JobID]
	f.mu.Unlock()
	if !ok {
		return
	}
	for _, fl := range st.Files {
		var t Task
		var ok bool
		if j.batch.Op == OpDeletion {
			t, ok = j.byTask[fl.SourceSURL]
		} else if v, has := fl.Metadata["dynamo_task"].(float64); has {
			t, ok = j.byTask[strconv.FormatInt(int64(v), 10)]
		}
		if !ok || j.reported[t.SubID] {
			continue
		}
		r := Result{SubID: t.SubID, BatchID: j.batch.ID, Started: j.started, Duration: time.Since(j.started)}
		switch fl.FileState {
		case "FINISHED":
			if j.batch.Op == OpTransfer {
				r.Bytes = t.Size
				r.Checksum = VerdictUnchecked
				if t.Adler32 != "" {
					r.Checksum = VerdictOK
				}
			}
		case "FAILED", "CANCELED":
			kind, code, errno := classifyFTSReason(fl.Reason)
			if (j.batch.Op == OpDeletion && errors.Is(kind, driver.ErrNotFound)) ||
				(j.batch.Op == OpTransfer && errors.Is(kind, driver.ErrExists)) {
				break // Dynamo's rule: ENOENT on deletion / EEXIST on transfer count as success
			}
			if fl.FileState == "CANCELED" {
				kind = driver.ErrCanceled
			}
			r.Err = &driver.Error{Op: "fts3 " + string(j.batch.Op), URL: t.Target, Kind: kind, Code: code, Err: errors.New(fl.Reason)}
			r.Recoverable, r.Code, r.ExitCode = driver.Recoverable(r.Err), code, errno
			if strings.Contains(strings.ToLower(fl.Reason), "checksum") {
				r.Checksum = VerdictMismatch
			}
		default:
			continue
		}
		j.reported[t.SubID] = true
		report(r)
	}
	if len(j.reported) == len(j.byTask) {
		f.mu.Lock()
		delete(f.jobs, st.JobID)
		f.mu.Unlock()
	}
}

// FTS3 reasons look like "DESTINATION [17] File exists": the bracketed
// number is an errno.
var ftsReason = regexp.MustCompile(`\b(SOURCE|DESTINATION|TRANSFER|DELETION|CHECKSUM)\s*\[(\d+)\]`)

func classifyFTSReason(reason string) (error, string, int) {
	if m := ftsReason.FindStringSubmatch(reason); m != nil {
		n, _ := strconv.Atoi(m[2])
		return driver.KindFromErrno(syscall.Errno(n)), "fts " + m[1] + " " + m[2], n
	}
	return driver.KindFromMessage(reason), "", 0
}

func (f *FTS3) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(f.cfg.URL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, driver.NewError(ctx, "fts3 "+method, f.cfg.URL+path, driver.ErrUnavailable, "", err)
	}
	return resp, nil
}

var (
	_ Backend   = (*FTS3)(nil)
	_ Canceller = (*FTS3)(nil)
)
