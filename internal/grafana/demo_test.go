package grafana

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/grafana/grafanatest"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Cleanup()
	os.Exit(code)
}

// TestDemoIncidentOnTheRealStore runs the overlay over the demo scenario
// in the embedded store: its changes and its incident, with a snapshot
// ranked by the engine, all reach Grafana once; a second sync sends
// nothing; resolving the incident updates its one region in place.
func TestDemoIncidentOnTheRealStore(t *testing.T) {
	ctx := context.Background()
	sc, err := scenario.Generate(scenario.Options{Seed: 3, Days: 1, Services: 5})
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.Embedded(t)
	if err := st.Write(ctx, &sc.Batch); err != nil {
		t.Fatal(err)
	}
	ans, err := correlate.New(st, correlate.Options{}).WhatChanged(ctx, correlate.Query{Service: sc.Service, At: sc.Detected, Lookback: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	causes, _ := json.Marshal(ans)
	in := store.Incident{
		ID: "inc-demo", Title: "Errors on " + sc.Service, Status: "open", Severity: "sev2", Services: []string{sc.Service},
		OpenedAt: sc.Detected, Onset: sc.Onset, UpdatedAt: sc.Detected,
	}
	if err := st.WriteIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteSnapshot(ctx, store.Snapshot{IncidentID: in.ID, TakenAt: sc.Detected, Trigger: "open", WindowFrom: sc.Detected.Add(-2 * time.Hour), WindowTo: sc.Detected, Causes: string(causes)}); err != nil {
		t.Fatal(err)
	}

	g := grafanatest.New()
	srv := httptest.NewServer(g)
	defer srv.Close()
	now := sc.Detected.Add(10 * time.Minute)
	s, err := New(Config{URL: srv.URL, Token: testToken, Lookback: Duration(48 * time.Hour)}, st, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.SyncOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wantChanges int
	for _, c := range sc.Batch.Changes {
		if c.Time.Before(now.Add(time.Hour)) {
			wantChanges++
		}
	}
	if posts, _, _ := g.Requests(); res.Created != wantChanges+1 || posts != wantChanges+1 {
		t.Fatalf("created %d (%d posts), want the %d changes and the incident", res.Created, posts, wantChanges)
	}
	byKey := g.ByKey()
	for _, c := range sc.Batch.Changes {
		a := byKey[changeKey(c.ID)]
		if !c.Time.Before(now.Add(time.Hour)) {
			if len(a) != 0 {
				t.Errorf("change %s after the sync's range was annotated", c.ID)
			}
			continue
		}
		if len(a) != 1 {
			t.Fatalf("change %s has %d annotations, want 1", c.ID, len(a))
		}
		tags := a[0]["tags"].([]any)
		if !slices.Contains(tags, any("service:"+c.Service)) || !slices.Contains(tags, any(string(c.Kind))) {
			t.Errorf("change %s tags %v", c.ID, tags)
		}
	}
	inc := byKey[incidentKey(in.ID)]
	if len(inc) != 1 {
		t.Fatalf("incident has %d annotations, want 1", len(inc))
	}
	top := ans.Candidates[0]
	text := inc[0]["text"].(string)
	if !strings.Contains(text, top.Change.Service) || !strings.Contains(text, strconv.FormatFloat(top.Score, 'f', 2, 64)) {
		t.Errorf("incident text %q lacks the top suspect %s (score %.2f)", text, top.Change.ID, top.Score)
	}
	if got := int64(inc[0]["timeEnd"].(float64)); got != now.Truncate(openRegionStep).UnixMilli() {
		t.Errorf("open incident ends at %d, want now %d", got, now.UnixMilli())
	}

	// Nothing changed: nothing sent.
	if res, err := s.SyncOnce(ctx); err != nil || res.Created+res.Updated != 0 {
		t.Fatalf("second sync: %+v, %v; want nothing sent", res, err)
	}
	if posts, puts, _ := g.Requests(); posts != wantChanges+1 || puts != 0 {
		t.Fatalf("second sync sent %d posts, %d puts; want nothing", posts-wantChanges-1, puts)
	}

	// Resolved, with its post-mortem: one update of the one region.
	in.Status, in.ResolvedAt, in.UpdatedAt = "resolved", sc.Detected.Add(5*time.Minute), now
	in.Attributes = map[string]string{"postmortem.url": "https://wiki.example.com/pm/inc-demo"}
	if err := st.WriteIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := s.SyncIncident(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	inc = g.ByKey()[incidentKey(in.ID)]
	if _, puts, _ := g.Requests(); len(inc) != 1 || puts != 1 || int64(inc[0]["timeEnd"].(float64)) != in.ResolvedAt.UnixMilli() ||
		!strings.Contains(inc[0]["text"].(string), "https://wiki.example.com/pm/inc-demo") {
		t.Errorf("after resolve: %d annotations, %d puts, %v", len(inc), puts, inc)
	}
	rec, err := st.Annotations(ctx, []string{incidentKey(in.ID)})
	if err != nil || rec[incidentKey(in.ID)].ID != inc[0]["id"].(int64) {
		t.Errorf("store record %+v, %v; want Grafana's id", rec, err)
	}

	// The overlay moves to one dashboard: every annotation leaves the
	// organisation and is made again on the dashboard, once each.
	g.AddDashboard("correlator-service")
	moved, err := New(Config{URL: srv.URL, Token: testToken, Lookback: Duration(48 * time.Hour), DashboardUID: "correlator-service"}, st, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := moved.SyncOnce(ctx); err != nil || res.Created != wantChanges+1 {
		t.Fatalf("sync after the move: %+v, %v; want the %d annotations made again", res, err, wantChanges+1)
	}
	if n := g.Deletes(); n != wantChanges+1 {
		t.Errorf("%d annotations deleted from the organisation, want %d", n, wantChanges+1)
	}
	for key, anns := range g.ByKey() {
		if len(anns) != 1 || anns[0]["dashboardUID"] != "correlator-service" {
			t.Errorf("%s: %d annotations after the move, want one on the dashboard: %v", key, len(anns), anns)
		}
	}
	if res, err := moved.SyncOnce(ctx); err != nil || res.Created+res.Updated != 0 {
		t.Errorf("second sync after the move: %+v, %v; want nothing sent", res, err)
	}
}
