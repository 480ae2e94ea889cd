package changes

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

func post(h http.Handler, body string, header ...string) (int, Reply) {
	req := httptest.NewRequest(http.MethodPost, "/collect/webhook/x", strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var rep Reply
	_ = json.Unmarshal(rec.Body.Bytes(), &rep)
	return rec.Code, rep
}

func newTestWebhook(t *testing.T, cfg WebhookConfig) (*Webhook, *recordingWriter) {
	t.Helper()
	w := &recordingWriter{}
	h, err := NewWebhook(cfg, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return t0 }
	return h, w
}

func TestWebhookChangeShape(t *testing.T) {
	h, w := newTestWebhook(t, WebhookConfig{Name: "deploybot", Secret: "s3cret"})
	body := `{"kind":"Deploy","service":"api","environment":"production","version":"v2","attributes":{"pr":"9"}}`
	if code, _ := post(h, body); code != http.StatusUnauthorized {
		t.Errorf("unsigned: %d", code)
	}
	if code, _ := post(h, body, SecretHeader, "nope"); code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", code)
	}
	code, rep := post(h, body, "Authorization", "Bearer s3cret")
	if code != http.StatusOK || rep.Changes != 1 {
		t.Fatalf("%d %+v", code, rep)
	}
	c := w.batches[0].Changes[0]
	if c.Kind != event.ChangeDeploy || !c.Time.Equal(t0) || c.Source != "deploybot" || c.ID != IdentityID(&c) || c.Attributes["pr"] != "9" {
		t.Errorf("got %+v", c)
	}

	code, rep = post(h, `[{"time":1795000000,"kind":"config","service":"api","title":"pool"},{"time":"2026-11-21T09:00:00Z","kind":"flag","service":"web","id":"mine"}]`, SecretHeader, "s3cret")
	if code != http.StatusOK || rep.Changes != 2 {
		t.Fatalf("array: %d %+v", code, rep)
	}
	cs := w.batches[1].Changes
	if !cs[0].Time.Equal(time.Unix(1795000000, 0)) || cs[0].ID != ContentID(&cs[0]) || cs[1].ID != "mine" {
		t.Errorf("got %+v", cs)
	}

	for body, want := range map[string]string{
		`{"kind":"deploy"}`:                             "service: missing",
		`{"kind":"release","service":"a"}`:              `kind: "release" is not one of`,
		`{"kind":"deploy","service":"a","time":"soon"}`: "time: cannot parse",
		`{"kind":`:                             "invalid JSON",
		`[{"kind":"deploy","service":"a"},{}]`: "item 1: ",
	} {
		code, rep := post(h, body, SecretHeader, "s3cret")
		if code != http.StatusBadRequest || !strings.Contains(rep.Reason, want) {
			t.Errorf("%s: %d %q, want 400 saying %q", body, code, rep.Reason, want)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
}

func TestWebhookTemplate(t *testing.T) {
	h, w := newTestWebhook(t, WebhookConfig{Name: "jenkins", Template: &Template{
		Items: "builds",
		Fields: map[string]string{
			"service": "job.service", "version": "tag", "commit": "scm.commits.0", "time": "finished",
			"author": "user.name", "attributes.pipeline": "job.name", "attributes.number": "number",
		},
		Static: map[string]string{"environment": "production"},
	}})
	body := `{"builds":[
		{"job":{"service":"api","name":"deploy-api"},"tag":"v7","scm":{"commits":["a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"]},"finished":1795000000123,"user":{"name":"ci"},"number":42},
		{"job":{"service":"web","name":"deploy-web"},"tag":"v8","user":null}
	]}`
	code, rep := post(h, body)
	if code != http.StatusOK || rep.Changes != 2 {
		t.Fatalf("%d %+v", code, rep)
	}
	a, b := w.batches[0].Changes[0], w.batches[0].Changes[1]
	if a.Service != "api" || a.Version != "v7" || a.Commit != "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d" || a.Environment != "production" ||
		!a.Time.Equal(time.UnixMilli(1795000000123)) || a.Author != "ci" || a.Source != "jenkins" || a.Kind != event.ChangeDeploy ||
		a.Attributes["pipeline"] != "deploy-api" || a.Attributes["number"] != "42" || a.ID != IdentityID(&a) {
		t.Errorf("first: %+v", a)
	}
	if b.Service != "web" || !b.Time.Equal(t0) || b.Author != "" || b.Commit != "" {
		t.Errorf("second: %+v", b)
	}
	if code, rep := post(h, `{"builds":[{"job":{"service":{"x":1}}}]}`); code != http.StatusBadRequest || !strings.Contains(rep.Reason, "service (job.service): is an object") {
		t.Errorf("object value: %d %q", code, rep.Reason)
	}
	if code, rep := post(h, `{"other":1}`); code != http.StatusAccepted || rep.Status != "ignored" {
		t.Errorf("no items: %d %+v", code, rep)
	}

	if _, err := NewWebhook(WebhookConfig{Name: "x", Template: &Template{Fields: map[string]string{"servce": "a"}}}, nil, nil); err == nil ||
		!strings.Contains(err.Error(), `unknown change field "servce"`) || !strings.Contains(err.Error(), "service needs a path") {
		t.Errorf("bad template: %v", err)
	}
}
