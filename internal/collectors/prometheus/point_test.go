package prometheus

import (
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

func TestPointID(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	base := event.MetricPoint{Time: at, Service: "api", Name: "requests", Value: 1, Labels: map[string]string{"version": "v1", "instance": "a:80"}}
	id := PointID(base)
	if len(id) != 32 {
		t.Fatalf("id %q: want 32 hex digits", id)
	}
	same := []event.MetricPoint{
		{Time: at.In(time.FixedZone("CET", 3600)), Service: "api", Name: "requests", Value: 1, Labels: map[string]string{"instance": "a:80", "version": "v1"}},
		{Time: at, Service: "api", Name: "requests", Value: 99, Labels: map[string]string{"version": "v1", "instance": "a:80"}}, // a corrected value replaces
	}
	for _, p := range same {
		if PointID(p) != id {
			t.Errorf("%+v: id differs from the same point's", p)
		}
	}
	differ := []event.MetricPoint{
		{Time: at.Add(time.Millisecond), Service: "api", Name: "requests", Labels: base.Labels},
		{Time: at, Service: "web", Name: "requests", Labels: base.Labels},
		{Time: at, Service: "api", Name: "errors", Labels: base.Labels},
		{Time: at, Service: "api", Name: "requests", Labels: map[string]string{"version": "v2", "instance": "a:80"}},
		{Time: at, Service: "api", Name: "requests", Labels: map[string]string{"version": "v1"}},
		{Time: at, Service: "api", Name: "requests"},
		// Boundaries are part of the encoding: moving bytes between
		// fields changes the id.
		{Time: at, Service: "apir", Name: "equests", Labels: base.Labels},
		{Time: at, Service: "api", Name: "requests", Labels: map[string]string{"versionv": "1", "instance": "a:80"}},
	}
	seen := map[string]int{}
	for i, p := range differ {
		got := PointID(p)
		if got == id {
			t.Errorf("differ[%d] %+v shares the base id", i, p)
		}
		if j, ok := seen[got]; ok {
			t.Errorf("differ[%d] and differ[%d] share an id", i, j)
		}
		seen[got] = i
	}
}
