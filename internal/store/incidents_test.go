package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/store"
)

// writeStates appends incident states in the order given.
func writeStates(t *testing.T, s *store.Store, states []store.Incident) {
	t.Helper()
	for _, in := range states {
		if err := s.WriteIncident(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCurrentIncident(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
		// The resolve is written before the open: the latest updated_at
		// wins, not the latest insert.
		writeStates(t, s, []store.Incident{
			{ID: "inc-a", Title: "t", Status: "resolved", Services: []string{"api"}, OpenedAt: t0, Onset: t0, ResolvedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour), Attributes: map[string]string{"cause": "chg-1"}},
			{ID: "inc-a", Title: "t", Status: "open", Services: []string{"api"}, OpenedAt: t0, Onset: t0, UpdatedAt: t0},
			{ID: "inc-b", Title: "other", Status: "open", OpenedAt: t0, UpdatedAt: t0.Add(2 * time.Hour)},
		})
		tests := []struct {
			id         string
			wantFound  bool
			wantStatus string
		}{
			{"inc-a", true, "resolved"},
			{"inc-b", true, "open"},
			{"inc-none", false, ""},
			{"inc-a' OR 1=1 --", false, ""},
		}
		for _, tt := range tests {
			got, found, err := s.CurrentIncident(ctx, tt.id)
			if err != nil {
				t.Fatalf("%s: %v", tt.id, err)
			}
			if found != tt.wantFound || got.Status != tt.wantStatus {
				t.Errorf("CurrentIncident(%q) = %q, found %v; want %q, found %v", tt.id, got.Status, found, tt.wantStatus, tt.wantFound)
			}
		}
		a, _, _ := s.CurrentIncident(ctx, "inc-a")
		if a.Attributes["cause"] != "chg-1" || !a.ResolvedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("inc-a = %+v", a)
		}
		// A time never set reads back as the zero time, not the epoch.
		b, _, _ := s.CurrentIncident(ctx, "inc-b")
		if !b.ResolvedAt.IsZero() || !b.Onset.IsZero() || !b.OpenedAt.Equal(t0) {
			t.Errorf("inc-b times = opened %v onset %v resolved %v; want onset and resolved zero", b.OpenedAt, b.Onset, b.ResolvedAt)
		}
	})
}

func TestListIncidents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 6, 10, 0, 0, 0, time.UTC)
		at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
		writeStates(t, s, []store.Incident{
			// old: opened and resolved long ago, with a cause.
			{ID: "old", Status: "open", OpenedAt: at(0), UpdatedAt: at(0)},
			{ID: "old", Status: "resolved", OpenedAt: at(0), ResolvedAt: at(10), UpdatedAt: at(10), Attributes: map[string]string{"cause": "none"}},
			// mid: resolved recently, no cause recorded.
			{ID: "mid", Status: "open", OpenedAt: at(60), UpdatedAt: at(60)},
			{ID: "mid", Status: "resolved", OpenedAt: at(60), ResolvedAt: at(120), UpdatedAt: at(120)},
			// new: opened recently, still open, updated once.
			{ID: "new", Status: "open", OpenedAt: at(90), UpdatedAt: at(90)},
			{ID: "new", Status: "open", OpenedAt: at(90), UpdatedAt: at(95), Note: "rolled back api to v41"},
			// cause: resolved with a cause, opened before new.
			{ID: "cause", Status: "open", OpenedAt: at(80), UpdatedAt: at(80)},
			{ID: "cause", Status: "resolved", OpenedAt: at(80), ResolvedAt: at(100), UpdatedAt: at(100), Attributes: map[string]string{"cause": "chg-9", "other": "x"}},
		})
		tests := []struct {
			name string
			f    store.IncidentFilter
			want []string
		}{
			{"all, newest opened first", store.IncidentFilter{}, []string{"new", "cause", "mid", "old"}},
			{"open", store.IncidentFilter{Status: "open"}, []string{"new"}},
			{"resolved", store.IncidentFilter{Status: "resolved"}, []string{"cause", "mid", "old"}},
			{"since", store.IncidentFilter{Since: at(30)}, []string{"new", "cause", "mid"}},
			// An open state of old before since does not bring it back.
			{"resolved since", store.IncidentFilter{Status: "resolved", Since: at(11)}, []string{"cause", "mid"}},
			{"with a cause", store.IncidentFilter{Status: "resolved", Attribute: "cause"}, []string{"cause", "old"}},
			{"limit", store.IncidentFilter{Limit: 2}, []string{"new", "cause"}},
			// A status that is a quote does not break out of its parameter.
			{"hostile status", store.IncidentFilter{Status: "open' OR '1'='1"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.ListIncidents(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, in := range got {
					ids = append(ids, in.ID)
				}
				if !slices.Equal(ids, tt.want) {
					t.Errorf("ListIncidents(%+v) = %v, want %v", tt.f, ids, tt.want)
				}
			})
		}
		// The listed state is the current one.
		got, err := s.ListIncidents(ctx, store.IncidentFilter{Status: "open"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Note != "rolled back api to v41" || !got[0].UpdatedAt.Equal(at(95)) {
			t.Errorf("open = %+v, want new's update", got)
		}
	})
}
