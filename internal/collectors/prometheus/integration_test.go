package prometheus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/correlator/correlator/internal/collectors/collectortest"
	"github.com/correlator/correlator/internal/collectors/httpauth"
	"github.com/correlator/correlator/internal/event"
)

// fakeService is the scrape target: a service named checkout whose
// versions v1 and v2 serve 20 requests/s each; v2 fails half of them with
// 500. v1 answers in 50 ms, v2 in 400 ms. It records the counters over
// time so that the test can say what each window should hold.
type fakeService struct {
	reqs    *promclient.CounterVec
	latency *promclient.HistogramVec
	srv     *httptest.Server
	scraped time.Time // scraped is when Prometheus was seen to have the series.

	mu      sync.Mutex // mu guards history.
	history []tick
}

// tick is the cumulative request count of v1 at a moment.
type tick struct {
	at time.Time
	v1 float64
}

func startFakeService(t *testing.T) *fakeService {
	reg := promclient.NewRegistry()
	f := &fakeService{
		reqs: promclient.NewCounterVec(promclient.CounterOpts{Name: "http_requests_total", Help: "Requests."},
			[]string{"code", "version"}),
		latency: promclient.NewHistogramVec(promclient.HistogramOpts{Name: "http_request_duration_seconds", Help: "Latency."},
			[]string{"version"}),
	}
	reg.MustRegister(f.reqs, f.latency, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f.srv = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(f.srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		var v1 float64
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			f.reqs.WithLabelValues("200", "v1").Add(2)
			f.latency.WithLabelValues("v1").Observe(0.05)
			f.latency.WithLabelValues("v1").Observe(0.05)
			f.reqs.WithLabelValues("200", "v2").Inc()
			f.reqs.WithLabelValues("500", "v2").Inc()
			f.latency.WithLabelValues("v2").Observe(0.4)
			f.latency.WithLabelValues("v2").Observe(0.4)
			v1 += 2
			f.mu.Lock()
			f.history = append(f.history, tick{time.Now(), v1})
			f.mu.Unlock()
		}
	}()
	return f
}

// v1At is the cumulative v1 request count at t (0 before the first tick).
func (f *fakeService) v1At(t time.Time) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var v float64
	for _, h := range f.history {
		if h.at.After(t) {
			break
		}
		v = h.v1
	}
	return v
}

// startPrometheus runs the Debian prometheus binary scraping target every
// second and returns its URL.
func startPrometheus(t *testing.T, target string) string {
	bin := collectortest.RequireBinary(t, "prometheus")
	dir := t.TempDir()
	addr := collectortest.FreeAddr(t)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: checkout
    static_configs:
      - targets: [%q]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	collectortest.StartProcess(t, dir, bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	u := "http://" + addr
	collectortest.WaitHTTP(t, u+"/-/ready", 20*time.Second)
	return u
}

// authProxy fronts Prometheus, demands a bearer token (so the test proves
// the collector sends its credentials) and records the query_range
// requests it forwards.
type authProxy struct {
	srv      *httptest.Server
	mu       sync.Mutex // mu guards ranges.
	ranges   []rangeReq
	requests atomic.Int64
}

type rangeReq struct {
	query      string
	start, end time.Time
	step       time.Duration
}

func startAuthProxy(t *testing.T, upstream, token string) *authProxy {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &authProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/query_range") {
			// Read the form without consuming the body the proxy forwards.
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, err := url.ParseQuery(string(body))
			if err != nil {
				t.Errorf("proxy: %v", err)
			}
			for k, v := range r.URL.Query() {
				form[k] = v
			}
			p.mu.Lock()
			p.ranges = append(p.ranges, rangeReq{form.Get("query"), parseTS(t, form.Get("start")), parseTS(t, form.Get("end")), parseStep(t, form.Get("step"))})
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *authProxy) takeRanges() []rangeReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.ranges
	p.ranges = nil
	return r
}

func parseTS(t *testing.T, s string) time.Time {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Errorf("proxy: bad timestamp %q", s)
	}
	return time.Unix(0, int64(f*1e9)).UTC()
}

