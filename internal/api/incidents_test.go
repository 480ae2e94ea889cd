package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/api"
	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/incident"
	"github.com/correlator/correlator/internal/store"
)

// incidentHarness serves the incident endpoints over a Tracker with the
// real engine and analyzer; edit adjusts the options further.
func incidentHarness(t *testing.T, edit func(*api.Options)) *harness {
	return newHarness(t, func(o *api.Options) {
		st := o.Store.(*store.Store)
		o.IncidentBook = incident.NewTracker(st, incident.Options{
			Engine: correlate.New(st, correlate.Options{}), Analyzer: impact.New(st, impact.Config{}),
		})
		if edit != nil {
			edit(o)
		}
	})
}

// incidentWire is the documented JSON shape of an incident, decoded from
// the wire so that a renamed field fails here.
type incidentWire struct {
	ID         string            `json:"id"`
	Title      string            `json:"title"`
	Status     string            `json:"status"`
	Severity   string            `json:"severity"`
	Services   []string          `json:"services"`
	OpenedAt   time.Time         `json:"opened_at"`
	Onset      time.Time         `json:"onset"`
	ResolvedAt *time.Time        `json:"resolved_at"`
	Note       string            `json:"note"`
	Attributes map[string]string `json:"attributes"`
	History    []incidentWire    `json:"history"`
	Snapshots  []struct {
		Trigger  string `json:"trigger"`
		Verdict  string `json:"verdict"`
		Suspects []struct {
			ChangeID string `json:"change_id"`
		} `json:"suspects"`
		Impact *struct {
			Severity string `json:"severity"`
		} `json:"impact"`
		Error string `json:"error"`
	} `json:"snapshots"`
}

func (h *harness) call(t *testing.T, method, path, body string) response {
	t.Helper()
	r := request{method: method, path: path}
	if body != "" {
		r.body = strings.NewReader(body)
	}
	return h.do(t, r)
}

func decodeIncident(t *testing.T, r response) incidentWire {
	t.Helper()
	var in incidentWire
	if err := json.Unmarshal(r.env.Data, &in); err != nil {
		t.Fatalf("incident: %v\n%s", err, r.body)
	}
	return in
}

func wantStatus(t *testing.T, r response, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d\n%s", r.code, code, r.body)
	}
}

// TestIncidentLifecycleEndpoints opens, updates, reads, resolves and lists
// one incident through the API.
func TestIncidentLifecycleEndpoints(t *testing.T) {
	h := incidentHarness(t, nil)
	change := fmt.Sprintf(`{"id":"chg-api-v42","time":%q,"kind":"deploy","service":"api","version":"v42"}`, time.Now().UTC().Add(-20*time.Minute).Format(time.RFC3339))
	resp, _ := h.ingest(t, "changes", change)
	wantIngest(t, resp, http.StatusOK, 1, 0)
	h.flush(t)

	r := h.call(t, "POST", "/api/v1/incidents", `{"services":["api"],"at":"-10m","title":"checkout 5xx above 5%","severity":"P2"}`)
	wantStatus(t, r, http.StatusOK)
	in := decodeIncident(t, r)
	if !regexp.MustCompile(`^inc-\d{8}-\d{4}-[0-9a-f]{4}$`).MatchString(in.ID) || in.Status != "open" || in.Severity != "P2" ||
		in.ResolvedAt != nil || time.Since(in.Onset) < 9*time.Minute {
		t.Fatalf("opened %+v", in)
	}
	path := "/api/v1/incidents/" + in.ID

	r = h.call(t, "PATCH", path, `{"note":"rolled back api to v41","severity":"P1"}`)
	wantStatus(t, r, http.StatusOK)
	if u := decodeIncident(t, r); u.Note != "rolled back api to v41" || u.Severity != "P1" || u.Title != in.Title {
		t.Errorf("updated %+v", u)
	}

	r = h.call(t, "POST", path+"/resolve", `{"cause":"chg-api-v42","note":"back to baseline"}`)
	wantStatus(t, r, http.StatusOK)
	if res := decodeIncident(t, r); res.Status != "resolved" || res.ResolvedAt == nil || res.Attributes["cause"] != "chg-api-v42" {
		t.Errorf("resolved %+v", res)
	}

	r = h.call(t, "GET", path, "")
	wantStatus(t, r, http.StatusOK)
	d := decodeIncident(t, r)
	if len(d.History) != 3 || d.History[0].Note != "" || d.History[1].Note != "rolled back api to v41" || d.Status != "resolved" {
		t.Errorf("history %+v", d.History)
	}
	if len(d.Snapshots) != 3 || d.Snapshots[0].Trigger != "open" || d.Snapshots[2].Trigger != "resolve" {
		t.Fatalf("snapshots %+v", d.Snapshots)
	}
	for _, sn := range d.Snapshots {
		if sn.Verdict == "" || sn.Impact == nil || sn.Error != "" || len(sn.Suspects) == 0 || sn.Suspects[0].ChangeID != "chg-api-v42" {
			t.Errorf("%s snapshot summary %+v", sn.Trigger, sn)
		}
	}

	r = h.call(t, "POST", path+"/resolve", "")
	wantStatus(t, r, http.StatusConflict)
	if r.env.ErrorType != "conflict" || !strings.Contains(r.env.Error, "already resolved") {
		t.Errorf("second resolve: %+v", r.env)
	}

	for q, want := range map[string]int{"": 1, "?status=open": 0, "?status=resolved": 1, "?since=-1m&limit=5": 1} {
		r = h.call(t, "GET", "/api/v1/incidents"+q, "")
		wantStatus(t, r, http.StatusOK)
		var list []incidentWire
		if err := json.Unmarshal(r.env.Data, &list); err != nil {
			t.Fatal(err)
		}
		if len(list) != want {
			t.Errorf("list%s has %d incidents, want %d\n%s", q, len(list), want, r.body)
		}
	}
}

