package prometheus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/correlator/correlator/internal/collectors/httpauth"
	"github.com/correlator/correlator/internal/event"
)

// fakeAPI is a stand-in for Prometheus' HTTP API, for the cases a real
// Prometheus cannot be made to produce on demand: outages, NaN results,
// warnings, exact clocks. Every query_range answers one series whose value
// at each evaluation time is that time in Unix seconds, unless the query
// text asks otherwise ("nan", "warn", "bad", "slow").
type fakeAPI struct {
	srv *httptest.Server

	mu       sync.Mutex // mu guards the fields below.
	fail     int        // fail answers this many requests with 503 first.
	requests []rangeReq
	auth     string // auth, when set, is the Authorization header demanded.
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) takeRequests() []rangeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.auth != "" && r.Header.Get("Authorization") != f.auth {
		f.mu.Unlock()
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if f.fail > 0 {
		f.fail--
		f.mu.Unlock()
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	_ = r.ParseForm()
	q := r.Form.Get("query")
	sec := func(name string) time.Time {
		v, _ := strconv.ParseFloat(r.Form.Get(name), 64)
		return time.Unix(0, int64(v*1e9)).UTC()
	}
	start, end := sec("start"), sec("end")
	stepF, _ := strconv.ParseFloat(r.Form.Get("step"), 64)
	step := time.Duration(stepF * float64(time.Second))
	f.requests = append(f.requests, rangeReq{q, start, end, step})
	f.mu.Unlock()

	if strings.Contains(q, "slow") {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if strings.Contains(q, "bad") {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected end of input"}`)
		return
	}
	var vals []string
	for t := start; !t.After(end); t = t.Add(step) {
		v := strconv.FormatInt(t.Unix(), 10)
		if strings.Contains(q, "nan") {
			v = "NaN"
		}
		vals = append(vals, fmt.Sprintf(`[%d,%q]`, t.Unix(), v))
	}
	warn := ""
	if strings.Contains(q, "warn") {
		warn = `,"warnings":["results may be incomplete"]`
	}
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"x","version":"v1","instance":"i:80"},"values":[%s]}]}%s}`,
		strings.Join(vals, ","), warn)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 21, 10, 10, 30, 0, time.UTC)

// fakeConfig pulls one query of one service from the fake API: step 1m,
// delay 1m, backfill 5m, two points per request.
func fakeConfig(url string, expr string) Config {
	return Config{
		URL: url, Step: Duration(time.Minute), Delay: Duration(time.Minute),
		Backfill: Duration(5 * time.Minute), MaxPointsPerQuery: 2,
		Services: []Service{{Name: "api", Queries: []Query{
			{Name: MetricErrors}, {Name: MetricLatency}, {Name: MetricMemory}, {Name: MetricCPU},
			{Name: MetricRequests, Expr: expr},
		}}},
	}
}

func newFakeCollector(t *testing.T, cfg Config, w Writer, log *slog.Logger) (*Collector, *clock) {
	t.Helper()
	c, err := New(cfg, w, log, promclient.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: t0}
	c.now = clk.now
	return c, clk
}

func minute(hhmm string) time.Time {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		panic(err)
	}
	return time.Date(2026, 11, 21, t.Hour(), t.Minute(), 0, 0, time.UTC)
}

func times(pts []event.MetricPoint) []string {
	var out []string
	for _, p := range pts {
		out = append(out, p.Time.Format("15:04"))
	}
	return out
}

func TestPullChunksAndResumes(t *testing.T) {
	api := newFakeAPI(t)
	w := newMemWriter(t)
	c, clk := newFakeCollector(t, fakeConfig(api.srv.URL, "sum(x)"), w, nil)

	// now 10:10:30, delay 1m: the newest evaluation is 10:09; backfill 5m
	// reaches back to 10:04. Points are dated a step before evaluation.
	if err := c.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := api.takeRequests()
	want := []string{"10:04-10:05", "10:06-10:07", "10:08-10:09"}
	if got := spans(reqs); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("requests %v, want %v (chunks of two points)", got, want)
	}
	pts := w.points()
	if got, want := strings.Join(times(pts), " "), "10:03 10:04 10:05 10:06 10:07 10:08"; got != want {
		t.Errorf("point times %s, want %s", got, want)
	}
	for _, p := range pts {
		// The fake's value is the evaluation time: one step after the date.
		if eval := p.Time.Add(time.Minute).Unix(); p.Value != float64(eval) {
			t.Errorf("point at %s has value %v, want %d (evaluated at the end of its window)", p.Time.Format("15:04"), p.Value, eval)
		}
		if p.Service != "api" || p.Name != MetricRequests || p.Labels["version"] != "v1" || p.Labels["instance"] != "i:80" || len(p.Labels) != 2 {
			t.Errorf("point %+v: want service api, name requests, labels version and instance only", p)
		}
	}

	// Nothing new within the same step.
	clk.add(20 * time.Second)
	if err := c.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	if reqs := api.takeRequests(); len(reqs) != 0 {
		t.Errorf("pull within the same step sent %v", spans(reqs))
	}
	// Two steps later: exactly the two new evaluations.
	clk.add(2 * time.Minute)
	if err := c.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := spans(api.takeRequests()); strings.Join(got, " ") != "10:10-10:11" {
		t.Errorf("requests %v, want [10:10-10:11]", got)
	}
	if got, want := strings.Join(times(w.points()), " "), "10:03 10:04 10:05 10:06 10:07 10:08 10:09 10:10"; got != want {
		t.Errorf("point times %s, want %s", got, want)
	}
	if got := testutil.ToFloat64(c.m.accepted); got != 8 {
		t.Errorf("accepted = %v, want 8", got)
	}
	// Lag: now 10:12:50, newest evaluation 10:11.
	if got := testutil.ToFloat64(c.m.lag); got != 110 {
		t.Errorf("lag = %v, want 110", got)
	}
}

func spans(reqs []rangeReq) []string {
	var out []string
	for _, r := range reqs {
		if r.step != time.Minute {
			out = append(out, "step "+r.step.String())
		}
		out = append(out, r.start.Format("15:04")+"-"+r.end.Format("15:04"))
	}
	return out
}

func TestPullSkipsNonFinite(t *testing.T) {
	api := newFakeAPI(t)
	w := newMemWriter(t)
	c, _ := newFakeCollector(t, fakeConfig(api.srv.URL, "nan"), w, nil)
	if err := c.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(w.points()); n != 0 {
		t.Errorf("wrote %d NaN points", n)
	}
	if got := testutil.ToFloat64(c.m.rejected.WithLabelValues("not_finite")); got != 6 {
		t.Errorf("rejected{not_finite} = %v, want 6", got)
	}
}

func TestWriteFailureKeepsCursor(t *testing.T) {
	api := newFakeAPI(t)
	w := newMemWriter(t)
	w.err = errors.New("store is down")
	c, _ := newFakeCollector(t, fakeConfig(api.srv.URL, "sum(x)"), w, nil)
	err := c.Pull(context.Background())
	var qe *QueryError
	if !errors.As(err, &qe) || qe.Reason != reasonWrite || !strings.Contains(err.Error(), "store is down") {
		t.Fatalf("Pull = %v, want a write error", err)
	}
	// The next pull writes the points that failed: nothing is lost.
	w.err = nil
	if err := c.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(times(w.points()), " "), "10:03 10:04 10:05 10:06 10:07 10:08"; got != want {
		t.Errorf("after the store recovered: point times %s, want %s", got, want)
	}
}

// resumingWriter is a Writer that knows the newest stored point.
type resumingWriter struct {
	*memWriter
	last time.Time
	err  error
}

func (r *resumingWriter) LastMetricTime(_ context.Context, service, name string) (time.Time, error) {
	if service != "api" {
		return time.Time{}, fmt.Errorf("asked for service %q", service)
	}
	if name != MetricRequests {
		return time.Time{}, nil
	}
	return r.last, r.err
}

func TestResume(t *testing.T) {
	tests := []struct {
		name string
		last time.Time
		want string
	}{
		{"stored point inside the backfill", minute("10:06"), "10:07 10:08"},
		{"stored point before the backfill", minute("09:00"), "10:03 10:04 10:05 10:06 10:07 10:08"},
		{"nothing stored", time.Time{}, "10:03 10:04 10:05 10:06 10:07 10:08"},
		{"stored point is the newest", minute("10:08"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t)
			w := &resumingWriter{memWriter: newMemWriter(t), last: tt.last}
			c, _ := newFakeCollector(t, fakeConfig(api.srv.URL, "sum(x)"), w, nil)
			if err := c.Pull(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(times(w.points()), " "); got != tt.want {
				t.Errorf("point times %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("store error is retried", func(t *testing.T) {
		api := newFakeAPI(t)
		w := &resumingWriter{memWriter: newMemWriter(t), last: minute("10:06"), err: errors.New("timeout")}
		c, _ := newFakeCollector(t, fakeConfig(api.srv.URL, "sum(x)"), w, nil)
		if err := c.Pull(context.Background()); err == nil || !strings.Contains(err.Error(), "read last stored point") {
			t.Fatalf("Pull = %v, want the resume error", err)
		}
		w.err = nil
		if err := c.Pull(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(times(w.points()), " "); got != "10:07 10:08" {
			t.Errorf("point times %q, want the resumed 10:07 10:08", got)
		}
	})
}

// logRecords is a slog handler that keeps records.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// find returns the levels of the records with message msg, and the text
// of all their attributes.
func (h *logRecords) find(msg string) (levels []slog.Level, attrs string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, r := range h.recs {
		if r.Message != msg {
			continue
		}
		levels = append(levels, r.Level)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, "%s=%v ", a.Key, a.Value)
			return true
		})
	}
	return levels, b.String()
}

func TestWarningsAndBadQueriesAreLoggedOnce(t *testing.T) {
	api := newFakeAPI(t)
	logs := &logRecords{}
	cfg := fakeConfig(api.srv.URL, "sum(warn)")
	cfg.Services = append(cfg.Services, Service{Name: "web", Queries: []Query{
		{Name: MetricErrors}, {Name: MetricLatency}, {Name: MetricMemory}, {Name: MetricCPU},
		{Name: MetricRequests, Expr: "bad("},
	}})
	c, clk := newFakeCollector(t, cfg, newMemWriter(t), slog.New(logs))
	for range 2 {
		err := c.Pull(context.Background())
		if err == nil || !strings.Contains(err.Error(), `service "web" query "requests": bad_data: 1:4: parse error`) {
			t.Fatalf("Pull = %v, want the bad query named", err)
		}
		clk.add(time.Minute)
	}
	levels, attrs := logs.find("prometheus query warnings")
	// Four requests (three chunks, then one): the first warning at warn
	// level, its repeats at debug.
	if len(levels) != 4 || levels[0] != slog.LevelWarn || levels[1] != slog.LevelDebug || levels[3] != slog.LevelDebug {
		t.Errorf("warning log levels %v, want [WARN DEBUG DEBUG DEBUG]", levels)
	}
	if !strings.Contains(attrs, "results may be incomplete") || !strings.Contains(attrs, "service=api") {
		t.Errorf("warning log attributes %q lack the warning or the service", attrs)
	}
	levels, attrs = logs.find("prometheus query failed")
	if len(levels) != 2 || levels[0] != slog.LevelError || levels[1] != slog.LevelDebug {
		t.Errorf("failure log levels %v, want [ERROR DEBUG]", levels)
	}
	if !strings.Contains(attrs, "promql=bad(") || !strings.Contains(attrs, "reason=bad_query") {
		t.Errorf("failure log attributes %q lack the PromQL or the reason", attrs)
	}
	if got := testutil.ToFloat64(c.m.errors.WithLabelValues(reasonBadQuery)); got != 2 {
		t.Errorf("errors{bad_query} = %v, want 2", got)
	}
}

func TestRunBacksOffWhileUnreachable(t *testing.T) {
	api := newFakeAPI(t)
	api.fail = 3
	api.auth = "Bearer tok"
	w := newMemWriter(t)
	cfg := fakeConfig(api.srv.URL, "sum(x)")
	cfg.Credentials = httpauth.Credentials{BearerToken: "tok"}
	cfg.Interval = Duration(time.Hour) // only the backoff can bring the next pull
	c, _ := newFakeCollector(t, cfg, w, nil)
	c.minBackoff, c.maxBackoff = 5*time.Millisecond, 20*time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(w.points()) < 6 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	if got := strings.Join(times(w.points()), " "); got != "10:03 10:04 10:05 10:06 10:07 10:08" {
		t.Fatalf("after the outage: point times %q, want the whole backfill", got)
	}
	if got := testutil.ToFloat64(c.m.errors.WithLabelValues(reasonUnreachable)); got != 3 {
		t.Errorf("errors{unreachable} = %v, want 3 (one per failed round: a round stops at the first)", got)
	}
	if got := testutil.ToFloat64(c.m.lastSuccess); got != float64(t0.Unix()) {
		t.Errorf("last success = %v, want %d", got, t0.Unix())
	}
	if got := testutil.ToFloat64(c.m.lag); got != 90 {
		t.Errorf("lag = %v, want 90 (now 10:10:30, newest evaluation 10:09)", got)
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	w := newMemWriter(t)
	c, _ := newFakeCollector(t, fakeConfig(url, "sum(x)"), w, nil)
	retry, err := c.pull(context.Background())
	var qe *QueryError
	if !retry || !errors.As(err, &qe) || qe.Reason != reasonUnreachable {
		t.Fatalf("pull = %v, %v; want a retryable unreachable error", retry, err)
	}
	if strings.Count(err.Error(), "query") != 2 { // one error: the round stopped
		t.Errorf("error %q: want only the first query's failure", err)
	}
	// Nothing was pulled: the lag counts from the start of the backfill
	// (its first window, dated 10:03, starts the evaluation at 10:04).
	if got := testutil.ToFloat64(c.m.lag); got != 450 {
		t.Errorf("lag = %v, want 450 (10:03 to now 10:10:30)", got)
	}
}

func TestMetricsRegisterOnce(t *testing.T) {
	reg := promclient.NewRegistry()
	cfg := fakeConfig("http://prometheus:9090", "sum(x)")
	c1, err := New(cfg, newMemWriter(t), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	// A second collector on one registry shares the first one's series
	// (collectorstat registers each collector label once).
	c2, err := New(cfg, newMemWriter(t), nil, reg)
	if err != nil || c2.m.accepted != c1.m.accepted {
		t.Errorf("second New on one registry = %v, shares the series: %v", err, err == nil && c2.m.accepted == c1.m.accepted)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n != 3 { // counter vecs without children are not gathered
		t.Errorf("gathered %d metrics (%v), want accepted and the 2 gauges", n, err)
	}
}

func TestSlowQueryDoesNotStopTheRound(t *testing.T) {
	api := newFakeAPI(t)
	w := newMemWriter(t)
	cfg := fakeConfig(api.srv.URL, "sum(slow)")
	cfg.Timeout = Duration(100 * time.Millisecond)
	cfg.Services = append(cfg.Services, Service{Name: "web", Queries: []Query{
		{Name: MetricErrors}, {Name: MetricLatency}, {Name: MetricMemory}, {Name: MetricCPU},
		{Name: MetricRequests, Expr: "sum(x)"},
	}})
	c, _ := newFakeCollector(t, cfg, w, nil)
	retry, err := c.pull(context.Background())
	var qe *QueryError
	if retry || !errors.As(err, &qe) || qe.Reason != reasonTimeout || qe.Service != "api" {
		t.Fatalf("pull = %v, %v; want a non-retryable timeout of service api", retry, err)
	}
	if n := len(byName(w.points(), "web", MetricRequests, "")); n != 6 {
		t.Errorf("the other service wrote %d points, want its 6", n)
	}
}
