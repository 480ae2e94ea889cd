package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/api"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/store"
)

func impactHarness(t *testing.T) *harness {
	return newHarness(t, func(o *api.Options) {
		o.Impact = impact.New(o.Store.(*store.Store), impact.DefaultConfig())
		o.Incidents = o.Store.(*store.Store)
	})
}

// loadImpactData ingests, in [t0+1h, t0+2h), 12 users of 4 customers
// failing on checkout (unsampled error events), one user failing on
// payments too, 30 users' request lines, and 2 chronic users failing in
// the hour before as well.
func loadImpactData(t *testing.T, h *harness) {
	var errs, logs []map[string]any
	for i := range 30 {
		for _, start := range []time.Duration{0, time.Hour} {
			logs = append(logs, map[string]any{"time": ts(start + time.Duration(i)*time.Minute), "service": "checkout", "severity": "INFO",
				"body": "request completed", "user_id": fmt.Sprintf("u%02d", i), "customer_id": fmt.Sprintf("c%d", i%4),
				"attributes": map[string]string{"http.status_code": "200", "http.route": "POST /orders"}})
		}
	}
	fail := func(id string, at time.Duration, svc string, u int) {
		errs = append(errs, map[string]any{"id": id, "time": ts(at), "service": svc, "type": "NilPointer", "message": "cart is nil",
			"user_id": fmt.Sprintf("u%02d", u), "customer_id": fmt.Sprintf("c%d", u%4), "sample_rate": 1, "level": "error",
			"attributes": map[string]string{"http.route": "POST /orders"}})
	}
	for u := range 12 {
		fail(fmt.Sprintf("e-%d", u), time.Hour+time.Duration(u)*time.Minute, "checkout", u)
	}
	fail("e-pay", time.Hour+30*time.Minute, "payments", 3)
	for u := 12; u < 14; u++ {
		fail(fmt.Sprintf("chronic-%d", u), 10*time.Minute, "checkout", u)
		fail(fmt.Sprintf("chronic-now-%d", u), time.Hour+40*time.Minute, "checkout", u)
	}
	for kind, recs := range map[string][]map[string]any{"errors": errs, "logs": logs} {
		resp, _ := h.ingest(t, kind, ndjson(t, recs))
		wantIngest(t, resp, http.StatusOK, len(recs), 0)
	}
	h.flush(t)
}

// impactWire is the documented JSON shape, decoded from the wire so that a
// renamed field fails here.
type impactWire struct {
	Window struct {
		From     time.Time `json:"from"`
		To       time.Time `json:"to"`
		Services []string  `json:"services"`
		Incident string    `json:"incident"`
	} `json:"window"`
	AffectedUsers struct {
		Observed  *int    `json:"observed"`
		EstimateV float64 `json:"estimate"`
		LowV      float64 `json:"low"`
		HighV     float64 `json:"high"`
		BaselineV float64 `json:"baseline"`
		ExcessV   float64 `json:"excess"`
	} `json:"affected_users"`
	AffectedCustomers struct {
		Observed int     `json:"observed"`
		Estimate float64 `json:"estimate"`
	} `json:"affected_customers"`
	ActiveUsers struct {
		Estimate float64 `json:"estimate"`
	} `json:"active_users"`
	Share     float64 `json:"share"`
	Severity  string  `json:"severity"`
	Customers []struct {
		Customer string `json:"customer"`
		Users    int    `json:"users"`
		TopError string `json:"top_error"`
	} `json:"customers"`
	ByService []struct {
		Service string `json:"service"`
		Routes  []struct {
			Route string `json:"route"`
			Users int    `json:"users"`
		} `json:"routes"`
	} `json:"by_service"`
}

