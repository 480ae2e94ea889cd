package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/correlator/correlator/internal/collectors/httpauth"
)

func readPayload(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParsePayloads(t *testing.T) {
	tests := []struct {
		file      string
		status    string
		alerts    int
		truncated uint64
		first     Alert // the first alert's fields checked
	}{
		{"payloads/alertmanager-0.25-firing.json", StatusFiring, 1, 0, Alert{
			Status: StatusFiring, StartsAt: mustTime("2026-11-21T15:33:33.225Z"), Fingerprint: "6e890fd1d2e6636f",
			Labels: map[string]string{"alertname": "HighErrorRate", "service": "checkout", "severity": "page"}}},
		{"payloads/alertmanager-0.25-resolved.json", StatusResolved, 2, 0, Alert{
			Status: StatusResolved, StartsAt: mustTime("2026-11-21T15:33:33.225Z"), EndsAt: mustTime("2026-11-21T15:34:03.247Z"),
			Fingerprint: "6e890fd1d2e6636f", Labels: map[string]string{"alertname": "HighErrorRate", "service": "checkout", "severity": "page"}}},
		{"payloads/docs-example.json", StatusFiring, 2, 2, Alert{
			Status: StatusFiring, StartsAt: mustTime("2026-11-21T09:24:13.512Z"), Fingerprint: "9c3ef1b2a0d4e5f6",
			Labels: map[string]string{"alertname": "PaymentsLatencyHigh", "service": "payments", "severity": "warning", "team": "payments", "instance": "payments-7d9f:8080"}}},
		{"payloads/mixed.json", StatusFiring, 3, 0, Alert{
			Status: StatusResolved, StartsAt: mustTime("2026-11-21T10:00:00Z"), EndsAt: mustTime("2026-11-21T10:05:00Z"), Fingerprint: "aa01",
			Labels: map[string]string{"alertname": "UpstreamErrors", "service": "cart", "severity": "page"}}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			m, err := Parse(readPayload(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if m.Version != "4" || m.GroupKey == "" || m.Status != tt.status || len(m.Alerts) != tt.alerts || m.TruncatedAlerts != tt.truncated {
				t.Errorf("version %q key %q status %q alerts %d truncated %d; want 4, a key, %s, %d, %d",
					m.Version, m.GroupKey, m.Status, len(m.Alerts), m.TruncatedAlerts, tt.status, tt.alerts, tt.truncated)
			}
			a := m.Alerts[0]
			if a.Status != tt.first.Status || !a.StartsAt.Equal(tt.first.StartsAt) || !a.EndsAt.Equal(tt.first.EndsAt) ||
				a.Fingerprint != tt.first.Fingerprint || !reflect.DeepEqual(a.Labels, tt.first.Labels) {
				t.Errorf("first alert %+v\nwant %+v", a, tt.first)
			}
			if m.Receiver != "correlator" || m.ExternalURL == "" || m.CommonLabels["alertname"] == "" {
				t.Errorf("receiver %q external URL %q common labels %v", m.Receiver, m.ExternalURL, m.CommonLabels)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ file, field, msg string }{
		{"not-json", "", "invalid JSON: want an object"},
		{"array", "", "invalid JSON"},
		{"null", "", "want a JSON object, got null"},
		{"truncated", "", "invalid JSON"},
		{"grafana-v1", "version", `unsupported version "1" (want "4")`},
		{"no-version", "version", "missing"},
		{"version-number", "version", "want a string, got a number"},
		{"no-group-key", "groupKey", "missing"},
		{"bad-status", "status", `"pending" is not "firing" or "resolved"`},
		{"no-alerts", "alerts", "missing"},
		{"alerts-object", "alerts", "want an array, got an object"},
		{"alert-not-object", "alerts[1]", "want an object, got a string"},
		{"alert-status", "alerts[1].status", "missing"},
		{"label-number", "alerts[0].labels.replicas", "want a string, got a number"},
		{"labels-array", "commonLabels", "want an object of strings, got an array"},
		{"bad-time", "alerts[1].startsAt", `cannot parse "21/11/2026 10:00" as an RFC 3339 time`},
		{"truncated-negative", "truncatedAlerts", "want a non-negative integer, got a number"},
	}
	files, _ := filepath.Glob("testdata/bad/*.json")
	if len(files) != len(tests) {
		t.Errorf("%d files in testdata/bad, %d cases: every bad payload needs a case", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Parse(readPayload(t, "bad/"+tt.file+".json"))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse = %v, want a *FieldError", err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("error field %q message %q, want field %q and %q", fe.Field, fe.Msg, tt.field, tt.msg)
			}
		})
	}
}

// failingIncidents fails every call.
type failingIncidents struct{}

func (failingIncidents) OpenOrJoin(context.Context, Opening) (string, bool, error) {
	return "", false, errors.New("clickhouse: connection refused")
}
func (failingIncidents) Resolve(context.Context, string, time.Time) (string, error) {
	return "", errors.New("clickhouse: connection refused")
}

type response struct {
	Status    string `json:"status"`
	Data      Result `json:"data"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

func post(t *testing.T, h http.Handler, body string, mod func(*http.Request)) (int, response, http.Header) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/collect/alertmanager", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var resp response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response %q is not JSON: %v", w.Body.String(), err)
	}
	return w.Code, resp, w.Header()
}

func TestReceiverRejects(t *testing.T) {
	firing := string(readPayload(t, "payloads/alertmanager-0.25-firing.json"))
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bearer := Config{Credentials: httpauth.Credentials{BearerToken: "tok"}}
	basic := Config{Credentials: httpauth.Credentials{BasicAuth: &httpauth.BasicAuth{Username: "am", PasswordFile: pwFile}}}
	tests := []struct {
		name    string
		cfg     Config
		inc     Incidents
		body    string
		mod     func(*http.Request)
		code    int
		errType string
		msg     string
		reason  string // rejected metric label; "" for none
	}{
		{"no token", bearer, nil, firing, nil, 401, "unauthorized", "missing credentials", "unauthorized"},
		{"wrong token", bearer, nil, firing, func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401, "unauthorized", "invalid credentials", "unauthorized"},
		{"basic instead of bearer", bearer, nil, firing, func(r *http.Request) { r.SetBasicAuth("am", "tok") }, 401, "unauthorized", "invalid credentials", "unauthorized"},
		{"wrong password", basic, nil, firing, func(r *http.Request) { r.SetBasicAuth("am", "s3cre") }, 401, "unauthorized", "invalid credentials", "unauthorized"},
		{"wrong user", basic, nil, firing, func(r *http.Request) { r.SetBasicAuth("root", "s3cret") }, 401, "unauthorized", "invalid credentials", "unauthorized"},
		{"GET", Config{}, nil, "", func(r *http.Request) { r.Method = http.MethodGet }, 405, "method_not_allowed", "method GET not allowed", "method"},
		{"form body", Config{}, nil, "a=b", func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, 415, "unsupported_media_type", `unsupported Content-Type "application/x-www-form-urlencoded"`, "unsupported_media_type"},
		{"gzip", Config{}, nil, firing, func(r *http.Request) { r.Header.Set("Content-Encoding", "gzip") }, 415, "unsupported_media_type", `unsupported Content-Encoding "gzip"`, "unsupported_media_type"},
		{"too large by length", Config{MaxBodyBytes: 100}, nil, firing, nil, 413, "too_large", "body of 665 bytes is over the limit of 100 bytes", "too_large"},
		{"too large while reading", Config{MaxBodyBytes: 100}, nil, firing, func(r *http.Request) { r.ContentLength = -1 }, 413, "too_large", "body is over the limit of 100 bytes", "too_large"},
		{"bad payload", Config{}, nil, `{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing","startsAt":"yesterday"}]}`, nil, 400, "bad_data", `alerts[0].startsAt: cannot parse "yesterday"`, "bad_payload"},
		{"store down", Config{}, failingIncidents{}, firing, nil, 500, "internal", "cannot record the incident; see the server log", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc := tt.inc
			mem := &MemIncidents{}
			if inc == nil {
				inc = mem
			}
			rcv, err := New(tt.cfg, inc, nil, promclient.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			code, resp, hdr := post(t, rcv, tt.body, tt.mod)
			if code != tt.code || resp.Status != "error" || resp.ErrorType != tt.errType || !strings.Contains(resp.Error, tt.msg) {
				t.Errorf("got %d %+v, want %d %s %q", code, resp, tt.code, tt.errType, tt.msg)
			}
			if strings.Contains(resp.Error, "tok") || strings.Contains(resp.Error, "s3cret") || strings.Contains(resp.Error, "connection refused") {
				t.Errorf("error %q reveals a secret or an internal detail", resp.Error)
			}
			if n := len(mem.List()); n != 0 {
				t.Errorf("%d incidents recorded by a rejected request", n)
			}
			if tt.reason != "" {
				if got := testutil.ToFloat64(rcv.m.rejected.WithLabelValues(tt.reason)); got != 1 {
					t.Errorf("rejected{reason=%s} = %v, want 1", tt.reason, got)
				}
			} else if got := testutil.ToFloat64(rcv.m.errors.WithLabelValues("store")); got != 1 {
				t.Errorf("errors{reason=store} = %v, want 1", got)
			}
			switch code {
			case 401:
				want := `Bearer realm="correlator"`
				if tt.cfg.BasicAuth != nil {
					want = `Basic realm="correlator"`
				}
				if got := hdr.Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate %q, want %q", got, want)
				}
			case 405:
				if hdr.Get("Allow") != "POST" {
					t.Errorf("Allow %q, want POST", hdr.Get("Allow"))
				}
			}
		})
	}
}

// TestIncidentLifecycle drives one receiver through a sequence of
// notifications and checks the action of each and the incidents after it.
func TestIncidentLifecycle(t *testing.T) {
	inc := &MemIncidents{}
	rcv, err := New(Config{Credentials: httpauth.Credentials{BearerToken: "tok"}}, inc, nil, promclient.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	now := mustTime("2026-11-21T12:00:00Z")
	rcv.now = func() time.Time { return now }
	auth := func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }
	firing := string(readPayload(t, "payloads/alertmanager-0.25-firing.json"))
	resolved := string(readPayload(t, "payloads/alertmanager-0.25-resolved.json"))
	refire := strings.ReplaceAll(firing, "2026-11-21T15:33:33.225Z", "2026-11-21T16:00:00Z")

	steps := []struct {
		name     string
		body     string
		action   string
		services []string
		// the incidents after the step: "services opened resolved" each
		want []string
	}{
		{"firing opens", firing, "opened", []string{"checkout"},
			[]string{"checkout 15:33:33.225 open"}},
		{"repeat notification joins", firing, "joined", []string{"checkout"},
			[]string{"checkout 15:33:33.225 open"}},
		{"mixed group: firing alerts only", string(readPayload(t, "payloads/mixed.json")), "opened", []string{"api-gateway", "frontend"},
			[]string{"checkout 15:33:33.225 open", "api-gateway,frontend 10:02:00 open"}},
		{"resolved closes at the last endsAt", resolved, "resolved", nil,
			[]string{"checkout 15:33:33.225 15:34:03.247", "api-gateway,frontend 10:02:00 open"}},
		{"late copy of the firing changes nothing", firing, "joined", []string{"checkout"},
			[]string{"checkout 15:33:33.225 15:34:03.247", "api-gateway,frontend 10:02:00 open"}},
		{"repeated resolve is ignored", resolved, "ignored", nil,
			[]string{"checkout 15:33:33.225 15:34:03.247", "api-gateway,frontend 10:02:00 open"}},
		{"firing again opens a new incident", refire, "opened", []string{"checkout"},
			[]string{"checkout 15:33:33.225 15:34:03.247", "api-gateway,frontend 10:02:00 open", "checkout 16:00:00 open"}},
		{"no service label", string(readPayload(t, "payloads/no-service.json")), "ignored", nil,
			[]string{"checkout 15:33:33.225 15:34:03.247", "api-gateway,frontend 10:02:00 open", "checkout 16:00:00 open"}},
	}
	for _, st := range steps {
		code, resp, _ := post(t, rcv, st.body, auth)
		if code != 200 || resp.Status != "success" || resp.Data.Action != st.action || !slices.Equal(resp.Data.Services, st.services) {
			t.Errorf("%s: got %d %+v, want 200 %s %v", st.name, code, resp, st.action, st.services)
		}
		var got []string
		for _, i := range inc.List() {
			end := "open"
			if !i.Open() {
				end = i.ResolvedAt.Format("15:04:05.999")
			}
			got = append(got, strings.Join(i.Services, ",")+" "+i.OpenedAt.Format("15:04:05.999")+" "+end)
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("%s: incidents %q, want %q", st.name, got, st.want)
		}
	}
	l := inc.List()
	if l[0].ID != IncidentID(`{}:{alertname="HighErrorRate"}`, mustTime("2026-11-21T15:33:33.225Z")) || l[2].ID == l[0].ID {
		t.Errorf("ids %s, %s: want derived from group key and start, different for the new incident", l[0].ID, l[2].ID)
	}
	if l[0].Title != "5xx ratio above 5%" || l[0].Severity != "page" || l[1].Title != "UpstreamErrors" || l[1].Severity != "" {
		t.Errorf("titles/severities %q/%q, %q/%q", l[0].Title, l[0].Severity, l[1].Title, l[1].Severity)
	}
	if l[0].Updates != 2 { // opened, resolved; the repeat and the late copy changed nothing
		t.Errorf("first incident has %d recorded states, want 2", l[0].Updates)
	}
	if got := testutil.ToFloat64(rcv.m.rejected.WithLabelValues("no_service")); got != 1 {
		t.Errorf("rejected{no_service} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(rcv.m.accepted); got != float64(len(steps)-1) {
		t.Errorf("accepted = %v, want %d (every notification but the one without a service)", got, len(steps)-1)
	}
	if got := testutil.ToFloat64(rcv.m.lastSuccess); got != float64(now.Unix()) {
		t.Errorf("last success = %v, want %d", got, now.Unix())
	}
}

func TestServiceLabelAndJoinEarlier(t *testing.T) {
	inc := &MemIncidents{}
	rcv, err := New(Config{ServiceLabel: "job"}, inc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := func(job, startsAt string) string {
		return `{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{"job":"` + job + `"},"startsAt":"` + startsAt + `"}]}`
	}
	post(t, rcv, body("cart", "2026-11-21T10:05:00Z"), nil)
	_, resp, _ := post(t, rcv, body("search", "2026-11-21T10:01:00Z"), nil)
	l := inc.List()
	if resp.Data.Action != "joined" || len(l) != 1 || !slices.Equal(l[0].Services, []string{"cart", "search"}) ||
		!l[0].OpenedAt.Equal(mustTime("2026-11-21T10:01:00Z")) {
		t.Errorf("got %+v and %+v; want search joined and the start moved back to 10:01", resp, l)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{MaxBodyBytes: -1}, "alertmanager.max_body_bytes: -1 is negative"},
		{Config{ServiceLabel: " service"}, "alertmanager.service_label"},
		{Config{Credentials: httpauth.Credentials{BearerToken: "a", BearerTokenFile: "/x"}}, "bearer_token and bearer_token_file are mutually exclusive"},
		{Config{Credentials: httpauth.Credentials{BearerTokenFile: "/nonexistent/token"}}, "alertmanager.bearer_token_file: cannot read secret file"},
		{Config{Credentials: httpauth.Credentials{BasicAuth: &httpauth.BasicAuth{Password: "p"}}}, "alertmanager.basic_auth.username: missing"},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg, &MemIncidents{}, nil, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
