package scenario

import (
	"reflect"
	"testing"
	"time"
)

func TestErrorEvents(t *testing.T) {
	t.Parallel()
	const n = 50_000
	start := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	evs := ErrorEvents(3, n, start)
	if len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	fps, users, customers, services := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, e := range evs {
		if e.Time.Before(start) || i > 0 && e.Time.Before(evs[i-1].Time) {
			t.Fatalf("event %d at %v is out of order", i, e.Time)
		}
		if len(e.ID) != 32 || len(e.TraceID) != 32 || len(e.Fingerprint) != 32 || e.Message == "" || e.Release == "" || e.SampleRate != 1 {
			t.Fatalf("event %d is incomplete: %+v", i, e)
		}
		fps[e.Fingerprint] = true
		services[e.Service] = true
		if e.UserID != "" {
			users[e.UserID] = true
			customers[e.CustomerID] = true
		}
	}
	if len(fps) < 100 || len(fps) > bulkFingerprints || len(users) < 1000 || len(customers) < 100 || len(services) < 10 {
		t.Errorf("%d fingerprints, %d users, %d customers, %d services: want a few hundred, thousands, hundreds, most of the pool",
			len(fps), len(users), len(customers), len(services))
	}
	if span := evs[n-1].Time.Sub(start); span < n*bulkInterval*9/10 || span > n*bulkInterval*11/10 {
		t.Errorf("events span %v, want about %v", span, n*bulkInterval)
	}
	if again := ErrorEvents(3, n, start); !reflect.DeepEqual(evs, again) {
		t.Error("equal arguments gave different events")
	}
	if other := ErrorEvents(4, 10, start); reflect.DeepEqual(evs[:10], other) {
		t.Error("different seeds gave equal events")
	}
	if got := ErrorEvents(1, 0, start); len(got) != 0 {
		t.Errorf("%d events for n=0", len(got))
	}
}

func BenchmarkErrorEvents(b *testing.B) {
	start := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	for b.Loop() {
		ErrorEvents(1, 100_000, start)
	}
}
