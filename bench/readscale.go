package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
	regbench "github.com/dynamo-go/dynamo/registry/bench"
)

// ReadScaleOptions shape `dynamo bench readscale`: several `dynamo serve`
// processes on one database, reads spread over all of them, writes sent to
// the lease holder only.
type ReadScaleOptions struct {
	Binary     string        // the dynamo binary the servers run
	DSN        string        // the database every server uses (MariaDB in production)
	Servers    []int         // server counts to measure, e.g. 1,2,3
	Datasets   int           // synthetic datasets generated when the database holds none
	Duration   time.Duration // measured read time per server count
	Workers    int           // concurrent readers (closed loop), spread evenly over the servers
	LagSamples int           // writes on the holder timed until every standby shows them
	Heartbeat  time.Duration // scheduler heartbeat: a standby tries for the lease this often
	// ReplayInterval is how often a standby replays the change log
	// (scheduler.replay_interval; 0: the servers' default).
	ReplayInterval time.Duration
	Dir            string // configurations and server logs
	Seed           uint64
	Log            *logrus.Entry
	// CPUQuota, when positive, caps each server at that many cores (0.25
	// = a quarter of one) in a cgroup of its own (needs root): every
	// server then has the same fixed budget however many run, which is
	// how N servers on N hosts behave, on a host with fewer cores.
	CPUQuota float64
	// ServerProcs, when positive, is each server's GOMAXPROCS; with a
	// quota it defaults to the quota rounded up, so a server does not run
	// more threads than its budget and burn it in bursts.
	ServerProcs int
}

// ReadScaleRow is the figure for one server count.
type ReadScaleRow struct {
	Servers    int     `json:"servers"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Throughput float64 `json:"reads_per_second"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	PerServer  []int   `json:"reads_per_server"` // requests answered, holder first
	// Replication lag: from a write's answer on the holder until a standby
	// answers the written object, over every sample and standby.
	LagSamples int     `json:"lag_samples"`
	LagP50     float64 `json:"lag_p50_ms"`
	LagP99     float64 `json:"lag_p99_ms"`
	LagMax     float64 `json:"lag_max_ms"`
	// LagSamplesAfterReads counts the samples written after the read
	// window ended (a standby slower than the spacing of the samples).
	LagSamplesAfterReads int `json:"lag_samples_after_reads"`
	// ReadSeconds is the read window every per-second figure is over.
	ReadSeconds float64 `json:"read_seconds"`
	// CPU while the reads ran, from /proc: each server's user+system
	// seconds and the cores that is over the run (holder first).
	ServerCPU   []float64 `json:"server_cpu_seconds"`
	ServerCores []float64 `json:"server_cores"`
	// ServerCPUPerRead is the servers' CPU per answered read, in
	// microseconds: what one read costs a server whatever else the host
	// runs. 1e6 / it is the reads/s one core of server gives.
	ServerCPUPerRead float64 `json:"server_cpu_us_per_read"`
	// GeneratorCPUPerRead is the benchmark process's own CPU per read
	// (client side of every request, the lag writes), in microseconds.
	GeneratorCPUPerRead float64 `json:"generator_cpu_us_per_read"`
	// With a CPU quota: each server's share of its active bandwidth
	// periods in which it used up its quota and was stopped.
	Throttled []float64 `json:"throttled_fraction,omitempty"`
	// ServerBound: a quota was set and every server used at least 90 % of
	// it. Such a row measures what the servers' budgets give, not a
	// starved generator or a host busy with other work.
	ServerBound bool `json:"server_bound"`
	// StandbyWritesRefused counts standbys that answered a write with 503
	// not_writer (every standby must).
	StandbyWritesRefused int `json:"standby_writes_refused"`
	// StandbyRefusalsNamingHolder counts the refusals whose holder_address
	// was the holder's (a standby that has not seen the lease live at its
	// last heartbeat says nobody holds it and asks for a retry instead).
	StandbyRefusalsNamingHolder int      `json:"standby_refusals_naming_holder"`
	Seqs                        []uint64 `json:"inventory_seqs"` // each server's replayed sequence after the run
	LoadAvg                     string   `json:"loadavg"`
}

