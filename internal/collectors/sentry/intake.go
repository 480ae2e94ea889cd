package sentry

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/correlator/correlator/internal/event"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
)

// Writer receives the records; *store.BatchWriter implements it. Add may
// block to push back; an error means the records were not taken.
type Writer interface {
	Add(ctx context.Context, b *event.Batch) error
}

// Intake is the Sentry-compatible ingestion endpoint: an http.Handler for
// POST /api/{project_id}/envelope/ and POST /api/{project_id}/store/. It is
// safe for concurrent use.
type Intake struct {
	m       *mapper
	w       Writer
	log     *slog.Logger
	met     *metrics
	keys    map[string][]string // keys maps a project id to its public keys.
	maxBody int64
	now     func() time.Time
}

// NewIntake returns the intake for cfg, which must validate and give at
// least one project a public key. Metrics are registered on reg (nil: not
// registered).
func NewIntake(cfg Config, w Writer, log *slog.Logger, reg prometheus.Registerer) (*Intake, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("sentry intake: nil writer")
	}
	cfg = cfg.withDefaults()
	keys := map[string][]string{}
	for _, p := range cfg.Projects {
		for _, k := range p.PublicKeys {
			keys[p.ID] = append(keys[p.ID], k.Reveal())
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("sentry.projects: no project has public_keys, so the intake would refuse everything")
	}
	met, err := newMetrics(reg, CollectorIntake, true)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Intake{
		m: newMapper(cfg), w: w, log: log.With("component", "sentry_intake"), met: met,
		keys: keys, maxBody: cfg.MaxBodyBytes, now: time.Now,
	}, nil
}

// Register adds the intake's routes to mux: /api/{project_id}/envelope/
// and /api/{project_id}/store/, where an SDK with the DSN
// http://KEY@HOST:PORT/PROJECT_ID posts, each also without its trailing
// slash (a redirect would turn some clients' POST into a GET). The
// patterns take every method so that the handler answers CORS preflights
// and 405s itself; they do not overlap the /api/v1/... routes.
func (h *Intake) Register(mux *http.ServeMux) {
	for _, p := range IntakePatterns {
		mux.Handle(p, h)
	}
}

// IntakePatterns are the ServeMux patterns the intake answers, for
// callers that mount it themselves.
var IntakePatterns = []string{
	"/api/{project_id}/envelope/{$}", "/api/{project_id}/envelope",
	"/api/{project_id}/store/{$}", "/api/{project_id}/store",
}

// httpError is a rejection: its status, the metric reason and the detail
// sent to the client.
type httpError struct {
	status int
	reason string
	detail string
}

func (e *httpError) Error() string { return e.detail }

func reject(status int, reason, format string, args ...any) *httpError {
	return &httpError{status: status, reason: reason, detail: fmt.Sprintf(format, args...)}
}

// ServeHTTP handles one envelope or store request. The path must end in
// /{project_id}/envelope/ or /{project_id}/store/ (the trailing slash may
// be missing), so the intake can also be mounted under a prefix.
func (h *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Browser SDKs post cross-origin; Sentry answers them the same way.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Expose-Headers", "x-sentry-error, x-sentry-rate-limits, retry-after")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "x-sentry-auth, content-type, content-encoding, authorization, sentry-trace, baggage")
		w.Header().Set("Access-Control-Max-Age", "3600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		h.fail(w, reject(http.StatusMethodNotAllowed, reasonMalformed, "method %s not allowed: POST an envelope or an event", r.Method))
		return
	}
	project, endpoint, ok := splitPath(r.URL.Path)
	if !ok {
		h.fail(w, reject(http.StatusNotFound, reasonMalformed, "no such endpoint %q: use /api/{project_id}/envelope/ or /api/{project_id}/store/", cut(r.URL.Path, 100)))
		return
	}
	id, herr := h.handle(r, project, endpoint)
	if herr != nil {
		h.fail(w, herr)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id})
}

