// Package collectorstat gives every collector the same Prometheus metrics
// (events accepted and rejected, errors, last success, lag) under one set
// of names with a "collector" label, so a dashboard or an alert covers all
// collectors at once.
//
// A collector that counts for itself (the Sentry intake) registers the
// same names with the same help through Register; one that does not can be
// wrapped: Handler counts its HTTP answers and Writer counts the records it
// hands on and how old they are.
package collectorstat

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/event"
)

// The metric names and help texts. client_golang refuses two collectors of
// one name with different help, so every collector takes them from here.
const (
	AcceptedName    = "correlator_collector_events_accepted_total"
	AcceptedHelp    = "Events the collector accepted and handed to the writer."
	RejectedName    = "correlator_collector_events_rejected_total"
	RejectedHelp    = "Events (or requests, when the events cannot be counted) the collector rejected, by reason."
	ErrorsName      = "correlator_collector_errors_total"
	ErrorsHelp      = "Failures of the collector itself: source unreachable, writer errors."
	LastSuccessName = "correlator_collector_last_success_timestamp_seconds"
	LastSuccessHelp = "Unix time of the collector's last success (events written, or a poll completed)."
	LagName         = "correlator_collector_lag_seconds"
	LagHelp         = "How far behind the source the collector is: receipt time minus event time for pushes, now minus the cursor for polls."
)

// Metrics are one collector's metrics.
type Metrics struct {
	Accepted    prometheus.Counter
	Rejected    *prometheus.CounterVec // label "reason"
	Errors      *prometheus.CounterVec // label "reason"
	LastSuccess prometheus.Gauge
	Lag         prometheus.Gauge
	now         func() time.Time
}

// Register creates the metrics of collector and registers them in reg
// (nil: not registered). Registering a collector name twice returns the
// metrics registered first, so two entry points may share a name.
func Register(reg prometheus.Registerer, collector string) (*Metrics, error) {
	cl := prometheus.Labels{"collector": collector}
	m := &Metrics{
		Accepted:    prometheus.NewCounter(prometheus.CounterOpts{Name: AcceptedName, Help: AcceptedHelp, ConstLabels: cl}),
		Rejected:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: RejectedName, Help: RejectedHelp, ConstLabels: cl}, []string{"reason"}),
		Errors:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: ErrorsName, Help: ErrorsHelp, ConstLabels: cl}, []string{"reason"}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: LastSuccessName, Help: LastSuccessHelp, ConstLabels: cl}),
		Lag:         prometheus.NewGauge(prometheus.GaugeOpts{Name: LagName, Help: LagHelp, ConstLabels: cl}),
		now:         time.Now,
	}
	if reg == nil {
		return m, nil
	}
	register := func(c prometheus.Collector) (prometheus.Collector, error) {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector, nil
		}
		return c, err
	}
	var err error
	var c prometheus.Collector
	if c, err = register(m.Accepted); err == nil {
		m.Accepted = c.(prometheus.Counter)
	}
	if c, err = register(m.Rejected); err == nil {
		m.Rejected = c.(*prometheus.CounterVec)
	}
	if c, err = register(m.Errors); err == nil {
		m.Errors = c.(*prometheus.CounterVec)
	}
	if c, err = register(m.LastSuccess); err == nil {
		m.LastSuccess = c.(prometheus.Gauge)
	}
	if c, err = register(m.Lag); err == nil {
		m.Lag = c.(prometheus.Gauge)
	}
	if err != nil {
		return nil, errors.Join(errors.New("register metrics of collector "+collector), err)
	}
	return m, nil
}

// Success records a success now.
func (m *Metrics) Success() { m.LastSuccess.Set(float64(m.now().UnixNano()) / 1e9) }

// Handler counts h's answers: a 4xx is a rejection with its status as the
// reason, a 5xx an error, a 2xx a success.
func (m *Metrics) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		switch {
		case sw.status >= 500:
			m.Errors.WithLabelValues(strconv.Itoa(sw.status)).Inc()
		case sw.status >= 400:
			m.Rejected.WithLabelValues(strconv.Itoa(sw.status)).Inc()
		case sw.status < 300:
			m.Success()
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// BatchWriter is where collectors hand their records.
type BatchWriter interface {
	Add(ctx context.Context, b *event.Batch) error
}

// Writer wraps next so that every batch handed on is counted as accepted
// (or as an error when next refuses it), and the lag is the age of its
// newest record.
func (m *Metrics) Writer(next BatchWriter) BatchWriter { return &writer{m: m, next: next} }

type writer struct {
	m    *Metrics
	next BatchWriter
}

func (w *writer) Add(ctx context.Context, b *event.Batch) error {
	if err := w.next.Add(ctx, b); err != nil {
		w.m.Errors.WithLabelValues("write").Inc()
		return err
	}
	w.m.Accepted.Add(float64(b.Len()))
	if t := newest(b); !t.IsZero() {
		w.m.Lag.Set(max(0, w.m.now().Sub(t).Seconds()))
	}
	w.m.Success()
	return nil
}

func newest(b *event.Batch) time.Time {
	var t time.Time
	later := func(x time.Time) {
		if x.After(t) {
			t = x
		}
	}
	for _, c := range b.Changes {
		later(c.Time)
	}
	for _, e := range b.Errors {
		later(e.Time)
	}
	for _, l := range b.Logs {
		later(l.Time)
	}
	for _, p := range b.Metrics {
		later(p.Time)
	}
	return t
}
