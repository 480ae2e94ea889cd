package alertmanager

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/collectors/collectortest"
	"github.com/correlator/correlator/internal/collectors/httpauth"
)

var record = flag.Bool("record", false, "save the payloads the real Alertmanager sends into testdata/payloads")

// startAlertmanager runs the Debian Alertmanager with one webhook receiver
// that sends every group at once (group_wait and group_interval 1s) with a
// bearer token, and returns its URL.
func startAlertmanager(t *testing.T, webhook, token string) string {
	bin := collectortest.RequireBinary(t, "prometheus-alertmanager")
	dir := t.TempDir()
	addr := collectortest.FreeAddr(t)
	cfg := fmt.Sprintf(`route:
  receiver: correlator
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: correlator
    webhook_configs:
      - url: %q
        send_resolved: true
        http_config:
          authorization:
            credentials: %q
`, webhook, token)
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	collectortest.StartProcess(t, dir, bin,
		"--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=", // no gossip port: one instance
		"--log.level=warn")
	u := "http://" + addr
	collectortest.WaitHTTP(t, u+"/-/ready", 20*time.Second)
	return u
}

// postAlerts sends alerts to Alertmanager's API, as Prometheus does.
func postAlerts(t *testing.T, amURL string, alerts []map[string]any) {
	t.Helper()
	b, _ := json.Marshal(alerts)
	resp, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /api/v2/alerts: %s: %s", resp.Status, body)
	}
}

func alert(service string, startsAt, endsAt time.Time) map[string]any {
	a := map[string]any{
		"labels":       map[string]string{"alertname": "HighErrorRate", "service": service, "severity": "page"},
		"annotations":  map[string]string{"summary": "5xx ratio above 5%"},
		"startsAt":     startsAt.Format(time.RFC3339Nano),
		"generatorURL": "http://prometheus.example:9090/graph?g0.expr=errors",
	}
	if !endsAt.IsZero() {
		a["endsAt"] = endsAt.Format(time.RFC3339Nano)
	}
	return a
}

// waitFor polls cond until it holds or 20 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRealAlertmanager sends alerts through the Debian Alertmanager to the
// receiver: the group opens an incident, a second service's alert joins
// it, and resolving both closes it.
func TestRealAlertmanager(t *testing.T) {
	const token = "am-webhook-token"
	inc := &MemIncidents{}
	rcv, err := New(Config{Credentials: httpauth.Credentials{BearerToken: token}}, inc, nil, promclient.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bodies [][]byte
	var statuses []int
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		rec := httptest.NewRecorder()
		rcv.ServeHTTP(rec, r)
		mu.Lock()
		bodies = append(bodies, b)
		statuses = append(statuses, rec.Code)
		mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	defer hook.Close()
	am := startAlertmanager(t, hook.URL+"/collect/alertmanager", token)

	start := time.Now().Add(-30 * time.Second).UTC().Truncate(time.Millisecond)
	postAlerts(t, am, []map[string]any{alert("checkout", start, time.Time{})})
	waitFor(t, "an incident", func() bool { return len(inc.List()) == 1 })
	got := inc.List()[0]
	if !got.Open() || !slices.Equal(got.Services, []string{"checkout"}) || !got.OpenedAt.Equal(start) ||
		got.Title != "5xx ratio above 5%" || got.Severity != "page" {
		t.Fatalf("incident %+v: want open, services [checkout], opened at %s, the summary as title, severity page", got, start)
	}
	if got.Attributes["alertmanager.receiver"] != "correlator" || got.Attributes["alertmanager.group_key"] == "" {
		t.Errorf("attributes %v: want the receiver and group key", got.Attributes)
	}

	// A second service's alert in the same group joins the incident.
	later := start.Add(10 * time.Second)
	postAlerts(t, am, []map[string]any{alert("payments", later, time.Time{})})
	waitFor(t, "payments to join", func() bool {
		l := inc.List()
		return len(l) == 1 && slices.Equal(l[0].Services, []string{"checkout", "payments"})
	})
	if l := inc.List(); l[0].ID != got.ID || !l[0].OpenedAt.Equal(start) {
		t.Errorf("after the join: %+v, want the same incident opened at %s", l[0], start)
	}

	// Resolving both (endsAt in the past) closes it.
	end := time.Now().Add(-time.Second).UTC().Truncate(time.Millisecond)
	postAlerts(t, am, []map[string]any{alert("checkout", start, end), alert("payments", later, end)})
	waitFor(t, "the incident to close", func() bool { return !inc.List()[0].Open() })
	if l := inc.List(); len(l) != 1 || !l[0].ResolvedAt.Equal(end) {
		t.Errorf("after resolving: %+v, want one incident resolved at %s", l, end)
	}

	mu.Lock()
	defer mu.Unlock()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("delivery %d answered %d: %s", i, s, bodies[i])
		}
	}
	if *record {
		for name, b := range map[string][]byte{"firing": bodies[0], "resolved": bodies[len(bodies)-1]} {
			// Byte for byte as Alertmanager sent it.
			path := filepath.Join("testdata", "payloads", "alertmanager-0.25-"+name+".json")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
