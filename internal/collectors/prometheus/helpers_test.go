package prometheus

import (
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// memWriter is an in-memory Writer that fails the test on a point written
// twice (same PointID).
type memWriter struct {
	t   *testing.T
	mu  sync.Mutex // mu guards the fields below.
	pts []event.MetricPoint
	ids map[string]bool
	err error // err, when set, fails Add without keeping anything.
}

func newMemWriter(t *testing.T) *memWriter { return &memWriter{t: t, ids: map[string]bool{}} }

func (w *memWriter) Add(_ context.Context, b *event.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	for _, p := range b.Metrics {
		id := PointID(p)
		if w.ids[id] {
			w.t.Errorf("point written twice: %s %s %v at %s", p.Service, p.Name, p.Labels, p.Time.Format(time.RFC3339))
		}
		w.ids[id] = true
		w.pts = append(w.pts, p)
	}
	return nil
}

func (w *memWriter) points() []event.MetricPoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.pts)
}

// byName selects the points of one metric (and, if version is not "", of
// one version), sorted by time.
func byName(pts []event.MetricPoint, service, name, version string) []event.MetricPoint {
	var out []event.MetricPoint
	for _, p := range pts {
		if p.Service == service && p.Name == name && (version == "" || p.Labels["version"] == version) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}
