// Package argocd records Argo CD syncs as deploys, from the webhook
// service of Argo CD's notifications engine.
//
// # Argo CD side
//
// In argocd-notifications-cm, a webhook service, a template that sends what
// the collector reads, and two triggers from the catalog (on-deployed
// fires once per synced revision once the application is healthy;
// on-sync-failed on failure):
//
//	service.webhook.correlator: |
//	  url: https://correlator.example.com/collect/argocd
//	  headers:
//	  - name: Content-Type
//	    value: application/json
//	  - name: X-Correlator-Secret
//	    value: $correlator-secret          # a key of argocd-notifications-secret
//	template.correlator: |
//	  webhook:
//	    correlator:
//	      method: POST
//	      body: |
//	        {
//	          "app": {{ toJson .app.metadata.name }},
//	          "project": {{ toJson .app.spec.project }},
//	          "phase": {{ toJson .app.status.operationState.phase }},
//	          "sync_status": {{ toJson (dig "status" "sync" "status" "" .app) }},
//	          "health_status": {{ toJson (dig "status" "health" "status" "" .app) }},
//	          "revision": {{ toJson (dig "status" "operationState" "syncResult" "revision" "" .app) }},
//	          "sync_revision": {{ toJson (dig "status" "sync" "revision" "" .app) }},
//	          "started_at": {{ toJson (dig "status" "operationState" "startedAt" "" .app) }},
//	          "finished_at": {{ toJson (dig "status" "operationState" "finishedAt" "" .app) }},
//	          "message": {{ toJson (dig "status" "operationState" "message" "" .app) }},
//	          "initiated_by": {{ toJson (dig "status" "operationState" "operation" "initiatedBy" "username" "" .app) }},
//	          "destination": {{ toJson .app.spec.destination }},
//	          "repo_url": {{ toJson (dig "spec" "source" "repoURL" "" .app) }},
//	          "target_revision": {{ toJson (dig "spec" "source" "targetRevision" "" .app) }},
//	          "images": {{ toJson (dig "status" "summary" "images" (list) .app) }},
//	          "url": {{ toJson (printf "%s/applications/%s" .context.argocdUrl .app.metadata.name) }}
//	        }
//	trigger.on-deployed: |
//	  - when: app.status.operationState != nil and app.status.operationState.phase in ['Succeeded'] and app.status.health.status == 'Healthy'
//	    oncePer: app.status.operationState.syncResult.revision
//	    send: [correlator]
//	trigger.on-sync-failed: |
//	  - when: app.status.operationState != nil and app.status.operationState.phase in ['Error', 'Failed']
//	    send: [correlator]
//
// and subscribe the applications (or their project, or defaultTriggers)
// with the annotations notifications.argoproj.io/subscribe.on-deployed.correlator: ""
// and notifications.argoproj.io/subscribe.on-sync-failed.correlator: "".
// Argo CD renders webhook bodies with text/template and Sprig: toJson
// quotes every value safely, and dig reads fields that some applications
// or operations lack (spec.source of a multi-source application, the
// syncResult of a sync that failed early) without failing the template.
// The context key argocdUrl is the one the catalog's templates use.
//
// # Correlator side
//
// Under changes: in correlator's configuration file (config.Changes):
//
//	argocd:
//	  secret: ...                  # optional; then X-Correlator-Secret (or a bearer token) must match
//	  environment: production      # default environment
//	  unknown_applications: default   # default: service = application name; ignore: drop
//	  applications:
//	    api-prod:
//	      service: api
//	      environment: production
//	      image: ghcr.io/acme/api  # the image whose tag is the version
//	      version: image           # image (default), revision or target_revision
//
// # What becomes a change
//
// A sync whose phase is Succeeded is a deploy; Failed or Error is recorded
// too, with status=failed (a sync that failed half-way changed the
// cluster); Running and Terminating are acknowledged and dropped.
//
// The version must be the one the other sources of the same deploy name
// (GitHub, CI's `correlator mark`), or they will not merge. In GitOps the
// synced revision is a commit of the configuration repository, not of the
// service, so by default (version: image) the version is the tag of the
// application's image: the image named by image, or the only image when
// the application has one. When no image tag can be found, or with
// version: revision, it is the synced revision (and that revision is also
// the change's commit: right when the application's source is the
// service's own repository). version: target_revision takes
// spec.source.targetRevision, such as a Helm chart's version. The synced
// revision is always kept in the attribute argocd.revision.
//
// The time is finishedAt (startedAt, then the time received, when absent);
// the author is who initiated the sync ("automated" for auto-sync).
package argocd

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/event"
)

