package srm

import (
	"io"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/gridauth"
)

// seMetrics are the storage element's Prometheus metrics. They live in the
// SE's own registry (served at /metrics on the SRM port) and can be
// registered in a host process's registry too (RegisterMetrics).
type seMetrics struct {
	reg       *prometheus.Registry
	calls     *prometheus.CounterVec // SRM calls by method and status
	data      *prometheus.CounterVec // data-plane requests by method and code
	bytes     *prometheus.CounterVec // data-plane bytes by direction
	refusals  prometheus.Counter     // requests refused with a full queue
	collected []prometheus.Collector
}

func newSEMetrics(s *Server) *seMetrics {
	m := &seMetrics{reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_srm_requests_total",
			Help: "SRM calls by method and SRM return status."}, []string{"method", "status"}),
		data: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_srm_data_requests_total",
			Help: "HTTPS/WebDAV data-plane requests by HTTP method and status code."}, []string{"method", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_srm_data_bytes_total",
			Help: "Data-plane bytes received (in) and sent (out)."}, []string{"direction"}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "dynamo_srm_queue_refusals_total",
			Help: "Asynchronous requests refused because the queue was full."}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dynamo_srm_queue_depth",
		Help: "Asynchronous requests waiting to be picked."}, func() float64 { return float64(s.engine.queued.Load()) })
	recalls := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dynamo_srm_recalls_in_progress",
		Help: "Tape recalls under way, from their start until their outcome is recorded."}, func() float64 { return float64(s.engine.recalls.Load()) })
	m.collected = []prometheus.Collector{m.calls, m.data, m.bytes, m.refusals, queue, recalls, areaCollector{s.ns}}
	m.reg.MustRegister(m.collected...)
	return m
}

// RegisterMetrics registers the SE's metrics in reg (a host process's
// registry), labelled with labels (e.g. se=<name>) so several SEs can share
// it.
func (s *Server) RegisterMetrics(reg prometheus.Registerer, labels prometheus.Labels) error {
	wrapped := prometheus.WrapRegistererWith(labels, reg)
	for _, c := range s.metrics.collected {
		if err := wrapped.Register(c); err != nil {
			return err
		}
	}
	return nil
}

var (
	descUsed = prometheus.NewDesc("dynamo_srm_area_used_bytes", "Bytes of the files in a storage area.", []string{"area"}, nil)
	descFree = prometheus.NewDesc("dynamo_srm_area_free_bytes",
		"Bytes left under a storage area's limit after space reservations and uploads in progress (-1: unlimited).", []string{"area"}, nil)
	descPending = prometheus.NewDesc("dynamo_srm_area_pending_bytes", "Bytes reserved by uploads in progress.", []string{"area"}, nil)
)

// areaCollector reports the areas' accounting at scrape time.
type areaCollector struct{ ns *Namespace }

func (areaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descUsed
	ch <- descFree
	ch <- descPending
}

func (c areaCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.ns.Areas() {
		ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(a.Used()), a.Config.Name)
		ch <- prometheus.MustNewConstMetric(descFree, prometheus.GaugeValue, float64(a.Free()), a.Config.Name)
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(a.Pending()), a.Config.Name)
	}
}

// serveMetrics answers GET /metrics on the SRM port.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// who returns the audit fields of a client identity.
func who(id *gridauth.Identity) logrus.Fields {
	if id == nil {
		return logrus.Fields{"dn": "", "vo": ""}
	}
	f := logrus.Fields{"dn": id.DN, "vo": id.VO}
	if id.VOMSIgnored != nil {
		// Why a presented AC gave no VO: what an operator asks first.
		f["voms_ignored"] = id.VOMSIgnored.Error()
	}
	return f
}

// auditCall logs one SRM call at info level and counts it.
func (s *Server) auditCall(id *gridauth.Identity, op string, req *node, resp any, respBytes int, took time.Duration) {
	status := "FAULT"
	if resp != nil {
		status = returnCode(resp)
	}
	s.metrics.calls.WithLabelValues(op, status).Inc()
	f := who(id)
	f["op"], f["status"], f["bytes"], f["duration_ms"] = op, status, respBytes, took.Milliseconds()
	if req != nil {
		if target, n := callTarget(req); target != "" {
			f["surl"] = target
			if n > 1 {
				f["surls"] = n
			}
		}
		if tok := req.Str("requestToken"); tok != "" {
			f["token"] = tok
		}
	}
	s.log.WithFields(f).Info("srm call")
}

// returnCode is the request-level status of a response struct.
func returnCode(resp any) string {
	v := reflect.Indirect(reflect.ValueOf(resp))
	if v.Kind() != reflect.Struct {
		return ""
	}
	rs := v.FieldByName("ReturnStatus")
	if !rs.IsValid() {
		return ""
	}
	if st, ok := rs.Interface().(TReturnStatus); ok {
		return st.StatusCode
	}
	return ""
}

// callTarget is the first SURL a request names, and how many it names.
func callTarget(req *node) (string, int) {
	for _, one := range []string{"SURL", "fromSURL"} {
		if v := req.Str(one); v != "" {
			return v, 1
		}
	}
	if l := req.Strings("arrayOfSURLs", "urlArray"); len(l) > 0 {
		return l[0], len(l)
	}
	items := req.Child("arrayOfFileRequests").All("requestArray")
	for _, it := range items {
		for _, e := range []string{"sourceSURL", "targetSURL"} {
			if v := it.Str(e); v != "" {
				return v, len(items)
			}
		}
	}
	return "", 0
}

// auditData wraps the data-plane handler: one info line and the metrics per
// request.
func (s *Server) auditData(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		next.ServeHTTP(rec, r)
		s.metrics.data.WithLabelValues(r.Method, strconv.Itoa(rec.code)).Inc()
		s.metrics.bytes.WithLabelValues("in").Add(float64(body.n))
		s.metrics.bytes.WithLabelValues("out").Add(float64(rec.n))
		f := who(identityFrom(r.Context()))
		if f["dn"] == "" && r.Header.Get("Authorization") != "" {
			f["dn"] = "(bearer token)"
		}
		f["op"], f["path"], f["status"] = r.Method, r.URL.Path, rec.code
		f["bytes_in"], f["bytes_out"], f["duration_ms"] = body.n, rec.n, time.Since(start).Milliseconds()
		s.log.WithFields(f).Info("data request")
	})
}

// recorder captures the status code and body size of a response while
// passing flushes through (third-party copy streams perf markers).
type recorder struct {
	http.ResponseWriter
	code  int
	n     int64
	wrote bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(p)
	r.n += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's fast path (sendfile) for GETs.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	r.wrote = true
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
	}
	r.n += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}
