package sentry

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
)

func newTestIntake(t *testing.T, cfg Config) (*Intake, *recorder, *httptest.Server) {
	t.Helper()
	rec := &recorder{}
	in, err := NewIntake(cfg, rec, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	in.now = func() time.Time { return testNow }
	mux := http.NewServeMux()
	in.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return in, rec, srv
}

type encoder func([]byte) []byte

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zl(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func rawDeflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func br(b []byte) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zst(b []byte) []byte {
	w, _ := zstd.NewWriter(nil)
	defer w.Close()
	return w.EncodeAll(b, nil)
}

const storeEvent = `{"event_id":"fc6d8c0c43fc46309c84f1f5d4b7e3a1","timestamp":"2026-11-21T11:59:00Z","exception":{"values":[{"type":"KeyError","value":"'sku'"}]}}`

func TestIntake(t *testing.T) {
	auth := "Sentry sentry_version=7, sentry_client=test/1.0, sentry_key=" + testKey
	twoItems := string(readFile(t, "testdata/envelopes/doc_two_items.envelope"))
	implicit := string(readFile(t, "testdata/envelopes/doc_implicit_length.envelope"))
	envelopeOf := func(items ...string) string {
		return `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}` + "\n" + strings.Join(items, "\n") + "\n"
	}
	event := func(payload string) string { return `{"type":"event"}` + "\n" + payload }
	for _, tc := range []struct {
		name     string
		method   string
		path     string
		header   map[string]string
		body     string
		enc      encoder
		status   int
		detail   string // substring of the answer's detail
		id       string
		written  int
		rejected map[string]float64
		ignored  map[string]float64
	}{
		{name: "store", path: "/api/42/store/", header: map[string]string{"X-Sentry-Auth": auth}, body: storeEvent,
			status: 200, id: "fc6d8c0c43fc46309c84f1f5d4b7e3a1", written: 1},
		{name: "store without trailing slash", path: "/api/42/store", header: map[string]string{"X-Sentry-Auth": auth}, body: storeEvent,
			status: 200, id: "fc6d8c0c43fc46309c84f1f5d4b7e3a1", written: 1},
		{name: "store Authorization header", path: "/api/42/store/", header: map[string]string{"Authorization": "Sentry sentry_key=" + testKey}, body: storeEvent,
			status: 200, written: 1},
		{name: "store without key", path: "/api/42/store/", body: storeEvent,
			status: 401, detail: "missing authorization information", rejected: map[string]float64{reasonUnauthorized: 1}},
		{name: "store wrong key", path: "/api/42/store/", header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key=ffffffffffffffffffffffffffffffff"}, body: storeEvent,
			status: 403, detail: "invalid sentry_key for project 42", rejected: map[string]float64{reasonForbidden: 1}},
		{name: "unknown project", path: "/api/99/store/", header: map[string]string{"X-Sentry-Auth": auth}, body: storeEvent,
			status: 403, detail: "project 99 is not configured", rejected: map[string]float64{reasonUnknownProject: 1}},
		{name: "project without keys", path: "/api/1/envelope/", header: map[string]string{"X-Sentry-Auth": auth}, body: twoItems,
			status: 403, detail: "project 1 is not configured", rejected: map[string]float64{reasonUnknownProject: 1}},
		{name: "store transaction ignored", path: "/api/42/store/", header: map[string]string{"X-Sentry-Auth": auth}, body: `{"type":"transaction","event_id":"a1b2c3d4e5f60718293a4b5c6d7e8f90"}`,
			status: 200, ignored: map[string]float64{"transaction": 1}},
		{name: "store bad field", path: "/api/42/store/", header: map[string]string{"X-Sentry-Auth": auth}, body: `{"timestamp":"soon"}`,
			status: 400, detail: `event: field timestamp: cannot parse "soon"`, rejected: map[string]float64{reasonMalformed: 1}},
		{name: "store legacy base64 zlib", path: "/api/42/store/", header: map[string]string{"X-Sentry-Auth": auth},
			body: base64.StdEncoding.EncodeToString(zl([]byte(storeEvent))), status: 200, written: 1},

		{name: "envelope dsn header auth", path: "/api/42/envelope/", body: twoItems,
			status: 200, id: "9ec79c33ec9942ab8353589fcb2e04dc", written: 1, ignored: map[string]float64{"attachment": 1}},
		{name: "envelope query auth", path: "/api/42/envelope/?sentry_key=" + testKey + "&sentry_version=7", body: implicit,
			status: 200, id: "9ec79c33ec9942ab8353589fcb2e04dc", ignored: map[string]float64{"attachment": 1}},
		{name: "envelope without key", path: "/api/42/envelope/", body: implicit,
			status: 401, detail: "missing authorization information", rejected: map[string]float64{reasonUnauthorized: 1}},
		{name: "envelope dsn of another project", path: "/api/42/envelope/",
			body: `{"dsn":"https://` + testKey + `@sentry.io/7"}` + "\n", status: 403, detail: "dsn names project 7", rejected: map[string]float64{reasonForbidden: 1}},
		{name: "envelope dsn key differs from header", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key=0123456789abcdef0123456789abcdef"},
			body: twoItems, status: 403, detail: "dsn key differs", rejected: map[string]float64{reasonForbidden: 1}},
		{name: "envelope two keys in request", path: "/api/42/envelope/?sentry_key=0123456789abcdef0123456789abcdef", header: map[string]string{"X-Sentry-Auth": auth},
			body: implicit, status: 403, detail: "two different sentry_key", rejected: map[string]float64{reasonForbidden: 1}},
		{name: "envelope wrong dsn key", path: "/api/42/envelope/",
			body: `{"dsn":"https://ffff@sentry.io/42"}` + "\n", status: 403, detail: "invalid sentry_key", rejected: map[string]float64{reasonForbidden: 1}},
		{name: "envelope only other items", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth},
			body:   envelopeOf(`{"type":"session"}`, `{"started":"2020-02-07T14:16:00Z"}`, `{"type":"client_report"}`, `{"discarded_events":[]}`, `{"type":"transaction"}`, `{}`, `{"type":"brand_new_thing"}`, `x`),
			status: 200, id: "9ec79c33ec9942ab8353589fcb2e04dc",
			ignored: map[string]float64{"session": 1, "client_report": 1, "transaction": 1, "other": 1}},
		{name: "envelope one bad event of two", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth},
			body:   envelopeOf(event(storeEvent), event(`{"level":"loud"}`)),
			status: 400, detail: `envelope items[1] (event): field level: unknown level "loud": want debug, info, warning, error or fatal; 1 other event(s) accepted`,
			written: 1, rejected: map[string]float64{reasonMalformed: 1}},
		{name: "envelope truncated keeps the items before", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth},
			body:   envelopeOf(event(storeEvent), `{"type":"event","length":500}`, `{}`),
			status: 400, detail: "envelope items[1]: payload is 3 bytes, shorter than its length 500", written: 1,
			rejected: map[string]float64{reasonMalformed: 1}},
		{name: "envelope bad header", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth}, body: "hello\n",
			status: 400, detail: "envelope header: expected a JSON object", rejected: map[string]float64{reasonMalformed: 1}},
		{name: "envelope no service", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth},
			body: envelopeOf(event(`{"tags":{"service":""}}`)), status: 200, written: 1}, // the project's service

		{name: "gzip", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth, "Content-Encoding": "gzip"},
			body: envelopeOf(event(storeEvent)), enc: gz, status: 200, written: 1},
		{name: "deflate zlib", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth, "Content-Encoding": "deflate"},
			body: envelopeOf(event(storeEvent)), enc: zl, status: 200, written: 1},
		{name: "deflate raw", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth, "Content-Encoding": "deflate"},
			body: envelopeOf(event(storeEvent)), enc: rawDeflate, status: 200, written: 1},
		{name: "brotli", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth, "Content-Encoding": "br"},
			body: envelopeOf(event(storeEvent)), enc: br, status: 200, written: 1},
		{name: "zstd", path: "/api/42/store/", header: map[string]string{"X-Sentry-Auth": auth, "Content-Encoding": "zstd"},
			body: storeEvent, enc: zst, status: 200, written: 1},
		{name: "bad gzip", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth, "Content-Encoding": "gzip"},
			body: "not gzip", status: 400, detail: "cannot decompress the gzip body", rejected: map[string]float64{reasonMalformed: 1}},
		{name: "unknown encoding", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth, "Content-Encoding": "compress"},
			body: "x", status: 415, detail: `unsupported Content-Encoding "compress"`, rejected: map[string]float64{reasonEncoding: 1}},
		{name: "too large", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth},
			body: envelopeOf(event(`{"message":"` + strings.Repeat("x", 5000) + `"}`)), status: 413, detail: "exceeds the limit of 4096 bytes",
			rejected: map[string]float64{reasonTooLarge: 1}},
		{name: "too large after gunzip", path: "/api/42/envelope/", header: map[string]string{"X-Sentry-Auth": auth, "Content-Encoding": "gzip"},
			body: envelopeOf(event(`{"message":"` + strings.Repeat("x", 100000) + `"}`)), enc: gz, status: 413, detail: "exceeds the limit of 4096 bytes",
			rejected: map[string]float64{reasonTooLarge: 1}},
		{name: "GET", method: "GET", path: "/api/42/envelope/", status: 405, rejected: map[string]float64{reasonMalformed: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxBodyBytes = 4096
			in, rec, srv := newTestIntake(t, cfg)
			body := []byte(tc.body)
			if tc.enc != nil {
				body = tc.enc(body)
			}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, srv.URL+tc.path, bytes.NewReader(body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var answer struct {
				ID     string `json:"id"`
				Detail string `json:"detail"`
			}
			raw, _ := io.ReadAll(resp.Body)
			json.Unmarshal(raw, &answer)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, raw)
			}
			if !strings.Contains(answer.Detail, tc.detail) {
				t.Errorf("detail %q, want it to contain %q", answer.Detail, tc.detail)
			}
			if tc.id != "" && answer.ID != tc.id {
				t.Errorf("id %q, want %q", answer.ID, tc.id)
			}
			if got := len(rec.events()); got != tc.written {
				t.Errorf("%d events written, want %d", got, tc.written)
			}
			if got := value(t, in.met.accepted); got != float64(tc.written) {
				t.Errorf("accepted = %v, want %d", got, tc.written)
			}
			for _, reason := range []string{reasonUnauthorized, reasonForbidden, reasonUnknownProject, reasonMalformed, reasonNoService, reasonTooLarge, reasonEncoding, reasonWriteFailed} {
				if got := value(t, in.met.rejected.WithLabelValues(reason)); got != tc.rejected[reason] {
					t.Errorf("rejected{%s} = %v, want %v", reason, got, tc.rejected[reason])
				}
			}
			for typ, want := range tc.ignored {
				if got := value(t, in.met.ignored.WithLabelValues(typ)); got != want {
					t.Errorf("ignored{%s} = %v, want %v", typ, got, want)
				}
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header")
			}
		})
	}
}

