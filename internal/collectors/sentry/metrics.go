package sentry

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/collectors/collectorstat"
)

// Collector label values, one per entry point, so that the three can be
// registered side by side.
const (
	CollectorIntake  = "sentry"
	CollectorWebhook = "sentry_webhook"
	CollectorAPI     = "sentry_api"
)

// Reasons for rejected events (the "reason" label).
const (
	reasonUnauthorized   = "unauthorized"         // 401: no key or signature
	reasonForbidden      = "forbidden"            // 403: wrong key or signature
	reasonUnknownProject = "unknown_project"      // project not configured
	reasonMalformed      = "malformed"            // 400: a field or the envelope is invalid
	reasonNoService      = "no_service"           // the service cannot be told
	reasonTooLarge       = "too_large"            // 413
	reasonEncoding       = "unsupported_encoding" // 415
	reasonWriteFailed    = "write_failed"         // the writer refused the batch
)

// metrics are the collector metrics every correlator collector exposes,
// with a constant "collector" label.
type metrics struct {
	accepted    prometheus.Counter
	rejected    *prometheus.CounterVec
	errors      *prometheus.CounterVec // by reason
	lastSuccess prometheus.Gauge
	lag         prometheus.Gauge
	ignored     *prometheus.CounterVec // only the intake and the webhook register it
}

func newMetrics(reg prometheus.Registerer, collector string, withIgnored bool) (*metrics, error) {
	cl := prometheus.Labels{"collector": collector}
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: collectorstat.AcceptedName, ConstLabels: cl,
			Help: collectorstat.AcceptedHelp,
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: collectorstat.RejectedName, ConstLabels: cl,
			Help: collectorstat.RejectedHelp,
		}, []string{"reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: collectorstat.ErrorsName, ConstLabels: cl,
			Help: collectorstat.ErrorsHelp,
		}, []string{"reason"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: collectorstat.LastSuccessName, ConstLabels: cl,
			Help: collectorstat.LastSuccessHelp,
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: collectorstat.LagName, ConstLabels: cl,
			Help: collectorstat.LagHelp,
		}),
	}
	cs := []prometheus.Collector{m.accepted, m.rejected, m.errors, m.lastSuccess, m.lag}
	if withIgnored {
		m.ignored = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_collector_sentry_items_ignored_total", ConstLabels: cl,
			Help: "Sentry envelope items and webhook resources accepted but not stored (transactions, sessions, client reports, attachments, ...), by type.",
		}, []string{"type"})
		cs = append(cs, m.ignored)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("register sentry collector metrics"), err)
		}
	}
	return m, nil
}

func (m *metrics) success(now time.Time) {
	m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
}