// Source is the source name of Argo CD's changes.
const Source = "argocd"

// Config configures the Argo CD collector (see the package documentation).
type Config = config.ArgoCD

// Application maps one Argo CD application.
type Application = config.ArgoCDApplication

func withDefaults(c Config) (Config, error) {
	if c.UnknownApplications == "" {
		c.UnknownApplications = "default"
	}
	var errs []error
	if c.UnknownApplications != "default" && c.UnknownApplications != "ignore" {
		errs = append(errs, fmt.Errorf("argocd.unknown_applications: %q (want default or ignore)", c.UnknownApplications))
	}
	for name, a := range c.Applications {
		switch a.Version {
		case "", "image", "revision", "target_revision":
		default:
			errs = append(errs, fmt.Errorf("argocd.applications.%s.version: %q (want image, revision or target_revision)", name, a.Version))
		}
	}
	return c, errors.Join(errs...)
}

// Notification is the body the documented template sends.
type Notification struct {
	App            string   `json:"app"`
	Project        string   `json:"project"`
	Phase          string   `json:"phase"`
	SyncStatus     string   `json:"sync_status"`
	HealthStatus   string   `json:"health_status"`
	Revision       string   `json:"revision"`
	SyncRevision   string   `json:"sync_revision"`
	StartedAt      string   `json:"started_at"`
	FinishedAt     string   `json:"finished_at"`
	Message        string   `json:"message"`
	InitiatedBy    string   `json:"initiated_by"`
	Destination    Dest     `json:"destination"`
	RepoURL        string   `json:"repo_url"`
	TargetRevision string   `json:"target_revision"`
	Images         []string `json:"images"`
	URL            string   `json:"url"`
}

