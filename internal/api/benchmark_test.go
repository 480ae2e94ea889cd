package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/api"
	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/spool"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

// BenchmarkIngestHTTP sends 1M generated error events through the HTTP
// ingest API (NDJSON, 10k events per request, 4 clients) into the embedded
// store, and reports the rate beside the engine's own ceiling measured in
// the same run: INSERT ... SELECT of the same rows into a twin table.
// Run with -benchtime 1x: one iteration is a million rows. The writer
// queues in memory (as before the spool) or in the write-ahead spool that
// `correlator serve` uses, which fsyncs every request's records before
// answering.
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
	for _, mode := range []string{"memory", "spool"} {
		b.Run(mode, func(b *testing.B) { benchIngestHTTP(b, mode, bodies, n, clients) })
	}
}

func benchIngestHTTP(b *testing.B, mode string, bodies [][]byte, n, clients int) {
	ctx := context.Background()
	var httpRate, ceilingRate, cpu float64
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		st := storetest.Embedded(b)
		opt := store.WriterOptions{MaxRows: 100_000}
		if mode == "spool" {
			sp, err := spool.Open(b.TempDir(), spool.Options{SegmentRecords: opt.MaxRows})
			if err != nil {
				b.Fatal(err)
			}
			opt.Spool = sp
		}
		w := store.NewBatchWriter(st, opt)
		srv := httptest.NewServer(api.New(api.Options{Writer: w, Store: st, Engine: correlate.New(st, correlate.Options{}), Auth: config.Config{}, MaxBodyBytes: 64 << 20}))
		b.StartTimer()

		start, cpu0 := time.Now(), cpuTime()
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
		cpu = (cpuTime() - cpu0).Seconds() / float64(n) * 1e6
		httpRate = float64(n) / elapsed.Seconds()
		srv.Close()

		b.StopTimer()
		if got, err := st.Count(ctx, "errors"); err != nil || got != uint64(n) {
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
		ceilingRate = float64(n) / time.Since(start).Seconds()
		b.StartTimer()
	}
	b.ReportMetric(httpRate, "http_rows/s")
	b.ReportMetric(ceilingRate, "insert_select_rows/s")
	b.ReportMetric(httpRate/ceilingRate, "ratio")
	b.ReportMetric(cpu, "cpu_µs/row")
}

// cpuTime is the user and system time of this process so far: client,
// server and engine, which a busy machine disturbs less than the rate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
