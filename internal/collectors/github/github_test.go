package github

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/event"
)

type recorder struct {
	mu      sync.Mutex
	changes []event.Change
}

func (r *recorder) Add(_ context.Context, b *event.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, b.Changes...)
	return nil
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testConfig = Config{
	Secret:       "It's a Secret to Everybody",
	Token:        "ghp_test_token",
	Repositories: map[string]Repository{"octocat/example": {Service: "example", Environment: "production"}},
}

func deliver(h http.Handler, event string, body []byte, secret string) (int, changes.Reply) {
	req := httptest.NewRequest(http.MethodPost, "/collect/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", "sha256="+changes.SignHMACSHA256(secret, body))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var rep changes.Reply
	_ = json.Unmarshal(rec.Body.Bytes(), &rep)
	return rec.Code, rep
}

func TestSignatureExample(t *testing.T) {
	// GitHub's documented example: secret "It's a Secret to Everybody",
	// payload "Hello, World!".
	const want = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := changes.SignHMACSHA256("It's a Secret to Everybody", []byte("Hello, World!")); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	if !changes.ValidHMACSHA256("It's a Secret to Everybody", []byte("Hello, World!"), want) {
		t.Error("the documented signature does not verify")
	}
}

func TestWebhookDeploymentStatus(t *testing.T) {
	w := &recorder{}
	h, err := NewWebhook(testConfig, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := testdata(t, "deployment_status.json")
	code, rep := deliver(h, "deployment_status", body, string(testConfig.Secret))
	if code != http.StatusOK || rep.Changes != 1 {
		t.Fatalf("%d %+v", code, rep)
	}
	c := w.changes[0]
	want := event.Change{
		Time: time.Date(2012, 7, 20, 2, 5, 0, 0, time.UTC), Kind: event.ChangeDeploy, Service: "example", Environment: "production",
		Version: "v1.4.2", Commit: "b3a5c1e0f9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4", Author: "octocat", Title: "Deploy v1.4.2",
		URL: "https://example.com/deployment/2/output", Source: "github",
		Attributes: map[string]string{"github.repository": "octocat/example", "github.deployment_id": "2",
			"status": "succeeded", "github.deployment_created_at": "2012-07-20T02:00:00Z"},
	}
	want.ID = changes.IdentityID(&want)
	if g, w := fmt.Sprintf("%+v", c), fmt.Sprintf("%+v", want); g != w {
		t.Errorf("got  %s\nwant %s", g, w)
	}

	// Signatures.
	if code, _ := deliver(h, "deployment_status", body, ""); code != http.StatusUnauthorized {
		t.Errorf("unsigned: %d", code)
	}
	if code, _ := deliver(h, "deployment_status", body, "another secret"); code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", code)
	}
	tampered := bytes.Replace(body, []byte("v1.4.2"), []byte("v6.6.6"), 1)
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(tampered))
	req.Header.Set("X-GitHub-Event", "deployment_status")
	req.Header.Set("X-Hub-Signature-256", "sha256="+changes.SignHMACSHA256(string(testConfig.Secret), body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("tampered body: %d", rec.Code)
	}
	if len(w.changes) != 1 {
		t.Errorf("%d changes recorded from bad deliveries", len(w.changes)-1)
	}

	// Other events and states.
	if code, rep := deliver(h, "ping", []byte(`{"zen":"Keep it logically awesome."}`), string(testConfig.Secret)); code != http.StatusOK || rep.Status != "pong" {
		t.Errorf("ping: %d %+v", code, rep)
	}
	if code, _ := deliver(h, "push", []byte(`{}`), string(testConfig.Secret)); code != http.StatusAccepted {
		t.Errorf("push: %d", code)
	}
	pending := bytes.Replace(body, []byte(`"state": "success"`), []byte(`"state": "in_progress"`), 1)
	if code, rep := deliver(h, "deployment_status", pending, string(testConfig.Secret)); code != http.StatusAccepted || !strings.Contains(rep.Reason, "in_progress") {
		t.Errorf("in_progress: %d %+v", code, rep)
	}
	failed := bytes.Replace(body, []byte(`"state": "success"`), []byte(`"state": "failure"`), 1)
	if code, _ := deliver(h, "deployment_status", failed, string(testConfig.Secret)); code != http.StatusOK {
		t.Errorf("failure: %d", code)
	}
	if f := w.changes[len(w.changes)-1]; f.Attributes["status"] != "failed" || !strings.HasPrefix(f.Title, "Failed: Deploy v1.4.2") || f.ID != c.ID {
		t.Errorf("failure recorded as %+v", f)
	}
	staging := bytes.ReplaceAll(body, []byte(`"environment": "production"`), []byte(`"environment": "staging"`))
	if code, _ := deliver(h, "deployment_status", staging, string(testConfig.Secret)); code != http.StatusAccepted {
		t.Errorf("another environment: %d", code)
	}
	other := bytes.ReplaceAll(body, []byte(`octocat/example`), []byte(`octocat/other`))
	if code, _ := deliver(h, "deployment_status", other, string(testConfig.Secret)); code != http.StatusAccepted {
		t.Errorf("unknown repository, ignored: %d", code)
	}
	cfg := testConfig
	cfg.UnknownRepositories = "reject"
	strict, _ := NewWebhook(cfg, w, nil)
	if code, _ := deliver(strict, "deployment_status", other, string(testConfig.Secret)); code != http.StatusUnprocessableEntity {
		t.Errorf("unknown repository, rejected: %d", code)
	}
}

