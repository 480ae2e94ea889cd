// Package api is correlator's HTTP interface: the ingest endpoints, the
// "what changed?" query, health, readiness and Prometheus metrics. Responses
// use Prometheus' envelope ({"status", "data", "errorType", "error",
// "warnings"}) so that clients that speak Prometheus' API recognise it.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
)

// Writer queues decoded records for the store; *store.BatchWriter
// implements it. Add may block to push back on producers; Err reports the
// last failed flush (for readiness).
type Writer interface {
	Add(ctx context.Context, b *event.Batch) error
	Err() error
}

// Pinger checks that the store answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Authenticator maps a bearer token to its scopes; config.Config
// implements it.
type Authenticator interface {
	Authenticate(bearer string) (config.Token, bool)
}

// Options configure a Server.
type Options struct {
	Writer Writer
	Store  Pinger
	Engine *correlate.Engine
	// Impact answers GET /api/v1/impact; Incidents resolves its
	// incident=ID form.
	Impact    *impact.Analyzer
	Incidents impact.IncidentReader
	Auth      Authenticator
	// AuthRequired is false only when no token is configured, in which
	// case the server must listen on loopback alone.
	AuthRequired bool
	MaxBodyBytes int64
	Logger       *slog.Logger
	Registry     *prometheus.Registry
	Now          func() time.Time
	// Routes are the collectors' receivers, served beside the API. They
	// authenticate their senders themselves (GitHub and LaunchDarkly sign
	// their bodies, Sentry SDKs present a DSN key), since the senders
	// cannot present our bearer tokens.
	Routes []Route

	// IncidentBook serves /api/v1/incidents: open, list, read, update and
	// resolve incidents.
	IncidentBook IncidentBook
}

// Route is one receiver: a ServeMux pattern and its handler. A route with
// a Scope is served behind the bearer tokens, demanding that scope, except
// for the requests Allow lets through without one (a signed link a
// browser opens, which cannot carry a bearer token).
type Route struct {
	Pattern string
	Handler http.Handler
	Scope   config.Scope
	Allow   func(*http.Request) bool
}

// Server serves the API.
type Server struct {
	opt     Options
	log     *slog.Logger
	metrics *metrics
	mux     *http.ServeMux
}

// New builds the server and registers its metrics in opt.Registry.
func New(opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = config.DefaultMaxBodyBytes
	}
	if opt.Registry == nil {
		opt.Registry = prometheus.NewRegistry()
	}
	s := &Server{opt: opt, log: opt.Logger.With("component", "api"), metrics: newMetrics(opt.Registry), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opt.Registry, promhttp.HandlerOpts{Registry: opt.Registry}))
	s.mux.Handle("POST /api/v1/ingest/{kind}", s.auth(config.ScopeIngest, s.wrap("ingest", s.ingest)))
	s.mux.Handle("GET /api/v1/whatchanged", s.auth(config.ScopeRead, s.wrap("whatchanged", s.whatChanged)))
	s.mux.Handle("GET /api/v1/impact", s.auth(config.ScopeRead, s.wrap("impact", s.impact)))
	s.incidentRoutes()
	for _, r := range opt.Routes {
		h := r.Handler
		if r.Scope != "" {
			h = s.auth(r.Scope, h)
		}
		if r.Allow != nil {
			h = allowOr(r.Allow, r.Handler, h)
		}
		s.mux.Handle(r.Pattern, h)
	}
	return s
}