func TestIntakeCORSPreflight(t *testing.T) {
	_, _, srv := newTestIntake(t, testConfig())
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/api/42/envelope/?sentry_key="+testKey, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "x-sentry-auth") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestIntakeWriterFailure(t *testing.T) {
	in, rec, srv := newTestIntake(t, testConfig())
	rec.fail = errors.New("queue closed")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/42/store/?sentry_key="+testKey, strings.NewReader(storeEvent))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if value(t, in.met.errors.WithLabelValues("write")) != 1 || value(t, in.met.rejected.WithLabelValues(reasonWriteFailed)) != 1 || value(t, in.met.accepted) != 0 {
		t.Error("metrics do not show the failed write")
	}
}

func TestIntakeMetricsLastSuccessAndLag(t *testing.T) {
	in, _, srv := newTestIntake(t, testConfig())
	resp, err := http.Post(srv.URL+"/api/42/store/?sentry_key="+testKey, "application/json", strings.NewReader(storeEvent))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := value(t, in.met.lastSuccess); got != float64(testNow.Unix()) {
		t.Errorf("last success = %v, want %d", got, testNow.Unix())
	}
	if got := value(t, in.met.lag); got != 60 { // the event is dated a minute before testNow
		t.Errorf("lag = %v, want 60", got)
	}
}

