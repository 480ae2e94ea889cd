package sentry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeSentry replays the documented API responses of testdata/api.
type fakeSentry struct {
	t        *testing.T
	mu       sync.Mutex
	requests []*url.URL
	limited  bool // limited is set once the first events request got its 429
	status   int  // status, when set, answers every request
}

func (f *fakeSentry) reqs() []*url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*url.URL(nil), f.requests...)
}

func (f *fakeSentry) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}

func (f *fakeSentry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.URL)
	f.mu.Unlock()
	if got := r.Header.Get("Authorization"); got != "Bearer sntrys_test_token" {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"detail":"Invalid token"}`))
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		w.Write([]byte(`{"detail":"Internal Error"}`))
		return
	}
	q := r.URL.Query()
	base := "http://" + r.Host + r.URL.Path
	link := func(next string, results bool) {
		res := "false"
		if results {
			res = "true"
		}
		w.Header().Set("Link", `<`+base+`?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", <`+base+`?cursor=`+next+`>; rel="next"; results="`+res+`"; cursor="`+next+`"`)
	}
	switch r.URL.Path {
	case "/api/0/organizations/acme/issues/":
		if q.Get("project") != "5236886" || !q.Has("query") || q.Get("query") != "" || q.Get("start") == "" || q.Get("end") == "" {
			f.t.Errorf("issues query %v", q)
		}
		switch q.Get("cursor") {
		case "":
			link("0:100:0", true)
			w.Write(readFile(f.t, "testdata/api/issues_page1.json"))
		case "0:100:0":
			link("0:200:0", false)
			w.Write(readFile(f.t, "testdata/api/issues_page2.json"))
		default:
			f.t.Errorf("unexpected cursor %q", q.Get("cursor"))
		}
	case "/api/0/organizations/acme/issues/1/events/":
		if q.Get("full") != "true" {
			f.t.Errorf("events without full=true: %v", q)
		}
		f.mu.Lock()
		first := !f.limited
		f.limited = true
		f.mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		link("0:100:0", false)
		w.Write(readFile(f.t, "testdata/api/issue_1_events_full.json"))
	case "/api/0/organizations/acme/issues/2/events/":
		w.Write(readFile(f.t, "testdata/api/issue_2_events.json"))
	default:
		f.t.Errorf("unexpected request %s", r.URL)
		http.NotFound(w, r)
	}
}

func newTestPoller(t *testing.T, token string) (*Poller, *recorder, *fakeSentry, *[]time.Duration) {
	t.Helper()
	fake := &fakeSentry{t: t}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg := testConfig()
	cfg.Projects = []Project{{ID: "5236886", Service: "sentry-web"}}
	cfg.API = APIConfig{URL: srv.URL, Organization: "acme", AuthToken: Secret(token)}
	rec := &recorder{}
	p, err := NewPoller(cfg, rec, nil, prometheus.NewRegistry(), PollerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	p.now = func() time.Time { return testNow }
	p.sleep = func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	return p, rec, fake, &slept
}

func TestPoller(t *testing.T) {
	p, rec, fake, slept := newTestPoller(t, "sntrys_test_token")
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rec.events()
	if len(got) != 2 {
		t.Fatalf("%d events, want 2", len(got))
	}
	full, simple := got[0], got[1]
	if full.ID != deriveID("event", "9999aaaaca8b46d797c23c6077c6ff01") || simple.ID != deriveID("event", "9fac2ceed9344f2bbfdd1fdacb0ed9b1") {
		t.Errorf("ids %s %s are not derived from the event ids", full.ID, simple.ID)
	}
	if full.Type != "ForbiddenError" || full.Service != "sentry-web" || full.TraceID != "da6caabcd90e45fdb81f6655824a5f88" ||
		full.Attributes[AttrIssueID] != "1341191803" || full.Time != time.Date(2020, 6, 17, 22, 26, 56, 98000000, time.UTC) {
		t.Errorf("full event %+v", full)
	}
	// The list example has no entries: its title, level and release come
	// from the title and the tags.
	if simple.Message != "This is an example Python exception" || simple.Level != "fatal" || simple.Environment != "production" ||
		simple.Release != "17642328ead24b51867165985996d04b29310337" || simple.Attributes[AttrServerName] != "web1.example.com" ||
		simple.Attributes[AttrIssueID] != "1889724436" {
		t.Errorf("simple event %+v", simple)
	}
	// 429 with Retry-After: waited what Sentry asked, then retried.
	if len(*slept) != 1 || (*slept)[0] != 7*time.Second {
		t.Errorf("slept %v, want [7s]", *slept)
	}
	var paths []string
	reqs := fake.reqs()
	for _, u := range reqs {
		paths = append(paths, u.Path+"?cursor="+u.Query().Get("cursor"))
	}
	want := []string{
		"/api/0/organizations/acme/issues/?cursor=",
		"/api/0/organizations/acme/issues/1/events/?cursor=",
		"/api/0/organizations/acme/issues/1/events/?cursor=",
		"/api/0/organizations/acme/issues/?cursor=0:100:0",
		"/api/0/organizations/acme/issues/2/events/?cursor=",
	}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
	first := reqs[0].Query()
	if first.Get("start") != "2026-11-20T11:55:00" || first.Get("end") != "2026-11-21T12:00:00" {
		t.Errorf("first window %s .. %s, want backfill 24h plus 5m overlap", first.Get("start"), first.Get("end"))
	}
	if value(t, p.met.accepted) != 2 || value(t, p.met.lastSuccess) != float64(testNow.Unix()) || value(t, p.met.lag) != 0 {
		t.Errorf("metrics: accepted %v, last success %v, lag %v", value(t, p.met.accepted), value(t, p.met.lastSuccess), value(t, p.met.lag))
	}

	// The next poll starts at the cursor, less the overlap; the same
	// events give the same ids, so the store keeps one copy.
	fake.reset()
	p.now = func() time.Time { return testNow.Add(time.Minute) }
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := fake.reqs()[0].Query().Get("start"); s != "2026-11-21T11:55:00" {
		t.Errorf("second poll starts at %s, want the cursor less 5m", s)
	}
	again := rec.events()[2:]
	if len(again) != 2 || again[0].ID != full.ID || again[1].ID != simple.ID {
		t.Errorf("re-pulled events do not keep their ids")
	}
}

func TestPollerBadToken(t *testing.T) {
	p, rec, _, _ := newTestPoller(t, "wrong-token-value")
	err := p.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "check api.auth_token") || !strings.Contains(err.Error(), "Invalid token") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong-token-value") {
		t.Error("the error shows the token")
	}
	if len(rec.events()) != 0 || value(t, p.met.errors.WithLabelValues("poll")) != 1 {
		t.Error("a failed poll must count an error and write nothing")
	}
	if _, ok, _ := p.cursors.LoadCursor(context.Background(), "5236886"); ok {
		t.Error("a failed poll must not advance the cursor")
	}
}