func TestIncidentEndpointErrors(t *testing.T) {
	h := incidentHarness(t, nil)
	r := h.call(t, "POST", "/api/v1/incidents", `{"services":["api"],"title":"t"}`)
	wantStatus(t, r, http.StatusOK)
	open := "/api/v1/incidents/" + decodeIncident(t, r).ID
	tests := []struct {
		name, method, path, body string
		code                     int
		errorType, text          string
	}{
		{"open: no body", "POST", "/api/v1/incidents", "", 400, "bad_data", "empty body"},
		{"open: not JSON", "POST", "/api/v1/incidents", "{", 400, "bad_data", "invalid JSON body"},
		{"open: two values", "POST", "/api/v1/incidents", `{"services":["api"],"title":"t"} {}`, 400, "bad_data", "more than one JSON value"},
		{"open: no services", "POST", "/api/v1/incidents", `{"services":[],"title":"t"}`, 400, "bad_data", `invalid parameter "services": none given`},
		{"open: services not a list", "POST", "/api/v1/incidents", `{"services":"api","title":"t"}`, 400, "bad_data", `invalid parameter "services": want an array`},
		{"open: misspelt field", "POST", "/api/v1/incidents", `{"services":["api"],"title":"t","sevrity":"P1"}`, 400, "bad_data", `invalid parameter "sevrity": unknown field`},
		{"open: bad onset", "POST", "/api/v1/incidents", `{"services":["api"],"title":"t","at":"yesterday"}`, 400, "bad_data", `invalid parameter "at"`},
		{"open: future onset", "POST", "/api/v1/incidents", `{"services":["api"],"title":"t","at":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, 400, "bad_data", `invalid parameter "at": `},
		{"open: bad severity", "POST", "/api/v1/incidents", `{"services":["api"],"title":"t","severity":"very bad"}`, 400, "bad_data", `invalid parameter "severity"`},
		{"open: no title", "POST", "/api/v1/incidents", `{"services":["api"]}`, 400, "bad_data", `invalid parameter "title": required`},
		{"open: body too large", "POST", "/api/v1/incidents", `{"services":["api"],"title":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "too_large", "over the limit"},
		{"update: unknown incident", "PATCH", "/api/v1/incidents/inc-nope", `{"note":"n"}`, 404, "not_found", `no incident "inc-nope"`},
		{"update: nothing", "PATCH", open, `{}`, 400, "bad_data", "nothing to change (give title, severity, services, note or cause)"},
		{"update: unknown cause", "PATCH", open, `{"cause":"chg-nope"}`, 400, "bad_data", `invalid parameter "cause": no change with id "chg-nope"`},
		{"resolve: unknown incident", "POST", "/api/v1/incidents/inc-nope/resolve", ``, 404, "not_found", "no incident"},
		{"resolve: unknown cause", "POST", open + "/resolve", `{"cause":"chg-nope"}`, 400, "bad_data", `invalid parameter "cause"`},
		{"resolve: before onset", "POST", open + "/resolve", `{"at":"-1h"}`, 400, "bad_data", `invalid parameter "at": `},
		{"get: unknown incident", "GET", "/api/v1/incidents/inc-nope", "", 404, "not_found", "no incident"},
		{"list: unknown status", "GET", "/api/v1/incidents?status=closed", "", 400, "bad_data", `invalid parameter "status"`},
		{"list: bad limit", "GET", "/api/v1/incidents?limit=many", "", 400, "bad_data", `invalid parameter "limit"`},
		{"list: limit too big", "GET", "/api/v1/incidents?limit=5000", "", 400, "bad_data", `invalid parameter "limit"`},
		{"list: bad since", "GET", "/api/v1/incidents?since=last+week", "", 400, "bad_data", `invalid parameter "since"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.call(t, tt.method, tt.path, tt.body)
			wantStatus(t, r, tt.code)
			if r.env.Status != "error" || r.env.ErrorType != tt.errorType || !strings.Contains(r.env.Error, tt.text) {
				t.Errorf("envelope %+v, want %s containing %q", r.env, tt.errorType, tt.text)
			}
		})
	}
	// None of the rejected requests changed the open incident.
	r = h.call(t, "GET", open, "")
	wantStatus(t, r, http.StatusOK)
	if d := decodeIncident(t, r); len(d.History) != 1 || d.Status != "open" {
		t.Errorf("open incident after rejected requests: %d states, %s", len(d.History), d.Status)
	}
}

func TestIncidentEndpointScopes(t *testing.T) {
	h := incidentHarness(t, func(o *api.Options) { o.Auth, o.AuthRequired = authConfig, true })
	openBody := `{"services":["api"],"title":"t"}`
	var id string
	for _, tt := range []struct {
		name, method, path, token, body string
		code                            int
	}{
		{"read token cannot open", "POST", "/api/v1/incidents", readToken, openBody, 403},
		{"no token cannot list", "GET", "/api/v1/incidents", "", "", 401},
		{"ingest token opens", "POST", "/api/v1/incidents", ingestToken, openBody, 200},
		{"ingest token cannot list", "GET", "/api/v1/incidents", ingestToken, "", 403},
		{"read token lists", "GET", "/api/v1/incidents", readToken, "", 200},
		{"read token reads", "GET", "/api/v1/incidents/{id}", readToken, "", 200},
		{"read token cannot update", "PATCH", "/api/v1/incidents/{id}", readToken, `{"note":"n"}`, 403},
		{"read token cannot resolve", "POST", "/api/v1/incidents/{id}/resolve", readToken, "", 403},
		{"admin resolves", "POST", "/api/v1/incidents/{id}/resolve", adminToken, "", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := request{method: tt.method, path: strings.ReplaceAll(tt.path, "{id}", id), token: tt.token}
			if tt.body != "" {
				r.body = strings.NewReader(tt.body)
			}
			resp := h.do(t, r)
			wantStatus(t, resp, tt.code)
			if tt.method == "POST" && tt.code == 200 && id == "" {
				id = decodeIncident(t, resp).ID
			}
		})
	}
}

func TestIncidentEndpointsWithoutTracker(t *testing.T) {
	h := newHarness(t, nil)
	r := h.call(t, "GET", "/api/v1/incidents", "")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.env.ErrorType != "unavailable" || !strings.Contains(r.env.Error, "no incident tracker") {
		t.Errorf("envelope %+v", r.env)
	}
}
