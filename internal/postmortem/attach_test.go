package postmortem_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/correlator/correlator/internal/postmortem"
	"github.com/correlator/correlator/internal/secret"
)

// webhook is a receiver that fails its first failures requests (with
// status), then answers 201 with a URL.
type webhook struct {
	mu         sync.Mutex
	failures   int
	status     int
	calls      int
	last       *http.Request
	body       []byte
	deliveries []string // the X-Correlator-Delivery of each call
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	w.deliveries = append(w.deliveries, r.Header.Get(postmortem.DeliveryHeader))
	w.body, _ = io.ReadAll(r.Body)
	w.last = r
	if w.calls <= w.failures {
		rw.WriteHeader(w.status)
		return
	}
	rw.WriteHeader(http.StatusCreated)
	io.WriteString(rw, `{"url":"https://docs.example/postmortems/42"}`)
}

func newAttacher(t *testing.T, cfg postmortem.AttachConfig) *postmortem.Attacher {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b := postmortem.NewBuilder(fakeIncident(), postmortem.Options{Now: func() time.Time { return ft0.Add(2 * time.Hour) }})
	a := postmortem.NewAttacher(b, cfg, nil, nil)
	postmortem.SetSleep(a, func(context.Context, time.Duration) error { return nil })
	return a
}

