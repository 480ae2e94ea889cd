package otlplogs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
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
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// benchRecordsEnv sets how many log records BenchmarkReceiverSustained sends.
const benchRecordsEnv = "CORRELATOR_BENCH_OTLP_RECORDS"

const (
	benchClients      = 4   // concurrent exporters
	benchPerRequest   = 100 // records per request, as SDK batch exporters send
	benchServiceCount = 8
)

// benchRequest is request number r: benchPerRequest records, from record
// r*benchPerRequest on, of one service, each with its own timestamp, a
// trace context, a severity, a body and four attributes.
func benchRequest(r int, base time.Time) []byte {
	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	kv := func(k string, v *commonpb.AnyValue) *commonpb.KeyValue { return &commonpb.KeyValue{Key: k, Value: v} }
	svc := fmt.Sprintf("svc-%d", r%benchServiceCount)
	recs := make([]*logspb.LogRecord, benchPerRequest)
	for j := range recs {
		i := r*benchPerRequest + j
		ts := uint64(base.Add(time.Duration(i) * time.Microsecond).UnixNano())
		trace := make([]byte, 16)
		binary.BigEndian.PutUint64(trace[8:], uint64(i/10)+1)
		span := make([]byte, 8)
		binary.BigEndian.PutUint64(span, uint64(i)+1)
		sev, sevText := logspb.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
		if i%10 == 0 {
			sev, sevText = logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, "ERROR"
		}
		recs[j] = &logspb.LogRecord{
			TimeUnixNano: ts, ObservedTimeUnixNano: ts,
			SeverityNumber: sev, SeverityText: sevText,
			TraceId: trace, SpanId: span, Flags: 1,
			Body: str(fmt.Sprintf("handled POST /checkout order=%d status=%d duration_ms=%d", i, 200+i%3*100, i%997)),
			Attributes: []*commonpb.KeyValue{
				kv("http.route", str("/checkout")),
				kv("http.status_code", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(200 + i%3*100)}}),
				kv("user.id", str(fmt.Sprintf("u-%d", i%5000))),
				kv("customer.id", str(fmt.Sprintf("cust-%d", i%50))),
			},
		}
	}
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			kv("service.name", str(svc)),
			kv("service.version", str("1.4.2")),
			kv("deployment.environment", str("production")),
			kv("k8s.pod.name", str(fmt.Sprintf("%s-7d9f-%d", svc, r%3))),
		}},
		ScopeLogs: []*logspb.ScopeLogs{{
			Scope:      &commonpb.InstrumentationScope{Name: "github.com/acme/checkout", Version: "1.4.2"},
			LogRecords: recs,
		}},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
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

// BenchmarkReceiverSustained sends N log records as OTLP/HTTP protobuf
// requests of 100 records each from 4 concurrent exporters through the
// real receiver on an HTTP server into a *store.BatchWriter over the
// embedded store, and measures records/s end to end (including the final
// Flush) with the peak HeapInuse and the process's VmHWM. It also measures
// the ceiling: the same records written with one store.Write. N is
// $CORRELATOR_BENCH_OTLP_RECORDS (rounded up to a multiple of 100),
// default 500000 (20000 with -short).
//
//	go test -run '^$' -bench Sustained -benchtime 1x ./internal/collectors/otlplogs/
func BenchmarkReceiverSustained(b *testing.B) {
	n := 500000
	if testing.Short() {
		n = 20000
	}
	if v := os.Getenv(benchRecordsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive integer", benchRecordsEnv, v)
		}
	}
	reqs := (n + benchPerRequest - 1) / benchPerRequest
	n = reqs * benchPerRequest
	ctx := context.Background()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		st := storetest.Embedded(b)
		w := store.NewBatchWriter(st, store.WriterOptions{})
		rc, err := New(Config{}, w, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/v1/logs", rc)
		srv := httptest.NewServer(mux)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients * 2}}
		url := srv.URL + "/v1/logs"
		base := time.Now().Add(-time.Hour).Truncate(time.Second)
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
					r := int(next.Add(1)) - 1
					if r >= reqs {
						return
					}
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(benchRequest(r, base)))
					req.Header.Set("Content-Type", "application/x-protobuf")
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
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q", resp.StatusCode, body))
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
			b.Fatalf("%d of %d requests failed; first: %v", f, reqs, firstErr.Load())
		}
		if got, err := st.Count(ctx, "otel_logs"); err != nil || got != uint64(n) {
			b.Fatalf("otel_logs has %d rows (err %v), want %d", got, err, n)
		}

		// The ceiling: the same records, decoded by the same receiver into
		// a collector (untimed), then written with one store.Write.
		col := &collect{}
		crc, err := New(Config{}, col, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		for r := 0; r < reqs; r++ {
			req := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(benchRequest(r, base)))
			req.Header.Set("Content-Type", "application/x-protobuf")
			rr := httptest.NewRecorder()
			crc.ServeHTTP(rr, req)
			if rr.Code != http.StatusOK {
				b.Fatalf("collecting receiver: %d %q", rr.Code, rr.Body)
			}
		}
		batch := &event.Batch{Logs: col.records()}
		col.logs = nil
		st2 := storetest.Embedded(b)
		runtime.GC()
		cstart := time.Now()
		if err := st2.Write(ctx, batch); err != nil {
			b.Fatalf("direct write: %v", err)
		}
		celapsed := time.Since(cstart)

		rate := float64(n) / elapsed.Seconds()
		ceiling := float64(len(batch.Logs)) / celapsed.Seconds()
		peakHeap := float64(peak) / (1 << 20)
		b.ReportMetric(rate, "records/s")
		b.ReportMetric(peakHeap, "peak_heap_MB")
		b.ReportMetric(float64(vmhwm)/1024, "vmhwm_MB")
		b.ReportMetric(ceiling, "ceiling_records/s")
		b.ReportMetric(rate/ceiling, "intake/ceiling")
		b.Logf("n=%d records in %d requests of %d, clients=%d: receiver %.0f records/s in %v; peak HeapInuse %.1f MB; VmHWM %.1f MB; ceiling (one store.Write of %d) %.0f records/s in %v; ratio %.3f",
			n, reqs, benchPerRequest, benchClients, rate, elapsed.Round(time.Millisecond), peakHeap, float64(vmhwm)/1024, len(batch.Logs), ceiling, celapsed.Round(time.Millisecond), rate/ceiling)
	}
}