func TestNewIntakeNeedsKeys(t *testing.T) {
	cfg := testConfig()
	for i := range cfg.Projects {
		cfg.Projects[i].PublicKeys = nil
	}
	if _, err := NewIntake(cfg, &recorder{}, nil, nil); err == nil || !strings.Contains(err.Error(), "no project has public_keys") {
		t.Errorf("err = %v", err)
	}
}

// TestRegisterBesideAPI registers the intake next to the API's routes, as
// `correlator serve` will: ServeMux panics on conflicting patterns.
func TestRegisterBesideAPI(t *testing.T) {
	in, _, _ := newTestIntake(t, testConfig())
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	mux.Handle("POST /api/v1/ingest/{kind}", ok)
	mux.Handle("GET /api/v1/whatchanged", ok)
	mux.Handle("POST /collect/sentry", ok)
	in.Register(mux)
	for path, want := range map[string]int{
		"/api/v1/ingest/errors":             299,
		"/api/42/envelope/":                 401,
		"/api/42/envelope":                  401,
		"/api/42/store/":                    401,
		"/api/42/envelope/extra":            404,
		"/collect/sentry":                   299,
		"/api/42/envelope/?sentry_key=nope": 403,
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}\n")))
		if w.Code != want {
			t.Errorf("POST %s: %d, want %d", path, w.Code, want)
		}
	}
}
