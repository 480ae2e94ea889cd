package otlplogs

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/collectors/collectortest"
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
	n := collectortest.BenchSize(b, benchRecordsEnv, 500000, 20000)
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

		run := collectortest.RunSustained(b, client, benchClients, reqs, func(r int) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(benchRequest(r, base)))
			req.Header.Set("Content-Type", "application/x-protobuf")
			return req
		}, func() error { return w.Flush(ctx) })
		srv.Close()
		if err := w.Close(ctx); err != nil {
			b.Fatalf("close writer: %v", err)
		}
		if run.Failed > 0 {
			b.Fatalf("%d of %d requests failed; first: %s", run.Failed, reqs, run.FirstErr)
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

		rate, ceiling := run.Report(b, "records/s", n, len(batch.Logs), celapsed)
		b.Logf("n=%d records in %d requests of %d, clients=%d: receiver %.0f records/s in %v; peak HeapInuse %.1f MB; VmHWM %.1f MB; ceiling (one store.Write of %d) %.0f records/s in %v; ratio %.3f",
			n, reqs, benchPerRequest, benchClients, rate, run.Elapsed.Round(time.Millisecond), run.PeakHeapMB(), run.VmHWMMB(), len(batch.Logs), ceiling, celapsed.Round(time.Millisecond), rate/ceiling)
	}
}
