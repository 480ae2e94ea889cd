package store_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/store"
)

func TestSnapshotsRoundTripInOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		// Written out of order, and another incident's in between: read
		// back oldest first, and only the incident's own.
		for _, sn := range []store.Snapshot{
			{IncidentID: "inc-snap", TakenAt: t0.Add(5 * time.Minute), Trigger: "interval", Causes: `{"n":2}`},
			{IncidentID: "inc-other", TakenAt: t0, Trigger: "open"},
			{IncidentID: "inc-snap", TakenAt: t0, Trigger: "open", WindowFrom: t0.Add(-time.Hour), WindowTo: t0, Causes: `{"n":1}`, Impact: `{}`, Queries: `[]`, Error: "impact: no data"},
		} {
			if err := s.WriteSnapshot(ctx, sn); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Snapshots(ctx, "inc-snap")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Trigger != "open" || got[1].Trigger != "interval" {
			t.Fatalf("snapshots = %+v, want open then interval", got)
		}
		if !got[0].WindowFrom.Equal(t0.Add(-time.Hour)) || got[0].Causes != `{"n":1}` || got[0].Error != "impact: no data" {
			t.Errorf("first snapshot = %+v", got[0])
		}
	})
}

func TestAnnotationsLatestWins(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		for _, a := range []store.Annotation{
			{Key: "change:a", ID: 7, Hash: "h1", SyncedAt: t0},
			{Key: "change:a", ID: 7, Hash: "h2", SyncedAt: t0.Add(time.Minute)},
			{Key: "incident:b", ID: 9, Hash: "x", SyncedAt: t0},
		} {
			if err := s.WriteAnnotation(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Annotations(ctx, []string{"change:a", "incident:b", "change:none"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["change:a"].Hash != "h2" || got["incident:b"].ID != 9 {
			t.Errorf("annotations = %+v, want change:a at h2 and incident:b id 9", got)
		}
		if _, ok := got["change:none"]; ok {
			t.Error("a key never written has a record")
		}
	})
}

// A context from RecordQueries sees every read with its parameters, and
// running a record again gives the same rows.
func TestRecordQueriesReplays(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx, log := store.RecordQueries(context.Background())
		t0 := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
		if err := s.WriteSnapshot(ctx, store.Snapshot{IncidentID: "inc-rec", TakenAt: t0, Trigger: "open"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Snapshots(ctx, "inc-rec"); err != nil {
			t.Fatal(err)
		}
		recs := log.Records()
		if len(recs) != 1 || recs[0].Name != "incident_snapshots" || recs[0].Params["id"] != "inc-rec" || recs[0].Database != s.Database() {
			t.Fatalf("records = %+v, want one incident_snapshots read of inc-rec", recs)
		}
		// The record survives JSON (how snapshots keep it).
		b, _ := json.Marshal(recs)
		var back []store.QueryRecord
		if err := json.Unmarshal(b, &back); err != nil || !slices.EqualFunc(back, recs, func(a, b store.QueryRecord) bool { return a.SQL == b.SQL && a.Params["id"] == b.Params["id"] }) {
			t.Errorf("records do not survive JSON: %v", err)
		}
		// A context without a log records nothing, and does not panic.
		if _, err := s.Snapshots(context.Background(), "inc-rec"); err != nil {
			t.Fatal(err)
		}
		if n := len(log.Records()); n != 1 {
			t.Errorf("a read outside the recording context was recorded (%d records)", n)
		}
	})
}
