// Package grafanatest is a small working model of Grafana's annotations
// HTTP API, as Grafana documents it (POST /api/annotations answers
// {"message": "Annotation added", "id": N}, PUT /api/annotations/:id
// {"message": "Annotation updated"} or 404 for an unknown id, GET
// /api/annotations filters by time and dashboard, DELETE
// /api/annotations/:id, GET /api/dashboards/uid/:uid), for end-to-end tests whose requests
// are too many to record one by one. The recorded conversations in
// internal/grafana/testdata check the request shapes exactly; this checks
// that a whole loop leaves Grafana holding the right annotations.
package grafanatest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// DataKey is the field of an annotation's data object holding the
// correlator key it was made for ("change:ID", "incident:ID").
const DataKey = "correlator_key"

// Sim is the model. Its zero value is not ready; use New.
type Sim struct {
	mu     sync.Mutex
	nextID int64
	byID   map[int64]map[string]any
	posts  int
	puts   int
	dels   int
	// dashboards are the UIDs GET /api/dashboards/uid/:uid finds.
	dashboards map[string]bool
	// Auth is the Authorization header of the last request.
	auth string
}

// New returns an empty Grafana.
func New() *Sim {
	return &Sim{nextID: 1, byID: map[int64]map[string]any{}, dashboards: map[string]bool{}}
}

// AddDashboard makes a dashboard with uid exist.
func (g *Sim) AddDashboard(uid string) {
	g.mu.Lock()
	g.dashboards[uid] = true
	g.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (g *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.auth = r.Header.Get("Authorization")
	w.Header().Set("Content-Type", "application/json")
	reply := func(status int, v any) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/annotations":
		id := g.nextID
		g.nextID++
		g.posts++
		body["id"] = id
		g.byID[id] = body
		reply(200, map[string]any{"message": "Annotation added", "id": id})
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/api/annotations/"):
		id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/api/annotations/"), 10, 64)
		old, ok := g.byID[id]
		if !ok {
			reply(404, map[string]any{"message": "Annotation not found"})
			return
		}
		g.puts++
		for k, v := range body {
			old[k] = v
		}
		reply(200, map[string]any{"message": "Annotation updated"})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/annotations/"):
		id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/api/annotations/"), 10, 64)
		if _, ok := g.byID[id]; !ok {
			reply(404, map[string]any{"message": "Annotation not found"})
			return
		}
		g.dels++
		delete(g.byID, id)
		reply(200, map[string]any{"message": "Annotation deleted"})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/dashboards/uid/"):
		uid := strings.TrimPrefix(r.URL.Path, "/api/dashboards/uid/")
		if !g.dashboards[uid] {
			reply(404, map[string]any{"message": "Dashboard not found"})
			return
		}
		reply(200, map[string]any{"dashboard": map[string]any{"uid": uid, "id": 1, "title": uid}, "meta": map[string]any{"slug": uid}})
	case r.Method == http.MethodGet && r.URL.Path == "/api/annotations":
		from, _ := strconv.ParseFloat(r.URL.Query().Get("from"), 64)
		to, _ := strconv.ParseFloat(r.URL.Query().Get("to"), 64)
		uid := r.URL.Query().Get("dashboardUID")
		out := []map[string]any{}
		for _, a := range g.byID {
			end, _ := a["timeEnd"].(float64)
			start, _ := a["time"].(float64)
			if au, _ := a["dashboardUID"].(string); end >= from && start <= to && au == uid {
				out = append(out, a)
			}
		}
		reply(200, out)
	default:
		reply(404, map[string]any{"message": "Not found"})
	}
}

// ByKey returns the annotations Grafana holds per correlator key.
func (g *Sim) ByKey() map[string][]map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string][]map[string]any{}
	for _, a := range g.byID {
		d, _ := a["data"].(map[string]any)
		k, _ := d[DataKey].(string)
		out[k] = append(out[k], a)
	}
	return out
}

// Requests returns how many annotations were created (POST) and updated
// (PUT), and the last request's Authorization header.
func (g *Sim) Requests() (posts, puts int, auth string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.posts, g.puts, g.auth
}

// Deletes returns how many annotations were deleted.
func (g *Sim) Deletes() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dels
}