func TestImpactEndpoint(t *testing.T) {
	h := impactHarness(t)
	loadImpactData(t, h)
	q := url.Values{"service": {"checkout,payments"}, "from": {ts(time.Hour)}, "to": {ts(2 * time.Hour)}}
	resp := h.do(t, request{path: "/api/v1/impact?" + q.Encode()})
	if resp.code != http.StatusOK {
		t.Fatalf("status %d\n%s", resp.code, resp.body)
	}
	var got impactWire
	if err := json.Unmarshal(resp.env.Data, &got); err != nil {
		t.Fatal(err)
	}
	u := got.AffectedUsers
	// 12 users plus the 2 chronic ones; u03 failing on payments too counts
	// once. The hour before had the 2 chronic users; the week before has
	// no data and is left out.
	if u.Observed == nil || *u.Observed != 14 || u.EstimateV != 14 || u.LowV != 14 || u.HighV != 14 || u.BaselineV != 2 || u.ExcessV != 12 {
		t.Errorf("affected_users = %s", jsonField(resp.env.Data, "affected_users"))
	}
	if got.AffectedCustomers.Observed != 4 || got.ActiveUsers.Estimate != 30 {
		t.Errorf("customers %+v, active %+v", got.AffectedCustomers, got.ActiveUsers)
	}
	if got.Share != 12.0/30 || got.Severity != "P1" {
		t.Errorf("share %v severity %q, want 0.4 and P1", got.Share, got.Severity)
	}
	if len(got.Customers) != 4 || got.Customers[0].TopError != "NilPointer: cart is nil" {
		t.Errorf("customers = %+v", got.Customers)
	}
	if len(got.ByService) != 2 || got.ByService[0].Service != "checkout" || got.ByService[0].Routes[0].Route != "POST /orders" || got.ByService[0].Routes[0].Users != 14 {
		t.Errorf("by_service = %+v", got.ByService)
	}
	if strings.Join(got.Window.Services, ",") != "checkout,payments" {
		t.Errorf("window = %+v", got.Window)
	}
}

func TestImpactOfIncident(t *testing.T) {
	h := impactHarness(t)
	loadImpactData(t, h)
	open := t0.Add(time.Hour + 5*time.Minute)
	err := h.st.WriteIncident(context.Background(), store.Incident{ID: "inc-7", Title: "checkout errors", Status: "resolved",
		Services: []string{"checkout"}, OpenedAt: open, Onset: t0.Add(time.Hour), ResolvedAt: t0.Add(2 * time.Hour), UpdatedAt: open})
	if err != nil {
		t.Fatal(err)
	}
	resp := h.do(t, request{path: "/api/v1/impact?incident=inc-7"})
	if resp.code != http.StatusOK {
		t.Fatalf("status %d\n%s", resp.code, resp.body)
	}
	var got impactWire
	if err := json.Unmarshal(resp.env.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Window.Incident != "inc-7" || !got.Window.From.Equal(t0.Add(time.Hour)) || !got.Window.To.Equal(t0.Add(2*time.Hour)) ||
		*got.AffectedUsers.Observed != 14 {
		t.Errorf("window %+v, users %s", got.Window, jsonField(resp.env.Data, "affected_users"))
	}
}

func TestImpactParameters(t *testing.T) {
	h := impactHarness(t)
	// Stored incidents that cannot be asked about as they are: a 400
	// naming the incident, not a 500.
	for _, in := range []store.Incident{
		{ID: "inc-long", Services: []string{"api"}, OpenedAt: t0, ResolvedAt: t0.Add(10 * 24 * time.Hour), UpdatedAt: t0},
		{ID: "inc-nosvc", OpenedAt: t0, ResolvedAt: t0.Add(time.Hour), UpdatedAt: t0},
		{ID: "inc-backwards", Services: []string{"api"}, OpenedAt: t0, ResolvedAt: t0.Add(-time.Hour), UpdatedAt: t0},
	} {
		if err := h.st.WriteIncident(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ query, want string }{
		{"", `invalid parameter "service": required`},
		{"service=api", `invalid parameter "from": required`},
		{"service=api&from=yesterday", `invalid parameter "from": cannot parse "yesterday"`},
		{"service=api&from=-1h&to=-2h", "to: "},
		{"service=api&from=-400h", "longer than"},
		{"incident=inc-nope", `invalid parameter "incident": unknown incident "inc-nope"`},
		{"incident=inc-1&service=api", `invalid parameter "service": not allowed with incident`},
		{"incident=inc-long", `invalid parameter "incident": incident inc-long: to: the window is 240h0m0s, longer than`},
		{"incident=inc-nosvc", `invalid parameter "incident": incident inc-nosvc: services: none given`},
		{"incident=inc-backwards", `invalid parameter "incident": incident inc-backwards: resolved at`},
	} {
		t.Run(tt.query, func(t *testing.T) {
			resp := h.do(t, request{path: "/api/v1/impact?" + tt.query})
			if resp.code != http.StatusBadRequest || resp.env.ErrorType != "bad_data" {
				t.Fatalf("status %d, envelope %+v; want 400 bad_data", resp.code, resp.env)
			}
			if !strings.Contains(resp.env.Error, tt.want) {
				t.Errorf("error %q, want it to contain %q", resp.env.Error, tt.want)
			}
		})
	}
}

func jsonField(data json.RawMessage, name string) string {
	var m map[string]json.RawMessage
	json.Unmarshal(data, &m)
	return string(m[name])
}
