package otlplogs

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite the golden files and the recorded SDK payload")

// testNow is the receiver's clock in tests, so that golden files do not
// depend on the day they run.
var testNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// collect is a Writer that keeps what it is given; err, when set, refuses.
type collect struct {
	mu   sync.Mutex
	logs []event.LogRecord
	err  error
}

func (c *collect) Add(_ context.Context, b *event.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.logs = append(c.logs, b.Logs...)
	return nil
}

func (c *collect) records() []event.LogRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event.LogRecord(nil), c.logs...)
}

func newReceiver(t *testing.T, cfg Config, w Writer) (*Receiver, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	rc, err := New(cfg, w, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	rc.now = func() time.Time { return testNow }
	return rc, reg
}

func post(h http.Handler, contentType, contentEncoding string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// golden is what a request produced: status, response and records.
type golden struct {
	Status      int               `json:"status"`
	ContentType string            `json:"content_type"`
	Response    any               `json:"response"`
	Logs        []event.LogRecord `json:"logs"`
}

// responseJSON decodes a response body (ExportLogsServiceResponse for 200,
// Status otherwise) into canonical JSON values: protojson's own output
// varies its spacing on purpose.
func responseJSON(t *testing.T, rec *httptest.ResponseRecorder) any {
	t.Helper()
	var m proto.Message = &collogspb.ExportLogsServiceResponse{}
	if rec.Code != http.StatusOK {
		m = &statuspb.Status{}
	}
	var err error
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		err = protojson.Unmarshal(rec.Body.Bytes(), m)
	} else {
		err = proto.Unmarshal(rec.Body.Bytes(), m)
	}
	if err != nil {
		t.Fatalf("decode response %q: %v", rec.Body.String(), err)
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRequests(t *testing.T) {
	for _, tc := range []struct {
		file, contentType, encoding string
	}{
		{"logs.json", "application/json", ""},
		{"sdk_export.pb", "application/x-protobuf", ""},
		{"partial.json", "application/json; charset=utf-8", ""},
		{"bodies.json", "application/json", "gzip"},
		{"bad.json", "application/json", ""},
		{"bad.pb", "application/x-protobuf", ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if tc.encoding == "gzip" {
				body = gzipped(t, body)
			}
			var w collect
			rc, _ := newReceiver(t, Config{}, &w)
			rec := post(rc, tc.contentType, tc.encoding, body)
			got := golden{Status: rec.Code, ContentType: rec.Header().Get("Content-Type"), Response: responseJSON(t, rec), Logs: w.records()}
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			gotJSON = append(gotJSON, '\n')
			path := filepath.Join("testdata", tc.file+".golden")
			if *update {
				if err := os.WriteFile(path, gotJSON, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(gotJSON, want) {
				t.Errorf("%s differs from %s:\n%s", tc.file, path, gotJSON)
			}
		})
	}
}

// TestOfficialExample spells out what the golden file of the
// specification's own example must say, so a careless -update cannot bless
// a regression in the JSON-specific parts (hex ids, int64 as a number).
func TestOfficialExample(t *testing.T) {
	body, err := os.ReadFile("testdata/logs.json")
	if err != nil {
		t.Fatal(err)
	}
	var w collect
	rc, _ := newReceiver(t, Config{}, &w)
	if rec := post(rc, "application/json", "", body); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	logs := w.records()
	if len(logs) != 1 {
		t.Fatalf("%d records, want 1", len(logs))
	}
	l := logs[0]
	want := map[string]string{
		"service": "my.service", "time": "2018-12-13T14:51:00.3Z", "severity": "INFO", "body": "Example log record",
		"trace": "5b8efff798038103d269b633813fc60c", "span": "eee19b7ec3c1b174",
		"array.attribute": `["many","values"]`, "map.attribute": `{"some.map.key":"some value"}`,
		"int.attribute": "10", "double.attribute": "637.704", "boolean.attribute": "true",
		"my.scope.attribute": "some scope attribute", "otel.scope.name": "my.library", "otel.scope.version": "1.0.0",
	}
	got := map[string]string{
		"service": l.Service, "time": l.Time.Format(time.RFC3339Nano), "severity": l.Severity, "body": l.Body,
		"trace": l.TraceID, "span": l.SpanID,
	}
	for k := range want {
		if v, ok := l.Attributes[k]; ok {
			got[k] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(l.ID) != 32 {
		t.Errorf("id %q is not 32 hex digits", l.ID)
	}
}

// exampleProto is testdata/logs.json built in Go, to check that both
// encodings of one request give the same records.
func exampleProto() *collogspb.ExportLogsServiceRequest {
	kv := func(k string, v *commonpb.AnyValue) *commonpb.KeyValue { return &commonpb.KeyValue{Key: k, Value: v} }
	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("my.service"))}},
		ScopeLogs: []*logspb.ScopeLogs{{
			Scope: &commonpb.InstrumentationScope{Name: "my.library", Version: "1.0.0",
				Attributes: []*commonpb.KeyValue{kv("my.scope.attribute", str("some scope attribute"))}},
			LogRecords: []*logspb.LogRecord{{
				TimeUnixNano: 1544712660300000000, ObservedTimeUnixNano: 1544712660300000000,
				SeverityText: "Information",
				TraceId:      []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c},
				SpanId:       []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74},
				Body:         str("Example log record"),
				Attributes: []*commonpb.KeyValue{
					kv("string.attribute", str("some string")),
					kv("boolean.attribute", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
					kv("int.attribute", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 10}}),
					kv("double.attribute", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 637.704}}),
					kv("array.attribute", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
						Values: []*commonpb.AnyValue{str("many"), str("values")}}}}),
					kv("map.attribute", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{
						Values: []*commonpb.KeyValue{kv("some.map.key", str("some value"))}}}}),
				},
			}},
		}},
	}}}
}