// ReadScaleReport is the whole run.
type ReadScaleReport struct {
	Datasets       int64          `json:"datasets"`
	BlockReplicas  int64          `json:"block_replicas"`
	Heartbeat      string         `json:"heartbeat"`
	ReplayInterval string         `json:"replay_interval,omitempty"`
	Workers        int            `json:"workers"`
	HostCores      int            `json:"host_cores"`
	CPUQuota       float64        `json:"cpu_quota_cores_per_server,omitempty"`
	ServerProcs    int            `json:"server_gomaxprocs,omitempty"`
	Rows           []ReadScaleRow `json:"rows"`
}

// readScaleToken authenticates the benchmark's requests; it is written to
// the work directory only.
const readScaleToken = "dynamo-bench-readscale"

type serveProc struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT
	done chan error
	cg   *cpuCgroup // nil without a CPU quota
}

// ReadScale runs the benchmark. It generates a synthetic inventory into
// an empty database, starts servers one by one (the first takes the
// writer lease), and for each server count measures reads, replication
// lag and the standbys' refusal of writes.
func ReadScale(ctx context.Context, o ReadScaleOptions) (*ReadScaleReport, error) {
	if len(o.Servers) == 0 || slices.Min(o.Servers) < 1 {
		return nil, errors.New("readscale: server counts must be at least 1")
	}
	if o.Binary == "" || o.DSN == "" || o.Dir == "" {
		return nil, errors.New("readscale: binary, database and work directory are required")
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	o.Workers = max(o.Workers, 1)
	if o.CPUQuota < 0 || o.ServerProcs < 0 {
		return nil, errors.New("readscale: the CPU quota and GOMAXPROCS of a server cannot be negative")
	}
	if o.CPUQuota > 0 && o.ServerProcs == 0 {
		o.ServerProcs = int(math.Ceil(o.CPUQuota))
	}
	if o.CPUQuota > 0 {
		// The generator gets the servers' weight (no cap): it must keep
		// them busy, or the rows measure a starved generator.
		g, err := newCPUCgroup(fmt.Sprintf("dynamo-readscale-%d-gen", os.Getpid()), 0, os.Getpid())
		if err != nil {
			return nil, fmt.Errorf("readscale: a per-server CPU quota needs a cpu cgroup: %w", err)
		}
		defer g.leave(os.Getpid())
	}
	log := o.Log
	d, err := db.Open(ctx, o.DSN)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		return nil, err
	}
	var n int
	if err := d.GetContext(ctx, &n, "SELECT COUNT(*) FROM datasets"); err != nil {
		return nil, err
	}
	if n == 0 {
		spec := synth.CMS()
		spec.Datasets, spec.Sites, spec.Seed = max(o.Datasets, 1), 20, max(o.Seed, 1)
		log.WithField("datasets", spec.Datasets).Info("generating the inventory")
		if _, err := synth.Generate(ctx, d, spec, nil); err != nil {
			return nil, err
		}
	}
	// The request mix comes from the same inventory the servers load.
	store, err := inventory.Load(ctx, d, log.WithField("component", "inventory"), nil, time.Now())
	if err != nil {
		return nil, err
	}
	snap := store.Snapshot()
	counts := snap.Counts()
	targets := regbench.Mix(snap, 20000, max(o.Seed, 1), 0)
	rep := &ReadScaleReport{Datasets: counts.Datasets, BlockReplicas: counts.BlockReplicas,
		Heartbeat: o.Heartbeat.String(), ReplayInterval: replayText(o.ReplayInterval), Workers: o.Workers, HostCores: runtime.NumCPU(), CPUQuota: o.CPUQuota,
		ServerProcs: o.ServerProcs}
	if err := os.WriteFile(filepath.Join(o.Dir, "token"), []byte(readScaleToken+"\n"), 0o600); err != nil {
		return nil, err
	}

	var procs []*serveProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for _, want := range slices.Sorted(slices.Values(o.Servers)) {
		for len(procs) < want {
			p, err := startServe(ctx, o, len(procs)+1)
			if err != nil {
				return rep, err
			}
			procs = append(procs, p)
			log.WithField("server", len(procs)).WithField("url", p.base).Info("started dynamo serve")
			if err := waitServing(ctx, p, len(procs) == 1); err != nil {
				return rep, fmt.Errorf("server %d: %w (log: %s)", len(procs), err, serveLog(o.Dir, len(procs)))
			}
		}
		row, err := measureReads(ctx, o, procs, targets)
		if err != nil {
			return rep, err
		}
		log.WithFields(logrus.Fields{"servers": want, "reads_per_second": row.Throughput, "p99_ms": row.P99,
			"lag_max_ms": row.LagMax}).Info("measured")
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

func replayText(d time.Duration) string {
	if d <= 0 {
		return "the servers' default"
	}
	return d.String()
}

func serveLog(dir string, k int) string {
	return filepath.Join(dir, fmt.Sprintf("serve-%d.log", k))
}

// startServe starts server k with its own configuration file: the same
// database and scheduler settings, its own loopback port.
func startServe(ctx context.Context, o ReadScaleOptions, k int) (*serveProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := filepath.Join(o.Dir, fmt.Sprintf("serve-%d.yaml", k))
	lease := 5 * o.Heartbeat
	replay := ""
	if o.ReplayInterval > 0 {
		replay = ", replay_interval: " + o.ReplayInterval.String()
	}
	body := fmt.Sprintf(`database: %q
registry:
  listen: 127.0.0.1:%d
  users: [{name: bench, roles: {"*": admin}}]
  tokens: [{user: bench, token_file: token}]
scheduler: {server_id: readscale-%d, lease_period: %s, heartbeat: %s%s}
`, o.DSN, port, k, lease, o.Heartbeat, replay)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(serveLog(o.Dir, k))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, o.Binary, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "DYNAMO_CONFIG=", "DYNAMO_DB=")
	if o.ServerProcs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(o.ServerProcs))
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &serveProc{cmd: cmd, base: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	if o.CPUQuota > 0 {
		// Confined before it loads the inventory, so it never runs with
		// more than its budget.
		name := fmt.Sprintf("dynamo-readscale-%d-%d", os.Getpid(), k)
		if p.cg, err = newCPUCgroup(name, o.CPUQuota, cmd.Process.Pid); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}

// stop ends a server with SIGTERM (it releases the lease) and waits.
func (p *serveProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cg.remove()
}

// waitServing polls until the server is ready and, for the first one,
// holds the writer lease (the others must see it held by someone else).
func waitServing(ctx context.Context, p *serveProc, holder bool) error {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			return fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if code, _, _ := call(ctx, http.MethodGet, p.base+"/readyz", ""); code != http.StatusOK {
			continue
		}
		st, err := status(ctx, p)
		if err == nil && st.Leader == holder && st.Lease.Holder != "" {
			return nil
		}
	}
	return errors.New("not ready within 3 minutes")
}

type serverStatus struct {
	Leader bool `json:"leader"`
	Lease  struct {
		Holder  string `json:"holder"`
		Address string `json:"address"`
	} `json:"lease"`
	Seq uint64 `json:"inventory_seq"`
}

func status(ctx context.Context, p *serveProc) (serverStatus, error) {
	var env struct {
		Data serverStatus `json:"data"`
	}
	code, body, err := call(ctx, http.MethodGet, p.base+"/api/v1/apps", "")
	if err != nil {
		return env.Data, err
	}
	if code != http.StatusOK {
		return env.Data, fmt.Errorf("GET /api/v1/apps: HTTP %d", code)
	}
	err = json.Unmarshal(body, &env)
	return env.Data, err
}

var benchClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

func call(ctx context.Context, method, u, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+readScaleToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := benchClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// reader is one closed-loop reader's keep-alive connection. It writes
// each request itself and parses the answer in the same goroutine: the
// generator shares the host's cores with the servers it measures, and
// net/http's client spends about as much CPU per request as the server
// does (two goroutines per connection, handoffs between them). The body
// is drained, not kept or decoded: the status is what a read is judged on.
type reader struct {
	addr string // host:port
	conn net.Conn
	br   *bufio.Reader
	req  []byte
}

func (r *reader) get(path string) (int, error) {
	if r.conn == nil {
		c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		r.conn, r.br = c, bufio.NewReaderSize(c, 32<<10)
	}
	r.req = append(r.req[:0], "GET "...)
	r.req = append(r.req, path...)
	r.req = append(r.req, " HTTP/1.1\r\nHost: "...)
	r.req = append(r.req, r.addr...)
	r.req = append(r.req, "\r\nAuthorization: Bearer "+readScaleToken+"\r\n\r\n"...)
	_ = r.conn.SetDeadline(time.Now().Add(30 * time.Second))
	code, err := r.roundTrip()
	if err != nil {
		r.close()
	}
	return code, err
}

func (r *reader) roundTrip() (int, error) {
	if _, err := r.conn.Write(r.req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.Close {
		r.close()
	}
	return resp.StatusCode, err
}

func (r *reader) close() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

func serversCPU(procs []*serveProc) ([]float64, error) {
	out := make([]float64, len(procs))
	for i, p := range procs {
		c, err := procCPUSeconds(p.cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("server %d CPU: %w", i+1, err)
		}
		out[i] = c
	}
	return out, nil
}

func serversThrottle(procs []*serveProc) (periods, throttled []int64) {
	periods, throttled = make([]int64, len(procs)), make([]int64, len(procs))
	for i, p := range procs {
		if p.cg != nil {
			periods[i], throttled[i] = p.cg.throttle()
		}
	}
	return periods, throttled
}

func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// measureReads drives the read mix at full speed over every server (closed
// loop: each worker sends its next request when the last one is answered),
// times writes on the holder until each standby shows them, and sends a
// write to each standby, which must refuse it.
func measureReads(ctx context.Context, o ReadScaleOptions, procs []*serveProc, targets []regbench.Target) (ReadScaleRow, error) {
	row := ReadScaleRow{Servers: len(procs), PerServer: make([]int, len(procs))}
	holder := procs[0]
	hs, err := status(ctx, holder)
	if err != nil {
		return row, err
	}
	if !hs.Leader {
		return row, errors.New("the first server does not hold the writer lease")
	}

	// Writes: every standby refuses them; it names the holder when it has
	// seen the holder's lease live at its last heartbeat.
	for _, p := range procs[1:] {
		code, body, err := call(ctx, http.MethodPost, p.base+"/api/v1/injections/sync", `{"sites": [{"name": "T3_XX_NotHere", "storage_type": "disk", "status": "ready"}]}`)
		if err != nil {
			return row, err
		}
		var e struct {
			Type    string `json:"errorType"`
			Address string `json:"holder_address"`
		}
		_ = json.Unmarshal(body, &e)
		if code != http.StatusServiceUnavailable || e.Type != "not_writer" {
			return row, fmt.Errorf("a standby answered a write with HTTP %d %s (want 503 not_writer)", code, body)
		}
		row.StandbyWritesRefused++
		if e.Address == hs.Lease.Address {
			row.StandbyRefusalsNamingHolder++
		}
	}

	// Lag sites are new in every run, so a reused database cannot already
	// hold them (a standby would show them at once).
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	rctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	type result struct {
		lat    []time.Duration
		served int
		errs   int
		first  string
	}
	results := make([]result, o.Workers)
	cpu0, err := serversCPU(procs)
	if err != nil {
		return row, err
	}
	periods0, throttled0 := serversThrottle(procs)
	gen0 := selfCPUSeconds()
	var wg sync.WaitGroup
	start := time.Now()
	for w := range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[w]
			p := procs[w%len(procs)]
			rd := &reader{addr: strings.TrimPrefix(p.base, "http://")}
			defer rd.close()
			for i := w; rctx.Err() == nil; i += o.Workers {
				t0 := time.Now()
				code, err := rd.get(targets[i%len(targets)].Path)
				if rctx.Err() != nil {
					return // cut off by the end of the run: not a server's answer
				}
				r.lat = append(r.lat, time.Since(t0))
				r.served++
				if err != nil || code != http.StatusOK {
					r.errs++
					if r.first == "" {
						r.first = fmt.Sprintf("GET %s: HTTP %d %v", targets[i%len(targets)].Path, code, err)
					}
				}
			}
		}()
	}
	// Replication lag while the reads run, beside them: the read figures
	// (throughput, CPU) cover the read window only, never the time a last
	// sample still waits for a standby after the readers stopped.
	var lags []time.Duration
	lagsAfterReads := 0
	lagDone := make(chan error, 1)
	if len(procs) > 1 && o.LagSamples > 0 {
		go func() {
			gap := o.Duration / time.Duration(o.LagSamples+1)
			for s := range o.LagSamples {
				// Due times count from the start, so that a slow sample
				// does not push the later ones out of the window.
				select {
				case <-rctx.Done():
				case <-time.After(time.Until(start.Add(time.Duration(s+1) * gap))):
				}
				if rctx.Err() != nil {
					lagsAfterReads++
				}
				l, err := lagSample(ctx, holder, procs[1:], fmt.Sprintf("T3_XX_Lag%s-%dx%03d", runID, len(procs), s))
				if err != nil {
					lagDone <- err
					return
				}
				lags = append(lags, l...)
			}
			lagDone <- nil
		}()
	} else {
		lagDone <- nil
	}
	wg.Wait()
	elapsed := time.Since(start)
	gen := selfCPUSeconds() - gen0
	cpu1, err := serversCPU(procs)
	if err != nil {
		<-lagDone
		return row, err
	}
	periods1, throttled1 := serversThrottle(procs)
	if err := <-lagDone; err != nil {
		return row, err
	}
	row.ReadSeconds, row.LagSamplesAfterReads = elapsed.Seconds(), lagsAfterReads
	var all []time.Duration
	for w, r := range results {
		all = append(all, r.lat...)
		row.PerServer[w%len(procs)] += r.served
		row.Errors += r.errs
		if row.FirstError == "" {
			row.FirstError = r.first
		}
	}
	row.Requests = len(all)
	row.Throughput = float64(len(all)) / elapsed.Seconds()
	row.P50, row.P99 = quantileMS(all, 0.5), quantileMS(all, 0.99)
	row.LagSamples = len(lags)
	row.LagP50, row.LagP99, row.LagMax = quantileMS(lags, 0.5), quantileMS(lags, 0.99), quantileMS(lags, 1)
	var serverCPU float64
	row.ServerBound = o.CPUQuota > 0
	for i := range procs {
		c := cpu1[i] - cpu0[i]
		serverCPU += c
		row.ServerCPU = append(row.ServerCPU, c)
		row.ServerCores = append(row.ServerCores, c/elapsed.Seconds())
		if o.CPUQuota > 0 {
			f := 0.0
			if n := periods1[i] - periods0[i]; n > 0 {
				f = float64(throttled1[i]-throttled0[i]) / float64(n)
			}
			row.Throttled = append(row.Throttled, f)
			row.ServerBound = row.ServerBound && c/elapsed.Seconds() >= 0.9*o.CPUQuota
		}
	}
	if row.Requests > 0 {
		row.ServerCPUPerRead = serverCPU / float64(row.Requests) * 1e6
		row.GeneratorCPUPerRead = gen / float64(row.Requests) * 1e6
	}
	for _, p := range procs {
		st, err := status(ctx, p)
		if err != nil {
			return row, err
		}
		row.Seqs = append(row.Seqs, st.Seq)
	}
	row.LoadAvg = loadAvg()
	return row, nil
}

// lagSample adds a site through the holder and returns, per standby, the
// time from the holder's answer until the standby serves the site.
func lagSample(ctx context.Context, holder *serveProc, standbys []*serveProc, site string) ([]time.Duration, error) {
	for _, p := range standbys {
		if code, _, err := call(ctx, http.MethodGet, p.base+"/api/v1/sites/"+site, ""); err != nil || code != http.StatusNotFound {
			return nil, fmt.Errorf("standby %s: site %s before the write: HTTP %d %v (want 404)", p.base, site, code, err)
		}
	}
	code, body, err := call(ctx, http.MethodPost, holder.base+"/api/v1/injections/sync",
		fmt.Sprintf(`{"sites": [{"name": %q, "storage_type": "disk", "status": "ready"}]}`, site))
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("write on the holder: HTTP %d %s", code, body)
	}
	written := time.Now()
	out := make([]time.Duration, len(standbys))
	errs := make([]error, len(standbys))
	var wg sync.WaitGroup
	for i, p := range standbys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := written.Add(time.Minute)
			for time.Now().Before(deadline) {
				if code, _, err := call(ctx, http.MethodGet, p.base+"/api/v1/sites/"+site, ""); err == nil && code == http.StatusOK {
					out[i] = time.Since(written)
					return
				}
				time.Sleep(5 * time.Millisecond) // a poll interval, not synchronisation: the figure's resolution
			}
			errs[i] = fmt.Errorf("standby %s did not show %s within a minute of the write", p.base, site)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func quantileMS(l []time.Duration, q float64) float64 {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := min(len(s)-1, int(q*float64(len(s))))
	return float64(s[i].Microseconds()) / 1000
}

// PrintReadScaleTable prints one line per server count.
func PrintReadScaleTable(w io.Writer, rep *ReadScaleReport) {
	fmt.Fprintf(w, "inventory: %d datasets, %d block replicas; heartbeat %s; standby replay interval %s; %d closed-loop readers; host %d cores\n",
		rep.Datasets, rep.BlockReplicas, rep.Heartbeat, rep.ReplayInterval, rep.Workers, rep.HostCores)
	if rep.CPUQuota > 0 {
		fmt.Fprintf(w, "each server capped at %.2f cores (cgroup), GOMAXPROCS %d: per-server capacity, not the host's\n", rep.CPUQuota, rep.ServerProcs)
	} else {
		fmt.Fprintf(w, "no CPU quota: the servers and this generator share the host's cores\n")
	}
	fmt.Fprintf(w, "%-7s %9s %8s %8s %7s %-20s %-16s %9s %9s %-16s %6s %22s %14s %s\n", "servers", "reads/s", "p50_ms", "p99_ms", "errors",
		"reads_per_server", "cores_per_server", "srv_us/rd", "gen_us/rd", "throttled", "bound", "lag_p50/p99/max_ms", "refused(named)", "loadavg")
	for _, r := range rep.Rows {
		per := make([]string, len(r.PerServer))
		for i, n := range r.PerServer {
			per[i] = strconv.Itoa(n)
		}
		cores := make([]string, len(r.ServerCores))
		for i, c := range r.ServerCores {
			cores[i] = strconv.FormatFloat(c, 'f', 2, 64)
		}
		thr := make([]string, len(r.Throttled))
		for i, t := range r.Throttled {
			thr[i] = strconv.FormatFloat(t, 'f', 2, 64)
		}
		if len(thr) == 0 {
			thr = []string{"-"}
		}
		la := strings.Fields(r.LoadAvg)
		if len(la) > 0 {
			la = la[:1]
		}
		lag := "-"
		if r.LagSamples > 0 {
			lag = fmt.Sprintf("%.0f/%.0f/%.0f", r.LagP50, r.LagP99, r.LagMax)
		}
		refused := fmt.Sprintf("%d(%d)", r.StandbyWritesRefused, r.StandbyRefusalsNamingHolder)
		fmt.Fprintf(w, "%-7d %9.0f %8.1f %8.1f %7d %-20s %-16s %9.0f %9.0f %-16s %6t %22s %14s %s\n", r.Servers, r.Throughput, r.P50, r.P99, r.Errors,
			strings.Join(per, "/"), strings.Join(cores, "/"), r.ServerCPUPerRead, r.GeneratorCPUPerRead, strings.Join(thr, "/"),
			r.ServerBound, lag, refused, strings.Join(la, ""))
	}
}
