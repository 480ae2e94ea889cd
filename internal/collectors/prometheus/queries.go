package prometheus

// The metric names the correlation engine reads (internal/correlate): a
// request count and a failed-request count per minute, the p95 latency in
// milliseconds, and saturation gauges whose steady climb points at a change.
const (
	MetricRequests = "requests"
	MetricErrors   = "errors"
	MetricLatency  = "latency_p95_ms"
	MetricMemory   = "memory_usage_bytes"
	MetricCPU      = "cpu_usage"
)

// DefaultQueries are the queries used for a service unless the config
// overrides them by name. They cover the common instrumentation libraries:
//
//   - requests: http_requests_total (client_golang's promhttp, most
//     exporters) or http_server_requests_seconds_count (Micrometer, Spring
//     Boot), as the increase over the step;
//   - errors: the same counters restricted to 5xx responses, with the status
//     in a "code" (promhttp) or "status" (Micrometer, many others) label.
//     The last branches give 0 for every series that serves requests but has
//     no 5xx series yet, so a healthy version reports 0 errors rather than
//     nothing: the canary comparison needs the zero;
//   - latency_p95_ms: histogram_quantile(0.95, ...) over
//     http_request_duration_seconds_bucket or
//     http_server_requests_seconds_bucket, in milliseconds;
//   - memory_usage_bytes and cpu_usage: process_resident_memory_bytes
//     (averaged over the step) and the rate of process_cpu_seconds_total
//     (cores), which every client_golang and Micrometer process exports.
//
// "a or b" keeps b's series only where a has none with the same labels, so a
// service instrumented one way is not counted twice. Every query sums by the
// kept labels ({{labels}}), so the points keep version, instance and region
// (the canary comparison reads per-version series) and drop the rest
// (status codes, paths), and the engine's per-minute sums stay right.
var DefaultQueries = []Query{
	{Name: MetricRequests, Expr: `sum by ({{labels}}) (increase(http_requests_total{{{match}}}[{{range}}]))
or sum by ({{labels}}) (increase(http_server_requests_seconds_count{{{match}}}[{{range}}]))`},
	{Name: MetricErrors, Expr: `sum by ({{labels}}) (increase(http_requests_total{{{match}},code=~"5.."}[{{range}}]))
or sum by ({{labels}}) (increase(http_requests_total{{{match}},status=~"5.."}[{{range}}]))
or sum by ({{labels}}) (increase(http_server_requests_seconds_count{{{match}},status=~"5.."}[{{range}}]))
or 0 * sum by ({{labels}}) (increase(http_requests_total{{{match}}}[{{range}}]))
or 0 * sum by ({{labels}}) (increase(http_server_requests_seconds_count{{{match}}}[{{range}}]))`},
	{Name: MetricLatency, Expr: `1000 * histogram_quantile(0.95, sum by (le, {{labels}}) (rate(http_request_duration_seconds_bucket{{{match}}}[{{range}}])))
or 1000 * histogram_quantile(0.95, sum by (le, {{labels}}) (rate(http_server_requests_seconds_bucket{{{match}}}[{{range}}])))`},
	{Name: MetricMemory, Expr: `sum by ({{labels}}) (avg_over_time(process_resident_memory_bytes{{{match}}}[{{range}}]))`},
	{Name: MetricCPU, Expr: `sum by ({{labels}}) (rate(process_cpu_seconds_total{{{match}}}[{{range}}]))`},
}

// DefaultKeepLabels are the labels the default queries keep: the ones the
// engine's canary comparison reads a series' version from.
var DefaultKeepLabels = []string{"version", "instance", "region"}
