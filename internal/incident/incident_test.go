package incident

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/collectors/alertmanager"
	"github.com/correlator/correlator/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Cleanup()
	os.Exit(code)
}

// TestBookLifecycle follows one alert group through the embedded store:
// open, join with a second service, a repeated notification, resolve, a
// late copy of the firing notification, and a re-fire that opens a new
// incident; every state is kept.
func TestBookLifecycle(t *testing.T) {
	st := storetest.Embedded(t)
	ctx := context.Background()
	b := NewBook(st)
	clock := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	b.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	t0 := time.Date(2026, 11, 21, 9, 58, 0, 0, time.UTC)
	key := `{}:{alertname="HighErrorRate"}`

	id, opened, err := b.OpenOrJoin(ctx, alertmanager.Opening{Key: key, Services: []string{"checkout"}, At: t0, Title: "High error rate", Severity: "page"})
	if err != nil || !opened || id != alertmanager.IncidentID(key, t0) {
		t.Fatalf("open: %q, %v, %v", id, opened, err)
	}
	id2, opened, err := b.OpenOrJoin(ctx, alertmanager.Opening{Key: key, Services: []string{"api", "checkout"}, At: t0.Add(time.Minute)})
	if err != nil || opened || id2 != id {
		t.Fatalf("join: %q, %v, %v; want the same incident, not opened", id2, opened, err)
	}
	// The same notification again changes nothing (no new state).
	if _, _, err := b.OpenOrJoin(ctx, alertmanager.Opening{Key: key, Services: []string{"checkout"}, At: t0}); err != nil {
		t.Fatal(err)
	}
	rid, err := b.Resolve(ctx, key, t0.Add(20*time.Minute))
	if err != nil || rid != id {
		t.Fatalf("resolve: %q, %v", rid, err)
	}
	// A late copy of a firing notification from before the resolution.
	if lid, opened, err := b.OpenOrJoin(ctx, alertmanager.Opening{Key: key, Services: []string{"checkout"}, At: t0.Add(5 * time.Minute)}); err != nil || opened || lid != id {
		t.Fatalf("late copy: %q, %v, %v; want the resolved incident, not opened", lid, opened, err)
	}
	hist, err := st.IncidentHistory(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Fatalf("history has %d states, want 3 (open, join, resolve): %+v", len(hist), hist)
	}
	if hist[0].Status != StatusOpen || len(hist[0].Services) != 1 || hist[1].Status != StatusOpen || len(hist[1].Services) != 2 ||
		hist[2].Status != StatusResolved || !hist[2].ResolvedAt.Equal(t0.Add(20*time.Minute)) || hist[2].Title != "High error rate" {
		t.Errorf("history = %+v", hist)
	}
	// Firing again after the resolution is a new incident.
	nid, opened, err := b.OpenOrJoin(ctx, alertmanager.Opening{Key: key, Services: []string{"checkout"}, At: t0.Add(time.Hour)})
	if err != nil || !opened || nid == id {
		t.Fatalf("re-fire: %q, %v, %v; want a new incident", nid, opened, err)
	}
	if rid, err := b.Resolve(ctx, "no such group", t0); err != nil || rid != "" {
		t.Errorf("resolve of an unknown group: %q, %v; want nothing", rid, err)
	}
}
