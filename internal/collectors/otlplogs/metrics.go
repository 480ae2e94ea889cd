package otlplogs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/collectors/collectorstat"
)

// metrics are the collector metrics every correlator collector exposes,
// told apart by the collector label. Several collectors register the same
// families on one registry, so the names, help texts and label names here
// must stay identical to those of the other collectors (jsonlines has a
// copy); registering an existing family reuses it.
type metrics struct {
	accepted    prometheus.Counter
	rejected    *prometheus.CounterVec // by reason
	errors      *prometheus.CounterVec // by reason
	lastSuccess prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, collector string) (*metrics, error) {
	m, err := collectorstat.Register(reg, collector)
	if err != nil {
		return nil, err
	}
	return &metrics{accepted: m.Accepted, rejected: m.Rejected, errors: m.Errors, lastSuccess: m.LastSuccess}, nil
}
