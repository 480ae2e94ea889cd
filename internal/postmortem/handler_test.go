package postmortem_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// countingStore counts the builds (one history read each) and, when gate
// is set, holds each until gate closes.
type countingStore struct {
	*fakeStore
	mu     sync.Mutex
	builds map[string]int
	gate   chan struct{}
	inside chan struct{} // receives once per build that reached the store
}

func (c *countingStore) IncidentHistory(ctx context.Context, id string) ([]store.Incident, error) {
	c.mu.Lock()
	if c.builds == nil {
		c.builds = map[string]int{}
	}
	c.builds[id]++
	c.mu.Unlock()
	if c.gate != nil {
		c.inside <- struct{}{}
		<-c.gate
	}
	return c.fakeStore.IncidentHistory(ctx, id)
}

func (c *countingStore) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.builds[id]
}

// The live page is built once per refresh however many tabs reload it,
// concurrent requests share one build, and the cache holds a bounded
// number of incidents.
func TestLivePageCache(t *testing.T) {
	st := &countingStore{fakeStore: fakeIncident()}
	now := ft0.Add(2 * time.Hour)
	h := postmortem.NewHandler(postmortem.NewBuilder(st, postmortem.Options{Now: func() time.Time { return ft0.Add(2 * time.Hour) }}), 20*time.Second, nil)
	postmortem.SetClock(h, func() time.Time { return now })
	postmortem.SetMaxPages(h, 2)
	mux := http.NewServeMux()
	mux.Handle("GET /incidents/{id}", h.Live())
	get := func(id string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/incidents/"+id, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "<section id=\"summary\">") {
			t.Fatalf("GET %s: %d %.200s", id, rec.Code, rec.Body.String())
		}
		return rec
	}
	first := get("a").Body.String()
	if again := get("a").Body.String(); again != first || st.count("a") != 1 {
		t.Errorf("%d builds for two reloads within the refresh, want 1 (same page: %v)", st.count("a"), again == first)
	}
	now = now.Add(20 * time.Second)
	if get("a"); st.count("a") != 2 {
		t.Errorf("%d builds after the refresh interval, want 2", st.count("a"))
	}
	// Two more incidents: a, the oldest, makes room.
	now = now.Add(time.Second)
	get("b")
	now = now.Add(time.Second)
	get("c")
	get("c")
	get("a")
	if st.count("a") != 3 || st.count("b") != 1 || st.count("c") != 1 {
		t.Errorf("builds a=%d b=%d c=%d, want 3 1 1: the oldest page is evicted, the others kept", st.count("a"), st.count("b"), st.count("c"))
	}

	// Concurrent requests while a build is under way wait for it.
	st.gate, st.inside = make(chan struct{}), make(chan struct{}, 8)
	now = now.Add(time.Minute)
	var wg sync.WaitGroup
	bodies := make([]string, 5)
	for i := range bodies {
		wg.Go(func() { bodies[i] = get("d").Body.String() })
	}
	<-st.inside
	time.Sleep(100 * time.Millisecond) // let the other requests join the build
	close(st.gate)
	wg.Wait()
	if n := st.count("d"); n != 1 {
		t.Errorf("%d builds for 5 concurrent requests, want 1 shared", n)
	}
	for i, b := range bodies {
		if b != bodies[0] {
			t.Errorf("request %d got another page", i)
		}
	}
}

// The HTML documents forbid scripts and outside fetches, and keep a
// signed link's query string out of the Referer of the links they hold.
func TestHTMLSecurityHeaders(t *testing.T) {
	want := map[string]string{
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'",
	}
	for _, path := range []string{"/incidents/inc-1?sig=abc", "/api/v1/incidents/inc-1/postmortem?format=html"} {
		for _, try := range []string{"built", "cached"} {
			rec := httptest.NewRecorder()
			mux := serveFake(fakeIncident())
			mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if try == "cached" {
				rec = httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			}
			if rec.Code != 200 {
				t.Fatalf("%s: %d", path, rec.Code)
			}
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s (%s): %s = %q, want %q", path, try, k, got, v)
				}
			}
		}
	}
}
