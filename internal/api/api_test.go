package api_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/api"
	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Cleanup()
	os.Exit(code)
}

// The tokens of the authenticated tests. Their values are long and unusual
// so that finding one in the logs cannot be a coincidence.
const (
	adminToken  = "admin-7f3c9e1b2d4a6f8091c3e5a7b9d1f3e5"
	ingestToken = "ingest-2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e1b"
	readToken   = "read-9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
	wrongToken  = "wrong-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"
)

var authConfig = config.Config{Auth: config.Auth{Tokens: []config.Token{
	{Name: "ops", Token: adminToken, Scopes: []config.Scope{config.ScopeAdmin}},
	{Name: "ci", Token: ingestToken, Scopes: []config.Scope{config.ScopeIngest}},
	{Name: "grafana", Token: readToken, Scopes: []config.Scope{config.ScopeRead}},
}}}

// t0 is an hour boundary a day ago: recent enough for the ingest decoder,
// which rejects times more than a day in the future, on any clock.
var t0 = time.Now().UTC().Truncate(time.Hour).Add(-24 * time.Hour)

func ts(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex // mu guards buf.
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is a server over a real embedded store, batch writer and engine.
type harness struct {
	st   *store.Store
	w    *store.BatchWriter
	url  string
	logs *syncBuffer
}

// newHarness starts a server; edit adjusts its options. The writer flushes
// only when told to (or at close), so tests decide when records land.
func newHarness(t *testing.T, edit func(*api.Options)) *harness {
	t.Helper()
	st := storetest.Embedded(t)
	w := store.NewBatchWriter(st, store.WriterOptions{Interval: time.Hour})
	t.Cleanup(func() {
		if err := w.Close(context.Background()); err != nil {
			t.Errorf("close writer: %v", err)
		}
	})
	logs := new(syncBuffer)
	opt := api.Options{
		Writer:   w,
		Store:    st,
		Engine:   correlate.New(st, correlate.Options{}),
		Auth:     config.Config{},
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: prometheus.NewRegistry(),
	}
	if edit != nil {
		edit(&opt)
	}
	srv := httptest.NewServer(api.New(opt))
	t.Cleanup(srv.Close)
	return &harness{st: st, w: w, url: srv.URL, logs: logs}
}

// request is one call to the server.
type request struct {
	method, path string
	token        string
	body         io.Reader
	header       map[string]string
}

// response is a call's outcome with its envelope decoded, when it has one.
type response struct {
	code   int
	header http.Header
	body   []byte
	env    envelope
}

type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// ingestData mirrors api.IngestResult with its errors kept generic, so the
// test sees the wire format rather than the Go type.
type ingestData struct {
	Accepted *int `json:"accepted"`
	Rejected *int `json:"rejected"`
	Errors   []struct {
		Line    int    `json:"line"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (h *harness) do(t *testing.T, r request) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	req, err := http.NewRequest(r.method, h.url+r.path, r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	out := response{code: resp.StatusCode, header: resp.Header, body: body}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &out.env); err != nil {
			t.Fatalf("%s %s: response is not an envelope: %v\n%s", r.method, r.path, err, body)
		}
	}
	return out
}

// ingest posts body to /api/v1/ingest/kind without a token.
func (h *harness) ingest(t *testing.T, kind, body string) (response, ingestData) {
	t.Helper()
	resp := h.do(t, request{method: http.MethodPost, path: "/api/v1/ingest/" + kind, body: strings.NewReader(body)})
	return resp, resp.ingestData(t)
}

func (r response) ingestData(t *testing.T) ingestData {
	t.Helper()
	var d ingestData
	if len(r.env.Data) > 0 {
		if err := json.Unmarshal(r.env.Data, &d); err != nil {
			t.Fatalf("ingest data: %v\n%s", err, r.body)
		}
	}
	return d
}

// wantIngest checks an ingest response's status and counts.
func wantIngest(t *testing.T, r response, code, accepted, rejected int) ingestData {
	t.Helper()
	d := r.ingestData(t)
	if r.code != code {
		t.Fatalf("status %d, want %d\n%s", r.code, code, r.body)
	}
	if d.Accepted == nil || d.Rejected == nil {
		t.Fatalf("response lacks data.accepted or data.rejected\n%s", r.body)
	}
	if *d.Accepted != accepted || *d.Rejected != rejected {
		t.Fatalf("accepted %d, rejected %d; want %d, %d\n%.1000s", *d.Accepted, *d.Rejected, accepted, rejected, r.body)
	}
	return d
}

// flush makes every queued record durable.
func (h *harness) flush(t *testing.T) {
	t.Helper()
	if err := h.w.Flush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// count flushes, then counts the distinct records of table.
func (h *harness) count(t *testing.T, table string) uint64 {
	t.Helper()
	h.flush(t)
	n, err := h.st.Count(context.Background(), table)
	if err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// tables maps each kind to the table holding it.
var tables = map[event.Kind]string{
	event.KindChanges:  "changes",
	event.KindErrors:   "errors",
	event.KindLogs:     "otel_logs",
	event.KindMetrics:  "metric_points",
	event.KindServices: "services",
}

// sampleRecord returns a valid record of kind, distinct for each i.
func sampleRecord(kind event.Kind, i int) string {
	at := ts(time.Duration(i) * time.Second)
	switch kind {
	case event.KindChanges:
		return fmt.Sprintf(`{"id":"chg-%d","time":%q,"kind":"deploy","service":"api","version":"v%d"}`, i, at, i)
	case event.KindErrors:
		return fmt.Sprintf(`{"id":"err-%d","time":%q,"service":"api","type":"Boom","message":"boom %d"}`, i, at, i)
	case event.KindLogs:
		return fmt.Sprintf(`{"time":%q,"service":"api","severity":"warn","body":"slow request %d"}`, at, i)
	case event.KindMetrics:
		return fmt.Sprintf(`{"time":%q,"service":"api","name":"requests","value":%d,"labels":{"env":"prod"}}`, at, 100+i)
	case event.KindServices:
		return fmt.Sprintf(`{"service":"svc-%d","depends_on":["db"]}`, i)
	}
	panic("unknown kind " + kind)
}

// records returns n records of kind starting at from, as NDJSON or as a
// JSON array.
func records(kind event.Kind, from, n int, array bool) string {
	var lines []string
	for i := from; i < from+n; i++ {
		lines = append(lines, sampleRecord(kind, i))
	}
	if array {
		return "[\n" + strings.Join(lines, ",\n") + "\n]"
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestIngestEveryKind(t *testing.T) {
	for _, kind := range event.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, nil)
			for _, tt := range []struct {
				format   string
				array    bool
				from, n  int
				wantRows uint64
			}{
				{"ndjson", false, 0, 3, 3},
				{"array", true, 3, 4, 7},
			} {
				resp, _ := h.ingest(t, string(kind), records(kind, tt.from, tt.n, tt.array))
				d := wantIngest(t, resp, http.StatusOK, tt.n, 0)
				if resp.env.Status != "success" || resp.env.ErrorType != "" || resp.env.Error != "" {
					t.Errorf("%s: envelope %+v, want success", tt.format, resp.env)
				}
				if d.Errors == nil || len(d.Errors) != 0 {
					t.Errorf("%s: errors %v, want [] (present and empty)", tt.format, d.Errors)
				}
				if got := h.count(t, tables[kind]); got != tt.wantRows {
					t.Errorf("after the %s body: %d rows in %s, want %d", tt.format, got, tables[kind], tt.wantRows)
				}
			}
		})
	}
}

func TestIngestKeepsFieldsOfChanges(t *testing.T) {
	h := newHarness(t, nil)
	body := fmt.Sprintf(`{"id":"c-1","time":%q,"kind":"Deploy","service":"checkout","environment":"prod","version":"v2","previous_version":"v1","author":"ann","title":"ship v2","team":"payments"}`, ts(0))
	resp, _ := h.ingest(t, "changes", body)
	wantIngest(t, resp, http.StatusOK, 1, 0)
	h.flush(t)
	got, err := h.st.Changes(context.Background(), []string{"checkout"}, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := event.Change{ID: "c-1", Time: t0, Kind: event.ChangeDeploy, Service: "checkout", Environment: "prod",
		Version: "v2", PreviousVersion: "v1", Author: "ann", Title: "ship v2", Attributes: map[string]string{"team": "payments"}}
	if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Errorf("stored %+v, want %+v", got, want)
	}
}

func TestIngestBadLines(t *testing.T) {
	good := func(i int) string { return sampleRecord(event.KindChanges, i) }
	type lineErr struct {
		line  int
		field string
	}
	for _, tt := range []struct {
		name                string
		body                string
		accepted, rejected  int
		wantErrs            []lineErr
		wantMessageContains string
	}{
		{
			name: "ndjson",
			body: strings.Join([]string{
				good(1),
				fmt.Sprintf(`{"time":%q,"kind":"deploy"}`, ts(0)),
				`{"time":"yesterday","kind":"deploy","service":"api"}`,
				good(2),
				`{"time": oops`,
				fmt.Sprintf(`{"time":%q,"kind":"launch","service":"api"}`, ts(0)),
				good(3),
			}, "\n"),
			accepted: 3, rejected: 4,
			wantErrs:            []lineErr{{2, "service"}, {3, "time"}, {5, ""}, {6, "kind"}},
			wantMessageContains: `4 of 7 records rejected (the others were accepted); first: line 2: field "service"`,
		},
		{
			name:     "array",
			body:     "[" + good(1) + ",\n" + `{"kind":"deploy","service":"api"}` + ",\n" + good(2) + "]",
			accepted: 2, rejected: 1,
			wantErrs:            []lineErr{{2, "time"}},
			wantMessageContains: `1 of 3 records rejected`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			resp, _ := h.ingest(t, "changes", tt.body)
			d := wantIngest(t, resp, http.StatusBadRequest, tt.accepted, tt.rejected)
			if resp.env.Status != "error" || resp.env.ErrorType != "bad_data" {
				t.Errorf("status %q, errorType %q; want error, bad_data", resp.env.Status, resp.env.ErrorType)
			}
			if !strings.Contains(resp.env.Error, tt.wantMessageContains) {
				t.Errorf("error %q does not contain %q", resp.env.Error, tt.wantMessageContains)
			}
			if len(d.Errors) != len(tt.wantErrs) {
				t.Fatalf("errors %+v, want lines and fields %v", d.Errors, tt.wantErrs)
			}
			for i, e := range d.Errors {
				if e.Line != tt.wantErrs[i].line || e.Field != tt.wantErrs[i].field || e.Message == "" {
					t.Errorf("errors[%d] = %+v, want line %d, field %q and a message", i, e, tt.wantErrs[i].line, tt.wantErrs[i].field)
				}
			}
			// What was accepted is kept although the request failed.
			if got := h.count(t, "changes"); got != uint64(tt.accepted) {
				t.Errorf("%d changes stored, want the %d accepted", got, tt.accepted)
			}
		})
	}
}

func TestIngestTwiceCountsOnce(t *testing.T) {
	for _, kind := range event.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, nil)
			body := records(kind, 0, 5, false)
			if kind == event.KindChanges {
				// Without ids: the derived id must be stable too.
				body = strings.ReplaceAll(body, `"id":"chg-`, `"ref":"chg-`)
			}
			var counts []uint64
			for i := 0; i < 2; i++ {
				resp, _ := h.ingest(t, string(kind), body)
				wantIngest(t, resp, http.StatusOK, 5, 0)
				counts = append(counts, h.count(t, tables[kind]))
			}
			if counts[0] != 5 || counts[1] != 5 {
				t.Errorf("%s rows after the first and second identical body: %v, want [5 5]", tables[kind], counts)
			}
		})
	}
}

// opaque hides a reader's length so that the client sends it chunked,
// without Content-Length.
type opaque struct{ io.Reader }

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// overLimit returns error records a little over limit bytes, and how many.
// The excess is small enough (under net/http's 256 KiB) for the server to
// drain it after refusing the rest, so the client always reads the response
// instead of a reset connection.
func overLimit(limit int) (string, int) {
	var b strings.Builder
	n := 0
	for b.Len() < limit+40_000 {
		b.WriteString(sampleRecord(event.KindErrors, n))
		b.WriteByte('\n')
		n++
	}
	return b.String(), n
}

func TestIngestBodyLimits(t *testing.T) {
	const limit = 1 << 20 // holds more than one decoder batch
	over, overN := overLimit(limit)
	const smallLimit = 100_000
	overSmall, _ := overLimit(smallLimit)
	small := records(event.KindErrors, 0, 3, false)
	z := gzipped(t, small)
	// About 8 MiB of one valid line, compressed to a few KiB.
	line := sampleRecord(event.KindErrors, 0) + "\n"
	bomb := gzipped(t, strings.Repeat(line, 8<<20/len(line)))
	if len(bomb) >= limit/4 {
		t.Fatalf("the bomb compresses to %d bytes, not far under the limit", len(bomb))
	}

	for _, tt := range []struct {
		name      string
		limit     int64 // 0 means limit
		body      io.Reader
		gzip      bool
		code      int
		errorType string
		errorHas  string
		// partial: some records but not all are accepted, the error says
		// how many, and exactly those are stored.
		partial    bool
		wantStored uint64
	}{
		{
			name: "content-length over the limit", limit: smallLimit, body: strings.NewReader(overSmall),
			code: http.StatusRequestEntityTooLarge, errorType: "too_large",
			errorHas: fmt.Sprintf("body of %d bytes is over the limit of %d bytes", len(overSmall), smallLimit),
		},
		{
			name: "chunked over the limit", body: opaque{strings.NewReader(over)},
			code: http.StatusRequestEntityTooLarge, errorType: "too_large",
			errorHas: fmt.Sprintf("body is over the limit of %d bytes", limit), partial: true,
		},
		{name: "chunked under the limit", body: opaque{strings.NewReader(small)}, code: http.StatusOK, wantStored: 3},
		{name: "gzip", body: bytes.NewReader(z), gzip: true, code: http.StatusOK, wantStored: 3},
		{
			name: "gzip bomb", body: bytes.NewReader(bomb), gzip: true,
			code: http.StatusRequestEntityTooLarge, errorType: "too_large",
			errorHas: fmt.Sprintf("body is over the limit of %d bytes", limit),
			// The bomb repeats one record: whatever was accepted stores as
			// one row.
			partial: true,
		},
		{
			name: "not gzip", body: strings.NewReader(small), gzip: true,
			code: http.StatusBadRequest, errorType: "bad_data", errorHas: "invalid gzip body",
		},
		{
			name: "gzip truncated", body: bytes.NewReader(z[:len(z)-10]), gzip: true,
			code: http.StatusBadRequest, errorType: "bad_data", errorHas: "invalid gzip body",
		},
		{
			name: "gzip checksum wrong", body: bytes.NewReader(append(bytes.Clone(z[:len(z)-8]), 0, 0, 0, 0, 0, 0, 0, 0)), gzip: true,
			code: http.StatusBadRequest, errorType: "bad_data", errorHas: "invalid gzip body",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lim := tt.limit
			if lim == 0 {
				lim = limit
			}
			h := newHarness(t, func(o *api.Options) { o.MaxBodyBytes = lim })
			r := request{method: http.MethodPost, path: "/api/v1/ingest/errors", body: tt.body}
			if tt.gzip {
				r.header = map[string]string{"Content-Encoding": "gzip"}
			}
			resp := h.do(t, r)
			if resp.code != tt.code || resp.env.ErrorType != tt.errorType {
				t.Fatalf("status %d, errorType %q; want %d, %q\n%.500s", resp.code, resp.env.ErrorType, tt.code, tt.errorType, resp.body)
			}
			if !strings.Contains(resp.env.Error, tt.errorHas) {
				t.Errorf("error %q does not contain %q", resp.env.Error, tt.errorHas)
			}
			d := resp.ingestData(t)
			stored := h.count(t, "errors")
			if !tt.partial {
				if stored != tt.wantStored {
					t.Errorf("%d rows stored, want %d", stored, tt.wantStored)
				}
				if tt.code == http.StatusOK && (d.Accepted == nil || uint64(*d.Accepted) != tt.wantStored) {
					t.Errorf("accepted %v, want %d\n%s", d.Accepted, tt.wantStored, resp.body)
				}
				return
			}
			if d.Accepted == nil {
				t.Fatalf("response lacks data.accepted\n%.500s", resp.body)
			}
			accepted := *d.Accepted
			if want := fmt.Sprintf("the first %d records were accepted", accepted); !strings.Contains(resp.env.Error, want) {
				t.Errorf("error %q does not say %q", resp.env.Error, want)
			}
			if accepted == 0 {
				t.Fatalf("no record accepted; the limit holds more than one decoder batch\n%.500s", resp.body)
			}
			want := uint64(accepted)
			if tt.name == "gzip bomb" {
				want = 1
			} else if accepted >= overN {
				t.Errorf("all %d records accepted from a body over the limit", accepted)
			}
			if stored != want {
				t.Errorf("%d rows stored after %d records were accepted, want %d", stored, accepted, want)
			}
		})
	}
}

func TestIngestUnknownKind(t *testing.T) {
	h := newHarness(t, nil)
	resp, _ := h.ingest(t, "traces", records(event.KindErrors, 0, 1, false))
	if resp.code != http.StatusBadRequest || resp.env.ErrorType != "bad_data" {
		t.Fatalf("status %d, errorType %q; want 400, bad_data\n%s", resp.code, resp.env.ErrorType, resp.body)
	}
	if !strings.Contains(resp.env.Error, `unknown kind "traces"`) {
		t.Errorf("error %q does not name the kind", resp.env.Error)
	}
}

func TestAuth(t *testing.T) {
	authed := newHarness(t, func(o *api.Options) { o.Auth, o.AuthRequired = authConfig, true })
	open := newHarness(t, nil)
	ingestBody := func() io.Reader { return strings.NewReader(records(event.KindChanges, 0, 1, false)) }
	const whatChanged = "/api/v1/whatchanged?service=api"

	for _, tt := range []struct {
		name      string
		h         *harness
		method    string
		path      string
		token     string
		rawAuth   string // an Authorization header other than "Bearer token"
		code      int
		challenge string // wanted WWW-Authenticate, "" for none
		errorType string
	}{
		{name: "no auth configured: ingest", h: open, method: "POST", path: "/api/v1/ingest/changes", code: 200},
		{name: "no auth configured: whatchanged", h: open, path: whatChanged, code: 200},
		{name: "missing token: ingest", h: authed, method: "POST", path: "/api/v1/ingest/changes", code: 401,
			challenge: `Bearer realm="correlator"`, errorType: "unauthorized"},
		{name: "missing token: whatchanged", h: authed, path: whatChanged, code: 401,
			challenge: `Bearer realm="correlator"`, errorType: "unauthorized"},
		{name: "not a bearer token", h: authed, path: whatChanged, rawAuth: "Basic " + adminToken, code: 401,
			challenge: `Bearer realm="correlator"`, errorType: "unauthorized"},
		{name: "wrong token", h: authed, method: "POST", path: "/api/v1/ingest/changes", token: wrongToken, code: 401,
			challenge: `Bearer realm="correlator", error="invalid_token"`, errorType: "unauthorized"},
		{name: "prefix of a token", h: authed, path: whatChanged, token: readToken[:len(readToken)-1], code: 401,
			challenge: `Bearer realm="correlator", error="invalid_token"`, errorType: "unauthorized"},
		{name: "read token on ingest", h: authed, method: "POST", path: "/api/v1/ingest/changes", token: readToken, code: 403, errorType: "forbidden"},
		{name: "ingest token on whatchanged", h: authed, path: whatChanged, token: ingestToken, code: 403, errorType: "forbidden"},
		{name: "ingest token on ingest", h: authed, method: "POST", path: "/api/v1/ingest/changes", token: ingestToken, code: 200},
		{name: "read token on whatchanged", h: authed, path: whatChanged, token: readToken, code: 200},
		{name: "scheme in lower case", h: authed, path: whatChanged, rawAuth: "bearer " + readToken, code: 200},
		{name: "admin on ingest", h: authed, method: "POST", path: "/api/v1/ingest/changes", token: adminToken, code: 200},
		{name: "admin on whatchanged", h: authed, path: whatChanged, token: adminToken, code: 200},
		{name: "healthz without token", h: authed, path: "/healthz", code: 200},
		{name: "readyz without token", h: authed, path: "/readyz", code: 200},
		{name: "metrics without token", h: authed, path: "/metrics", code: 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := request{method: tt.method, path: tt.path, token: tt.token}
			if tt.method == "POST" {
				r.body = ingestBody()
			}
			if tt.rawAuth != "" {
				r.header = map[string]string{"Authorization": tt.rawAuth}
			}
			resp := tt.h.do(t, r)
			if resp.code != tt.code {
				t.Fatalf("status %d, want %d\n%s", resp.code, tt.code, resp.body)
			}
			if got := resp.header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if tt.errorType != "" && (resp.env.Status != "error" || resp.env.ErrorType != tt.errorType || resp.env.Error == "") {
				t.Errorf("envelope %+v, want an error of type %s", resp.env, tt.errorType)
			}
			for _, tok := range []string{adminToken, ingestToken, readToken, wrongToken} {
				if strings.Contains(string(resp.body), tok) {
					t.Errorf("response shows a token value: %s", resp.body)
				}
			}
		})
	}
	// Failed authentication, logged at debug level, never shows a token.
	for _, h := range []*harness{authed, open} {
		for _, tok := range []string{adminToken, ingestToken, readToken, wrongToken} {
			if strings.Contains(h.logs.String(), tok) {
				t.Errorf("server log shows a token value:\n%s", h.logs.String())
			}
		}
	}
	metrics := authed.do(t, request{path: "/metrics"})
	for reason, want := range map[string]float64{"missing": 3, "invalid": 2, "scope": 2} {
		if got := sample(t, metrics.body, "correlator_http_auth_failures_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("auth failures %q = %v, want %v", reason, got, want)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	h := newHarness(t, nil)
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		resp := h.do(t, request{path: path})
		if resp.code != http.StatusOK || string(resp.body) != want {
			t.Errorf("%s: %d %q, want 200 %q", path, resp.code, resp.body, want)
		}
	}
	// A store that does not answer makes the server unready, and a query
	// fails with a classified error, its detail in the log only.
	h.st.Close()
	resp := h.do(t, request{path: "/readyz"})
	if resp.code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store closed: %d %q, want 503", resp.code, resp.body)
	}
	resp = h.do(t, request{path: "/api/v1/whatchanged?service=api"})
	if resp.code != http.StatusInternalServerError || resp.env.Status != "error" || resp.env.ErrorType != "internal" || resp.env.Error == "" {
		t.Errorf("whatchanged with the store closed: %d %s, want 500 with an internal error", resp.code, resp.body)
	}
	if !strings.Contains(h.logs.String(), `"msg":"request failed"`) {
		t.Errorf("the failure is not logged:\n%s", h.logs.String())
	}
}

func TestWhatChangedWithoutEngine(t *testing.T) {
	h := newHarness(t, func(o *api.Options) { o.Engine = nil })
	resp := h.do(t, request{path: "/api/v1/whatchanged?service=api"})
	if resp.code != http.StatusServiceUnavailable || resp.env.ErrorType != "unavailable" {
		t.Errorf("status %d, errorType %q; want 503, unavailable", resp.code, resp.env.ErrorType)
	}
}

func TestWhatChangedParameters(t *testing.T) {
	h := newHarness(t, nil)
	for _, tt := range []struct {
		query string
		want  string
	}{
		{"", `invalid parameter "service": required`},
		{"service=", `invalid parameter "service": required`},
		{"service=api&at=yesterday", `invalid parameter "at": cannot parse "yesterday"`},
		{"service=api&at=1700000000", `invalid parameter "at": "1700000000" looks like Unix seconds`},
		{"service=api&onset=soon", `invalid parameter "onset"`},
		{"service=api&lookback=forever", `invalid parameter "lookback": cannot parse "forever"`},
		{"service=api&lookback=-1h", `invalid parameter "lookback": must be positive`},
		{"service=api&lookback=60d", `invalid parameter "lookback": must be at most 30 days`},
	} {
		t.Run(tt.query, func(t *testing.T) {
			resp := h.do(t, request{path: "/api/v1/whatchanged?" + tt.query})
			if resp.code != http.StatusBadRequest || resp.env.Status != "error" || resp.env.ErrorType != "bad_data" {
				t.Fatalf("status %d, envelope %+v; want 400 bad_data", resp.code, resp.env)
			}
			if !strings.HasPrefix(resp.env.Error, tt.want) {
				t.Errorf("error %q, want it to start with %q", resp.env.Error, tt.want)
			}
		})
	}
}

// ndjson encodes records one a line.
func ndjson(t *testing.T, recs []map[string]any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestWhatChangedRanksTheDeploy(t *testing.T) {
	h := newHarness(t, nil)
	// checkout calls payments. Over [t0, t0+2h): an innocent config change
	// of payments at +20m, a deploy of checkout at +70m, and from +75m
	// checkout fails 40 times a minute with an error never seen before,
	// against a background of one known error every ten minutes.
	deployAt, burstAt, at := 70*time.Minute, 75*time.Minute, 2*time.Hour
	data := map[string][]map[string]any{
		"services": {
			{"service": "checkout", "depends_on": []string{"payments"}},
			{"service": "payments", "depends_on": []string{}},
		},
		"changes": {
			{"id": "cfg-payments-1", "time": ts(20 * time.Minute), "kind": "config", "service": "payments", "title": "raise pool size"},
			{"id": "deploy-checkout-42", "time": ts(deployAt), "kind": "deploy", "service": "checkout", "version": "v42", "previous_version": "v41", "title": "checkout v42"},
		},
	}
	for m := -time.Hour; m < at; m += time.Minute {
		for _, svc := range []string{"checkout", "payments"} {
			data["metrics"] = append(data["metrics"], map[string]any{"time": ts(m), "service": svc, "name": "requests", "value": 1000})
		}
		if m%(10*time.Minute) == 0 {
			data["errors"] = append(data["errors"], map[string]any{"id": fmt.Sprintf("old-%d", m/time.Minute), "time": ts(m),
				"service": "checkout", "type": "Timeout", "message": "upstream timeout", "release": "v41"})
		}
		if m >= burstAt {
			for i := 0; i < 40; i++ {
				data["errors"] = append(data["errors"], map[string]any{"id": fmt.Sprintf("new-%d-%d", m/time.Minute, i),
					"time": ts(m + time.Duration(i)*time.Second), "service": "checkout", "type": "NilPointer",
					"message": "cart is nil", "release": "v42"})
			}
		}
	}
	for _, kind := range []string{"services", "changes", "metrics", "errors"} {
		resp, _ := h.ingest(t, kind, ndjson(t, data[kind]))
		wantIngest(t, resp, http.StatusOK, len(data[kind]), 0)
	}
	h.flush(t)

	q := url.Values{"service": {"checkout"}, "at": {ts(at)}, "lookback": {"2h"}}
	resp := h.do(t, request{path: "/api/v1/whatchanged?" + q.Encode()})
	if resp.code != http.StatusOK || resp.env.Status != "success" {
		t.Fatalf("status %d\n%s", resp.code, resp.body)
	}
	// Decode the wire format, not the Go type, so that renamed JSON fields
	// fail here.
	var ans struct {
		Service string `json:"service"`
		Window  struct {
			From *time.Time `json:"from"`
			To   *time.Time `json:"to"`
		} `json:"window"`
		Onset       *time.Time `json:"onset"`
		OnsetSource string     `json:"onset_source"`
		Scope       []string   `json:"scope"`
		Candidates  []struct {
			Rank   int      `json:"rank"`
			Score  *float64 `json:"score"`
			Change struct {
				ID      string `json:"id"`
				Kind    string `json:"kind"`
				Service string `json:"service"`
			} `json:"change"`
			Evidence []struct {
				Kind    string `json:"kind"`
				Summary string `json:"summary"`
			} `json:"evidence"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(resp.env.Data, &ans); err != nil {
		t.Fatalf("decode answer: %v\n%s", err, resp.env.Data)
	}
	if ans.Service != "checkout" {
		t.Errorf("service %q, want checkout", ans.Service)
	}
	if ans.Window.From == nil || ans.Window.To == nil || !ans.Window.From.Equal(t0) || !ans.Window.To.Equal(t0.Add(at)) {
		t.Errorf("window %v – %v, want %v – %v", ans.Window.From, ans.Window.To, t0, t0.Add(at))
	}
	// The burst starts at +75m; the detector may place it a minute either
	// way, but never before the deploy.
	if ans.Onset == nil || ans.OnsetSource != "detected" || ans.Onset.Before(t0.Add(deployAt)) || ans.Onset.After(t0.Add(burstAt+time.Minute)) {
		t.Errorf("onset %v (%s), want detected near %v", ans.Onset, ans.OnsetSource, t0.Add(burstAt))
	}
	if strings.Join(ans.Scope, ",") != "checkout,payments" {
		t.Errorf("scope %v, want [checkout payments]", ans.Scope)
	}
	if len(ans.Candidates) != 2 {
		t.Fatalf("%d candidates, want 2\n%s", len(ans.Candidates), resp.env.Data)
	}
	first, second := ans.Candidates[0], ans.Candidates[1]
	if first.Rank != 1 || first.Change.ID != "deploy-checkout-42" || second.Rank != 2 || second.Change.ID != "cfg-payments-1" {
		t.Errorf("ranking %d %s, %d %s; want 1 deploy-checkout-42, 2 cfg-payments-1",
			first.Rank, first.Change.ID, second.Rank, second.Change.ID)
	}
	if first.Score == nil || second.Score == nil || !(*first.Score > *second.Score) || *first.Score > 1 || *second.Score < 0 {
		t.Errorf("scores %v and %v, want 1 ≥ first > second ≥ 0", first.Score, second.Score)
	}
	kinds := map[string]string{}
	for _, e := range first.Evidence {
		if e.Kind == "" || e.Summary == "" {
			t.Errorf("evidence without kind or summary: %+v", e)
		}
		kinds[e.Kind] = e.Summary
	}
	for _, k := range []string{"time", "error_rate", "new_error"} {
		if kinds[k] == "" {
			t.Errorf("the deploy lacks %s evidence; has %v", k, kinds)
		}
	}
	if !strings.Contains(kinds["new_error"], "cart is nil") {
		t.Errorf("new_error evidence %q does not name the new error", kinds["new_error"])
	}
	var topology bool
	for _, e := range second.Evidence {
		topology = topology || e.Kind == "topology"
	}
	if !topology {
		t.Errorf("the payments change lacks topology evidence: %+v", second.Evidence)
	}
}

// sample returns the value of the sample of metric with exactly labels in
// a text exposition, failing the test when there is none.
func sample(t *testing.T, exposition []byte, metric string, labels map[string]string) float64 {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(exposition))
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok || name != metric {
			continue
		}
		set, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		got := map[string]string{}
		for _, pair := range strings.Split(set, ",") {
			k, v, _ := strings.Cut(pair, "=")
			got[k], _ = strconv.Unquote(v)
		}
		if fmt.Sprint(got) != fmt.Sprint(labels) {
			continue
		}
		f, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		return f
	}
	t.Fatalf("no sample %s%v in\n%s", metric, labels, exposition)
	return 0
}

func TestMetricsCountIngestedRecords(t *testing.T) {
	h := newHarness(t, nil)
	resp, _ := h.ingest(t, "changes", records(event.KindChanges, 0, 4, false)+"{}\nnot json\n")
	wantIngest(t, resp, http.StatusBadRequest, 4, 2)
	resp, _ = h.ingest(t, "logs", records(event.KindLogs, 0, 3, false))
	wantIngest(t, resp, http.StatusOK, 3, 0)
	h.do(t, request{path: "/api/v1/whatchanged"})

	m := h.do(t, request{path: "/metrics"})
	if m.code != http.StatusOK {
		t.Fatalf("/metrics: %d", m.code)
	}
	for _, tt := range []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"correlator_ingest_records_total", map[string]string{"kind": "changes", "result": "accepted"}, 4},
		{"correlator_ingest_records_total", map[string]string{"kind": "changes", "result": "rejected"}, 2},
		{"correlator_ingest_records_total", map[string]string{"kind": "logs", "result": "accepted"}, 3},
		{"correlator_ingest_records_total", map[string]string{"kind": "logs", "result": "rejected"}, 0},
		{"correlator_http_requests_total", map[string]string{"handler": "ingest", "code": "400"}, 1},
		{"correlator_http_requests_total", map[string]string{"handler": "ingest", "code": "200"}, 1},
		{"correlator_http_requests_total", map[string]string{"handler": "whatchanged", "code": "400"}, 1},
	} {
		if got := sample(t, m.body, tt.metric, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
		}
	}
}

func TestIngestRejectsUnknownContentEncoding(t *testing.T) {
	h := newHarness(t, nil)
	for _, enc := range []string{"br", "deflate", "compress"} {
		resp := h.do(t, request{method: http.MethodPost, path: "/api/v1/ingest/changes",
			body:   strings.NewReader(`{"time":"2026-11-02T10:00:00Z","kind":"deploy","service":"api"}` + "\n"),
			header: map[string]string{"Content-Encoding": enc}})
		if resp.code != http.StatusUnsupportedMediaType || resp.env.ErrorType != "unsupported_media_type" || !strings.Contains(resp.env.Error, enc) {
			t.Errorf("Content-Encoding %s: %d %s", enc, resp.code, resp.body)
		}
	}
	if err := h.w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.st.Count(context.Background(), "changes"); n != 0 {
		t.Errorf("%d changes stored from bodies that could not be read", n)
	}
}
