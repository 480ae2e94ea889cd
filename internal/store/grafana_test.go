package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

func TestChangesBetweenEveryServiceNewestKept(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		base := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
		b := &event.Batch{}
		for i, svc := range []string{"api", "db", "web", "api", "db"} {
			b.Changes = append(b.Changes, event.Change{
				ID: "c" + string(rune('0'+i)), Time: base.Add(time.Duration(i) * time.Minute),
				Kind: event.ChangeDeploy, Service: svc, Version: "v1",
			})
		}
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		ids := func(cs []event.Change) []string {
			var out []string
			for _, c := range cs {
				out = append(out, c.ID)
			}
			return out
		}
		for _, tt := range []struct {
			name     string
			from, to time.Time
			limit    int
			want     []string
		}{
			{"all services, oldest first", base, base.Add(time.Hour), 10, []string{"c0", "c1", "c2", "c3", "c4"}},
			{"to is exclusive", base, base.Add(2 * time.Minute), 10, []string{"c0", "c1"}},
			{"limit keeps the newest", base, base.Add(time.Hour), 2, []string{"c3", "c4"}},
			{"empty range", base.Add(time.Hour), base.Add(2 * time.Hour), 10, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.ChangesBetween(ctx, tt.from, tt.to, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids(got), tt.want) {
					t.Errorf("changes = %v, want %v", ids(got), tt.want)
				}
			})
		}
	})
}

func TestCurrentIncidents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 6, 10, 0, 0, 0, time.UTC)
		write := func(id, status string, opened, updated time.Time, sev string) {
			t.Helper()
			if err := s.WriteIncident(ctx, store.Incident{ID: id, Status: status, Severity: sev, OpenedAt: opened, Onset: opened, UpdatedAt: updated}); err != nil {
				t.Fatal(err)
			}
		}
		// old-open: opened and last touched long ago, still open.
		write("old-open", "open", t0.Add(-72*time.Hour), t0.Add(-72*time.Hour), "sev3")
		// old-resolved: resolved long ago: not current.
		write("old-resolved", "open", t0.Add(-70*time.Hour), t0.Add(-70*time.Hour), "sev2")
		write("old-resolved", "resolved", t0.Add(-70*time.Hour), t0.Add(-69*time.Hour), "sev2")
		// new: opened, raised to sev1, resolved recently.
		write("new", "open", t0.Add(-time.Hour), t0.Add(-time.Hour), "sev2")
		write("new", "open", t0.Add(-time.Hour), t0.Add(-50*time.Minute), "sev1")
		write("new", "resolved", t0.Add(-time.Hour), t0.Add(-10*time.Minute), "sev1")

		got, err := s.CurrentIncidents(ctx, t0.Add(-24*time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, in := range got {
			ids = append(ids, in.ID)
		}
		if !slices.Equal(ids, []string{"new", "old-open"}) {
			t.Fatalf("current = %v, want [new old-open] (most recently opened first)", ids)
		}
		if got[0].Status != "resolved" || got[0].Severity != "sev1" || !got[0].UpdatedAt.Equal(t0.Add(-10*time.Minute)) {
			t.Errorf("new = %+v, want its latest state (resolved, sev1)", got[0])
		}
		if got, err := s.CurrentIncidents(ctx, t0.Add(-24*time.Hour), 1); err != nil || len(got) != 1 || got[0].ID != "new" {
			t.Errorf("limit 1 = %v, %v; want only the most recently opened", got, err)
		}
	})
}

func TestLatestSnapshotsSkipsFailedRankings(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 7, 10, 0, 0, 0, time.UTC)
		for _, sn := range []store.Snapshot{
			{IncidentID: "a", TakenAt: t0, Trigger: "open", Causes: `{"n":1}`},
			{IncidentID: "a", TakenAt: t0.Add(5 * time.Minute), Trigger: "interval", Causes: `{"n":2}`},
			// The latest ranking failed: the one before it stays the latest known.
			{IncidentID: "a", TakenAt: t0.Add(10 * time.Minute), Trigger: "interval", Error: "causes: timeout"},
			{IncidentID: "b", TakenAt: t0, Trigger: "open", Error: "causes: timeout"},
			{IncidentID: "c", TakenAt: t0, Trigger: "open", Causes: `{"n":3}`},
		} {
			if err := s.WriteSnapshot(ctx, sn); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.LatestSnapshots(ctx, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got["a"].Causes != `{"n":2}` || got["a"].Trigger != "interval" {
			t.Errorf("latest = %+v, want only a, at its second snapshot", got)
		}
		if got, err := s.LatestSnapshots(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("no ids = %v, %v; want an empty map", got, err)
		}
	})
}
