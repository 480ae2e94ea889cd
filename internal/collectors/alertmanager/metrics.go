package alertmanager

import (
	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/collectors/collectorstat"
)

// collectorName is the "collector" label of the collector metrics.
const collectorName = "alertmanager"

// metrics are the receiver's own metrics (no lag: it is pushed to). The names and help texts are
// shared by every correlator collector (they differ only in the collector
// label), so that they can be registered side by side in one registry.
type metrics struct {
	accepted    promclient.Counter
	rejected    *promclient.CounterVec // by reason
	errors      *promclient.CounterVec // by reason
	lastSuccess promclient.Gauge
}

func newMetrics(reg promclient.Registerer) (*metrics, error) {
	m, err := collectorstat.Register(reg, collectorName)
	if err != nil {
		return nil, err
	}
	return &metrics{accepted: m.Accepted, rejected: m.Rejected, errors: m.Errors, lastSuccess: m.LastSuccess}, nil
}