func TestPollerServerErrorRetries(t *testing.T) {
	p, _, fake, slept := newTestPoller(t, "sntrys_test_token")
	fake.status = http.StatusBadGateway
	err := p.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "502 Bad Gateway after 5 attempts") {
		t.Fatalf("err = %v", err)
	}
	if len(fake.reqs()) != maxAttempts || len(*slept) != maxAttempts-1 || (*slept)[0] != time.Second || (*slept)[3] != 8*time.Second {
		t.Errorf("%d requests, slept %v", len(fake.reqs()), *slept)
	}
}

func TestPollerRunStops(t *testing.T) {
	p, rec, _, _ := newTestPoller(t, "sntrys_test_token")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.events()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil on cancel", err)
	}
	if len(rec.events()) < 2 {
		t.Error("Run did not poll at once")
	}
}

func TestNextCursor(t *testing.T) {
	for _, tc := range []struct{ link, want string }{
		{`<https://sentry.io/api/0/organizations/my-org/issues/?cursor=0:25:0>; rel="next"; results="true"; cursor="0:25:0",
      <https://sentry.io/api/0/organizations/my-org/issues/?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1"`, "0:25:0"},
		{`<https://x/?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", <https://x/?cursor=0:100:0>; rel="next"; results="false"; cursor="0:100:0"`, ""},
		{`<https://x/?a=1,2&cursor=9:9:0>; rel="next"; results="true"`, "9:9:0"},
		{`<https://x/>; rel=next; results=true; cursor=1:2:0`, "1:2:0"},
		{``, ""},
		{`garbage`, ""},
	} {
		if got := nextCursor(tc.link); got != tc.want {
			t.Errorf("nextCursor(%q) = %q, want %q", tc.link, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{http.Header{"Retry-After": {"30"}}, 30 * time.Second, true},
		{http.Header{"Retry-After": {testNow.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second, true},
		{http.Header{"X-Sentry-Rate-Limit-Reset": {"1795262410"}}, time.Unix(1795262410, 0).Sub(testNow), true},
		{http.Header{}, 0, false},
	} {
		got, ok := retryAfter(tc.h, testNow)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%v) = %v %v, want %v %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNewPollerNeedsAPI(t *testing.T) {
	cfg := testConfig()
	_, err := NewPoller(cfg, &recorder{}, nil, nil, PollerOptions{})
	if err == nil || !strings.Contains(err.Error(), "sentry.api.organization") || !strings.Contains(err.Error(), "sentry.api.auth_token") {
		t.Errorf("err = %v", err)
	}
}
