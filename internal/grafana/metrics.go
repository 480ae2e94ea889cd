package grafana

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the overlay's own: what it did to Grafana, per object kind
// ("change", "incident"), and when a whole sync last went through.
type metrics struct {
	created     *prometheus.CounterVec
	updated     *prometheus.CounterVec
	failed      *prometheus.CounterVec
	lastSuccess prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_grafana_annotations_created_total",
			Help: "Annotations created in Grafana, by object kind (change, incident).",
		}, []string{"kind"}),
		updated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_grafana_annotations_updated_total",
			Help: "Annotations updated in place in Grafana because their object changed, by object kind.",
		}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_grafana_annotations_failed_total",
			Help: "Annotations Grafana did not take (they are retried at the next sync), by object kind.",
		}, []string{"kind"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_grafana_last_sync_success_timestamp_seconds",
			Help: "Unix time of the last sync that brought every annotation up to date.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.created, m.updated, m.failed, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register grafana metrics: %w", err)
		}
	}
	return m, nil
}