func TestJSONAndProtobufAgree(t *testing.T) {
	jsonBody, err := os.ReadFile("testdata/logs.json")
	if err != nil {
		t.Fatal(err)
	}
	pbBody, err := proto.Marshal(exampleProto())
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON, fromPB collect
	rcJ, _ := newReceiver(t, Config{}, &fromJSON)
	rcP, _ := newReceiver(t, Config{}, &fromPB)
	if rec := post(rcJ, "application/json", "", jsonBody); rec.Code != 200 {
		t.Fatalf("json: %d %s", rec.Code, rec.Body)
	}
	if rec := post(rcP, "application/x-protobuf", "gzip", gzipped(t, pbBody)); rec.Code != 200 {
		t.Fatalf("protobuf: %d %s", rec.Code, rec.Body)
	}
	a, _ := json.Marshal(fromJSON.records())
	b, _ := json.Marshal(fromPB.records())
	if !bytes.Equal(a, b) {
		t.Errorf("the encodings disagree:\njson     %s\nprotobuf %s", a, b)
	}
}

func TestRequestFailures(t *testing.T) {
	valid, err := proto.Marshal(exampleProto())
	if err != nil {
		t.Fatal(err)
	}
	// A gzip body small on the wire and larger than the limit inflated.
	bomb := gzipped(t, bytes.Repeat([]byte{'a'}, 64<<10))
	for _, tc := range []struct {
		name                  string
		method, ct, ce        string
		body                  []byte
		maxBody               int64
		wantStatus            int
		wantReason, wantInMsg string
	}{
		{"text/plain", "POST", "text/plain", "", valid, 0, 415, "unsupported_media_type", `unsupported Content-Type "text/plain"`},
		{"no content type", "POST", "", "", valid, 0, 415, "unsupported_media_type", "unsupported Content-Type"},
		{"brotli", "POST", "application/x-protobuf", "br", valid, 0, 415, "unsupported_media_type", `unsupported Content-Encoding "br"`},
		{"GET", "GET", "application/x-protobuf", "", nil, 0, 405, "method_not_allowed", "use POST"},
		{"too large", "POST", "application/x-protobuf", "", valid, 16, 413, "too_large", "request body too large"},
		{"gzip bomb", "POST", "application/json", "gzip", bomb, 1 << 10, 413, "too_large", "larger than 1024 bytes after decompression"},
		{"not gzip", "POST", "application/x-protobuf", "gzip", valid, 0, 400, "decode", "gzip"},
		{"truncated protobuf", "POST", "application/x-protobuf", "", valid[:len(valid)-3], 0, 400, "decode", "decode protobuf ExportLogsServiceRequest"},
		{"json array", "POST", "application/json", "", []byte(`[1,2]`), 0, 400, "decode", "decode OTLP/JSON"},
		{"bad int64", "POST", "application/json", "", []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon"}]}]}]}`), 0, 400, "decode", "timeUnixNano"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w collect
			rc, reg := newReceiver(t, Config{MaxBodyBytes: tc.maxBody}, &w)
			req := httptest.NewRequest(tc.method, "/v1/logs", bytes.NewReader(tc.body))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			if tc.ce != "" {
				req.Header.Set("Content-Encoding", tc.ce)
			}
			rec := httptest.NewRecorder()
			rc.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
			}
			st := responseJSON(t, rec).(map[string]any)
			if msg, _ := st["message"].(string); !strings.Contains(msg, tc.wantInMsg) {
				t.Errorf("Status.message = %q, want it to contain %q", msg, tc.wantInMsg)
			}
			if n := testutil.ToFloat64(rc.metrics.errors.WithLabelValues(tc.wantReason)); n != 1 {
				t.Errorf("errors{reason=%q} = %v, want 1", tc.wantReason, n)
			}
			if n := len(w.records()); n != 0 {
				t.Errorf("%d records written by a failed request", n)
			}
			if n, _ := testutil.GatherAndCount(reg, "correlator_collector_events_accepted_total"); n != 1 {
				t.Errorf("accepted series: %d", n)
			}
		})
	}
}

