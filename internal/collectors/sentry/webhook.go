package sentry

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/prometheus/client_golang/prometheus"
)

// Webhook receives the webhooks of a Sentry internal integration and stores
// the error event they carry: the "event_alert" resource (an issue alert
// rule with the integration as its action; action "triggered", the event in
// data.event) and the "error" resource (action "created", the event in
// data.error). Other resources (installation, issue, comment, ...) are
// answered 200 and counted as ignored. It is safe for concurrent use.
type Webhook struct {
	m       *mapper
	w       Writer
	log     *slog.Logger
	met     *metrics
	secret  []byte
	maxBody int64
	now     func() time.Time
}

// NewWebhook returns the webhook handler for cfg, which must validate and
// have a WebhookSecret.
func NewWebhook(cfg Config, w Writer, log *slog.Logger, reg prometheus.Registerer) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.WebhookSecret == "" || cfg.WebhookSecret.Reveal() == redacted {
		return nil, errors.New("sentry.webhook_secret: required to verify Sentry-Hook-Signature (the integration's client secret)")
	}
	if w == nil {
		return nil, errors.New("sentry webhook: nil writer")
	}
	cfg = cfg.withDefaults()
	met, err := newMetrics(reg, CollectorWebhook, true)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Webhook{
		m: newMapper(cfg), w: w, log: log.With("component", "sentry_webhook"), met: met,
		secret: []byte(cfg.WebhookSecret.Reveal()), maxBody: cfg.MaxBodyBytes, now: time.Now,
	}, nil
}

// ServeHTTP handles one webhook delivery.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, herr := h.handle(r)
	if herr != nil {
		if herr.reason != "" {
			h.met.rejected.WithLabelValues(herr.reason).Inc()
		}
		h.log.Info("sentry webhook rejected", "status", herr.status, "reason", herr.reason, "detail", herr.detail)
		failJSON(w, herr)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id})
}

func (h *Webhook) handle(r *http.Request) (string, *httpError) {
	if r.Method != http.MethodPost {
		return "", reject(http.StatusMethodNotAllowed, reasonMalformed, "method %s not allowed: POST", r.Method)
	}
	sig := strings.TrimSpace(r.Header.Get("Sentry-Hook-Signature"))
	if sig == "" {
		return "", reject(http.StatusUnauthorized, reasonUnauthorized, "missing Sentry-Hook-Signature header")
	}
	body, herr := readBody(r, h.maxBody)
	if herr != nil {
		return "", herr
	}
	if !validSignature(h.secret, body, sig) {
		return "", reject(http.StatusForbidden, reasonForbidden, "Sentry-Hook-Signature does not match the body: check webhook_secret (the integration's client secret)")
	}
	resource := strings.TrimSpace(r.Header.Get("Sentry-Hook-Resource"))
	var field string
	switch resource {
	case "event_alert":
		field = "event"
	case "error":
		field = "error"
	default:
		h.met.ignored.WithLabelValues(webhookResourceLabel(resource)).Inc()
		return "", nil
	}
	var hook struct {
		Action string                     `json:"action"`
		Data   map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &hook); err != nil {
		return "", reject(http.StatusBadRequest, reasonMalformed, "%s", jsonError("", err).Error())
	}
	payload := bytes.TrimSpace(hook.Data[field])
	if isNull(payload) {
		return "", reject(http.StatusBadRequest, reasonMalformed, "field data.%s: required for resource %s", field, resource)
	}
	now := h.now()
	rec, err := h.m.toRecord(payload, origin{fallbackTime: now, now: now})
	if errors.Is(err, errNotError) {
		h.met.ignored.WithLabelValues("transaction").Inc()
		return "", nil
	}
	if err != nil {
		reason := reasonMalformed
		switch {
		case errors.Is(err, errNoService):
			reason = reasonNoService
		case errors.Is(err, errUnknownProject):
			reason = reasonUnknownProject
		}
		return "", reject(http.StatusBadRequest, reason, "data.%s: %v", field, err)
	}
	if err := h.write(r.Context(), rec, now); err != nil {
		return "", err
	}
	return answerID(rec), nil
}

func (h *Webhook) write(ctx context.Context, rec event.ErrorEvent, now time.Time) *httpError {
	if err := h.w.Add(ctx, &event.Batch{Errors: []event.ErrorEvent{rec}}); err != nil {
		h.met.errors.WithLabelValues("write").Inc()
		h.log.Error("sentry webhook event not written", "err", err)
		return reject(http.StatusServiceUnavailable, reasonWriteFailed, "cannot store the event now: try again later")
	}
	h.met.accepted.Inc()
	h.met.success(now)
	h.met.lag.Set(now.Sub(rec.Time).Seconds())
	return nil
}

// validSignature checks sig, the hex HMAC-SHA256 of body keyed with the
// client secret, in constant time.
func validSignature(secret, body []byte, sig string) bool {
	got, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(sig), "sha256="))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func webhookResourceLabel(r string) string {
	switch r {
	case "installation", "issue", "comment", "metric_alert", "seer", "preprod_artifact":
		return "webhook_" + r
	}
	return "webhook_other"
}
