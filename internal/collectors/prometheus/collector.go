// Package prometheus pulls per-service request, error, latency and
// saturation series from a Prometheus HTTP API into metric points for the
// correlation engine.
//
// # Wiring
//
// Config section "prometheus" (Config). In `correlator serve`, when the
// section is present:
//
//	c, err := prometheus.New(cfg.Prometheus, batchWriter, log.With("component", "prometheus"), registry)
//	// handle err (it lists every config problem, each naming its field)
//	go func() { _ = c.Run(ctx) }() // returns when ctx ends; wait for it before closing the writer
//
// `correlator check-config` can call c.Check(ctx), which runs every query
// once and names each bad one. There is no HTTP route. *store.BatchWriter is
// the Writer.
//
// # What it writes
//
// For every configured service and query, points named after the query
// (requests, errors, latency_p95_ms, memory_usage_bytes, cpu_usage by
// default, see DefaultQueries) with the labels the query's result keeps
// (version, instance, region by default) minus __name__. A point evaluated
// at time T covers the step (T-step, T] and is dated T-step, the start of
// that window: with the default 1m step a point dated 10:00:00 holds the
// requests of the minute 10:00, which is how the engine reads per-minute
// counts (it sums points per minute, so smaller steps add up correctly and
// gauges are averaged).
//
// # Pulling
//
// The first pull reaches Backfill back (or, when the Writer also implements
// Resumer, from the last point stored); query_range requests are chunked so
// that none returns more than MaxPointsPerQuery points per series, under
// Prometheus' 11,000 limit. Every Interval the collector pulls again from
// the step after the last one it wrote, for each query separately, up to
// now minus Delay. A point's identity is (service, name, labels, time) (see
// PointID, and the store's metric_points sort key), and the per-query
// cursor means one process never writes one twice; after a restart the
// overlap is re-written with the same identity and the store collapses it.
//
// # Errors
//
// A query Prometheus rejects (bad PromQL, a failed evaluation) is an error
// naming the service, the query and the expanded PromQL; it is logged
// (again only when the message changes) and counted, and the other queries
// go on; so does a query that times out. Warnings in a response are
// logged. When Prometheus cannot be reached (connection errors, 5xx, other
// non-API statuses such as 401) the round stops and the next one waits with
// exponential backoff from 1s to 5m; the cursors stay, so the gap is pulled
// once Prometheus answers, and the lag gauge shows how far behind the
// collector is.
//
// # Query templates
//
// Queries are PromQL templates with placeholders, each substituted so that
// no service name can change the query's structure:
//
//	{{service}}        the service label's value, escaped; only inside "..."
//	{{service_regex}}  the same, regexp-escaped too, for =~; only inside "..."
//	{{match}}          service_label="value" (escaped); outside strings
//	{{labels}}         the kept labels, comma separated; outside strings
//	{{range}}          the step as a PromQL duration (1m); outside strings
//
// For example, with service_label job, service checkout, the default keep
// labels and step 1m,
//
//	sum by ({{labels}}) (increase(http_requests_total{{{match}},code=~"5.."}[{{range}}]))
//
// becomes
//
//	sum by (version, instance, region) (increase(http_requests_total{job="checkout",code=~"5.."}[1m]))
//
// An unknown placeholder, or one in the wrong place, is a config error.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/correlator/correlator/internal/event"
)

// Writer receives the pulled points; *store.BatchWriter implements it. Add
// must either queue all of the batch or return an error; the collector does
// not advance past points whose Add failed and pulls them again.
type Writer interface {
	Add(ctx context.Context, b *event.Batch) error
}

// Resumer is optionally implemented by the Writer: LastMetricTime returns
// the time of the newest stored point of the service's metric (zero if
// none), so that a restarted collector resumes where it stopped instead of
// re-pulling its whole backfill. It is asked once per query, at the first
// pull.
type Resumer interface {
	LastMetricTime(ctx context.Context, service, name string) (time.Time, error)
}

// Collector pulls the configured queries. Run and Pull must not be called
// concurrently.
type Collector struct {
	cfg     Config
	step    time.Duration
	api     v1.API
	w       Writer
	log     *slog.Logger
	m       *metrics
	queries []*query

	// now, minBackoff and maxBackoff are fixed by New; tests change them.
	now                    func() time.Time
	minBackoff, maxBackoff time.Duration
}