// Dest is an application's destination.
type Dest struct {
	Server    string `json:"server"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// Webhook receives the notifications.
type Webhook struct {
	cfg Config
	w   changes.Writer
	log *slog.Logger
	now func() time.Time
}

// NewWebhook returns the receiver writing to w (a changes.MergingWriter).
func NewWebhook(cfg Config, w changes.Writer, log *slog.Logger) (*Webhook, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Webhook{cfg: cfg, w: w, log: log.With("collector", "argocd"), now: time.Now}, nil
}

// ServeHTTP handles one notification.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := changes.ReadRequest(w, r, h.cfg.MaxBody)
	if !ok {
		return
	}
	if h.cfg.Secret != "" && !changes.SecretEqual(changes.SharedSecret(r), h.cfg.Secret.Reveal()) {
		changes.Fail(w, http.StatusUnauthorized, "missing or wrong shared secret")
		return
	}
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		changes.Fail(w, http.StatusBadRequest, "invalid JSON: %v (is the template's body valid JSON?)", err)
		return
	}
	ch, reason, err := h.Change(n)
	if err != nil {
		changes.Fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if reason != "" {
		changes.Ignore(w, "%s", reason)
		return
	}
	if err := h.w.Add(r.Context(), &event.Batch{Changes: []event.Change{ch}}); err != nil {
		h.log.Error("cannot write a change", "err", err)
		changes.Fail(w, http.StatusServiceUnavailable, "cannot write the change now; retry")
		return
	}
	changes.Accept(w, 1)
}

// Change maps a notification to its change. A non-empty reason says why
// there is nothing to record; err says the notification is malformed.
func (h *Webhook) Change(n Notification) (ch event.Change, reason string, err error) {
	if n.App == "" {
		return event.Change{}, "", errors.New("app: missing (see the template in the documentation)")
	}
	status := ""
	switch strings.ToLower(n.Phase) {
	case "succeeded":
		status = changes.StatusSucceeded
	case "failed", "error":
		status = changes.StatusFailed
	case "":
		return event.Change{}, "", errors.New("phase: missing (see the template in the documentation)")
	default:
		return event.Change{}, fmt.Sprintf("phase %s is not an outcome", n.Phase), nil
	}
	app, ok := h.cfg.Applications[n.App]
	if !ok {
		if h.cfg.UnknownApplications == "ignore" {
			return event.Change{}, "application " + n.App + " is not configured", nil
		}
		app = Application{Service: n.App}
	}
	if app.Service == "" {
		app.Service = n.App
	}
	env := app.Environment
	if env == "" {
		env = h.cfg.Environment
	}
	t := h.now().UTC()
	for _, s := range []string{n.FinishedAt, n.StartedAt} {
		if s == "" {
			continue
		}
		if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
			t = v.UTC()
			break
		}
	}
	revision := n.Revision
	if revision == "" {
		revision = n.SyncRevision
	}
	version, commit := "", ""
	switch app.Version {
	case "", "image":
		version = imageTag(n.Images, app.Image)
	case "target_revision":
		version = n.TargetRevision
	}
	if version == "" {
		version, commit = revision, revision
	}
	if version == "" {
		return event.Change{}, "", errors.New("no version: neither an image tag nor a revision in the notification")
	}
	title := fmt.Sprintf("Argo CD synced %s to %s", n.App, shortRevision(version))
	if status == changes.StatusFailed {
		title = fmt.Sprintf("Argo CD sync of %s to %s failed", n.App, shortRevision(version))
		if n.Message != "" {
			title += ": " + firstLine(n.Message)
		}
	}
	attrs := map[string]string{"argocd.application": n.App, changes.StatusAttr: status}
	for k, v := range map[string]string{
		"argocd.revision": revision, "argocd.project": n.Project, "argocd.sync_status": n.SyncStatus,
		"argocd.health_status": n.HealthStatus, "argocd.destination": destination(n.Destination),
		"argocd.repo_url": n.RepoURL, "argocd.target_revision": n.TargetRevision,
	} {
		if v != "" {
			attrs[k] = v
		}
	}
	ch = event.Change{
		Time: t, Kind: event.ChangeDeploy, Service: app.Service, Environment: env, Version: version, Commit: commit,
		Author: n.InitiatedBy, Title: title, URL: n.URL, Source: Source, Attributes: attrs,
	}
	if ch.Author == "" {
		ch.Author = "automated"
	}
	if err := changes.Validate(&ch); err != nil {
		return event.Change{}, "", err
	}
	changes.AssignID(&ch)
	return ch, "", nil
}

// imageTag returns the tag of the image named want (its repository, with
// or without registry), or of the only image when want is empty. A digest
// (@sha256:...) is not a version.
func imageTag(images []string, want string) string {
	var candidates []string
	for _, img := range images {
		repo, tag := splitImage(img)
		if tag == "" {
			continue
		}
		if want == "" || repo == want || strings.HasSuffix(repo, "/"+strings.TrimLeft(want, "/")) {
			candidates = append(candidates, tag)
		}
	}
	if len(candidates) == 1 || (len(candidates) > 1 && want != "") {
		return candidates[0]
	}
	return ""
}

// splitImage splits "registry:5000/acme/api:v1@sha256:..." into its
// repository and tag.
func splitImage(img string) (repo, tag string) {
	img = strings.TrimSpace(img)
	if i := strings.Index(img, "@"); i >= 0 {
		img = img[:i]
	}
	slash := strings.LastIndex(img, "/")
	if colon := strings.LastIndex(img, ":"); colon > slash {
		return img[:colon], img[colon+1:]
	}
	return img, ""
}

func destination(d Dest) string {
	server := d.Name
	if server == "" {
		server = d.Server
	}
	if d.Namespace == "" {
		return server
	}
	return server + "/" + d.Namespace
}

func shortRevision(v string) string {
	if changes.IsCommit(v) && len(v) > 7 {
		return v[:7]
	}
	return v
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
