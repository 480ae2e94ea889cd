package sentry

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestWebhook(t *testing.T) {
	alert := readFile(t, "testdata/webhook/event_alert.json")
	errHook := readFile(t, "testdata/webhook/error.json")
	const secret = "webhook-client-secret"
	for _, tc := range []struct {
		name      string
		resource  string
		body      []byte
		signature string // "" computes the right one; "-" sends none
		status    int
		detail    string
		wantID    string // the event id answered and stored
		rejected  map[string]float64
		ignored   map[string]float64
	}{
		{name: "issue alert", resource: "event_alert", body: alert, status: 200, wantID: "e4874d664c3540c1a32eab185f12c5ab"},
		{name: "error webhook", resource: "error", body: errHook, status: 200, wantID: "bb78c1407cea4519aa397afc059c793d"},
		{name: "installation ignored", resource: "installation", body: []byte(`{"action":"created"}`), status: 200,
			ignored: map[string]float64{"webhook_installation": 1}},
		{name: "unknown resource ignored", resource: "something_new", body: []byte(`{}`), status: 200,
			ignored: map[string]float64{"webhook_other": 1}},
		{name: "no signature", resource: "event_alert", body: alert, signature: "-", status: 401,
			detail: "missing Sentry-Hook-Signature", rejected: map[string]float64{reasonUnauthorized: 1}},
		{name: "wrong signature", resource: "event_alert", body: alert, signature: sign("another secret", alert), status: 403,
			detail: "does not match", rejected: map[string]float64{reasonForbidden: 1}},
		{name: "signature not hex", resource: "event_alert", body: alert, signature: "zz", status: 403,
			rejected: map[string]float64{reasonForbidden: 1}},
		{name: "no event", resource: "event_alert", body: []byte(`{"action":"triggered","data":{}}`), status: 400,
			detail: "field data.event: required for resource event_alert", rejected: map[string]float64{reasonMalformed: 1}},
		{name: "bad event field", resource: "event_alert", body: []byte(`{"action":"triggered","data":{"event":{"project":1,"timestamp":"x"}}}`), status: 400,
			detail: `data.event: field timestamp: cannot parse "x"`, rejected: map[string]float64{reasonMalformed: 1}},
		{name: "unknown project", resource: "error", body: []byte(`{"action":"created","data":{"error":{"project":555}}}`), status: 400,
			detail: "project 555 is not configured", rejected: map[string]float64{reasonUnknownProject: 1}},
		{name: "not json", resource: "error", body: []byte(`{"action":`), status: 400,
			detail: "invalid JSON", rejected: map[string]float64{reasonMalformed: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			h, err := NewWebhook(testConfig(), rec, nil, prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			h.now = func() time.Time { return testNow }
			req := httptest.NewRequest(http.MethodPost, "/collect/sentry", bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Sentry-Hook-Resource", tc.resource)
			req.Header.Set("Sentry-Hook-Timestamp", "1566248777")
			switch tc.signature {
			case "":
				req.Header.Set("Sentry-Hook-Signature", sign(secret, tc.body))
			case "-":
			default:
				req.Header.Set("Sentry-Hook-Signature", tc.signature)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			raw, _ := io.ReadAll(w.Result().Body)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, raw)
			}
			var answer struct{ ID, Detail string }
			json.Unmarshal(raw, &answer)
			if !strings.Contains(answer.Detail, tc.detail) {
				t.Errorf("detail %q, want %q", answer.Detail, tc.detail)
			}
			got := rec.events()
			if tc.wantID == "" {
				if len(got) != 0 {
					t.Errorf("%d events stored, want none", len(got))
				}
			} else {
				if answer.ID != tc.wantID || len(got) != 1 || got[0].ID != deriveID("event", tc.wantID) {
					t.Fatalf("answer %q, stored %+v", answer.ID, got)
				}
				if got[0].Service != "frontend" || got[0].Type != "ReferenceError" || got[0].Attributes[AttrIssueID] == "" {
					t.Errorf("stored %+v", got[0])
				}
				if value(t, h.met.accepted) != 1 {
					t.Error("accepted not counted")
				}
			}
			for reason, want := range tc.rejected {
				if got := value(t, h.met.rejected.WithLabelValues(reason)); got != want {
					t.Errorf("rejected{%s} = %v, want %v", reason, got, want)
				}
			}
			for typ, want := range tc.ignored {
				if got := value(t, h.met.ignored.WithLabelValues(typ)); got != want {
					t.Errorf("ignored{%s} = %v, want %v", typ, got, want)
				}
			}
		})
	}
}

func TestNewWebhookNeedsSecret(t *testing.T) {
	cfg := testConfig()
	cfg.WebhookSecret = ""
	if _, err := NewWebhook(cfg, &recorder{}, nil, nil); err == nil || !strings.Contains(err.Error(), "sentry.webhook_secret") {
		t.Errorf("err = %v", err)
	}
}