// query is one service's query and where its pulling stands.
type query struct {
	service string
	name    string
	expr    string // expanded PromQL
	// cursor is the evaluation time of the newest point written (the end
	// of its window); zero before the first successful pull.
	cursor   time.Time
	resumed  bool   // resumed reports that the Resumer was asked.
	lastErr  string // lastErr is the last error logged, to log repeats at debug level.
	lastWarn string // lastWarn is the same for warnings.
}

// QueryError is the error of one service's query, naming both and the
// PromQL that was sent.
type QueryError struct {
	Service, Query, Expr string
	// Reason classifies the error, as in the errors metric: bad_query
	// (Prometheus rejected the PromQL), execution (its evaluation failed),
	// timeout (it took longer than Timeout), unreachable (no connection, or
	// a 5xx), http_status (another non-API status such as 401 or 404),
	// bad_response, write (the Writer failed) or resume (the Resumer
	// failed).
	Reason string
	Err    error
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("service %q query %q: %v (promql: %s)", e.Service, e.Query, e.Err, e.Expr)
}

func (e *QueryError) Unwrap() error { return e.Err }

// retryable reports whether the error means Prometheus could not answer
// any query (as opposed to failing this one: a wrong or slow query), which
// ends the round and backs off.
func (e *QueryError) retryable() bool {
	switch e.Reason {
	case reasonUnreachable, reasonHTTPStatus, reasonBadResponse:
		return true
	}
	return false
}

// Error reasons, the "reason" label of the errors metric.
const (
	reasonBadQuery    = "bad_query"
	reasonExecution   = "execution"
	reasonTimeout     = "timeout"
	reasonUnreachable = "unreachable"
	reasonHTTPStatus  = "http_status"
	reasonBadResponse = "bad_response"
	reasonWrite       = "write"
	reasonResume      = "resume"
)

// New validates cfg and returns a collector writing to w. It registers the
// collector's metrics with reg (nil: not registered).
func New(cfg Config, w Writer, log *slog.Logger, reg promclient.Registerer) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("prometheus collector: nil writer")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	client, err := api.NewClient(api.Config{
		Address:      cfg.URL,
		RoundTripper: cfg.Credentials.RoundTripper(api.DefaultRoundTripper),
	})
	if err != nil {
		return nil, fmt.Errorf("create prometheus client: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &Collector{
		cfg: cfg, step: time.Duration(cfg.Step), api: v1.NewAPI(client), w: w, log: log, m: m,
		now: time.Now, minBackoff: time.Second, maxBackoff: 5 * time.Minute,
	}
	for _, s := range cfg.Services {
		vars := templateVars{
			service: s.LabelValue, label: s.ServiceLabel, labels: cfg.KeepLabels, rng: cfg.Step.String(),
		}
		if vars.service == "" {
			vars.service = s.Name
		}
		if vars.label == "" {
			vars.label = cfg.ServiceLabel
		}
		for _, q := range cfg.queriesFor(s) {
			expr, err := expand(q.Expr, vars)
			if err != nil { // Validate checked every template.
				return nil, fmt.Errorf("service %q query %q: %w", s.Name, q.Name, err)
			}
			c.queries = append(c.queries, &query{service: s.Name, name: q.Name, expr: expr})
		}
	}
	return c, nil
}

// Queries returns the expanded PromQL of every service's queries, keyed
// "service/name", for check-config output and tests.
func (c *Collector) Queries() map[string]string {
	out := make(map[string]string, len(c.queries))
	for _, q := range c.queries {
		out[q.service+"/"+q.name] = q.expr
	}
	return out
}