// allowOr serves the requests allow accepts with open, the others with
// guarded.
func allowOr(allow func(*http.Request) bool, open, guarded http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allow(r) {
			open.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// errorType classifies failures once, for the HTTP status, the envelope's
// errorType and the metrics label.
type errorType string

const (
	errBadData     errorType = "bad_data"
	errTooLarge    errorType = "too_large"
	errUnavailable errorType = "unavailable"
	errInternal    errorType = "internal"
	errTimeout     errorType = "timeout"
	// errUnsupportedMedia is a body in an encoding the server cannot read.
	errUnsupportedMedia errorType = "unsupported_media_type"
)

func (t errorType) status() int {
	switch t {
	case errBadData:
		return http.StatusBadRequest
	case errTooLarge:
		return http.StatusRequestEntityTooLarge
	case errUnavailable:
		return http.StatusServiceUnavailable
	case errUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case errTimeout:
		return http.StatusGatewayTimeout
	case errNotFound:
		return http.StatusNotFound
	case errConflict:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// apiError is an error with its class. Its message is safe to show a
// client; internal details go to the log only.
type apiError struct {
	typ errorType
	err error
}

func (e *apiError) Error() string { return e.err.Error() }

func badParam(name string, err error) *apiError {
	return &apiError{errBadData, fmt.Errorf("invalid parameter %q: %w", name, err)}
}

type envelope struct {
	Status    string    `json:"status"`
	Data      any       `json:"data,omitempty"`
	ErrorType errorType `json:"errorType,omitempty"`
	Error     string    `json:"error,omitempty"`
	Warnings  []string  `json:"warnings,omitempty"`
}

// handlerFunc returns data, warnings and an error; wrap writes them.
// A handler may return data together with an *apiError, to report what was
// done before the failure (an ingest that was cut off).
type handlerFunc func(r *http.Request) (data any, warnings []string, err error)

func (s *Server) wrap(name string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		data, warnings, err := h(r)
		env := envelope{Status: "success", Data: data, Warnings: warnings}
		code := http.StatusOK
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				if errors.Is(err, context.DeadlineExceeded) {
					ae = &apiError{errTimeout, errors.New("request timed out")}
				} else {
					ae = &apiError{errInternal, errors.New("internal error; see the server log")}
				}
				s.log.Error("request failed", "handler", name, "err", err)
			}
			env.Status, env.ErrorType, env.Error = "error", ae.typ, ae.Error()
			code = ae.typ.status()
			var ra retryAfter
			if errors.As(ae.err, &ra) {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ra.RetryAfter().Seconds()))))
			}
		}
		s.metrics.requests.WithLabelValues(name, fmt.Sprint(code)).Inc()
		s.metrics.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
		writeJSON(w, code, env)
	})
}

// writeJSON encodes v before it writes the status, so that a value that
// cannot be encoded (a NaN) is a 500 with a message, not a 200 without a
// body.
func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, `{"status":"error","errorType":%q,"error":%q}`+"\n", errInternal, "encode response: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// auth requires a bearer token allowing scope, unless no token is
// configured at all.
func (s *Server) auth(scope config.Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.opt.AuthRequired {
			next.ServeHTTP(w, r)
			return
		}
		// The scheme is case-insensitive (RFC 9110, section 11.1).
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="correlator"`)
			s.metrics.authFailures.WithLabelValues("missing").Inc()
			writeJSON(w, http.StatusUnauthorized, envelope{Status: "error", ErrorType: "unauthorized", Error: "missing bearer token"})
			return
		}
		t, ok := s.opt.Auth.Authenticate(token)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="correlator", error="invalid_token"`)
			s.metrics.authFailures.WithLabelValues("invalid").Inc()
			writeJSON(w, http.StatusUnauthorized, envelope{Status: "error", ErrorType: "unauthorized", Error: "invalid bearer token"})
			return
		}
		if !t.Allows(scope) {
			s.metrics.authFailures.WithLabelValues("scope").Inc()
			writeJSON(w, http.StatusForbidden, envelope{Status: "error", ErrorType: "forbidden",
				Error: fmt.Sprintf("token %q lacks scope %q", t.Name, scope)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintln(w, "ok")
}

// readyz is ready when the store answers and the last flush succeeded.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain")
	if err := s.opt.Store.Ping(ctx); err != nil {
		s.log.Warn("not ready: store", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "store unavailable")
		return
	}
	if err := s.opt.Writer.Err(); err != nil {
		s.log.Warn("not ready: writes failing", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "writes to the store are failing")
		return
	}
	fmt.Fprintln(w, "ready")
}

type metrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	ingested     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_http_requests_total", Help: "API requests by handler and status code.",
		}, []string{"handler", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "correlator_http_request_duration_seconds", Help: "API request latency by handler.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"handler"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_http_auth_failures_total", Help: "Rejected API requests by reason (missing, invalid, scope).",
		}, []string{"reason"}),
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_ingest_records_total", Help: "Ingested records by kind and result (accepted, rejected).",
		}, []string{"kind", "result"}),
	}
	reg.MustRegister(m.requests, m.latency, m.authFailures, m.ingested)
	return m
}
