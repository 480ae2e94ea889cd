package postmortem_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
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
	mu       sync.Mutex
	failures int
	status   int
	calls    int
	last     *http.Request
	body     []byte
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
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
	a := newAttacher(t, postmortem.AttachConfig{Dir: dir, WebhookURL: srv.URL, WebhookSecret: "s3cret", Attempts: 4,
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
	a := newAttacher(t, postmortem.AttachConfig{Dir: dir, WebhookURL: srv.URL + "/hook?token=secret-in-url", Attempts: 3})
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
}

func TestAttachRejectionIsNotRetried(t *testing.T) {
	wh := &webhook{failures: 1 << 30, status: http.StatusUnauthorized}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	a := newAttacher(t, postmortem.AttachConfig{WebhookURL: srv.URL, Attempts: 5})
	if _, err := a.OnResolve(context.Background(), "inc-1"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want 401", err)
	}
	if wh.calls != 1 {
		t.Errorf("%d calls, want 1: a 401 does not heal by retrying", wh.calls)
	}
	// Kept in memory without a directory, for RetryPending.
	wh.mu.Lock()
	wh.failures = 0
	wh.mu.Unlock()
	if left, err := a.RetryPending(context.Background()); err != nil || left != 0 || wh.calls != 2 {
		t.Errorf("retry: %d left, %v, %d calls", left, err, wh.calls)
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
		})
	}
	var c postmortem.AttachConfig
	c.ApplyEnv(env{postmortem.EnvWebhookURL: "https://h.example", postmortem.EnvWebhookSecret: "shh", postmortem.EnvWebhookAuthorization: "Bearer t"}.get)
	if c.WebhookURL != "https://h.example" || c.WebhookSecret.Reveal() != "shh" || c.WebhookHeaders["Authorization"].Reveal() != "Bearer t" {
		t.Errorf("env not applied: %+v", c)
	}
	// The durations read as Go durations from YAML.
	var y postmortem.AttachConfig
	if err := yaml.Unmarshal([]byte("dir: /srv/pm\nbackoff: 3s\nmax_backoff: 2m\n"), &y); err != nil ||
		time.Duration(y.Backoff) != 3*time.Second || time.Duration(y.MaxBackoff) != 2*time.Minute {
		t.Errorf("YAML: %v, %+v", err, y)
	}
	if b, _ := json.Marshal(c); strings.Contains(string(b), "shh") || strings.Contains(string(b), "Bearer t") {
		t.Errorf("secrets printed: %s", b)
	}
}

type env map[string]string

func (e env) get(k string) string { return e[k] }
