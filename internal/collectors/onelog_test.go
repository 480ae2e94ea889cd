package collectors_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/collectors/argocd"
	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/collectors/github"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/ingest"
)

// store behaves like the changes table: a ReplacingMergeTree keeping the
// latest row per (service, time, id), read with FINAL. It also reads a
// change back by id, as the Merger's Reader.
type store struct {
	mu   sync.Mutex
	rows map[[3]string]event.Change
}

func newStore() *store { return &store{rows: map[[3]string]event.Change{}} }

func (s *store) Add(_ context.Context, b *event.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range b.Changes {
		s.rows[[3]string{c.Service, c.Time.UTC().Format(time.RFC3339Nano), c.ID}] = c
	}
	return nil
}

func (s *store) ChangeByID(_ context.Context, id string) (event.Change, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.rows {
		if c.ID == id {
			return c, true, nil
		}
	}
	return event.Change{}, false, nil
}

func (s *store) all() []event.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []event.Change
	for _, c := range s.rows {
		out = append(out, c)
	}
	return out
}

// server wires the collectors as `correlator serve` would: every receiver,
// and the ingest API that `correlator mark` posts to, write through one
// MergingWriter.
type server struct {
	http.Handler
	w *changes.MergingWriter
}

func newServer(t *testing.T, st *store, reader changes.Reader) *server {
	t.Helper()
	w := changes.NewMergingWriter(changes.NewMerger(changes.MergerOptions{Reader: reader}), st)
	gh, err := github.NewWebhook(github.Config{
		Secret:       "gh-secret",
		Repositories: map[string]github.Repository{"octocat/example": {Service: "api", Environment: "production"}},
	}, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	argo, err := argocd.NewWebhook(argocd.Config{
		Environment:  "production",
		Applications: map[string]argocd.Application{"api-prod": {Service: "api", Image: "ghcr.io/acme/api"}},
	}, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /collect/github", gh)
	mux.Handle("POST /collect/argocd", argo)
	mux.HandleFunc("POST /api/v1/ingest/changes", func(rw http.ResponseWriter, r *http.Request) {
		res, err := ingest.Decode(r.Context(), event.KindChanges, r.Body, ingest.Options{}, func(b *event.Batch) error { return w.Add(r.Context(), b) })
		if err != nil || res.Rejected > 0 {
			t.Errorf("ingest: %v %+v", err, res.Errors)
		}
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write([]byte(`{"status":"success","data":{"accepted":1,"rejected":0,"errors":[]}}`))
	})
	return &server{Handler: mux, w: w}
}

func githubDelivery(t *testing.T, h http.Handler) {
	t.Helper()
	body, err := os.ReadFile("github/testdata/deployment_status.json")
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/collect/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "deployment_status")
	req.Header.Set("X-Hub-Signature-256", "sha256="+changes.SignHMACSHA256("gh-secret", body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("github: %d %s", rec.Code, rec.Body)
	}
}

func argoNotification(t *testing.T, h http.Handler) {
	t.Helper()
	body := `{"app": "api-prod", "project": "default", "phase": "Succeeded", "sync_status": "Synced", "health_status": "Healthy",
	  "revision": "9f1e0c3a7b2d4e5f60718293a4b5c6d7e8f90123", "finished_at": "2012-07-20T02:04:30Z",
	  "destination": {"server": "https://kubernetes.default.svc", "namespace": "api"},
	  "images": ["ghcr.io/acme/api:1.4.2", "docker.io/library/redis:7.2"], "url": "https://argocd.example.com/applications/api-prod"}`
	req := httptest.NewRequest(http.MethodPost, "/collect/argocd", strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("argocd: %d %s", rec.Code, rec.Body)
	}
}

func mark(t *testing.T, h http.Handler) {
	t.Helper()
	c, err := changes.ParseMarkArgs("deploy", []string{"--service", "api", "--version", "v1.4.2", "--env", "production",
		"--at", "2012-07-20T02:06:00Z", "--url", "https://ci.example.com/runs/77"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	if err := changes.Mark(context.Background(), srv.Client(), srv.URL, "", c); err != nil {
		t.Fatal(err)
	}
}

// TestOneChangeLog: a GitHub deployment, the Argo CD sync that performed
// it and a `correlator mark` from CI, of the same version, are one change
// with three sources, whatever the order they arrive in, and still after a
// restart when a source reports again.
func TestOneChangeLog(t *testing.T) {
	orders := map[string][]func(*testing.T, http.Handler){
		"github, argocd, mark": {githubDelivery, argoNotification, mark},
		"mark, argocd, github": {mark, argoNotification, githubDelivery},
		"argocd, github, mark": {argoNotification, githubDelivery, mark},
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			st := newStore()
			srv := newServer(t, st, st)
			for _, send := range order {
				send(t, srv)
			}
			rows := st.all()
			if len(rows) != 1 {
				t.Fatalf("%d rows, want 1: %+v", len(rows), rows)
			}
			c := rows[0]
			if got := changes.Sources(c); strings.Join(got, ",") != "argocd,github,mark" {
				t.Errorf("sources %v", got)
			}
			if c.Kind != event.ChangeDeploy || c.Service != "api" || c.Environment != "production" || c.Commit != "b3a5c1e0f9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4" ||
				c.Attributes["github.deployment_id"] != "2" || c.Attributes["argocd.application"] != "api-prod" || c.Attributes["status"] != "succeeded" {
				t.Errorf("merged change %+v", c)
			}
			want := event.Change{Kind: event.ChangeDeploy, Service: "api", Environment: "production", Version: "v1.4.2"}
			if c.ID != changes.IdentityID(&want) {
				t.Errorf("id %s, want the identity id %s", c.ID, changes.IdentityID(&want))
			}

			// A restart, then GitHub redelivers: the Reader finds the stored
			// change and the row stays one, with its three sources.
			restarted := newServer(t, st, st)
			githubDelivery(t, restarted)
			if rows := st.all(); len(rows) != 1 || strings.Join(changes.Sources(rows[0]), ",") != "argocd,github,mark" {
				t.Errorf("after a restart and a redelivery: %d rows %+v", len(rows), rows)
			}
		})
	}
}

// TestRestartWithoutReader documents the limit: without reading back, a
// source that reports again after a restart writes a row of its own when
// its time differs from the merged change's.
func TestRestartWithoutReader(t *testing.T) {
	st := newStore()
	srv := newServer(t, st, nil)
	argoNotification(t, srv) // first: the merged change keeps Argo CD's time
	githubDelivery(t, srv)
	restarted := newServer(t, st, nil)
	githubDelivery(t, restarted)
	rows := st.all()
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2 (the documented duplicate)", len(rows))
	}
	if rows[0].ID != rows[1].ID {
		t.Error("the duplicate has another id")
	}
}
