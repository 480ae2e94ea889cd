// Package alertmanager receives Alertmanager's webhook notifications and
// turns alert groups into incident windows: a firing group opens an
// incident for the services its alerts name (or joins the one it already
// opened), a resolved group closes it.
//
// # Wiring
//
// Config section "alertmanager" (Config). In `correlator serve`:
//
//	rcv, err := alertmanager.New(cfg.Alertmanager, incidents, log.With("component", "alertmanager"), registry)
//	mux.Handle("POST /collect/alertmanager", rcv)
//
// incidents is the store's implementation of Incidents (see its contract),
// or a *MemIncidents. The receiver checks its own credentials (Config's
// bearer_token or basic_auth), so mount it outside the API's token
// middleware, or leave its credentials empty and mount it inside with the
// ingest scope (Alertmanager's http_config.authorization then carries a
// correlator token). The Alertmanager side:
//
//	receivers:
//	- name: correlator
//	  webhook_configs:
//	  - url: http://correlator:8080/collect/alertmanager
//	    send_resolved: true        # needed to close incidents
//	    http_config:
//	      authorization: {credentials_file: /etc/alertmanager/correlator.token}
//
// # Responses
//
// 200 with Prometheus' envelope and {"action": "opened"|"joined"|"resolved"|
// "ignored", "incident_id", "services"} when the notification was handled;
// 400 for a payload that is not version 4 of the webhook format, naming the
// field (alerts[1].startsAt: ...); 401 for missing or wrong credentials; 405
// for methods other than POST; 413 for a body over MaxBodyBytes; 415 for a
// Content-Type other than JSON or any Content-Encoding; 500 when the
// incident could not be recorded, so that Alertmanager retries (it retries
// 5xx, not 4xx).
package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/collectors/httpauth"
)

// Defaults applied to zero Config fields.
const (
	DefaultServiceLabel = "service"
	DefaultMaxBodyBytes = 8 << 20
)

// maxServiceLen is the longest service name kept, as ingest's identifiers.
const maxServiceLen = 256

// Config configures the receiver. It is the "alertmanager" section of
// correlator's config file.
type Config struct {
	// Enabled mounts the receiver at POST /collect/alertmanager. Without
	// Credentials it is served behind the API's bearer tokens (ingest
	// scope), which Alertmanager's http_config.authorization can send.
	Enabled bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// ServiceLabel is the alert label naming the affected service; default
	// "service". Alerts from Prometheus rules often carry "job" instead.
	ServiceLabel string `yaml:"service_label,omitempty" json:"service_label,omitempty"`
	// Credentials, when set, are demanded of every request: the bearer
	// token (Alertmanager's http_config.authorization) or basic auth
	// (http_config.basic_auth). Empty: no check, so the route must be
	// protected otherwise.
	httpauth.Credentials `yaml:",inline"`
	// MaxBodyBytes caps a notification's size; default 8 MiB (a group of a
	// few thousand alerts).
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty" json:"max_body_bytes,omitempty"`
}

