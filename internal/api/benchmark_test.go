package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/api"
	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

// BenchmarkIngestHTTP sends 1M generated error events through the HTTP
// ingest API (NDJSON, 10k events per request, 4 clients) into the embedded
// store, and reports the rate beside the engine's own ceiling measured in
// the same run: INSERT ... SELECT of the same rows into a twin table.
// Run with -benchtime 1x: one iteration is a million rows.
func BenchmarkIngestHTTP(b *testing.B) {
	const n, perRequest, clients = 1_000_000, 10_000, 4
	events := scenario.ErrorEvents(1, n, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	var bodies [][]byte
	for i := 0; i < n; i += perRequest {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, e := range events[i:min(i+perRequest, n)] {
			if err := enc.Encode(e); err != nil {
				b.Fatal(err)
			}
		}
		bodies = append(bodies, buf.Bytes())
	}
	events = nil
	ctx := context.Background()
	var httpRate, ceilingRate float64
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		st := storetest.Embedded(b)
		w := store.NewBatchWriter(st, store.WriterOptions{MaxRows: 100_000})
		srv := httptest.NewServer(api.New(api.Options{Writer: w, Store: st, Engine: correlate.New(st, correlate.Options{}), Auth: config.Config{}, MaxBodyBytes: 64 << 20}))
		b.StartTimer()

		start := time.Now()
		work := make(chan []byte)
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for body := range work {
					resp, err := http.Post(srv.URL+"/api/v1/ingest/errors", "application/x-ndjson", bytes.NewReader(body))
					if err != nil {
						errs <- err
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs <- fmt.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			}()
		}
		for _, body := range bodies {
			work <- body
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		httpRate = n / elapsed.Seconds()
		srv.Close()

		b.StopTimer()
		if got, err := st.Count(ctx, "errors"); err != nil || got != n {
			b.Fatalf("stored %d rows (%v), want %d", got, err, n)
		}
		eng := st.Engine()
		if err := eng.Exec(ctx, "CREATE TABLE errors_ceiling AS errors", nil); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := eng.Exec(ctx, "INSERT INTO errors_ceiling SELECT * FROM errors", nil); err != nil {
			b.Fatal(err)
		}
		ceilingRate = n / time.Since(start).Seconds()
		b.StartTimer()
	}
	b.ReportMetric(httpRate, "http_rows/s")
	b.ReportMetric(ceilingRate, "insert_select_rows/s")
	b.ReportMetric(httpRate/ceilingRate, "ratio")
}