func TestWriterRefusesGives503(t *testing.T) {
	w := collect{err: errors.New("batch writer is closed")}
	rc, _ := newReceiver(t, Config{}, &w)
	body, _ := proto.Marshal(exampleProto())
	rec := post(rc, "application/x-protobuf", "", body)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if got := testutil.ToFloat64(rc.metrics.accepted); got != 0 {
		t.Errorf("accepted = %v after the writer refused", got)
	}
	// The retry, once the writer is back, gives the records their ids:
	// the same ones every time, so a retry after an unseen success cannot
	// double-count.
	w.err = nil
	post(rc, "application/x-protobuf", "", body)
	post(rc, "application/x-protobuf", "", body)
	logs := w.records()
	if len(logs) != 2 || logs[0].ID != logs[1].ID || logs[0].ID == "" {
		t.Errorf("re-sent records: %+v", logs)
	}
}

func TestEmptyRequestSucceeds(t *testing.T) {
	for _, ct := range []string{"application/x-protobuf", "application/json"} {
		var w collect
		rc, _ := newReceiver(t, Config{}, &w)
		for _, body := range [][]byte{nil, []byte("{}")} {
			if ct == "application/x-protobuf" && body != nil {
				continue
			}
			rec := post(rc, ct, "", body)
			if rec.Code != 200 || rec.Header().Get("Content-Type") != ct {
				t.Errorf("%s %q: status %d, content type %q", ct, body, rec.Code, rec.Header().Get("Content-Type"))
			}
			if resp := responseJSON(t, rec).(map[string]any); len(resp) != 0 {
				t.Errorf("%s: partial_success set on full success: %v", ct, resp)
			}
		}
	}
}

