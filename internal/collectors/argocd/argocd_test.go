package argocd

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/event"
)

type recorder struct{ changes []event.Change }

func (r *recorder) Add(_ context.Context, b *event.Batch) error {
	r.changes = append(r.changes, b.Changes...)
	return nil
}

// succeeded is what the documented template renders for a successful sync.
const succeeded = `{
  "app": "api-prod",
  "project": "default",
  "phase": "Succeeded",
  "sync_status": "Synced",
  "health_status": "Healthy",
  "revision": "9f1e0c3a7b2d4e5f60718293a4b5c6d7e8f90123",
  "sync_revision": "9f1e0c3a7b2d4e5f60718293a4b5c6d7e8f90123",
  "started_at": "2026-11-21T10:00:02Z",
  "finished_at": "2026-11-21T10:00:41Z",
  "message": "successfully synced (all tasks run)",
  "initiated_by": "",
  "destination": {"server": "https://kubernetes.default.svc", "namespace": "api"},
  "repo_url": "https://github.com/acme/k8s-config.git",
  "target_revision": "HEAD",
  "images": ["ghcr.io/acme/api:v1.4.2", "docker.io/library/redis:7.2"],
  "url": "https://argocd.example.com/applications/api-prod"
}`

var testConfig = Config{
	Secret:      "argo-secret",
	Environment: "production",
	Applications: map[string]Application{
		"api-prod": {Service: "api", Image: "ghcr.io/acme/api"},
	},
}

func send(t *testing.T, h http.Handler, body string, secret string) (int, changes.Reply) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/collect/argocd", strings.NewReader(body))
	if secret != "" {
		req.Header.Set(changes.SecretHeader, secret)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var rep changes.Reply
	_ = json.Unmarshal(rec.Body.Bytes(), &rep)
	return rec.Code, rep
}

func TestSyncSucceeded(t *testing.T) {
	w := &recorder{}
	h, err := NewWebhook(testConfig, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := send(t, h, succeeded, ""); code != http.StatusUnauthorized {
		t.Errorf("without the secret: %d", code)
	}
	if code, _ := send(t, h, succeeded, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", code)
	}
	code, rep := send(t, h, succeeded, "argo-secret")
	if code != http.StatusOK || rep.Changes != 1 {
		t.Fatalf("%d %+v", code, rep)
	}
	c := w.changes[0]
	if c.Kind != event.ChangeDeploy || c.Service != "api" || c.Environment != "production" || c.Version != "v1.4.2" || c.Commit != "" ||
		!c.Time.Equal(time.Date(2026, 11, 21, 10, 0, 41, 0, time.UTC)) || c.Author != "automated" || c.Source != "argocd" ||
		c.URL != "https://argocd.example.com/applications/api-prod" || c.Title != "Argo CD synced api-prod to v1.4.2" {
		t.Errorf("got %+v", c)
	}
	for k, v := range map[string]string{
		"argocd.revision": "9f1e0c3a7b2d4e5f60718293a4b5c6d7e8f90123", "argocd.application": "api-prod", "status": "succeeded",
		"argocd.destination": "https://kubernetes.default.svc/api", "argocd.sync_status": "Synced",
	} {
		if c.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, c.Attributes[k], v)
		}
	}
	if c.ID != changes.IdentityID(&c) {
		t.Errorf("id %s is not the identity id", c.ID)
	}
}

