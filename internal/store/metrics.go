package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the store's own Prometheus metrics.
type Metrics struct {
	insertRows    *prometheus.CounterVec
	insertErrors  *prometheus.CounterVec
	insertSeconds *prometheus.HistogramVec
	querySeconds  *prometheus.HistogramVec
}

// NewMetrics creates the store metrics and registers them with reg (nil
// for none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		insertRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_store_insert_rows_total", Help: "Rows inserted into ClickHouse, by table.",
		}, []string{"table"}),
		insertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_store_insert_errors_total", Help: "Failed ClickHouse inserts, by table.",
		}, []string{"table"}),
		insertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "correlator_store_insert_duration_seconds", Help: "Latency of one ClickHouse insert batch, by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"table"}),
		querySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "correlator_store_query_duration_seconds", Help: "Latency of ClickHouse queries, by query name.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"query"}),
	}
	if reg != nil {
		reg.MustRegister(m.insertRows, m.insertErrors, m.insertSeconds, m.querySeconds)
	}
	return m
}

func (m *Metrics) observeInsert(table string, rows int, d time.Duration, err error) {
	if err != nil {
		m.insertErrors.WithLabelValues(table).Inc()
		return
	}
	m.insertRows.WithLabelValues(table).Add(float64(rows))
	m.insertSeconds.WithLabelValues(table).Observe(d.Seconds())
}

func (m *Metrics) observeQuery(name string, d time.Duration) {
	m.querySeconds.WithLabelValues(name).Observe(d.Seconds())
}
