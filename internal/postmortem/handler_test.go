package postmortem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/postmortem"
	"github.com/correlator/correlator/internal/store"
)

func serveFake(st *fakeStore) *http.ServeMux {
	h := postmortem.NewHandler(postmortem.NewBuilder(st, postmortem.Options{Now: func() time.Time { return ft0.Add(2 * time.Hour) }}), 20*time.Second, nil)
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/incidents/{id}/postmortem", h.Bundle())
	mux.Handle("GET /incidents/{id}", h.Live())
	return mux
}

func TestHandlers(t *testing.T) {
	resolved := fakeIncident()
	open := fakeIncident()
	open.hist = open.hist[:3]
	tests := []struct {
		name     string
		st       *fakeStore
		path     string
		code     int
		ctype    string
		contains []string
		absent   []string
	}{
		{"json in the envelope", resolved, "/api/v1/incidents/inc-1/postmortem", 200, "application/json", []string{`"status":"success"`, `"data":{"incident":{"id":"inc-1"`}, nil},
		{"markdown", resolved, "/api/v1/incidents/inc-1/postmortem?format=md", 200, "text/markdown", []string{"# Post-mortem: ", "## Action items"}, nil},
		{"html, no refresh", open, "/api/v1/incidents/inc-1/postmortem?format=html", 200, "text/html", []string{"<section id=\"timeline\">"}, []string{"http-equiv"}},
		{"bad format names the parameter", resolved, "/api/v1/incidents/inc-1/postmortem?format=pdf", 400, "application/json", []string{`invalid parameter \"format\"`, `"errorType":"bad_data"`}, nil},
		{"unknown incident", &fakeStore{}, "/api/v1/incidents/nope/postmortem", 404, "application/json", []string{`"errorType":"not_found"`, `unknown incident \"nope\"`}, nil},
		{"id too long", resolved, "/api/v1/incidents/" + strings.Repeat("x", 300) + "/postmortem", 400, "application/json", []string{`invalid parameter \"id\"`}, nil},
		{"store down: no detail leaks", &fakeStore{fail: errStoreDn}, "/api/v1/incidents/inc-1/postmortem", 503, "application/json", []string{`"errorType":"unavailable"`}, []string{"store down"}},
		{"live page of an open incident reloads", open, "/incidents/inc-1", 200, "text/html", []string{`<meta http-equiv="refresh" content="20">`, "still open"}, nil},
		{"live page of a resolved incident does not", resolved, "/incidents/inc-1", 200, "text/html", []string{"<section id=\"summary\">"}, []string{"http-equiv"}},
		{"live page, unknown incident", &fakeStore{hist: []store.Incident{}}, "/incidents/nope", 404, "text/plain", []string{"unknown incident"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			serveFake(tt.st).ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			body := rec.Body.String()
			if rec.Code != tt.code || !strings.HasPrefix(rec.Header().Get("Content-Type"), tt.ctype) {
				t.Fatalf("%d %s, want %d %s:\n%.400s", rec.Code, rec.Header().Get("Content-Type"), tt.code, tt.ctype, body)
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q:\n%.600s", s, body)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(body, s) {
					t.Errorf("body has %q", s)
				}
			}
			if strings.HasPrefix(tt.ctype, "application/json") && !json.Valid(rec.Body.Bytes()) {
				t.Error("not JSON")
			}
		})
	}
}
