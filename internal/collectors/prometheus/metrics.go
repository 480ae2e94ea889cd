package prometheus

import (
	"errors"
	"fmt"

	promclient "github.com/prometheus/client_golang/prometheus"
)

// collectorName is the "collector" label of the collector metrics.
const collectorName = "prometheus"

// metrics are the collector's own metrics. The names and help texts are
// shared by every correlator collector (they differ only in the collector
// label), so that they can be registered side by side in one registry.
type metrics struct {
	accepted    promclient.Counter
	rejected    *promclient.CounterVec // by reason
	errors      *promclient.CounterVec // by reason
	lastSuccess promclient.Gauge
	lag         promclient.Gauge
}

func newMetrics(reg promclient.Registerer) (*metrics, error) {
	l := promclient.Labels{"collector": collectorName}
	m := &metrics{
		accepted: promclient.NewCounter(promclient.CounterOpts{
			Name: "correlator_collector_events_accepted_total", ConstLabels: l,
			Help: "Records a collector handed to the store.",
		}),
		rejected: promclient.NewCounterVec(promclient.CounterOpts{
			Name: "correlator_collector_events_rejected_total", ConstLabels: l,
			Help: "Records a collector received but did not keep, by reason.",
		}, []string{"reason"}),
		errors: promclient.NewCounterVec(promclient.CounterOpts{
			Name: "correlator_collector_errors_total", ConstLabels: l,
			Help: "Failed collector operations (pulls, deliveries, writes), by reason.",
		}, []string{"reason"}),
		lastSuccess: promclient.NewGauge(promclient.GaugeOpts{
			Name: "correlator_collector_last_success_timestamp_seconds", ConstLabels: l,
			Help: "Unix time of a collector's last successful pull or delivery.",
		}),
		lag: promclient.NewGauge(promclient.GaugeOpts{
			Name: "correlator_collector_lag_seconds", ConstLabels: l,
			Help: "How far behind now the newest data a collector has pulled is.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []promclient.Collector{m.accepted, m.rejected, m.errors, m.lastSuccess, m.lag} {
		if err := reg.Register(c); err != nil {
			var are promclient.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register collector metrics: a %s collector is already registered: %w", collectorName, err)
			}
			return nil, fmt.Errorf("register collector metrics: %w", err)
		}
	}
	return m, nil
}