func (c Config) withDefaults() Config {
	if c.ServiceLabel == "" {
		c.ServiceLabel = DefaultServiceLabel
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return c
}

// Validate reports every problem of the config, each naming its field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if strings.TrimSpace(c.ServiceLabel) != c.ServiceLabel {
		errs = append(errs, fmt.Errorf("alertmanager.service_label: %q has surrounding space", c.ServiceLabel))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("alertmanager.max_body_bytes: %d is negative", c.MaxBodyBytes))
	}
	if err := c.Credentials.Validate("alertmanager"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Receiver is the webhook endpoint, an http.Handler.
type Receiver struct {
	cfg Config
	inc Incidents
	log *slog.Logger
	m   *metrics
	now func() time.Time // now dates notifications without times; tests set it.
}

// New validates cfg and returns a receiver recording into inc. It registers
// its metrics with reg (nil: not registered).
func New(cfg Config, inc Incidents, log *slog.Logger, reg promclient.Registerer) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if inc == nil {
		return nil, errors.New("alertmanager receiver: nil incidents")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Receiver{cfg: cfg.withDefaults(), inc: inc, log: log, m: m, now: time.Now}, nil
}

// Result is the data of a successful response.
type Result struct {
	// Action is what the notification did: opened, joined, resolved, or
	// ignored (no alert named a service, or nothing was open to resolve).
	Action     string `json:"action"`
	IncidentID string `json:"incident_id,omitempty"`
	// Services are the services this notification named (an incident
	// joined may have more).
	Services []string `json:"services,omitempty"`
	// Warning explains an ignored notification.
	Warning string `json:"warning,omitempty"`

	noService bool // noService marks a notification counted as rejected, not accepted.
}

type envelope struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

// httpError is a failure with its status and the reason label of the
// rejected metric. Its message is safe to show the sender.
type httpError struct {
	code   int
	reason string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// errorTypes are the envelope's errorType per status.
var errorTypes = map[int]string{
	http.StatusBadRequest:            "bad_data",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestEntityTooLarge: "too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusInternalServerError:   "internal",
}

// ServeHTTP implements http.Handler.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res, err := rc.serve(r)
	if err == nil {
		if !res.noService {
			rc.m.accepted.Inc()
		}
		rc.m.lastSuccess.Set(float64(rc.now().UnixNano()) / 1e9)
		writeJSON(w, http.StatusOK, envelope{Status: "success", Data: res})
		return
	}
	var he *httpError
	if !errors.As(err, &he) {
		// A store failure: the detail goes to the log, Alertmanager gets a
		// 500 and retries.
		rc.log.Error("record incident", "err", err)
		rc.m.errors.WithLabelValues("store").Inc()
		he = &httpError{http.StatusInternalServerError, "", "cannot record the incident; see the server log"}
	} else {
		rc.m.rejected.WithLabelValues(he.reason).Inc()
		rc.log.Warn("alertmanager notification rejected", "status", he.code, "reason", he.reason, "err", he.msg)
	}
	switch he.code {
	case http.StatusUnauthorized:
		if rc.cfg.BasicAuth != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="correlator"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="correlator"`)
		}
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	}
	writeJSON(w, he.code, envelope{Status: "error", ErrorType: errorTypes[he.code], Error: he.msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// serve checks and reads the request, then applies the notification.
func (rc *Receiver) serve(r *http.Request) (*Result, error) {
	if r.Method != http.MethodPost {
		return nil, &httpError{http.StatusMethodNotAllowed, "method", fmt.Sprintf("method %s not allowed (want POST)", r.Method)}
	}
	if err := rc.cfg.Credentials.Verify(r); err != nil {
		switch {
		case errors.Is(err, httpauth.ErrMissing):
			return nil, &httpError{http.StatusUnauthorized, "unauthorized", "missing credentials"}
		case errors.Is(err, httpauth.ErrInvalid):
			return nil, &httpError{http.StatusUnauthorized, "unauthorized", "invalid credentials"}
		}
		// The secret file cannot be read: fail closed, tell the operator.
		rc.log.Error("read receiver credentials", "err", err)
		return nil, &httpError{http.StatusUnauthorized, "unauthorized", "credentials cannot be checked; see the server log"}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &httpError{http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("unsupported Content-Type %q (want application/json)", truncate(ct, 64))}
		}
	}
	if enc := strings.TrimSpace(r.Header.Get("Content-Encoding")); enc != "" && !strings.EqualFold(enc, "identity") {
		return nil, &httpError{http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("unsupported Content-Encoding %q (want none)", truncate(enc, 64))}
	}
	limit := rc.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, &httpError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body of %d bytes is over the limit of %d bytes", r.ContentLength, limit)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &httpError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body is over the limit of %d bytes", limit)}
		}
		return nil, &httpError{http.StatusBadRequest, "read", "cannot read body: " + err.Error()}
	}
	msg, err := Parse(body)
	if err != nil {
		return nil, &httpError{http.StatusBadRequest, "bad_payload", err.Error()}
	}
	return rc.apply(r.Context(), msg)
}

// apply opens, joins or resolves the group's incident.
func (rc *Receiver) apply(ctx context.Context, msg *Message) (*Result, error) {
	if msg.TruncatedAlerts > 0 {
		// Services of the left-out alerts are missing; set max_alerts to 0
		// on the receiver to get all of them.
		rc.log.Warn("alertmanager truncated alerts", "group_key", msg.GroupKey, "truncated", msg.TruncatedAlerts)
	}
	if msg.Status == StatusResolved {
		at := rc.resolvedAt(msg)
		id, err := rc.inc.Resolve(ctx, msg.GroupKey, at)
		if err != nil {
			return nil, fmt.Errorf("resolve incident of group %q: %w", msg.GroupKey, err)
		}
		if id == "" {
			rc.log.Debug("resolved alert group has no open incident", "group_key", msg.GroupKey)
			return &Result{Action: "ignored", Warning: "no open incident for this group"}, nil
		}
		rc.log.Info("incident resolved", "incident_id", id, "group_key", msg.GroupKey, "at", at)
		return &Result{Action: "resolved", IncidentID: id}, nil
	}

	o := rc.opening(msg)
	if len(o.Services) == 0 {
		rc.m.rejected.WithLabelValues("no_service").Inc()
		w := fmt.Sprintf("no firing alert has a %q label; no incident opened", rc.cfg.ServiceLabel)
		rc.log.Warn("alert group names no service", "group_key", msg.GroupKey, "service_label", rc.cfg.ServiceLabel)
		return &Result{Action: "ignored", Warning: w, noService: true}, nil
	}
	id, opened, err := rc.inc.OpenOrJoin(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("open incident of group %q: %w", msg.GroupKey, err)
	}
	action := "joined"
	if opened {
		action = "opened"
	}
	rc.log.Info("incident "+action, "incident_id", id, "group_key", msg.GroupKey, "services", o.Services, "at", o.At)
	return &Result{Action: action, IncidentID: id, Services: o.Services}, nil
}

// opening describes the incident of a firing notification: the services
// and start of its firing alerts (every alert when none says firing), and
// the group's common labels and annotations.
func (rc *Receiver) opening(msg *Message) Opening {
	firing := make([]Alert, 0, len(msg.Alerts))
	for _, a := range msg.Alerts {
		if a.Status == StatusFiring {
			firing = append(firing, a)
		}
	}
	if len(firing) == 0 {
		firing = msg.Alerts
	}
	o := Opening{Key: msg.GroupKey}
	addService := func(s string) {
		if s != "" && len(s) <= maxServiceLen && strings.TrimSpace(s) == s && !slices.Contains(o.Services, s) {
			o.Services = append(o.Services, s)
		}
	}
	for _, a := range firing {
		addService(a.Labels[rc.cfg.ServiceLabel])
		if !a.StartsAt.IsZero() && (o.At.IsZero() || a.StartsAt.Before(o.At)) {
			o.At = a.StartsAt
		}
	}
	addService(msg.CommonLabels[rc.cfg.ServiceLabel])
	slices.Sort(o.Services)
	if o.At.IsZero() {
		o.At = rc.now().UTC()
	}
	o.Title = msg.CommonAnnotations["summary"]
	if o.Title == "" {
		o.Title = msg.CommonLabels["alertname"]
	}
	if o.Title == "" {
		o.Title = msg.GroupLabels["alertname"]
	}
	if o.Title == "" {
		o.Title = "alert group " + msg.GroupKey
	}
	o.Title = truncate(o.Title, 1024)
	o.Severity = msg.CommonLabels["severity"]
	o.Attributes = map[string]string{"alertmanager.group_key": msg.GroupKey}
	for k, v := range map[string]string{
		"alertmanager.receiver": msg.Receiver, "alertmanager.external_url": msg.ExternalURL,
		"alertname": msg.CommonLabels["alertname"],
	} {
		if v != "" {
			o.Attributes[k] = truncate(v, 4096)
		}
	}
	return o
}

// resolvedAt is when a resolved group ended: the latest endsAt of its
// alerts, or now when none has one.
func (rc *Receiver) resolvedAt(msg *Message) time.Time {
	var at time.Time
	for _, a := range msg.Alerts {
		if a.EndsAt.After(at) {
			at = a.EndsAt
		}
	}
	if at.IsZero() {
		at = rc.now().UTC()
	}
	return at
}
