// Package event is correlator's vocabulary: the change, error, log, metric and
// service records that collectors produce, the store keeps and the engines
// read. It has no dependencies so that every other package can share it.
package event

import "time"

// Kind names one of the record types accepted by the ingest API. The string
// value is the path segment of POST /api/v1/ingest/{kind} and the base name of
// an import file (changes.ndjson).
type Kind string

// The ingestable kinds.
const (
	KindChanges  Kind = "changes"
	KindErrors   Kind = "errors"
	KindLogs     Kind = "logs"
	KindMetrics  Kind = "metrics"
	KindServices Kind = "services"
)

// Kinds lists every ingestable kind in a stable order.
var Kinds = []Kind{KindChanges, KindErrors, KindLogs, KindMetrics, KindServices}

// ParseKind returns the Kind named by s, or false if s names none.
func ParseKind(s string) (Kind, bool) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}

// ChangeKind classifies a change.
type ChangeKind string

// The change kinds. A rollback is a change whose Version is older than its
// PreviousVersion; the engines treat it as evidence about the change it undid.
const (
	ChangeDeploy   ChangeKind = "deploy"
	ChangeFlag     ChangeKind = "flag"
	ChangeConfig   ChangeKind = "config"
	ChangeRollback ChangeKind = "rollback"
	ChangeInfra    ChangeKind = "infra"
)

// ChangeKinds lists the valid change kinds.
var ChangeKinds = []ChangeKind{ChangeDeploy, ChangeFlag, ChangeConfig, ChangeRollback, ChangeInfra}

// Change is something that was altered in production: a deploy, a feature flag
// flip, a config edit, a rollback or an infrastructure change.
type Change struct {
	ID              string            `json:"id"`
	Time            time.Time         `json:"time"`
	Kind            ChangeKind        `json:"kind"`
	Service         string            `json:"service"`
	Environment     string            `json:"environment,omitempty"`
	Version         string            `json:"version,omitempty"`
	PreviousVersion string            `json:"previous_version,omitempty"`
	Commit          string            `json:"commit,omitempty"`
	Author          string            `json:"author,omitempty"`
	Title           string            `json:"title,omitempty"`
	URL             string            `json:"url,omitempty"`
	Source          string            `json:"source,omitempty"`
	Attributes      map[string]string `json:"attributes,omitempty"`
}

// ErrorEvent is one captured error, as a Sentry SDK would report it.
// SampleRate is the probability with which the event was kept (1 when the
// sender did not sample); impact estimates divide by it.
type ErrorEvent struct {
	ID          string            `json:"id"`
	Time        time.Time         `json:"time"`
	Service     string            `json:"service"`
	Environment string            `json:"environment,omitempty"`
	Release     string            `json:"release,omitempty"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Type        string            `json:"type,omitempty"`
	Message     string            `json:"message,omitempty"`
	UserID      string            `json:"user_id,omitempty"`
	CustomerID  string            `json:"customer_id,omitempty"`
	TraceID     string            `json:"trace_id,omitempty"`
	Level       string            `json:"level,omitempty"`
	SampleRate  float64           `json:"sample_rate"`
	Attributes  map[string]string `json:"attributes,omitempty"`
}

// LogRecord is one structured log line. It maps onto the OpenTelemetry
// Collector ClickHouse exporter's otel_logs columns: UserID and CustomerID
// travel as the log attributes "user.id" and "customer.id".
type LogRecord struct {
	ID         string            `json:"id,omitempty"`
	Time       time.Time         `json:"time"`
	Service    string            `json:"service"`
	Severity   string            `json:"severity,omitempty"`
	Body       string            `json:"body"`
	UserID     string            `json:"user_id,omitempty"`
	CustomerID string            `json:"customer_id,omitempty"`
	TraceID    string            `json:"trace_id,omitempty"`
	SpanID     string            `json:"span_id,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// MetricPoint is one sample of one series. A series is identified by
// (Service, Name, Labels).
type MetricPoint struct {
	Time    time.Time         `json:"time"`
	Service string            `json:"service"`
	Name    string            `json:"name"`
	Value   float64           `json:"value"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Service is one node of the topology: a service and the services it calls.
type Service struct {
	Service   string    `json:"service"`
	DependsOn []string  `json:"depends_on"`
	Time      time.Time `json:"time,omitempty"`
}

// Batch holds decoded records of every kind, in arrival order per kind.
type Batch struct {
	Changes  []Change
	Errors   []ErrorEvent
	Logs     []LogRecord
	Metrics  []MetricPoint
	Services []Service
}

// Len is the number of records in b.
func (b *Batch) Len() int {
	return len(b.Changes) + len(b.Errors) + len(b.Logs) + len(b.Metrics) + len(b.Services)
}

// Append adds the records of o to b.
func (b *Batch) Append(o *Batch) {
	b.Changes = append(b.Changes, o.Changes...)
	b.Errors = append(b.Errors, o.Errors...)
	b.Logs = append(b.Logs, o.Logs...)
	b.Metrics = append(b.Metrics, o.Metrics...)
	b.Services = append(b.Services, o.Services...)
}