func TestWebhookRelease(t *testing.T) {
	w := &recorder{}
	h, _ := NewWebhook(testConfig, w, nil)
	body := testdata(t, "release.json")
	if code, rep := deliver(h, "release", body, string(testConfig.Secret)); code != http.StatusAccepted || !strings.Contains(rep.Reason, "releases are not deploys") {
		t.Errorf("release by default: %d %+v", code, rep)
	}
	cfg := testConfig
	cfg.Releases = "deploy"
	h, _ = NewWebhook(cfg, w, nil)
	if code, _ := deliver(h, "release", body, string(testConfig.Secret)); code != http.StatusOK {
		t.Fatalf("release as deploy: %d", code)
	}
	c := w.changes[0]
	if c.Version != "v1.0.0" || c.Commit != "" || c.Environment != "production" || c.Author != "octocat" ||
		c.URL != "https://github.com/octocat/example/releases/v1.0.0" || !c.Time.Equal(time.Date(2013, 2, 27, 19, 35, 32, 0, time.UTC)) {
		t.Errorf("got %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := NewWebhook(Config{Version: "tag", Repositories: map[string]Repository{"nope": {}}}, nil, nil)
	for _, want := range []string{`github.version: "tag"`, `"nope" is not owner/name`, "github.repositories.nope.service: missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if _, err := NewWebhook(Config{}, nil, nil); err == nil || !strings.Contains(err.Error(), "github.secret") {
		t.Errorf("no secret: %v", err)
	}
	if _, err := NewPoller(Config{Repositories: testConfig.Repositories}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "github.token") {
		t.Errorf("no token: %v", err)
	}
}

func TestVersionRule(t *testing.T) {
	d := deployment{SHA: "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d", Ref: "main"}
	for _, tc := range []struct{ rule, ref, want string }{
		{"auto", "main", d.SHA}, {"auto", "v1.2.3", "v1.2.3"}, {"auto", "refs/tags/2.0", "2.0"}, {"auto", "version-2", d.SHA},
		{"ref", "main", "main"}, {"sha", "v1.2.3", d.SHA},
	} {
		c := settings{Config{Version: tc.rule}}
		d.Ref = tc.ref
		if got := c.version(d); got != tc.want {
			t.Errorf("%s of ref %s: %s, want %s", tc.rule, tc.ref, got, tc.want)
		}
	}
}

// fakeGitHub replays the recorded responses, with a spent rate limit on
// the first deployments request, a secondary rate limit on the first
// statuses request, and a Link header to a second and a third page.
type fakeGitHub struct {
	t        *testing.T
	srv      *httptest.Server
	clock    *fakeClock
	mu       sync.Mutex
	requests []string
	limited  map[string]bool
}

type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func newFakeGitHub(t *testing.T, clock *fakeClock) *fakeGitHub {
	f := &fakeGitHub{t: t, clock: clock, limited: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.RequestURI())
	first := !f.limited[r.URL.Path]
	f.limited[r.URL.Path] = true
	f.mu.Unlock()
	if got := r.Header.Get("Authorization"); got != "Bearer ghp_test_token" {
		f.t.Errorf("Authorization %q", got)
	}
	if r.Header.Get("X-GitHub-Api-Version") == "" || r.Header.Get("Accept") != "application/vnd.github+json" {
		f.t.Error("missing API version or Accept header")
	}
	reset := f.clock.Now().Add(30 * time.Second).Unix()
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Reset", fmt.Sprint(reset))
	w.Header().Set("X-RateLimit-Remaining", "4999")
	base := "/repos/octocat/example"
	switch {
	case r.URL.Path == base+"/deployments" && first:
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`)
	case r.URL.Path == base+"/deployments/2/statuses" && first:
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"message":"You have exceeded a secondary rate limit."}`)
	case r.URL.Path == base+"/deployments" && r.URL.Query().Get("page") == "":
		w.Header().Set("Link", fmt.Sprintf(`<%s%s/deployments?per_page=100&page=2>; rel="next", <%s%s/deployments?per_page=100&page=3>; rel="last"`, f.srv.URL, base, f.srv.URL, base))
		_, _ = w.Write(testdata(f.t, "deployments-page1.json"))
	case r.URL.Path == base+"/deployments" && r.URL.Query().Get("page") == "2":
		w.Header().Set("Link", fmt.Sprintf(`<%s%s/deployments?per_page=100&page=3>; rel="next"`, f.srv.URL, base))
		_, _ = w.Write(testdata(f.t, "deployments-page2.json"))
	case r.URL.Path == base+"/deployments/2/statuses":
		_, _ = w.Write(testdata(f.t, "statuses-2.json"))
	case r.URL.Path == base+"/deployments/1/statuses":
		_, _ = w.Write(testdata(f.t, "statuses-1.json"))
	default:
		f.t.Errorf("unexpected request %s", r.URL.RequestURI())
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestPollerBackfillsLikeTheWebhook(t *testing.T) {
	clock := &fakeClock{now: time.Date(2012, 7, 20, 3, 0, 0, 0, time.UTC)}
	gh := newFakeGitHub(t, clock)
	cfg := testConfig
	cfg.APIURL = gh.srv.URL
	w := &recorder{}
	p, err := NewPoller(cfg, w, gh.srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.now, p.sleep = clock.Now, clock.Sleep
	since := time.Date(2012, 7, 20, 0, 0, 0, 0, time.UTC)
	n, err := p.Poll(context.Background(), since)
	if err != nil || n != 2 {
		t.Fatalf("poll: %d changes, %v", n, err)
	}
	// Oldest first: the documented example (ref topic-branch, so its
	// version is its sha), then v1.4.2.
	if w.changes[0].Version != "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d" || w.changes[1].Version != "v1.4.2" {
		t.Errorf("versions %s, %s", w.changes[0].Version, w.changes[1].Version)
	}
	first := w.changes[0]
	if !first.Time.Equal(time.Date(2012, 7, 20, 1, 19, 13, 0, time.UTC)) || first.Author != "octocat" || first.Title != "Deploy request from hubot" ||
		first.URL != "https://example.com/deployment/1/output" || first.Environment != "production" {
		t.Errorf("documented example recorded as %+v", first)
	}

	// The same change and id as the webhook's delivery of deployment 2.
	hw := &recorder{}
	h, _ := NewWebhook(testConfig, hw, nil)
	deliver(h, "deployment_status", testdata(t, "deployment_status.json"), string(testConfig.Secret))
	if got, want := fmt.Sprintf("%+v", w.changes[1]), fmt.Sprintf("%+v", hw.changes[0]); got != want {
		t.Errorf("poller and webhook differ:\npoller  %s\nwebhook %s", got, want)
	}

	// Rate limits were waited out: 30 s to the reset (plus a second), then
	// the 3 s of Retry-After.
	if len(clock.slept) != 2 || clock.slept[0] != 31*time.Second || clock.slept[1] != 3*time.Second {
		t.Errorf("slept %v, want [31s 3s]", clock.slept)
	}
	// Page 2's deployment is older than the slack: page 3 is never read,
	// nor the statuses of the staging deployment.
	for _, r := range gh.requests {
		if strings.Contains(r, "page=3") || strings.Contains(r, "/deployments/5/") || strings.Contains(r, "/deployments/3/") {
			t.Errorf("requested %s", r)
		}
	}

	// A second poll reads the list again but no statuses, and records nothing.
	before := len(gh.requests)
	if n, err := p.Poll(context.Background(), since); err != nil || n != 0 {
		t.Errorf("second poll: %d, %v", n, err)
	}
	if got := gh.requests[before:]; len(got) != 2 {
		t.Errorf("second poll requested %v, want the two pages of deployments", got)
	}
}

func TestPollerRefusesNextPageOnAnotherHost(t *testing.T) {
	p := &Poller{base: mustURL("https://api.github.com"), log: testLogger()}
	if got := p.nextLink(`<https://evil.example.com/repos/a/b/deployments?page=2>; rel="next"`); got != "" {
		t.Errorf("followed %s", got)
	}
	if got := p.nextLink(`<https://api.github.com/repos/a/b/deployments?page=2>; rel="next", <https://api.github.com/x?page=9>; rel="last"`); got != "https://api.github.com/repos/a/b/deployments?page=2" {
		t.Errorf("next %q", got)
	}
}

func TestPollerForbiddenIsFinal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Remaining", "4000")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"Resource not accessible by personal access token"}`)
	}))
	defer srv.Close()
	cfg := testConfig
	cfg.APIURL = srv.URL
	p, _ := NewPoller(cfg, &recorder{}, srv.Client(), nil)
	clock := &fakeClock{now: time.Now()}
	p.sleep = clock.Sleep
	_, err := p.Poll(context.Background(), time.Now().Add(-time.Hour))
	if err == nil || !strings.Contains(err.Error(), "Resource not accessible") || strings.Contains(err.Error(), "ghp_test_token") {
		t.Errorf("error %v", err)
	}
	if len(clock.slept) != 0 {
		t.Errorf("retried a final error: slept %v", clock.slept)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestPollerRun(t *testing.T) {
	clock := &fakeClock{now: time.Date(2012, 7, 20, 3, 0, 0, 0, time.UTC)}
	gh := newFakeGitHub(t, clock)
	cfg := testConfig
	cfg.APIURL = gh.srv.URL
	cfg.Backfill = config.Duration(4 * time.Hour)
	w := &recorder{}
	p, _ := NewPoller(cfg, w, gh.srv.Client(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	polls := 0
	p.now = clock.Now
	p.sleep = func(ctx context.Context, d time.Duration) error {
		if d == time.Duration(DefaultPollInterval) {
			polls++
			if polls == 2 {
				cancel()
			}
		}
		return clock.Sleep(ctx, d)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if polls != 2 || len(w.changes) != 2 {
		t.Errorf("%d polls, %d changes; want 2 and 2 (the backfill's, once)", polls, len(w.changes))
	}
}
