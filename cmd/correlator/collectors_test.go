package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sentrygo "github.com/getsentry/sentry-go"

	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/chdb"
)

// TestServeMountsConfiguredCollectors runs `correlator serve --config`
// with the GitHub webhook and the Sentry intake configured, sends a signed
// GitHub deployment_status delivery and an error through the real sentry-go
// SDK, and finds both in the store and in /metrics; an unsigned delivery
// is refused and an unconfigured receiver is not there at all.
func TestServeMountsConfiguredCollectors(t *testing.T) {
	const ghSecret, dsnKey = "gh-webhook-secret-1234", "0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "correlator.yaml")
	logFile := filepath.Join(dir, "app.log")
	lines := `{"time":"2026-11-21T10:00:00Z","level":"ERROR","msg":"payment failed","service":"checkout"}` + "\n" +
		`{"time":"2026-11-21T10:00:01Z","level":"INFO","msg":"retrying","service":"checkout"}` + "\n"
	if err := os.WriteFile(logFile, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgYAML := fmt.Sprintf(`jsonlines:
  paths: [%s]
  poll_interval: 100ms
changes:
  github:
    secret: %s
    repositories:
      octocat/example: {service: api, environment: production}
alertmanager:
  enabled: true
sentry:
  user_salt: test-salt
  projects:
    - id: "42"
      service: checkout
      public_keys: [%s]
`, logFile, ghSecret, dsnKey)
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	srv := startServerArgs(t, []string{"serve", "--config", cfgPath, "--data-dir", dataDir, "--listen", "127.0.0.1:0"})
	if logs := srv.logs.String(); strings.Contains(logs, ghSecret) || strings.Contains(logs, dsnKey) {
		t.Fatalf("a secret reached the log:\n%s", logs)
	}

	body, err := os.ReadFile("../../internal/collectors/github/testdata/deployment_status.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func(path string, signature string) int {
		req, _ := http.NewRequest("POST", "http://"+srv.addr+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "deployment_status")
		req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		if signature != "" {
			req.Header.Set("X-Hub-Signature-256", signature)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	mac := hmac.New(sha256.New, []byte(ghSecret))
	mac.Write(body)
	if code := post("/collect/github", ""); code != http.StatusUnauthorized {
		t.Errorf("unsigned GitHub delivery: %d, want 401", code)
	}
	if code := post("/collect/github", "sha256="+hex.EncodeToString(mac.Sum(nil))); code/100 != 2 {
		t.Errorf("signed GitHub delivery: %d, want 2xx", code)
	}
	// CI marks the same deploy: one change, two sources.
	mark := exec.Command(binary, "mark", "deploy", "--service", "api", "--version", "v1.4.2", "--env", "production", "--at", "2012-07-20T02:07:00Z", "--server", "http://"+srv.addr)
	mark.Env = env()
	if out, err := mark.CombinedOutput(); err != nil || !strings.Contains(string(out), "marked deploy v1.4.2 of api") {
		t.Fatalf("correlator mark: %v\n%s", err, out)
	}
	firing, err := os.ReadFile("../../internal/collectors/alertmanager/testdata/payloads/alertmanager-0.25-firing.json")
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Post("http://"+srv.addr+"/collect/alertmanager", "application/json", bytes.NewReader(firing)); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("alertmanager notification: %v %v", resp, err)
	}
	otlp := `{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"1763719200000000000","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"upstream timed out"}}]}]}]}`
	if resp, err := http.Post("http://"+srv.addr+"/v1/logs", "application/json", strings.NewReader(otlp)); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP logs: %v %v", resp, err)
	}
	if code := post("/collect/argocd", ""); code != http.StatusNotFound {
		t.Errorf("unconfigured Argo CD receiver answered %d, want 404 (not mounted)", code)
	}

	client, err := sentrygo.NewClient(sentrygo.ClientOptions{Dsn: "http://" + dsnKey + "@" + srv.addr + "/42", Release: "checkout@2.0.1", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	hub := sentrygo.NewHub(client, sentrygo.NewScope())
	hub.Scope().SetUser(sentrygo.User{ID: "user-7", Email: "ada@example.com"})
	hub.CaptureException(errors.New("payment declined: card expired"))
	if !client.Flush(10 * time.Second) {
		t.Fatal("sentry-go did not deliver within 10 s")
	}

	var metrics string
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + srv.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(raw)
		if strings.Contains(metrics, `correlator_collector_events_accepted_total{collector="github"} 1`) &&
			strings.Contains(metrics, `correlator_collector_events_accepted_total{collector="jsonlines"} 2`) &&
			strings.Contains(metrics, `correlator_collector_events_accepted_total{collector="otlp_logs"} 1`) &&
			strings.Contains(metrics, `correlator_collector_events_accepted_total{collector="sentry"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed one accepted event per collector:\n%s", grepLines(metrics, "correlator_collector_"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(metrics, `correlator_collector_events_rejected_total{collector="github",reason="401"} 1`) {
		t.Errorf("the unsigned delivery is not counted as rejected:\n%s", grepLines(metrics, "correlator_collector_"))
	}
	srv.stop(t)

	ctx := context.Background()
	st, err := store.Open(ctx, "", dataDir, store.Options{}, chdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	chs, err := st.Changes(ctx, []string{"api"}, time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 1 || chs[0].Version != "v1.4.2" || chs[0].Environment != "production" || chs[0].Attributes["sources"] != "github,mark" {
		t.Errorf("changes of api = %+v, want the one deployment v1.4.2 to production, reported by github and mark", chs)
	}
	incs, err := st.IncidentsByAttribute(ctx, "alertmanager.group_key", `{}:{alertname="HighErrorRate"}`)
	if err != nil || len(incs) != 1 || incs[0].Status != "open" || len(incs[0].Services) != 1 || incs[0].Services[0] != "checkout" {
		t.Errorf("incidents of the alert group = %+v, %v; want one open incident of checkout", incs, err)
	}
	if n, err := st.Count(ctx, "otel_logs"); err != nil || n != 3 {
		t.Errorf("log lines stored = %d, %v; want 3 (2 tailed, 1 over OTLP)", n, err)
	}
	n, err := st.Count(ctx, "errors")
	if err != nil || n != 1 {
		t.Errorf("errors stored = %d, %v; want the 1 sentry-go event", n, err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