// splitPath takes the project id and the endpoint from .../{id}/{endpoint}/.
func splitPath(p string) (project, endpoint string, ok bool) {
	p = strings.TrimSuffix(p, "/")
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", "", false
	}
	endpoint = p[i+1:]
	p = p[:i]
	project = p[strings.LastIndexByte(p, '/')+1:]
	if (endpoint != "envelope" && endpoint != "store") || !isDigits(project) {
		return "", "", false
	}
	return project, endpoint, true
}

// handle authenticates, reads, parses and writes one request. It returns
// the event id to answer with.
func (h *Intake) handle(r *http.Request, project, endpoint string) (string, *httpError) {
	keys, ok := h.keys[project]
	if !ok {
		return "", reject(http.StatusForbidden, reasonUnknownProject, "project %s is not configured for this intake", project)
	}
	key, herr := requestKey(r)
	if herr != nil {
		return "", herr
	}
	if key != "" && !keyIn(key, keys) {
		return "", reject(http.StatusForbidden, reasonForbidden, "invalid sentry_key for project %s", project)
	}
	// The store endpoint has no body authentication: refuse before reading.
	if key == "" && endpoint == "store" {
		return "", reject(http.StatusUnauthorized, reasonUnauthorized, "missing authorization information: send X-Sentry-Auth with sentry_key, or ?sentry_key=")
	}
	body, herr := readBody(r, h.maxBody)
	if herr != nil {
		return "", herr
	}
	now := h.now()
	if endpoint == "store" {
		return h.store(r.Context(), project, body, now)
	}
	return h.envelope(r.Context(), project, key, keys, body, now)
}

