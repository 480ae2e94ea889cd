package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// ErrorSamples keeps the frames of each fingerprint's latest framed event
// in the window, and only of the fingerprints and services asked.
func TestErrorSamples(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
		ev := func(id, svc, fp string, at time.Duration, frames string) event.ErrorEvent {
			e := event.ErrorEvent{ID: id, Time: t0.Add(at), Service: svc, Fingerprint: fp, Type: "E", SampleRate: 1}
			if frames != "" {
				e.Attributes = map[string]string{"sentry.frames": frames}
			}
			return e
		}
		b := &event.Batch{Errors: []event.ErrorEvent{
			ev("e1", "api", "fp-a", time.Minute, "old.frame (a.go:1)"),
			ev("e2", "api", "fp-a", 2*time.Minute, "app.handler (h.go:10)\napp.main (m.go:3)\n"),
			ev("e3", "api", "fp-a", 3*time.Minute, ""),                       // latest, but no frames
			ev("e4", "api", "fp-b", time.Minute, ""),                         // never framed
			ev("e5", "api", "fp-c", time.Minute, "c.f (c.go:1)"),             // not asked
			ev("e6", "web", "fp-a", time.Minute, "web.f (w.go:1)"),           // other service
			ev("e7", "api", "fp-a", -time.Minute, "before.window (b.go:1)"),  // before the window
			ev("e8", "api", "fp-a", 20*time.Minute, "after.window (b.go:1)"), // after it
		}}
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		got, err := s.ErrorSamples(ctx, []string{"api"}, []string{"fp-a", "fp-b"}, t0, t0.Add(10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("samples = %+v, want one (fp-a of api)", got)
		}
		g := got[0]
		if g.Fingerprint != "fp-a" || g.EventID != "e2" || !g.Time.Equal(t0.Add(2*time.Minute)) ||
			!slices.Equal(g.Frames, []string{"app.handler (h.go:10)", "app.main (m.go:3)"}) {
			t.Errorf("sample = %+v, want e2's two frames", g)
		}
		if none, err := s.ErrorSamples(ctx, []string{"api"}, nil, t0, t0.Add(time.Hour)); err != nil || none != nil {
			t.Errorf("no fingerprints asked: %v, %v; want nothing and no query", none, err)
		}
	})
}
