package jsonlines

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the collector metrics every correlator collector exposes,
// told apart by the collector label. Several collectors register the same
// families on one registry, so the names, help texts and label names here
// must stay identical to those of the other collectors (otlplogs has a
// copy); registering an existing family reuses it.
type metrics struct {
	accepted    prometheus.Counter
	rejected    *prometheus.CounterVec // by reason
	errors      *prometheus.CounterVec // by reason
	lastSuccess prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, collector string) (*metrics, error) {
	accepted, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_collector_events_accepted_total",
		Help: "Events a collector handed to the store writer.",
	}, []string{"collector"}))
	if err != nil {
		return nil, err
	}
	rejected, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_collector_events_rejected_total",
		Help: "Events a collector rejected as invalid, by reason.",
	}, []string{"collector", "reason"}))
	if err != nil {
		return nil, err
	}
	errs, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_collector_errors_total",
		Help: "Failed collector operations (requests, reads, writes), by reason.",
	}, []string{"collector", "reason"}))
	if err != nil {
		return nil, err
	}
	last, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "correlator_collector_last_success_timestamp_seconds",
		Help: "Unix time of a collector's last successful delivery or poll.",
	}, []string{"collector"}))
	if err != nil {
		return nil, err
	}
	l := prometheus.Labels{"collector": collector}
	return &metrics{
		accepted:    accepted.With(l),
		rejected:    rejected.MustCurryWith(l),
		errors:      errs.MustCurryWith(l),
		lastSuccess: last.With(l),
	}, nil
}

// register registers c, or returns the identical collector registered
// before it (by another collector of correlator).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
