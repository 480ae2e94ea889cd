package argocd

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/collectors/collectortest"
	"github.com/correlator/correlator/internal/event"
)

// Run with
//
//	go test -run '^$' -fuzz '^FuzzWebhook$' -fuzztime 20s ./internal/collectors/argocd/

var fuzzNow = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

const fuzzSecret = "argo-secret"

// fuzzSucceeded is what the documented template renders for a successful
// sync.
const fuzzSucceeded = `{"app":"api-prod","project":"default","phase":"Succeeded","sync_status":"Synced","health_status":"Healthy",` +
	`"revision":"9f1e0c3a7b2d4e5f60718293a4b5c6d7e8f90123","sync_revision":"9f1e0c3a7b2d4e5f60718293a4b5c6d7e8f90123",` +
	`"started_at":"2026-11-21T10:00:02Z","finished_at":"2026-11-21T10:00:41Z","message":"successfully synced (all tasks run)",` +
	`"initiated_by":"","destination":{"server":"https://kubernetes.default.svc","namespace":"api"},` +
	`"repo_url":"https://github.com/acme/k8s-config.git","target_revision":"HEAD",` +
	`"images":["ghcr.io/acme/api:v1.4.2","docker.io/library/redis:7.2"],"url":"https://argocd.example.com/applications/api-prod"}`

// fuzzConfig picks a configuration from the low bits of opts.
func fuzzConfig(opts uint8) Config {
	c := Config{
		Environment: "production",
		Applications: map[string]Application{
			"api-prod": {Service: "api", Image: "ghcr.io/acme/api", Version: []string{"", "image", "revision", "target_revision"}[opts&3]},
			"web":      {Environment: "staging"},
		},
	}
	if opts&4 != 0 {
		c.UnknownApplications = "ignore"
	}
	if opts&8 != 0 {
		c.Secret = fuzzSecret
	}
	return c
}

// FuzzWebhook drives the whole receiver: it never panics, answers 2xx or
// 4xx (5xx only when the writer fails), says what is wrong in every 4xx,
// and writes only valid changes.
func FuzzWebhook(f *testing.F) {
	for _, s := range []struct {
		body string
		opts uint8
	}{
		{fuzzSucceeded, 0},
		{fuzzSucceeded, 2},
		{fuzzSucceeded, 3 | 8},
		{fuzzSucceeded, 8 | 16},
		{fuzzSucceeded, 32},
		{strings.Replace(fuzzSucceeded, `"Succeeded"`, `"Failed"`, 1), 0},
		{strings.Replace(fuzzSucceeded, `"Succeeded"`, `"Running"`, 1), 0},
		{strings.Replace(fuzzSucceeded, `"api-prod"`, `"other"`, 1), 4},
		{`{"app":"web","phase":"Error","message":"one\ntwo","sync_revision":"abc1234","images":["web@sha256:abc","a:b:c"]}`, 0},
		{`{"app":"web","phase":"succeeded","images":["x/y:1","z:2"]}`, 0},
		{`{"app":"new","phase":"Succeeded","revision":"r","finished_at":"0001-01-01T00:00:00Z"}`, 0},
		{`{"app":"new","phase":"Succeeded","revision":"r","finished_at":"9999-12-31T23:59:59-23:59"}`, 0},
		{`{"app":" ","phase":"Succeeded","revision":"r"}`, 0},
		{`{"app":"api-prod","phase":"Succeeded"}`, 0},
		{`{"app":"api-prod"}`, 0},
		{`{"phase":"Succeeded"}`, 0},
		{`{"app":1}`, 0},
		{`[]`, 0},
		{`{"app":`, 0},
		{``, 0},
	} {
		f.Add([]byte(s.body), s.opts)
	}
	f.Fuzz(func(t *testing.T, body []byte, opts uint8) {
		cfg := fuzzConfig(opts)
		fw := &collectortest.Writer{Fail: opts&32 != 0}
		h, err := NewWebhook(cfg, fw, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.now = func() time.Time { return fuzzNow }
		req := httptest.NewRequest(http.MethodPost, "/collect/argocd", bytes.NewReader(body))
		wrong := opts&16 != 0
		if wrong {
			req.Header.Set(changes.SecretHeader, "not the secret")
		} else {
			req.Header.Set(changes.SecretHeader, fuzzSecret)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		collectortest.CheckReply(t, rec, fw, changes.Validate)
		if cfg.Secret != "" && wrong && rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong secret answered %d", rec.Code)
		}
		for _, c := range fw.Changes() {
			if c.Kind != event.ChangeDeploy || c.Source != Source || c.Version == "" || c.Author == "" {
				t.Fatalf("unexpected change %+v", c)
			}
			if s := c.Attributes[changes.StatusAttr]; s != changes.StatusSucceeded && s != changes.StatusFailed {
				t.Fatalf("status attribute %q", s)
			}
		}
	})
}
