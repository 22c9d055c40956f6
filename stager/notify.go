package stager

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// notify calls the in-process callback and the owner's subscriber, then
// starts the webhook delivery.
func (s *Stager) notify(ctx context.Context, q *req, res Result) {
	s.mu.Lock()
	cb := s.cbs[q.ID]
	if res.State.Final() {
		delete(s.cbs, q.ID)
	}
	var sub Callback
	if res.Owner != "" {
		sub = s.subs[res.Owner]
	}
	s.mu.Unlock()
	if cb != nil {
		cb(res)
	}
	if sub != nil {
		sub(res)
	}
	if q.Webhook != "" { // immutable after Submit
		s.deliverAsync(ctx, q, res)
	}
}

// deliverAsync POSTs res to q's webhook, retrying with the poll backoff,
// then records the delivery (at least once: a crash before the record
// makes the next Run deliver again).
func (s *Stager) deliverAsync(ctx context.Context, q *req, res Result) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		body, _ := json.Marshal(res) // plain struct
		var delay time.Duration
		var err error
		for attempt := 0; attempt <= s.cfg.Webhook.Retries; attempt++ {
			if attempt > 0 {
				delay = nextDelay(delay, 0, s.cfg.BackoffStart, s.cfg.BackoffCap)
				select {
				case <-ctx.Done():
					return // owed: the next Run delivers
				case <-time.After(delay):
				}
			}
			if err = s.post(ctx, q.Webhook, body); err == nil {
				break
			}
		}
		if err != nil {
			s.log.WithError(err).WithField("request", q.ID).WithField("webhook", q.Webhook).Warn("webhook not delivered; giving up")
		}
		s.mu.Lock()
		q.Notified = 1
		s.prune(q)
		s.mu.Unlock()
		if _, err := s.d.ExecContext(context.WithoutCancel(ctx), "UPDATE stager_requests SET notified = 1 WHERE id = ?", q.ID); err != nil {
			s.log.WithError(err).WithField("request", q.ID).Error("recording webhook delivery")
		}
	}()
}

func (s *Stager) post(ctx context.Context, url string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Webhook.Timeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	if s.cfg.Webhook.Secret != "" {
		m := hmac.New(sha256.New, []byte(s.cfg.Webhook.Secret))
		m.Write(body)
		r.Header.Set("X-Dynamo-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	resp, err := s.webhooks.Do(r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// Metrics are the stager's Prometheus collectors. A nil *Metrics records
// nothing.
type Metrics struct {
	submittedC *prometheus.CounterVec
	finishedC  *prometheus.CounterVec
	pollsC     prometheus.Counter
	errorsC    prometheus.Counter
	activeG    prometheus.Gauge
}

// NewMetrics registers the stager's collectors on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		submittedC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_stager_requests_submitted_total",
			Help: "Stager requests accepted, by kind."}, []string{"kind"}),
		finishedC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_stager_requests_finished_total",
			Help: "Stager requests reaching a final state, by kind and state."}, []string{"kind", "state"}),
		pollsC: prometheus.NewCounter(prometheus.CounterOpts{Name: "dynamo_stager_srm_calls_total",
			Help: "SRM submissions, status polls and synchronous calls made by the stager."}),
		errorsC: prometheus.NewCounter(prometheus.CounterOpts{Name: "dynamo_stager_srm_errors_total",
			Help: "SRM calls that failed in transport and are retried."}),
		activeG: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dynamo_stager_requests_active",
			Help: "Requests the stager tracks (in progress, pinned, or with a release or webhook pending)."}),
	}
	for _, c := range []prometheus.Collector{m.submittedC, m.finishedC, m.pollsC, m.errorsC, m.activeG} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("stager metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) submitted(k Kind) {
	if m != nil {
		m.submittedC.WithLabelValues(string(k)).Inc()
	}
}

func (m *Metrics) finished(k Kind, st State) {
	if m != nil {
		m.finishedC.WithLabelValues(string(k), string(st)).Inc()
	}
}

func (m *Metrics) poll() {
	if m != nil {
		m.pollsC.Inc()
	}
}

func (m *Metrics) srmError() {
	if m != nil {
		m.errorsC.Inc()
	}
}

func (m *Metrics) setActive(n int) {
	if m != nil {
		m.activeG.Set(float64(n))
	}
}
