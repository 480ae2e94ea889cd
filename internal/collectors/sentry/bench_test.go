package sentry

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// memSampler samples HeapInuse every 50 ms and keeps the peak.
type memSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func startMemSampler() *memSampler {
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > s.peak.Load() {
				s.peak.Store(ms.HeapInuse)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak HeapInuse in bytes.
func (s *memSampler) Stop() uint64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// procStatusKB reads a kB field (VmHWM, VmRSS) of /proc/self/status; 0
// when unavailable.
func procStatusKB(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
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
	n := 50000
	if testing.Short() {
		n = 2000
	}
	if v := os.Getenv(benchEventsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive integer", benchEventsEnv, v)
		}
	}
	ctx := context.Background()
	var rate, ceiling, peakHeap float64
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

		b.StartTimer()
		sampler := startMemSampler()
		start := time.Now()
		var next atomic.Int64
		var failures atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		for c := 0; c < benchClients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(benchEnvelope(i, now)))
					req.Header.Set("Content-Type", "application/x-sentry-envelope")
					req.Header.Set("X-Sentry-Auth", auth)
					resp, err := client.Do(req)
					if err != nil {
						failures.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failures.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, body))
					}
				}
			}()
		}
		wg.Wait()
		if err := w.Flush(ctx); err != nil {
			b.Fatalf("flush: %v", err)
		}
		elapsed := time.Since(start)
		peak := sampler.Stop()
		b.StopTimer()
		vmhwm := procStatusKB("VmHWM")
		srv.Close()
		if err := w.Close(ctx); err != nil {
			b.Fatalf("close writer: %v", err)
		}
		if f := failures.Load(); f > 0 {
			b.Fatalf("%d of %d requests failed; first: %v", f, n, firstErr.Load())
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

		rate = float64(n) / elapsed.Seconds()
		ceiling = float64(len(batch.Errors)) / celapsed.Seconds()
		peakHeap = float64(peak) / (1 << 20)
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(peakHeap, "peak_heap_MB")
		b.ReportMetric(float64(vmhwm)/1024, "vmhwm_MB")
		b.ReportMetric(ceiling, "ceiling_events/s")
		b.ReportMetric(rate/ceiling, "intake/ceiling")
		b.Logf("n=%d clients=%d intake %.0f events/s in %v; peak HeapInuse %.1f MB; VmHWM %.1f MB; ceiling (one store.Write of %d) %.0f events/s in %v; ratio %.3f",
			n, benchClients, rate, elapsed.Round(time.Millisecond), peakHeap, float64(vmhwm)/1024, len(batch.Errors), ceiling, celapsed.Round(time.Millisecond), rate/ceiling)
	}
}