func TestAttachRetriesThenDelivers(t *testing.T) {
	wh := &webhook{failures: 2, status: http.StatusBadGateway}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	dir := t.TempDir()
	a := newAttacher(t, postmortem.AttachConfig{Dir: dir, WebhookURL: secret.Secret(srv.URL), WebhookSecret: "s3cret", Attempts: 4,
		WebhookHeaders: map[string]secret.Secret{"Authorization": "Bearer tok"}})
	loc, err := a.OnResolve(context.Background(), "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	if wh.calls != 3 || loc != "https://docs.example/postmortems/42" {
		t.Errorf("%d calls, location %q; want 3 and the receiver's URL", wh.calls, loc)
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(wh.body)
	if got := wh.last.Header.Get("X-Correlator-Signature-256"); got != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		t.Errorf("signature %q does not sign the body", got)
	}
	if wh.last.Header.Get("Authorization") != "Bearer tok" {
		t.Error("configured header not sent")
	}
	// The same idempotency key on every attempt: the incident and the
	// body's hash.
	sum := sha256.Sum256(wh.body)
	want := "inc-1." + hex.EncodeToString(sum[:])[:16]
	for i, d := range wh.deliveries {
		if d != want {
			t.Errorf("attempt %d: %s %q, want %q", i+1, postmortem.DeliveryHeader, d, want)
		}
	}
	var p postmortem.Payload
	if err := json.Unmarshal(wh.body, &p); err != nil || p.IncidentID != "inc-1" || !strings.Contains(p.Markdown, "# Post-mortem") ||
		!strings.Contains(p.HTML, "<svg") || p.Bundle == nil || p.Bundle.Incident.ID != "inc-1" {
		t.Errorf("payload: %v, %+v", err, p)
	}
	for _, f := range []string{"index.md", "index.json", "index.html", "chart-error-rate.svg", "chart-error-rate.png"} {
		if _, err := os.Stat(filepath.Join(dir, "inc-1", f)); err != nil {
			t.Errorf("bundle file %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "inc-1", "webhook-payload.pending.json")); !os.IsNotExist(err) {
		t.Errorf("delivered payload still pending: %v", err)
	}
}

func TestAttachWebhookDownKeepsEverything(t *testing.T) {
	wh := &webhook{failures: 1 << 30, status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	dir := t.TempDir()
	a := newAttacher(t, postmortem.AttachConfig{Dir: dir, WebhookURL: secret.Secret(srv.URL + "/hook?token=secret-in-url"), Attempts: 3})
	loc, err := a.OnResolve(context.Background(), "inc-1")
	if err == nil || !strings.Contains(err.Error(), "503") || strings.Contains(err.Error(), "secret-in-url") {
		t.Fatalf("err = %v, want the status and not the URL's token", err)
	}
	if wh.calls != 3 {
		t.Errorf("%d attempts, want 3", wh.calls)
	}
	if want := filepath.Join(dir, "inc-1", "index.html"); loc != want {
		t.Errorf("location %q, want the written %s", loc, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "inc-1", "webhook-payload.pending.json")); err != nil {
		t.Fatalf("payload not kept: %v", err)
	}
	// The receiver comes back: a retry delivers the kept payload.
	wh.mu.Lock()
	wh.failures = 0
	wh.mu.Unlock()
	left, err := a.RetryPending(context.Background())
	if err != nil || left != 0 {
		t.Fatalf("retry: %d left, %v", left, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inc-1", "webhook-payload.pending.json")); !os.IsNotExist(err) {
		t.Errorf("payload still pending after delivery: %v", err)
	}
	// The retry from disk is the same delivery: same key as the first
	// attempts, so that a receiver that did get one can drop the other.
	for i, d := range wh.deliveries {
		if d != wh.deliveries[0] || !strings.HasPrefix(d, "inc-1.") {
			t.Errorf("call %d: delivery %q, want %q on every call", i+1, d, wh.deliveries[0])
		}
	}
}

// A payload the receiver refuses for good (401) is tried once, then set
// aside: not retried by RetryPending, not counted as pending.
func TestAttachRejectionIsNotRetried(t *testing.T) {
	for _, withDir := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "directory"}[withDir], func(t *testing.T) {
			wh := &webhook{failures: 1 << 30, status: http.StatusUnauthorized}
			srv := httptest.NewServer(wh)
			defer srv.Close()
			cfg := postmortem.AttachConfig{WebhookURL: secret.Secret(srv.URL), Attempts: 5}
			if withDir {
				cfg.Dir = t.TempDir()
			}
			a := newAttacher(t, cfg)
			if _, err := a.OnResolve(context.Background(), "inc-1"); err == nil || !strings.Contains(err.Error(), "401") ||
				!strings.Contains(err.Error(), "not retried") {
				t.Fatalf("err = %v, want 401, not retried", err)
			}
			if wh.calls != 1 {
				t.Errorf("%d calls, want 1: a 401 does not heal by retrying", wh.calls)
			}
			for range 2 {
				if left, err := a.RetryPending(context.Background()); err != nil || left != 0 || wh.calls != 1 {
					t.Errorf("retry: %d left, %v, %d calls; want the refused payload left alone", left, err, wh.calls)
				}
			}
			if withDir {
				if _, err := os.Stat(filepath.Join(cfg.Dir, "inc-1", "webhook-payload.failed.json")); err != nil {
					t.Errorf("refused payload not set aside: %v", err)
				}
			}
		})
	}
}

// A payload kept after a temporary failure, then refused for good by the
// receiver on a retry, is set aside once: later passes neither post it
// nor report it.
func TestRetryPendingSetsAsideRefused(t *testing.T) {
	wh := &webhook{failures: 1 << 30, status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	dir := t.TempDir()
	a := newAttacher(t, postmortem.AttachConfig{Dir: dir, WebhookURL: secret.Secret(srv.URL), Attempts: 1})
	if _, err := a.OnResolve(context.Background(), "inc-1"); err == nil {
		t.Fatal("a 503 must be an error")
	}
	wh.mu.Lock()
	wh.status = http.StatusBadRequest
	wh.mu.Unlock()
	for pass := range 3 {
		left, err := a.RetryPending(context.Background())
		if left != 0 || err != nil || wh.calls != 2 {
			t.Errorf("pass %d: %d left, %v, %d calls; want 0, nil, 2 (one retry, then set aside)", pass, left, err, wh.calls)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "inc-1", "webhook-payload.failed.json")); err != nil {
		t.Errorf("refused payload not set aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inc-1", "webhook-payload.pending.json")); !os.IsNotExist(err) {
		t.Errorf("refused payload still pending: %v", err)
	}
}

// One bad file among the kept payloads does not stop the others: an
// unreadable one is skipped and counted, a corrupt one set aside, and the
// good one delivered.
func TestRetryPendingSurvivesBadFiles(t *testing.T) {
	wh := &webhook{}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	dir := t.TempDir()
	a := newAttacher(t, postmortem.AttachConfig{Dir: dir, WebhookURL: secret.Secret(srv.URL), Attempts: 1})
	good, _ := json.Marshal(postmortem.Payload{IncidentID: "inc-good", Title: "t"})
	files := map[string][]byte{"a-corrupt": []byte("{not json"), "b-unreadable": nil, "c-inc-good": good}
	for name, body := range files {
		p := filepath.Join(dir, name, "webhook-payload.pending.json")
		if name == "c-inc-good" {
			p = filepath.Join(dir, "inc-good", "webhook-payload.pending.json")
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if body == nil {
			// A directory where the file should be: reading fails, as
			// root too.
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	left, err := a.RetryPending(context.Background())
	if left != 1 || err == nil || !strings.Contains(err.Error(), "read pending payload") {
		t.Errorf("%d left, %v; want 1 (the unreadable) and its error", left, err)
	}
	if wh.calls != 1 || len(wh.deliveries) != 1 || !strings.HasPrefix(wh.deliveries[0], "inc-good.") {
		t.Errorf("%d calls %q, want the good payload delivered", wh.calls, wh.deliveries)
	}
	if _, err := os.Stat(filepath.Join(dir, "inc-good", "webhook-payload.pending.json")); !os.IsNotExist(err) {
		t.Errorf("delivered payload still pending: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a-corrupt", "webhook-payload.failed.json")); err != nil {
		t.Errorf("corrupt payload not set aside: %v", err)
	}
	// Next pass: only the unreadable one is left, and nothing is posted.
	if left, _ := a.RetryPending(context.Background()); left != 1 || wh.calls != 1 {
		t.Errorf("second pass: %d left, %d calls; want 1, 1", left, wh.calls)
	}
}

// blockingHook holds its first request until release closes, and
// answers every request 201.
type blockingHook struct {
	mu         sync.Mutex
	calls      int
	deliveries []string
	started    chan struct{}
	release    chan struct{}
}

func newBlockingHook() *blockingHook {
	return &blockingHook{started: make(chan struct{}), release: make(chan struct{})}
}

func (h *blockingHook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	h.mu.Lock()
	h.calls++
	n := h.calls
	h.deliveries = append(h.deliveries, r.Header.Get(postmortem.DeliveryHeader))
	h.mu.Unlock()
	if n == 1 {
		close(h.started)
		<-h.release
	}
	rw.WriteHeader(http.StatusCreated)
}

func (h *blockingHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// While OnResolve is posting a payload, RetryPending does not post it a
// second time (it is kept, on disk or in memory, before the first POST),
// and a second OnResolve of the same incident waits for the first.
func TestAttachNoDoubleDelivery(t *testing.T) {
	for _, withDir := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "directory"}[withDir], func(t *testing.T) {
			wh := newBlockingHook()
			srv := httptest.NewServer(wh)
			defer srv.Close()
			// Whatever happens, the held request ends before the server
			// closes.
			var once sync.Once
			release := func() { once.Do(func() { close(wh.release) }) }
			defer release()
			cfg := postmortem.AttachConfig{WebhookURL: secret.Secret(srv.URL), Attempts: 1}
			if withDir {
				cfg.Dir = t.TempDir()
			}
			a := newAttacher(t, cfg)
			ctx := context.Background()
			first := make(chan error, 1)
			go func() { _, err := a.OnResolve(ctx, "inc-1"); first <- err }()
			<-wh.started
			left, err := a.RetryPending(ctx)
			if err != nil || left != 0 || wh.count() != 1 {
				t.Errorf("retry during the first POST: %d left, %v, %d calls; want it skipped", left, err, wh.count())
			}
			second := make(chan error, 1)
			go func() { _, err := a.OnResolve(ctx, "inc-1"); second <- err }()
			select {
			case err := <-second:
				t.Fatalf("second resolve returned (%v) while the first was posting", err)
			case <-time.After(200 * time.Millisecond):
			}
			if n := wh.count(); n != 1 {
				t.Errorf("%d calls while the first POST is under way, want 1", n)
			}
			release()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if err := <-second; err != nil {
				t.Fatal(err)
			}
			// Nothing left to retry: both were delivered once each.
			if left, err := a.RetryPending(ctx); err != nil || left != 0 || wh.count() != 2 {
				t.Errorf("after: %d left, %v, %d calls; want 0, nil, 2", left, err, wh.count())
			}
			if wh.deliveries[0] != wh.deliveries[1] || !strings.HasPrefix(wh.deliveries[0], "inc-1.") {
				t.Errorf("deliveries %q: the same bundle twice must carry the same key", wh.deliveries)
			}
		})
	}
}

// When the bundle directory cannot be written, the webhook still gets the
// bundle, and the error says the files are missing; a payload the webhook
// did not take then waits in memory for RetryPending.
func TestAttachWriteFailureStillPosts(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(map[bool]string{false: "webhook up", true: "webhook down"}[down], func(t *testing.T) {
			wh := &webhook{}
			if down {
				wh.failures, wh.status = 1, http.StatusServiceUnavailable
			}
			srv := httptest.NewServer(wh)
			defer srv.Close()
			// A file where the directory should be: no bundle can be written.
			blocker := filepath.Join(t.TempDir(), "not-a-dir")
			if err := os.WriteFile(blocker, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			a := newAttacher(t, postmortem.AttachConfig{Dir: blocker, WebhookURL: secret.Secret(srv.URL), Attempts: 1})
			loc, err := a.OnResolve(context.Background(), "inc-1")
			if err == nil || !strings.Contains(err.Error(), "not written") {
				t.Errorf("err = %v, want it to say the files were not written", err)
			}
			if wh.calls != 1 {
				t.Fatalf("%d webhook calls, want 1", wh.calls)
			}
			if !down {
				if loc != "https://docs.example/postmortems/42" {
					t.Errorf("location %q, want the receiver's", loc)
				}
				return
			}
			if left, err := a.RetryPending(context.Background()); left != 0 || err != nil || wh.calls != 2 {
				t.Errorf("retry: %d left, %v, %d calls; want the payload delivered from memory", left, err, wh.calls)
			}
		})
	}
}

func TestAttachConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  postmortem.AttachConfig
		want string // "" when valid
	}{
		{"directory only", postmortem.AttachConfig{Dir: "/tmp/x"}, ""},
		{"webhook", postmortem.AttachConfig{WebhookURL: "https://hooks.example/pm"}, ""},
		{"not a URL", postmortem.AttachConfig{WebhookURL: "hooks.example"}, "postmortem.webhook_url"},
		{"not http", postmortem.AttachConfig{WebhookURL: "ftp://hooks.example/T0/B0/tok3n"}, "postmortem.webhook_url"},
		{"bad header", postmortem.AttachConfig{WebhookURL: "https://h.example", WebhookHeaders: map[string]secret.Secret{"Bad Header": "x"}}, "postmortem.webhook_headers"},
		{"negative attempts", postmortem.AttachConfig{Dir: "d", Attempts: -1}, "postmortem.attempts"},
		{"secret without a webhook", postmortem.AttachConfig{WebhookSecret: "s"}, "postmortem.webhook_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
			if u := tt.cfg.WebhookURL.Reveal(); err != nil && u != "" && strings.Contains(err.Error(), u) {
				t.Errorf("Validate() = %v: quotes the URL, which may hold a token", err)
			}
		})
	}
	var c postmortem.AttachConfig
	c.ApplyEnv(env{postmortem.EnvWebhookURL: "https://h.example", postmortem.EnvWebhookSecret: "shh", postmortem.EnvWebhookAuthorization: "Bearer t"}.get)
	if c.WebhookURL.Reveal() != "https://h.example" || c.WebhookSecret.Reveal() != "shh" || c.WebhookHeaders["Authorization"].Reveal() != "Bearer t" {
		t.Errorf("env not applied: %+v", c)
	}
	// The durations read as Go durations from YAML.
	var y postmortem.AttachConfig
	if err := yaml.Unmarshal([]byte("dir: /srv/pm\nbackoff: 3s\nmax_backoff: 2m\n"), &y); err != nil ||
		time.Duration(y.Backoff) != 3*time.Second || time.Duration(y.MaxBackoff) != 2*time.Minute {
		t.Errorf("YAML: %v, %+v", err, y)
	}
	// An incoming-webhook URL holds its token: it prints as <secret> in
	// JSON, YAML (check-config) and logs.
	c.WebhookURL = "https://hooks.slack.example/services/T0/B0/tok3n"
	j, _ := json.Marshal(c)
	y2, _ := yaml.Marshal(c)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "postmortem", c.WebhookURL)
	for name, out := range map[string]string{"json": string(j), "yaml": string(y2), "slog": logged.String()} {
		if strings.Contains(out, "shh") || strings.Contains(out, "Bearer t") || strings.Contains(out, "tok3n") ||
			!strings.Contains(out, "<secret>") && !strings.Contains(out, `\u003csecret\u003e`) {
			t.Errorf("%s: secrets printed, or no <secret>: %s", name, out)
		}
	}
}

type env map[string]string

func (e env) get(k string) string { return e[k] }