// Run pulls every Interval until ctx ends, then returns nil. It never gives
// up on errors: they are logged and counted, and when Prometheus is
// unreachable the next pull backs off.
func (c *Collector) Run(ctx context.Context) error {
	c.log.Info("prometheus collector started", "url", c.cfg.URL, "services", len(c.cfg.Services),
		"queries", len(c.queries), "step", c.cfg.Step.String(), "interval", c.cfg.Interval.String())
	var backoff time.Duration
	for {
		retry, err := c.pull(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := time.Duration(c.cfg.Interval)
		if retry {
			backoff = min(max(2*backoff, c.minBackoff), c.maxBackoff)
			// Jitter keeps several replicas from retrying in step.
			wait = backoff/2 + rand.N(backoff/2+1)
			c.log.Warn("prometheus unreachable, retrying", "retry_in", wait.Round(time.Millisecond).String(), "err", err)
		} else {
			backoff = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Pull runs one round: every query from where it stopped (or Backfill ago)
// up to now minus Delay. It returns the errors of the round joined, each a
// *QueryError.
func (c *Collector) Pull(ctx context.Context) error {
	_, err := c.pull(ctx)
	return err
}

// pull runs one round and reports whether it stopped because Prometheus
// could not answer.
func (c *Collector) pull(ctx context.Context) (retry bool, err error) {
	now := c.now()
	end := now.Add(-time.Duration(c.cfg.Delay)).Truncate(c.step)
	var errs []error
	for _, q := range c.queries {
		if ctx.Err() != nil {
			break
		}
		qerr := c.pullQuery(ctx, q, end)
		if qerr == nil {
			q.lastErr = ""
			continue
		}
		if ctx.Err() != nil {
			break // shutting down: not an error of the query
		}
		errs = append(errs, qerr)
		c.m.errors.WithLabelValues(qerr.Reason).Inc()
		if qerr.retryable() {
			// Run reports it once per retry; the other queries would fail
			// the same way.
			c.log.Debug("prometheus query failed", "service", q.service, "query", q.name, "reason", qerr.Reason, "err", qerr.Err)
			retry = true
			break
		}
		// A bad query fails every round until the config changes: log it
		// at error level once, then at debug level while it repeats.
		lvl := slog.LevelError
		if msg := qerr.Error(); msg == q.lastErr {
			lvl = slog.LevelDebug
		} else {
			q.lastErr = msg
		}
		c.log.Log(ctx, lvl, "prometheus query failed", "service", q.service, "query", q.name,
			"reason", qerr.Reason, "err", qerr.Err, "promql", q.expr)
	}
	c.updateLag(now, end)
	return retry, errors.Join(errs...)
}

// updateLag sets the lag gauge: how far the most-behind query's newest
// pulled point is behind now (a query not yet pulled counts from the start
// of its backfill).
func (c *Collector) updateLag(now, end time.Time) {
	oldest := time.Time{}
	for _, q := range c.queries {
		t := q.cursor
		if t.IsZero() {
			t = end.Add(-time.Duration(c.cfg.Backfill)).Add(-c.step) // as pullQuery starts it
		}
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	if !oldest.IsZero() {
		c.m.lag.Set(max(0, now.Sub(oldest).Seconds()))
	}
}

// pullQuery pulls q from after its cursor up to end, chunk by chunk,
// advancing the cursor after each chunk is written.
func (c *Collector) pullQuery(ctx context.Context, q *query, end time.Time) *QueryError {
	if q.cursor.IsZero() {
		from := end.Add(-time.Duration(c.cfg.Backfill)).Add(-c.step)
		if err := c.resume(ctx, q, &from); err != nil {
			return err
		}
		q.cursor = from
	}
	maxSpan := time.Duration(c.cfg.MaxPointsPerQuery-1) * c.step
	for start := q.cursor.Add(c.step); !start.After(end); start = q.cursor.Add(c.step) {
		chunkEnd := start.Add(maxSpan)
		if chunkEnd.After(end) {
			chunkEnd = end
		}
		pts, err := c.queryRange(ctx, q, start, chunkEnd)
		if err != nil {
			return err
		}
		if len(pts.Metrics) > 0 {
			if err := c.w.Add(ctx, pts); err != nil {
				return c.queryError(q, reasonWrite, fmt.Errorf("write points: %w", err))
			}
			c.m.accepted.Add(float64(len(pts.Metrics)))
		}
		q.cursor = chunkEnd
		c.m.lastSuccess.Set(float64(c.now().UnixNano()) / 1e9)
	}
	return nil
}

// resume moves a fresh cursor up to the newest stored point when the
// writer can tell it. The stored time is the start of the point's window,
// so its evaluation time is one step later.
func (c *Collector) resume(ctx context.Context, q *query, cursor *time.Time) *QueryError {
	r, ok := c.w.(Resumer)
	if !ok || q.resumed {
		return nil
	}
	last, err := r.LastMetricTime(ctx, q.service, q.name)
	if err != nil {
		return c.queryError(q, reasonResume, fmt.Errorf("read last stored point: %w", err))
	}
	q.resumed = true
	if eval := last.Add(c.step).Truncate(c.step); !last.IsZero() && eval.After(*cursor) {
		*cursor = eval
	}
	return nil
}

func (c *Collector) queryError(q *query, reason string, err error) *QueryError {
	return &QueryError{Service: q.service, Query: q.name, Expr: q.expr, Reason: reason, Err: err}
}

// queryRange runs one query_range request and converts its matrix.
func (c *Collector) queryRange(ctx context.Context, q *query, start, end time.Time) (*event.Batch, *QueryError) {
	rctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.Timeout))
	defer cancel()
	val, warns, _, err := c.api.QueryRange(rctx, q.expr, v1.Range{Start: start, End: end, Step: c.step},
		v1.WithTimeout(time.Duration(c.cfg.Timeout)))
	if len(warns) > 0 {
		lvl := slog.LevelWarn
		if w := fmt.Sprint(warns); w == q.lastWarn {
			lvl = slog.LevelDebug
		} else {
			q.lastWarn = w
		}
		c.log.Log(ctx, lvl, "prometheus query warnings", "service", q.service, "query", q.name, "warnings", []string(warns))
	}
	if err != nil {
		return nil, c.queryError(q, classify(err), err)
	}
	mat, ok := val.(model.Matrix)
	if !ok {
		return nil, c.queryError(q, reasonBadResponse, fmt.Errorf("query_range returned a %s, want a matrix", val.Type()))
	}
	return c.points(q, mat), nil
}

// classify maps a client error to a reason label.
func classify(err error) string {
	var apiErr *v1.Error
	if !errors.As(err, &apiErr) {
		if errors.Is(err, context.DeadlineExceeded) {
			return reasonTimeout // our per-request timeout
		}
		return reasonUnreachable // connection errors
	}
	switch apiErr.Type {
	case v1.ErrBadData:
		return reasonBadQuery
	case v1.ErrExec:
		return reasonExecution
	case v1.ErrTimeout, v1.ErrCanceled:
		return reasonTimeout
	case v1.ErrServer:
		return reasonUnreachable
	case v1.ErrClient:
		return reasonHTTPStatus
	}
	return reasonBadResponse
}

// points converts a query_range matrix into points dated at the start of
// each evaluation window. Samples that are not finite (histogram_quantile
// of a window without requests gives NaN) and native histogram samples are
// skipped and counted as rejected.
func (c *Collector) points(q *query, mat model.Matrix) *event.Batch {
	b := &event.Batch{}
	for _, ss := range mat {
		labels := make(map[string]string, len(ss.Metric))
		for k, v := range ss.Metric {
			if k != model.MetricNameLabel {
				labels[string(k)] = string(v)
			}
		}
		if len(labels) == 0 {
			labels = nil
		}
		if n := len(ss.Histograms); n > 0 {
			c.m.rejected.WithLabelValues("histogram").Add(float64(n))
		}
		for _, sp := range ss.Values {
			v := float64(sp.Value)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				c.m.rejected.WithLabelValues("not_finite").Inc()
				continue
			}
			b.Metrics = append(b.Metrics, event.MetricPoint{
				Time:    sp.Timestamp.Time().Add(-c.step).UTC(),
				Service: q.service,
				Name:    q.name,
				Value:   v,
				Labels:  labels, // shared by the series' points; nobody mutates them
			})
		}
	}
	return b
}

// Check runs every query once as an instant query at now minus Delay and
// returns the problems joined, each a *QueryError naming the service and
// query. It stops at the first error that means Prometheus cannot answer.
func (c *Collector) Check(ctx context.Context) error {
	at := c.now().Add(-time.Duration(c.cfg.Delay))
	var errs []error
	for _, q := range c.queries {
		rctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.Timeout))
		_, _, _, err := c.api.Query(rctx, q.expr, at)
		cancel()
		if err == nil {
			continue
		}
		qe := c.queryError(q, classify(err), err)
		errs = append(errs, qe)
		if qe.retryable() {
			break
		}
	}
	return errors.Join(errs...)
}
