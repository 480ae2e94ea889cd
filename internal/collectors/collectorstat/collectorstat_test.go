package collectorstat

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/correlator/correlator/internal/event"
)

type fakeWriter struct{ err error }

func (f *fakeWriter) Add(context.Context, *event.Batch) error { return f.err }

func TestMetricsCountAnswersAndRecords(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := Register(reg, "github")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	// A second entry point of the same name shares the metrics; another
	// name registers beside it with the same help.
	again, err := Register(reg, "github")
	if err != nil || again.Accepted != m.Accepted {
		t.Fatalf("second Register of github: %v, shared %v", err, again.Accepted == m.Accepted)
	}
	if _, err := Register(reg, "argocd"); err != nil {
		t.Fatalf("register argocd beside github: %v", err)
	}

	for _, code := range []int{200, 202, 401, 401, 400, 503} {
		h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil))
	}
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues("401")); got != 2 {
		t.Errorf("rejected{401} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues("400")); got != 1 {
		t.Errorf("rejected{400} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Errors.WithLabelValues("503")); got != 1 {
		t.Errorf("errors = %v, want 1 (the 503)", got)
	}

	b := &event.Batch{Changes: []event.Change{{Time: now.Add(-90 * time.Second)}, {Time: now.Add(-30 * time.Second)}}}
	if err := m.Writer(&fakeWriter{}).Add(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.Accepted); got != 2 {
		t.Errorf("accepted = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.Lag); got != 30 {
		t.Errorf("lag = %v s, want 30 (the newest record's age)", got)
	}
	if got := testutil.ToFloat64(m.LastSuccess); got != float64(now.Unix()) {
		t.Errorf("last success = %v, want %v", got, now.Unix())
	}
	if err := m.Writer(&fakeWriter{err: errors.New("full")}).Add(context.Background(), b); err == nil {
		t.Fatal("a refused batch must return the writer's error")
	}
	if got := testutil.ToFloat64(m.Errors.WithLabelValues("write")); got != 1 {
		t.Errorf("errors{write} = %v, want 1 after a refused batch", got)
	}
	if got := testutil.ToFloat64(m.Accepted); got != 2 {
		t.Errorf("accepted = %v after a refused batch, want still 2", got)
	}
}