func TestPhasesAndVersions(t *testing.T) {
	h, _ := NewWebhook(Config{}, &recorder{}, nil)
	var n Notification
	_ = json.Unmarshal([]byte(succeeded), &n)

	// Without an image configured, two images: no tag to pick, so the revision.
	c, reason, err := h.Change(n)
	if err != nil || reason != "" || c.Version != n.Revision || c.Commit != n.Revision || c.Service != "api-prod" || c.Environment != "" {
		t.Errorf("two images, no mapping: %+v %q %v", c, reason, err)
	}
	// One image: its tag.
	one := n
	one.Images = []string{"ghcr.io/acme/api:v1.4.2@sha256:0123"}
	if c, _, _ := h.Change(one); c.Version != "v1.4.2" {
		t.Errorf("one image: version %q", c.Version)
	}
	// A registry with a port is not a tag.
	one.Images = []string{"registry:5000/acme/api"}
	if c, _, _ := h.Change(one); c.Version != n.Revision {
		t.Errorf("untagged image: version %q", c.Version)
	}
	// Failed syncs are recorded as failed; running ones are not recorded.
	failed := n
	failed.Phase, failed.Message, failed.InitiatedBy = "Failed", "one or more objects failed to apply\nreason: x", "alice"
	c, _, _ = h.Change(failed)
	if c.Attributes["status"] != "failed" || c.Title != "Argo CD sync of api-prod to "+n.Revision[:7]+" failed: one or more objects failed to apply" || c.Author != "alice" {
		t.Errorf("failed: %+v", c)
	}
	running := n
	running.Phase = "Running"
	if _, reason, err := h.Change(running); reason == "" || err != nil {
		t.Errorf("running: %q %v", reason, err)
	}
	// version: target_revision.
	h2, _ := NewWebhook(Config{Applications: map[string]Application{"api-prod": {Service: "api", Version: "target_revision"}}}, &recorder{}, nil)
	chart := n
	chart.TargetRevision = "2.7.1"
	if c, _, _ := h2.Change(chart); c.Version != "2.7.1" {
		t.Errorf("target_revision: %q", c.Version)
	}
	// Unknown applications dropped when asked.
	h3, _ := NewWebhook(Config{UnknownApplications: "ignore"}, &recorder{}, nil)
	if _, reason, _ := h3.Change(n); !strings.Contains(reason, "not configured") {
		t.Errorf("ignore: %q", reason)
	}
	for _, bad := range []Notification{{Phase: "Succeeded"}, {App: "a"}, {App: "a", Phase: "Succeeded"}} {
		if _, _, err := h.Change(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if _, err := NewWebhook(Config{Applications: map[string]Application{"a": {Version: "tag"}}}, nil, nil); err == nil {
		t.Error("bad version rule accepted")
	}
}

// TestDocumentedTemplate renders the template of the package documentation
// the way Argo CD does (text/template with toJson, dig, list and printf),
// over an application as the notifications controller sees it, and feeds
// the result to the receiver.
func TestDocumentedTemplate(t *testing.T) {
	src, err := os.ReadFile("argocd.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)body: \|\n(.*?)\n//\ttrigger\.`).FindSubmatch(src)
	if m == nil {
		t.Fatal("template not found in the documentation")
	}
	var body strings.Builder
	for _, line := range strings.Split(string(m[1]), "\n") {
		body.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "//\t"), "        ") + "\n")
	}
	tmpl, err := template.New("correlator").Funcs(sprigSubset).Parse(body.String())
	if err != nil {
		t.Fatal(err)
	}
	var app map[string]any
	_ = json.Unmarshal([]byte(`{
	  "metadata": {"name": "api-prod"},
	  "spec": {"project": "default", "destination": {"server": "https://kubernetes.default.svc", "namespace": "api"},
	           "source": {"repoURL": "https://github.com/acme/k8s-config.git", "targetRevision": "HEAD"}},
	  "status": {"sync": {"status": "Synced", "revision": "9f1e0c3"}, "health": {"status": "Healthy"},
	             "summary": {"images": ["ghcr.io/acme/api:v1.4.2"]},
	             "operationState": {"phase": "Succeeded", "startedAt": "2026-11-21T10:00:02Z", "finishedAt": "2026-11-21T10:00:41Z",
	                                "message": "successfully synced \"quoted\"", "syncResult": {"revision": "9f1e0c3"},
	                                "operation": {"initiatedBy": {"automated": true}}}}}`), &app)
	for name, a := range map[string]map[string]any{"full": app, "multi-source, failed early": withoutSource(app)} {
		var out bytes.Buffer
		if err := tmpl.Execute(&out, map[string]any{"app": a, "context": map[string]string{"argocdUrl": "https://argocd.example.com"}}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w := &recorder{}
		h, _ := NewWebhook(testConfig, w, nil)
		if code, rep := send(t, h, out.String(), "argo-secret"); code != http.StatusOK {
			t.Fatalf("%s: %d %+v\n%s", name, code, rep, out.String())
		}
		if c := w.changes[0]; c.Version != "v1.4.2" || c.Attributes["argocd.revision"] != "9f1e0c3" || c.URL != "https://argocd.example.com/applications/api-prod" {
			t.Errorf("%s: %+v", name, c)
		}
	}
}

// withoutSource drops what a multi-source application, or a sync that
// failed before its result, lacks.
func withoutSource(app map[string]any) map[string]any {
	b, _ := json.Marshal(app)
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	delete(c["spec"].(map[string]any), "source")
	op := c["status"].(map[string]any)["operationState"].(map[string]any)
	delete(op, "syncResult")
	delete(op, "finishedAt")
	return c
}

// sprigSubset implements the Sprig functions the template uses.
var sprigSubset = template.FuncMap{
	"toJson": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"list": func(v ...any) []any { return v },
	"dig": func(ps ...any) any {
		keys, def, m := ps[:len(ps)-2], ps[len(ps)-2], ps[len(ps)-1].(map[string]any)
		var cur any = m
		for _, k := range keys {
			mm, ok := cur.(map[string]any)
			if !ok {
				return def
			}
			if cur, ok = mm[k.(string)]; !ok {
				return def
			}
		}
		return cur
	},
}
