package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/spool"
)

// Metrics are the store's own Prometheus metrics.
type Metrics struct {
	insertRows    *prometheus.CounterVec
	insertErrors  *prometheus.CounterVec
	insertSeconds *prometheus.HistogramVec
	querySeconds  *prometheus.HistogramVec

	// The BatchWriter's queue: the disk spool, or memory for imports.
	spoolBytes, spoolSegments, spoolRecords, spoolOldestAge    prometheus.Gauge
	spoolAppended, spoolWritten, spoolWriteFailures, spoolFull prometheus.Counter
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
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_spool_bytes", Help: "Bytes of the write-ahead spool on disk (records accepted, not yet deleted after their insert).",
		}),
		spoolSegments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_spool_segments", Help: "Segments in the writer's queue (spool files, or in memory for imports).",
		}),
		spoolRecords: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_spool_records", Help: "Records accepted and not yet written to the store.",
		}),
		spoolOldestAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_spool_oldest_segment_age_seconds", Help: "Age of the oldest segment waiting for the store; 0 when none waits. Updated every flush interval.",
		}),
		spoolAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "correlator_spool_records_appended_total", Help: "Records accepted into the writer's queue.",
		}),
		spoolWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "correlator_spool_records_written_total", Help: "Records written to the store and removed from the queue.",
		}),
		spoolWriteFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "correlator_spool_write_failures_total", Help: "Failed attempts to write a queued segment to the store (each is retried).",
		}),
		spoolFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "correlator_spool_full_total", Help: "Appends refused because the spool was at its byte limit (answered 503).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.insertRows, m.insertErrors, m.insertSeconds, m.querySeconds,
			m.spoolBytes, m.spoolSegments, m.spoolRecords, m.spoolOldestAge,
			m.spoolAppended, m.spoolWritten, m.spoolWriteFailures, m.spoolFull)
	}
	return m
}

func (m *Metrics) observeSpool(st spool.Stats) {
	m.spoolBytes.Set(float64(st.Bytes))
	m.spoolSegments.Set(float64(st.Segments))
	m.spoolRecords.Set(float64(st.Records))
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(time.Since(st.Oldest).Seconds(), 0)
	}
	m.spoolOldestAge.Set(age)
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