func parseStep(t *testing.T, s string) time.Duration {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Errorf("proxy: bad step %q", s)
	}
	return time.Duration(f * float64(time.Second))
}

// TestRealPrometheus runs the collector against the Debian Prometheus
// scraping a fake service: backfill, a periodic pull that continues it
// without duplicates, chunking, a bad query and the default queries with
// no kept labels.
func TestRealPrometheus(t *testing.T) {
	fake := startFakeService(t)
	promURL := startPrometheus(t, strings.TrimPrefix(fake.srv.URL, "http://"))
	const token = "integration-token"
	proxy := startAuthProxy(t, promURL, token)

	// Let Prometheus collect a few 5-second windows.
	const step = 5 * time.Second
	waitForSeries(t, promURL, `http_requests_total{job="checkout",code="500"}`, 15*time.Second)
	// Windows that start after Prometheus had the series hold full counts
	// (increase() cannot see what a counter held before its first sample).
	fake.scraped = time.Now()
	time.Sleep(4 * step)

	base := Config{
		URL:         proxy.srv.URL,
		Credentials: httpauth.Credentials{BearerToken: token},
		Step:        Duration(step),
		Backfill:    Duration(time.Minute),
		Delay:       Duration(2 * time.Second),
		Interval:    Duration(time.Second),
		Services:    []Service{{Name: "checkout"}},
	}
	w := newMemWriter(t)
	reg := promclient.NewRegistry()
	c, err := New(base, w, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Backfill.
	if err := c.Pull(ctx); err != nil {
		t.Fatalf("first pull: %v", err)
	}
	first := w.points()
	firstRanges := proxy.takeRanges()
	checkPoints(t, fake, first, step)

	// The periodic pull (Run, every second) continues each series from
	// where the backfill stopped, without writing any point twice.
	lastFirst := byName(first, "checkout", MetricRequests, "v1")
	last := lastFirst[len(lastFirst)-1].Time
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error)
	go func() { runDone <- c.Run(runCtx) }()
	// Two more windows end; their evaluations are pulled Delay (2s) later,
	// by a round that starts within Interval (1s).
	time.Sleep(time.Until(last.Add(3*step + 2*time.Second + 1500*time.Millisecond)))
	stop()
	if err := <-runDone; err != nil {
		t.Fatalf("Run: %v", err)
	}
	all := w.points() // memWriter fails the test on any point written twice
	if len(all) <= len(first) {
		t.Fatalf("Run added no points (%d before, %d after)", len(first), len(all))
	}
	v1 := byName(all, "checkout", MetricRequests, "v1")
	if len(v1) < len(lastFirst)+2 {
		t.Errorf("requests v1: %d points after Run, want at least 2 more than the backfill's %d", len(v1), len(lastFirst))
	}
	for i := 1; i < len(v1); i++ {
		if gap := v1[i].Time.Sub(v1[i-1].Time); gap != step {
			t.Errorf("requests v1: %s then %s: gap %s, want one step (no hole, no overlap between pulls)", v1[i-1].Time, v1[i].Time, gap)
		}
	}
	checkPoints(t, fake, all, step)
	for _, r := range proxy.takeRanges() {
		if !r.start.After(last.Add(step)) {
			t.Errorf("Run asked from %s, at or before the backfill's last window end %s", r.start, last.Add(step))
		}
	}
	if got := testutil.ToFloat64(c.m.accepted); got != float64(len(all)) {
		t.Errorf("accepted metric = %v, want %d", got, len(all))
	}
	if lag := testutil.ToFloat64(c.m.lag); lag <= 0 || lag > 15 {
		t.Errorf("lag = %vs, want a few seconds (delay 2s, step 5s)", lag)
	}

	t.Run("chunked", func(t *testing.T) {
		// The same backfill in requests of at most 3 steps gives the same
		// points as the unchunked one.
		at := c.now()
		cfg := base
		cfg.MaxPointsPerQuery = 3
		w2 := newMemWriter(t)
		c2, err := New(cfg, w2, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c2.now = func() time.Time { return at }
		c3, _ := New(base, newMemWriter(t), nil, nil)
		c3.now = c2.now
		proxy.takeRanges()
		if err := c2.Pull(ctx); err != nil {
			t.Fatal(err)
		}
		ranges := proxy.takeRanges()
		if err := c3.Pull(ctx); err != nil {
			t.Fatal(err)
		}
		perQuery := map[string]int{}
		for _, r := range ranges {
			if n := int(r.end.Sub(r.start)/r.step) + 1; n > 3 {
				t.Errorf("request for %s..%s asks %d points, more than max_points_per_query 3", r.start, r.end, n)
			}
			perQuery[r.query]++
		}
		for q, n := range perQuery {
			if n < 4 { // a 1m backfill of 5s steps is 13 evaluations
				t.Errorf("query was pulled in %d requests, want at least 4: %s", n, q)
			}
		}
		got, want := pointSet(w2.points()), pointSet(c3.w.(*memWriter).points())
		if len(got) == 0 || len(got) != len(want) {
			t.Fatalf("chunked pull wrote %d points, unchunked %d", len(got), len(want))
		}
		for id, v := range want {
			if g, ok := got[id]; !ok || g != v {
				t.Errorf("point %s: chunked %v (present %v), unchunked %v", id, g, ok, v)
			}
		}
	})

	t.Run("bad query", func(t *testing.T) {
		cfg := base
		cfg.Services = []Service{
			{Name: "broken", LabelValue: "checkout", Queries: []Query{{Name: MetricRequests, Expr: `sum(rate(http_requests_total{{{match}}}[{{range}}])`}}},
			{Name: "checkout"},
		}
		w := newMemWriter(t)
		reg := promclient.NewRegistry()
		c, err := New(cfg, w, nil, reg)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Pull(ctx)
		var qe *QueryError
		if !errors.As(err, &qe) {
			t.Fatalf("Pull = %v, want a *QueryError", err)
		}
		if qe.Service != "broken" || qe.Query != MetricRequests || qe.Reason != reasonBadQuery {
			t.Errorf("error names %q/%q reason %q, want broken/requests bad_query", qe.Service, qe.Query, qe.Reason)
		}
		for _, want := range []string{`service "broken" query "requests"`, "bad_data", `job="checkout"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if n := len(byName(w.points(), "checkout", MetricRequests, "")); n == 0 {
			t.Error("the good service's queries wrote nothing after the bad one failed")
		}
		if n := len(byName(w.points(), "broken", MetricErrors, "")); n == 0 {
			t.Error("the bad service's other queries wrote nothing")
		}
		if got := testutil.ToFloat64(c.m.errors.WithLabelValues(reasonBadQuery)); got != 1 {
			t.Errorf("errors{reason=bad_query} = %v, want 1", got)
		}
		if err := c.Check(ctx); err == nil || !strings.Contains(err.Error(), `service "broken" query "requests"`) {
			t.Errorf("Check = %v, want the broken query named", err)
		}
	})

	t.Run("no kept labels", func(t *testing.T) {
		// "sum by (le, )" must be valid PromQL; the points are then
		// per service.
		cfg := base
		cfg.KeepLabels = []string{}
		w := newMemWriter(t)
		c, err := New(cfg, w, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if err := c.Pull(ctx); err != nil {
			t.Fatal(err)
		}
		lat := byName(w.points(), "checkout", MetricLatency, "")
		if len(lat) == 0 {
			t.Fatal("no latency points")
		}
		for _, p := range lat {
			if len(p.Labels) != 0 {
				t.Fatalf("latency point has labels %v, want none", p.Labels)
			}
		}
	})

	if len(firstRanges) == 0 {
		t.Error("the proxy saw no query_range request")
	}
}

func pointSet(pts []event.MetricPoint) map[string]float64 {
	out := map[string]float64{}
	for _, p := range pts {
		out[PointID(p)] = p.Value
	}
	return out
}

// waitForSeries polls an instant query until it returns a series.
func waitForSeries(t *testing.T, promURL, q string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(promURL + "/api/v1/query?query=" + url.QueryEscape(q))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"metric"`) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no series for %s after %s", q, within)
}

// checkPoints asserts what the collector wrote against what the fake
// service did: names, labels, per-window values.
func checkPoints(t *testing.T, fake *fakeService, pts []event.MetricPoint, step time.Duration) {
	t.Helper()
	if len(pts) == 0 {
		t.Fatal("no points")
	}
	names := map[string]bool{}
	for _, p := range pts {
		names[p.Name] = true
		if p.Service != "checkout" {
			t.Fatalf("point of service %q", p.Service)
		}
		if p.Time.Truncate(step) != p.Time || p.Time.Location() != time.UTC {
			t.Fatalf("point time %s is not a UTC multiple of the step", p.Time)
		}
		if _, ok := p.Labels["instance"]; !ok {
			t.Fatalf("%s point without instance label: %v", p.Name, p.Labels)
		}
		for _, l := range []string{"code", "job", "__name__", "le"} {
			if _, ok := p.Labels[l]; ok {
				t.Fatalf("%s point keeps label %q: %v", p.Name, l, p.Labels)
			}
		}
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) || p.Value < 0 {
			t.Fatalf("%s point value %v", p.Name, p.Value)
		}
	}
	for _, n := range []string{MetricRequests, MetricErrors, MetricLatency, MetricMemory, MetricCPU} {
		if !names[n] {
			t.Errorf("no %s points (have %v)", n, names)
		}
	}

	// Full windows: those that start after Prometheus had the series.
	full := fake.scraped
	reqs := map[string]map[time.Time]float64{"v1": {}, "v2": {}}
	errs := map[string]map[time.Time]float64{"v1": {}, "v2": {}}
	for _, v := range []string{"v1", "v2"} {
		for _, p := range byName(pts, "checkout", MetricRequests, v) {
			reqs[v][p.Time] = p.Value
		}
		for _, p := range byName(pts, "checkout", MetricErrors, v) {
			errs[v][p.Time] = p.Value
		}
	}
	var got, want float64
	checked := 0
	for at, v := range reqs["v1"] {
		if at.Before(full) {
			continue
		}
		// The point dated at holds the window (at, at+step].
		exp := fake.v1At(at.Add(step)) - fake.v1At(at)
		if exp == 0 {
			continue // the window is not over yet in the fake's history
		}
		checked++
		got += v
		want += exp
		if math.Abs(v-exp) > 0.3*exp+4 {
			t.Errorf("requests v1 at %s = %.1f, the service counted %.0f in that window", at.Format("15:04:05"), v, exp)
		}
		if e, ok := errs["v1"][at]; !ok || e != 0 {
			t.Errorf("errors v1 at %s = %v (present %v), want an explicit 0", at.Format("15:04:05"), e, ok)
		}
		r2, e2 := reqs["v2"][at], errs["v2"][at]
		if r2 == 0 || math.Abs(e2/r2-0.5) > 0.01 {
			t.Errorf("v2 at %s: %v errors of %v requests, want half", at.Format("15:04:05"), e2, r2)
		}
	}
	if checked < 2 {
		t.Fatalf("only %d full windows to check", checked)
	}
	t.Logf("%d points; requests v1 over %d full windows: %.0f pulled, %.0f counted by the service", len(pts), checked, got, want)
	if math.Abs(got-want) > 0.1*want {
		t.Errorf("requests v1 over %d windows = %.0f, the service counted %.0f", checked, got, want)
	}
	for v, want := range map[string]float64{"v1": 48.75, "v2": 487.5} {
		lat := byName(pts, "checkout", MetricLatency, v)
		if len(lat) == 0 {
			t.Errorf("no latency points for %s", v)
		}
		for _, p := range lat {
			if math.Abs(p.Value-want) > 0.01*want {
				t.Errorf("latency_p95_ms %s at %s = %v, want %v", v, p.Time.Format("15:04:05"), p.Value, want)
			}
		}
	}
	for _, p := range byName(pts, "checkout", MetricMemory, "") {
		if p.Value < 1<<20 {
			t.Errorf("memory_usage_bytes = %v, want the test process' resident size", p.Value)
		}
	}
}
