package sentry

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/collectors/collectortest"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Cleanup()
	os.Exit(code)
}

// benchEventsEnv sets how many events BenchmarkIntakeSustained sends.
const benchEventsEnv = "CORRELATOR_BENCH_SENTRY_EVENTS"

// benchClients is the number of concurrent SDK clients.
const benchClients = 4

// benchEnvelope is one sentry-go style envelope holding one error event:
// an exception with three in-app frames, a user, tags and a release.
func benchEnvelope(i int, now time.Time) []byte {
	id := fmt.Sprintf("%032x", uint64(i)+1<<40)
	ts := now.Add(-time.Duration(i%1000) * time.Millisecond).UTC().Format(time.RFC3339Nano)
	ev := fmt.Sprintf(`{"environment":"production","event_id":%q,"level":"error","platform":"go","release":"checkout@1.4.%d",`+
		`"sdk":{"name":"sentry.go","version":"0.50.0"},"server_name":"web-%d","timestamp":%q,`+
		`"tags":{"customer_id":"cust-%d","region":"eu-west-1","handler":"POST /checkout"},`+
		`"contexts":{"os":{"name":"linux"},"runtime":{"name":"go","version":"go1.26.8"},"trace":{"span_id":"3e8909127f393ea3","trace_id":"c4615030992ed7348ba7645ab27e07ae"}},`+
		`"exception":[{"type":"*errors.errorString","value":"payment failed: card declined (order %d)","stacktrace":{"frames":[`+
		`{"function":"main","module":"main","abs_path":"/app/main.go","lineno":41,"in_app":true},`+
		`{"function":"(*Server).Checkout","module":"github.com/acme/checkout/server","abs_path":"/app/server/checkout.go","lineno":%d,"in_app":true},`+
		`{"function":"(*Client).Charge","module":"github.com/acme/checkout/payments","abs_path":"/app/payments/client.go","lineno":%d,"in_app":true}]}}],`+
		`"user":{"id":"u-%d","email":"user%d@example.com","ip_address":"203.0.113.%d"}}`,
		id, i%3, i%8, ts, i%50, i, 100+i%7, 200+i%5, i%5000, i%5000, i%250)
	hdr := fmt.Sprintf(`{"event_id":%q,"sent_at":%q,"dsn":"http://%s@127.0.0.1/42","sdk":{"name":"sentry.go","version":"0.50.0"}}`, id, ts, testKey)
	var buf bytes.Buffer
	buf.Grow(len(hdr) + len(ev) + 64)
	buf.WriteString(hdr)
	fmt.Fprintf(&buf, "\n{\"type\":\"event\",\"length\":%d}\n", len(ev))
	buf.WriteString(ev)
	buf.WriteByte('\n')
	return buf.Bytes()
}

// BenchmarkIntakeSustained sends N error envelopes, one event each as SDKs
// do, from 4 concurrent clients through the real intake on an HTTP server
// into a *store.BatchWriter over the embedded store, and measures events/s
// end to end (including the final Flush) with the peak HeapInuse and the
// process's VmHWM. It also measures the ceiling: the same records written
// with one store.Write. N is $CORRELATOR_BENCH_SENTRY_EVENTS, default
// 50000 (2000 with -short).
//
//	go test -run '^$' -bench Sustained -benchtime 1x ./internal/collectors/sentry/
func BenchmarkIntakeSustained(b *testing.B) {
	n := collectortest.BenchSize(b, benchEventsEnv, 50000, 2000)
	ctx := context.Background()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		st := storetest.Embedded(b)
		w := store.NewBatchWriter(st, store.WriterOptions{})
		in, err := NewIntake(testConfig(), w, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		in.Register(mux)
		srv := httptest.NewServer(mux)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients * 2}}
		url := srv.URL + "/api/42/envelope/"
		auth := "Sentry sentry_version=7, sentry_client=sentry.go/0.50.0, sentry_key=" + testKey
		now := time.Now()
		runtime.GC()

		run := collectortest.RunSustained(b, client, benchClients, n, func(i int) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(benchEnvelope(i, now)))
			req.Header.Set("Content-Type", "application/x-sentry-envelope")
			req.Header.Set("X-Sentry-Auth", auth)
			return req
		}, func() error { return w.Flush(ctx) })
		srv.Close()
		if err := w.Close(ctx); err != nil {
			b.Fatalf("close writer: %v", err)
		}
		if run.Failed > 0 {
			b.Fatalf("%d of %d requests failed; first: %s", run.Failed, n, run.FirstErr)
		}
		if got, err := st.Count(ctx, "errors"); err != nil || got != uint64(n) {
			b.Fatalf("errors table has %d rows (err %v), want %d", got, err, n)
		}

		// The ceiling: the same records, mapped by the same intake into a
		// recorder (untimed), then written with one store.Write.
		rec := &recorder{}
		rin, err := NewIntake(testConfig(), rec, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i++ {
			req := httptest.NewRequest(http.MethodPost, "/api/42/envelope/", bytes.NewReader(benchEnvelope(i, now)))
			req.Header.Set("X-Sentry-Auth", auth)
			rr := httptest.NewRecorder()
			rin.ServeHTTP(rr, req)
			if rr.Code != http.StatusOK {
				b.Fatalf("recorder intake: %d %s", rr.Code, rr.Body)
			}
		}
		batch := &event.Batch{Errors: rec.events()}
		st2 := storetest.Embedded(b)
		runtime.GC()
		cstart := time.Now()
		if err := st2.Write(ctx, batch); err != nil {
			b.Fatalf("direct write: %v", err)
		}
		celapsed := time.Since(cstart)

		rate, ceiling := run.Report(b, "events/s", n, len(batch.Errors), celapsed)
		b.Logf("n=%d clients=%d intake %.0f events/s in %v; peak HeapInuse %.1f MB; VmHWM %.1f MB; ceiling (one store.Write of %d) %.0f events/s in %v; ratio %.3f",
			n, benchClients, rate, run.Elapsed.Round(time.Millisecond), run.PeakHeapMB(), run.VmHWMMB(), len(batch.Errors), ceiling, celapsed.Round(time.Millisecond), rate/ceiling)
	}
}
