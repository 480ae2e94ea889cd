package otlplogs

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"
)

// The SDK tests run the real OpenTelemetry Go SDK (sdk/log with the
// otlploghttp exporter) against the receiver on an httptest server, as an
// instrumented service would.

var (
	sdkTraceID = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sdkSpanID  = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	sdkT0      = time.Date(2026, 5, 31, 12, 0, 0, 123456789, time.UTC)
)

// emitSDKLogs sends four records through a LoggerProvider whose exporter
// posts to url: an error in a span, a structured event, a record with only
// an observed time, and one dated 2030 that the receiver must reject.
func emitSDKLogs(t *testing.T, url string, compression otlploghttp.Compression) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx,
		otlploghttp.WithEndpointURL(url),
		otlploghttp.WithCompression(compression),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "checkout"),
		attribute.String("service.version", "3.1.0"),
		attribute.String("deployment.environment.name", "prod"))
	// The simple processor exports each record as it is emitted, in order.
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
	defer func() {
		if err := lp.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	logger := lp.Logger("github.com/acme/checkout/payments", log.WithInstrumentationVersion("1.2.3"))

	var r1 log.Record
	r1.SetTimestamp(sdkT0)
	r1.SetObservedTimestamp(sdkT0.Add(time.Millisecond))
	r1.SetSeverity(log.SeverityError)
	r1.SetSeverityText("ERROR")
	r1.SetBody(attribute.StringValue("payment failed: card declined"))
	r1.AddAttributes(attribute.String("user.id", "u-42"), attribute.String("customer.id", "acme"),
		attribute.Int("http.status_code", 502), attribute.Bool("retry", true))
	spanCtx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: sdkTraceID, SpanID: sdkSpanID, TraceFlags: trace.FlagsSampled}))
	logger.Emit(spanCtx, r1)

	var r2 log.Record
	r2.SetTimestamp(sdkT0.Add(time.Second))
	r2.SetObservedTimestamp(sdkT0.Add(time.Second))
	r2.SetSeverity(log.SeverityInfo2)
	r2.SetEventName("order.placed")
	r2.SetBody(attribute.MapValue(attribute.KeyValue{Key: "order", Value: attribute.MapValue(
		attribute.Int("id", 7), attribute.KeyValue{Key: "items", Value: attribute.SliceValue(attribute.StringValue("a"), attribute.StringValue("b"))})}))
	logger.Emit(ctx, r2)

	var r3 log.Record
	r3.SetObservedTimestamp(sdkT0.Add(2 * time.Second))
	r3.SetSeverityText("warning")
	r3.SetBody(attribute.StringValue("slow response from bank"))
	logger.Emit(ctx, r3)

	var r4 log.Record
	r4.SetTimestamp(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	r4.SetObservedTimestamp(sdkT0)
	r4.SetBody(attribute.StringValue("from a clock far ahead"))
	logger.Emit(ctx, r4)
}

// sdkWant is what the receiver must hand the writer for emitSDKLogs,
// ids aside.
func sdkWant() []event.LogRecord {
	common := map[string]string{
		"service.version": "3.1.0", "deployment.environment.name": "prod",
		"otel.scope.name": "github.com/acme/checkout/payments", "otel.scope.version": "1.2.3",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	return []event.LogRecord{
		{Time: sdkT0, Service: "checkout", Severity: "ERROR", Body: "payment failed: card declined",
			UserID: "u-42", CustomerID: "acme", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
			Attributes: with(map[string]string{"user.id": "u-42", "customer.id": "acme", "http.status_code": "502", "retry": "true"})},
		{Time: sdkT0.Add(time.Second), Service: "checkout", Severity: "INFO", Body: `{"order":{"id":7,"items":["a","b"]}}`,
			Attributes: with(map[string]string{"event.name": "order.placed"})},
		{Time: sdkT0.Add(2 * time.Second), Service: "checkout", Severity: "WARN", Body: "slow response from bank",
			Attributes: with(nil)},
	}
}

func TestSDKExporter(t *testing.T) {
	for _, tc := range []struct {
		name        string
		compression otlploghttp.Compression
		wantCE      string
	}{
		{"protobuf", otlploghttp.NoCompression, ""},
		{"protobuf+gzip", otlploghttp.GzipCompression, "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w collect
			rc, _ := newReceiver(t, Config{}, &w)
			var mu sync.Mutex
			var encodings, types []string
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				mu.Lock()
				encodings = append(encodings, r.Header.Get("Content-Encoding"))
				types = append(types, r.Header.Get("Content-Type"))
				mu.Unlock()
				rc.ServeHTTP(rw, r)
			}))
			defer srv.Close()

			// The exporter reports a partial success through the global
			// error handler; capture it.
			var handled []string
			prev := otel.GetErrorHandler()
			otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
				mu.Lock()
				handled = append(handled, err.Error())
				mu.Unlock()
			}))
			defer otel.SetErrorHandler(prev)

			emitSDKLogs(t, srv.URL+"/v1/logs", tc.compression)

			got := w.records()
			for i := range got {
				if len(got[i].ID) != 32 {
					t.Errorf("record %d: id %q is not 32 hex digits", i, got[i].ID)
				}
				got[i].ID = ""
			}
			if want := sdkWant(); !reflect.DeepEqual(got, want) {
				t.Errorf("records:\n got %+v\nwant %+v", got, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(encodings) != 4 {
				t.Fatalf("%d requests, want 4 (one per record)", len(encodings))
			}
			for i := range encodings {
				if encodings[i] != tc.wantCE || types[i] != "application/x-protobuf" {
					t.Errorf("request %d: Content-Encoding %q, Content-Type %q", i, encodings[i], types[i])
				}
			}
			if len(handled) != 1 || !strings.Contains(handled[0], "1 log records rejected") ||
				!strings.Contains(handled[0], "time_unix_nano") || !strings.Contains(handled[0], "in the future") {
				t.Errorf("the SDK saw %q; want one partial success naming the rejected record", handled)
			}
		})
	}
}

// TestRecordSDKPayload captures the first request the SDK sends and keeps
// it as testdata/sdk_export.pb (with -update), a recorded real payload for
// the table test and the fuzz corpus. Without -update it checks that the
// SDK still sends what was recorded.
func TestRecordSDKPayload(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		rw.Header().Set("Content-Type", "application/x-protobuf")
		rw.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	emitSDKLogs(t, srv.URL+"/v1/logs", otlploghttp.NoCompression)
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 4 {
		t.Fatalf("%d requests, want 4", len(bodies))
	}
	// Records 1 and 2 in one request: the table test covers both paths.
	var req, second collogspb.ExportLogsServiceRequest
	if err := proto.Unmarshal(bodies[0], &req); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(bodies[1], &second); err != nil {
		t.Fatal(err)
	}
	req.ResourceLogs = append(req.ResourceLogs, second.ResourceLogs...)
	const path = "testdata/sdk_export.pb"
	if *update {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to record it)", err)
	}
	var want collogspb.ExportLogsServiceRequest
	if err := proto.Unmarshal(stored, &want); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&req, &want) {
		t.Errorf("the SDK now sends a different request than %s records; rerun with -update and review", path)
	}
}
