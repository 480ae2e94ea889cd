package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/api"
	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/spool"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

// TestIngestFullSpoolIs503: when the writer's spool is at its byte limit,
// ingest answers 503 with Retry-After, saying how many records of the body
// were accepted; everything answered 200 is stored, and once the store has
// caught up ingest succeeds again.
func TestIngestFullSpoolIs503(t *testing.T) {
	st := storetest.Embedded(t)
	sp, err := spool.Open(t.TempDir(), spool.Options{MaxBytes: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	// The writer drains only when told to, so the spool fills.
	w := store.NewBatchWriter(st, store.WriterOptions{Interval: time.Hour, Spool: sp})
	t.Cleanup(func() { w.Close(context.Background()) })
	logs := new(syncBuffer)
	srv := httptest.NewServer(api.New(api.Options{Writer: w, Store: st, Auth: config.Config{},
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Registry: prometheus.NewRegistry()}))
	t.Cleanup(srv.Close)
	h := &harness{st: st, w: w, url: srv.URL, logs: logs}

	accepted := 0
	var full response
	for i := 0; i < 100; i++ {
		resp, _ := h.ingest(t, "errors", records(event.KindErrors, i*100, 100, false))
		if resp.code != http.StatusOK {
			full = resp
			break
		}
		accepted += 100
	}
	if full.code != http.StatusServiceUnavailable {
		t.Fatalf("spool never full: last status %d after %d records\n%s", full.code, accepted, full.body)
	}
	if accepted == 0 {
		t.Fatal("the first request already found the spool full")
	}
	wantIngest(t, full, http.StatusServiceUnavailable, 0, 0)
	if got := full.header.Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After %q, want 5", got)
	}
	if full.env.ErrorType != "unavailable" || !strings.Contains(full.env.Error, "spool is full") || !strings.Contains(full.env.Error, "the first 0 records were accepted") {
		t.Errorf("envelope %+v", full.env)
	}
	if got := h.count(t, "errors"); got != uint64(accepted) {
		t.Errorf("%d errors stored, want the %d answered with 200", got, accepted)
	}
	// The flush emptied the spool.
	resp, _ := h.ingest(t, "errors", records(event.KindErrors, 100000, 100, false))
	wantIngest(t, resp, http.StatusOK, 100, 0)
}
