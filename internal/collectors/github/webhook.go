package github

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/event"
)

// Webhook receives GitHub's webhook deliveries. Configure the webhook (on
// a repository or an organisation) with content type application/json,
// the secret of github.secret, and the events "Deployment statuses" (and
// "Releases" if releases: deploy).
//
// Every delivery must carry X-Hub-Signature-256, the HMAC-SHA256 of the
// raw body under the secret; one without it or with a wrong one gets 401
// and is not read. ping gets 200; events other than deployment_status and
// release get 202 and are dropped.
type Webhook struct {
	cfg settings
	w   changes.Writer
	log *slog.Logger
}

// NewWebhook returns the receiver, writing to w (a changes.MergingWriter).
// It fails without a secret: an unsigned receiver would record whatever
// anyone posts.
func NewWebhook(cfg Config, w changes.Writer, log *slog.Logger) (*Webhook, error) {
	s, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	if s.Secret == "" {
		return nil, errors.New("github.secret: required for the webhook receiver")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Webhook{cfg: s, w: w, log: log.With("collector", "github")}, nil
}

// ServeHTTP handles one delivery.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := changes.ReadRequest(w, r, 0)
	if !ok {
		return
	}
	sig, found := strings.CutPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
	if !found || !changes.ValidHMACSHA256(h.cfg.Secret.Reveal(), body, sig) {
		h.log.Warn("rejected a delivery with a missing or wrong signature", "delivery", r.Header.Get("X-GitHub-Delivery"))
		changes.Fail(w, http.StatusUnauthorized, "missing or wrong X-Hub-Signature-256")
		return
	}
	ev := r.Header.Get("X-GitHub-Event")
	switch ev {
	case "ping":
		changes.Respond(w, http.StatusOK, changes.Reply{Status: "pong"})
		return
	case "deployment_status", "release":
	default:
		changes.Ignore(w, "event %q is not collected", ev)
		return
	}
	ch, code, reason := h.change(ev, body)
	if code == 0 {
		// A delivery without a time (or with an absurd one, or names over
		// the limits) is malformed: refuse it rather than record it.
		if err := changes.Validate(&ch); err != nil {
			code, reason = http.StatusBadRequest, err.Error()
		}
	}
	if code != 0 {
		if code == http.StatusAccepted {
			changes.Ignore(w, "%s", reason)
		} else {
			changes.Fail(w, code, "%s", reason)
		}
		return
	}
	if err := h.w.Add(r.Context(), &event.Batch{Changes: []event.Change{ch}}); err != nil {
		h.log.Error("cannot write a change", "err", err)
		changes.Fail(w, http.StatusServiceUnavailable, "cannot write the change now; redeliver later")
		return
	}
	h.log.Debug("recorded", "event", ev, "service", ch.Service, "version", ch.Version, "delivery", r.Header.Get("X-GitHub-Delivery"))
	changes.Accept(w, 1)
}

// change decodes an event into its change. A non-zero code answers
// instead: 202 when there is nothing to record, an error otherwise.
func (h *Webhook) change(ev string, body []byte) (event.Change, int, string) {
	var p struct {
		Action           string            `json:"action"`
		Repository       repository        `json:"repository"`
		Deployment       *deployment       `json:"deployment"`
		DeploymentStatus *deploymentStatus `json:"deployment_status"`
		Release          *release          `json:"release"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return event.Change{}, http.StatusBadRequest, "invalid JSON: " + err.Error()
	}
	repo, ok := h.cfg.repository(p.Repository.FullName)
	if !ok {
		if h.cfg.UnknownRepositories == "reject" {
			return event.Change{}, http.StatusUnprocessableEntity, "repository " + p.Repository.FullName + " is not configured"
		}
		return event.Change{}, http.StatusAccepted, "repository " + p.Repository.FullName + " is not configured"
	}
	switch ev {
	case "deployment_status":
		if p.Deployment == nil || p.DeploymentStatus == nil {
			return event.Change{}, http.StatusBadRequest, "deployment_status event without deployment or deployment_status"
		}
		ch, ok := h.cfg.deployChange(p.Repository.FullName, repo, *p.Deployment, *p.DeploymentStatus)
		if !ok {
			return event.Change{}, http.StatusAccepted, "state " + p.DeploymentStatus.State + " in environment " + p.Deployment.Environment + " is not recorded"
		}
		return ch, 0, ""
	default: // release
		if h.cfg.Releases != "deploy" {
			return event.Change{}, http.StatusAccepted, "releases are not deploys (set github.releases: deploy to record them)"
		}
		if p.Action != "published" || p.Release == nil {
			return event.Change{}, http.StatusAccepted, "release action " + p.Action + " is not recorded"
		}
		ch, ok := h.cfg.releaseChange(p.Repository.FullName, repo, *p.Release)
		if !ok {
			return event.Change{}, http.StatusAccepted, "draft release"
		}
		return ch, 0, ""
	}
}