func TestDerivedIDs(t *testing.T) {
	var w collect
	rc, _ := newReceiver(t, Config{}, &w)
	req := exampleProto()
	send := func() {
		b, _ := proto.Marshal(req)
		if rec := post(rc, "application/x-protobuf", "", b); rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	send()
	send()
	lr := req.ResourceLogs[0].ScopeLogs[0].LogRecords[0]
	lr.Body = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "Example log record!"}}
	send()
	// Attribute order on the wire does not change the id.
	lr.Body = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "Example log record"}}
	a := lr.Attributes
	a[0], a[len(a)-1] = a[len(a)-1], a[0]
	send()
	logs := w.records()
	if logs[0].ID != logs[1].ID || logs[0].ID == logs[2].ID || logs[0].ID != logs[3].ID {
		t.Errorf("ids %s %s %s %s: want same, same, different, same", logs[0].ID, logs[1].ID, logs[2].ID, logs[3].ID)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{MaxBodyBytes: -1}, "max_body_bytes"},
		{Config{UserAttributes: []string{"user.id", ""}}, "user_attributes[1]"},
		{Config{ResourceAttributes: []string{"-", "host.name"}}, "resource_attributes"},
		{Config{DefaultService: strings.Repeat("s", 300)}, "default_service"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
		if _, err := New(tc.cfg, &collect{}, nil, nil); err == nil {
			t.Errorf("New accepted %+v", tc.cfg)
		}
	}
	if _, err := New(Config{}, nil, nil, nil); err == nil {
		t.Error("New accepted a nil writer")
	}
}

func TestAttributeSelection(t *testing.T) {
	req := exampleProto()
	rl := req.ResourceLogs[0]
	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	rl.Resource.Attributes = append(rl.Resource.Attributes,
		&commonpb.KeyValue{Key: "host.name", Value: str("node-1")},
		&commonpb.KeyValue{Key: "enduser.id", Value: str("u-res")},
		&commonpb.KeyValue{Key: "string.attribute", Value: str("resource loses")})
	body, _ := proto.Marshal(req)
	for _, tc := range []struct {
		name     string
		cfg      Config
		wantHost string
		wantUser string
	}{
		{"all resource attributes", Config{}, "node-1", "u-res"},
		{"none", Config{ResourceAttributes: []string{"-"}}, "", "u-res"},
		{"listed", Config{ResourceAttributes: []string{"host.name"}, UserAttributes: []string{"string.attribute"}}, "node-1", "some string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w collect
			rc, _ := newReceiver(t, tc.cfg, &w)
			post(rc, "application/x-protobuf", "", body)
			l := w.records()[0]
			if l.Attributes["host.name"] != tc.wantHost || l.UserID != tc.wantUser {
				t.Errorf("host.name %q, user %q; want %q, %q", l.Attributes["host.name"], l.UserID, tc.wantHost, tc.wantUser)
			}
			if l.Attributes["string.attribute"] != "some string" {
				t.Errorf("the record's own attribute lost to the resource's: %q", l.Attributes["string.attribute"])
			}
			if _, ok := l.Attributes["service.name"]; ok {
				t.Error("service.name copied into the attributes")
			}
		})
	}
}

func TestMetricsCountRecords(t *testing.T) {
	body, err := os.ReadFile("testdata/partial.json")
	if err != nil {
		t.Fatal(err)
	}
	var w collect
	rc, reg := newReceiver(t, Config{}, &w)
	post(rc, "application/json", "", body)
	if got := testutil.ToFloat64(rc.metrics.accepted); got != 3 {
		t.Errorf("accepted = %v, want 3", got)
	}
	for reason, want := range map[string]float64{"time": 2, "trace_id": 1, "span_id": 1, "attributes": 1} {
		if got := testutil.ToFloat64(rc.metrics.rejected.WithLabelValues(reason)); got != want {
			t.Errorf("rejected{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := testutil.ToFloat64(rc.metrics.lastSuccess); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success = %v", got)
	}
	// A second receiver (the jsonlines collector, say) shares the families.
	if _, err := New(Config{}, &w, nil, reg); err != nil {
		t.Errorf("a second collector on one registry: %v", err)
	}
}