// requestKey returns the sentry_key given by the X-Sentry-Auth or
// Authorization header or the query; more than one must agree.
func requestKey(r *http.Request) (string, *httpError) {
	var found []string
	for _, v := range []string{authKey(r.Header.Get("X-Sentry-Auth")), authKey(r.Header.Get("Authorization")), r.URL.Query().Get("sentry_key")} {
		if v != "" {
			found = append(found, v)
		}
	}
	for _, v := range found[min(1, len(found)):] {
		if v != found[0] {
			return "", reject(http.StatusForbidden, reasonForbidden, "the request names two different sentry_key values")
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	return found[0], nil
}

// keyIn compares in constant time per key, so that response times do not
// reveal how much of a key was right.
func keyIn(key string, keys []string) bool {
	ok := 0
	for _, k := range keys {
		ok |= subtle.ConstantTimeCompare([]byte(key), []byte(k))
	}
	return ok == 1
}

func (h *Intake) store(ctx context.Context, project string, body []byte, now time.Time) (string, *httpError) {
	body = maybeLegacyEncoded(body, h.maxBody)
	rec, err := h.m.toRecord(body, origin{project: project, fallbackTime: now, now: now})
	if errors.Is(err, errNotError) {
		h.met.ignored.WithLabelValues("transaction").Inc()
		return "", nil
	}
	if err != nil {
		return "", h.rejectEvent(project, "event", err)
	}
	if herr := h.write(ctx, []event.ErrorEvent{rec}, now); herr != nil {
		return "", herr
	}
	return answerID(rec), nil
}

func (h *Intake) envelope(ctx context.Context, project, key string, keys []string, body []byte, now time.Time) (string, *httpError) {
	env, perr := parseEnvelope(body)
	// Authenticate with the envelope's dsn header when the request did not.
	if env.Header.DSN != "" {
		dk, dp, err := parseDSN(env.Header.DSN)
		switch {
		case err != nil:
			return "", reject(http.StatusBadRequest, reasonMalformed, "envelope header: field dsn: %v", err)
		case dp != project:
			return "", reject(http.StatusForbidden, reasonForbidden, "envelope header: dsn names project %s, the URL project %s", dp, project)
		case key != "" && dk != key:
			return "", reject(http.StatusForbidden, reasonForbidden, "envelope header: dsn key differs from the request's sentry_key")
		case key == "" && !keyIn(dk, keys):
			return "", reject(http.StatusForbidden, reasonForbidden, "invalid sentry_key for project %s", project)
		}
		key = dk
	}
	if key == "" {
		return "", reject(http.StatusUnauthorized, reasonUnauthorized, "missing authorization information: send X-Sentry-Auth with sentry_key, ?sentry_key= or an envelope dsn header")
	}
	o := origin{project: project, eventID: env.Header.EventID, fallbackTime: now, now: now}
	if t, err := time.Parse(time.RFC3339Nano, env.Header.SentAt); err == nil {
		o.fallbackTime = t
	}
	var (
		recs   []event.ErrorEvent
		causes []string
		id     string
	)
	if id, _ = normalizeEventID(env.Header.EventID); id == "" && env.Header.EventID != "" {
		causes = append(causes, fmt.Sprintf("envelope header: field event_id: %q is not a UUID", cut(env.Header.EventID, 40)))
	}
	for i, it := range env.Items {
		if it.Type != "event" {
			h.met.ignored.WithLabelValues(itemTypeLabel(it.Type)).Inc()
			continue
		}
		rec, err := h.m.toRecord(it.Payload, o)
		if errors.Is(err, errNotError) {
			h.met.ignored.WithLabelValues("transaction").Inc()
			continue
		}
		if err != nil {
			causes = append(causes, h.rejectEvent(project, fmt.Sprintf("envelope items[%d] (event)", i), err).detail)
			continue
		}
		recs = append(recs, rec)
		if id == "" {
			id = answerID(rec)
		}
	}
	if perr != nil {
		h.met.rejected.WithLabelValues(reasonMalformed).Inc()
		causes = append(causes, perr.Error())
	}
	// Whatever was good is kept, even when the answer is 400.
	if herr := h.write(ctx, recs, now); herr != nil {
		return "", herr
	}
	if len(causes) > 0 {
		detail := causes[0]
		if len(recs) > 0 {
			detail += fmt.Sprintf("; %d other event(s) accepted", len(recs))
		}
		if len(causes) > 1 {
			detail += fmt.Sprintf("; and %d more problem(s)", len(causes)-1)
		}
		return "", reject(http.StatusBadRequest, "", "%s", detail)
	}
	return id, nil
}

// answerID is the id Sentry would answer with: the event id, or, for an
// event that came without one, the id derived for it (32 hex digits too).
func answerID(rec event.ErrorEvent) string {
	if id := rec.Attributes[AttrEventID]; id != "" {
		return id
	}
	return rec.ID
}

// itemTypeLabel bounds the "type" label to the item types Sentry defines.
func itemTypeLabel(t string) string {
	switch t {
	case "transaction", "session", "sessions", "attachment", "client_report", "user_report", "feedback",
		"profile", "profile_chunk", "replay_event", "replay_recording", "replay_video", "check_in",
		"log", "otel_log", "span", "otel_span", "trace_metric", "statsd", "metric_buckets", "raw_security",
		"security", "unreal_report", "minidump", "apple_crash_report", "form_data", "user_feedback":
		return t
	}
	return "other"
}

// rejectEvent counts and logs a rejected event and returns its answer.
// The detail names the item and field; it never carries user fields.
func (h *Intake) rejectEvent(project, what string, err error) *httpError {
	reason, status := reasonMalformed, http.StatusBadRequest
	switch {
	case errors.Is(err, errNoService):
		reason = reasonNoService
	case errors.Is(err, errUnknownProject):
		reason, status = reasonUnknownProject, http.StatusForbidden
	}
	h.met.rejected.WithLabelValues(reason).Inc()
	h.log.Info("sentry event rejected", "project", project, "reason", reason, "err", err)
	// reason stays empty: the event is counted already.
	return &httpError{status: status, detail: what + ": " + err.Error()}
}

func (h *Intake) write(ctx context.Context, recs []event.ErrorEvent, now time.Time) *httpError {
	if len(recs) == 0 {
		return nil
	}
	if err := h.w.Add(ctx, &event.Batch{Errors: recs}); err != nil {
		h.met.errors.WithLabelValues("write").Inc()
		h.met.rejected.WithLabelValues(reasonWriteFailed).Add(float64(len(recs)))
		h.log.Error("sentry events not written", "events", len(recs), "err", err)
		return reject(http.StatusServiceUnavailable, "", "cannot store the events now: try again later")
	}
	h.met.accepted.Add(float64(len(recs)))
	h.met.success(now)
	h.met.lag.Set(now.Sub(recs[len(recs)-1].Time).Seconds())
	return nil
}

// fail answers with Sentry's error shape, {"detail": ...}, and counts the
// request unless its events were counted already (reason "").
func (h *Intake) fail(w http.ResponseWriter, e *httpError) {
	if e.reason != "" {
		h.met.rejected.WithLabelValues(e.reason).Inc()
		h.log.Info("sentry request rejected", "status", e.status, "reason", e.reason, "detail", e.detail)
	}
	failJSON(w, e)
}

func failJSON(w http.ResponseWriter, e *httpError) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "60")
	}
	w.Header().Set("X-Sentry-Error", e.detail)
	writeJSON(w, e.status, map[string]string{"detail": e.detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readBody reads the request body, decompressed, refusing more than max
// bytes before or after decompression with 413.
func readBody(r *http.Request, max int64) ([]byte, *httpError) {
	if r.ContentLength > max {
		return nil, reject(http.StatusRequestEntityTooLarge, reasonTooLarge, "body of %d bytes exceeds the limit of %d bytes", r.ContentLength, max)
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity", "gzip", "x-gzip", "deflate", "br", "zstd":
	default:
		return nil, reject(http.StatusUnsupportedMediaType, reasonEncoding, "unsupported Content-Encoding %q: use gzip, deflate, br, zstd or none", cut(enc, 40))
	}
	raw, err := readLimited(r.Body, max)
	if err != nil {
		return nil, err
	}
	if enc == "" || enc == "identity" {
		return raw, nil
	}
	var zr io.Reader
	var cerr error
	switch enc {
	case "gzip", "x-gzip":
		zr, cerr = gzip.NewReader(bytes.NewReader(raw))
	case "deflate":
		// HTTP's deflate is zlib (RFC 1950), but some clients send a raw
		// RFC 1951 stream: accept both.
		if zr, cerr = zlib.NewReader(bytes.NewReader(raw)); cerr != nil {
			zr, cerr = flate.NewReader(bytes.NewReader(raw)), nil
		}
	case "br":
		zr = brotli.NewReader(bytes.NewReader(raw))
	case "zstd":
		d, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max)+1))
		if err != nil {
			cerr = err
		} else {
			defer d.Close()
			zr = d
		}
	}
	if cerr != nil {
		return nil, reject(http.StatusBadRequest, reasonMalformed, "cannot decompress the %s body: %v", enc, cerr)
	}
	out, herr := readLimited(zr, max)
	if herr != nil {
		if herr.status == http.StatusBadRequest {
			herr.detail = fmt.Sprintf("cannot decompress the %s body: %s", enc, herr.detail)
		}
		return nil, herr
	}
	return out, nil
}

func readLimited(r io.Reader, max int64) ([]byte, *httpError) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, reject(http.StatusRequestEntityTooLarge, reasonTooLarge, "body exceeds the limit of %d bytes", max)
		}
		return nil, reject(http.StatusBadRequest, reasonMalformed, "cannot read the body: %v", err)
	}
	if int64(len(b)) > max {
		return nil, reject(http.StatusRequestEntityTooLarge, reasonTooLarge, "body exceeds the limit of %d bytes", max)
	}
	return b, nil
}

// maybeLegacyEncoded decodes the store endpoint's oldest form, base64 of a
// zlib stream (raven clients); anything else is returned as is.
func maybeLegacyEncoded(b []byte, max int64) []byte {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] == '{' {
		return b
	}
	dec, err := base64.StdEncoding.DecodeString(string(t))
	if err != nil {
		return b
	}
	zr, err := zlib.NewReader(bytes.NewReader(dec))
	if err != nil {
		return b
	}
	out, err := io.ReadAll(io.LimitReader(zr, max+1))
	if err != nil || int64(len(out)) > max {
		return b
	}
	return out
}
