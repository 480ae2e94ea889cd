package alertmanager

import (
	"errors"
	"fmt"

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
	l := promclient.Labels{"collector": collectorName}
	m := &metrics{
		accepted: promclient.NewCounter(promclient.CounterOpts{
			Name: collectorstat.AcceptedName, ConstLabels: l,
			Help: collectorstat.AcceptedHelp,
		}),
		rejected: promclient.NewCounterVec(promclient.CounterOpts{
			Name: collectorstat.RejectedName, ConstLabels: l,
			Help: collectorstat.RejectedHelp,
		}, []string{"reason"}),
		errors: promclient.NewCounterVec(promclient.CounterOpts{
			Name: collectorstat.ErrorsName, ConstLabels: l,
			Help: collectorstat.ErrorsHelp,
		}, []string{"reason"}),
		lastSuccess: promclient.NewGauge(promclient.GaugeOpts{
			Name: collectorstat.LastSuccessName, ConstLabels: l,
			Help: collectorstat.LastSuccessHelp,
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []promclient.Collector{m.accepted, m.rejected, m.errors, m.lastSuccess} {
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
