package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/api"
	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/grafana"
	"github.com/correlator/correlator/internal/incident"
	"github.com/correlator/correlator/internal/livelink"
	"github.com/correlator/correlator/internal/postmortem"
	"github.com/correlator/correlator/internal/store"
)

// outlets carry incidents to where people look: the Grafana overlay
// (annotations kept in step with every state) and the post-mortem bundle
// (written and/or posted on resolve, its location recorded on the
// incident and linked from its annotation). Each part is nil when its
// configuration is off.
//
// Signed live links open an incident's page without a token, so they are
// handed out (by `incident show`, GET /api/v1/incidents/{id}) to people who
// could read the incident anyway, and never stored or pushed: Grafana and
// the incident's attributes get the plain page link, which needs a token
// (or the webhook's own URL for the bundle).
type outlets struct {
	grafana  *grafana.Syncer
	attacher *postmortem.Attacher
	builder  *postmortem.Builder
	links    *livelink.Signer
	tracker  *incident.Tracker
	log      *slog.Logger

	// running says serve's loops run: Grafana's Run serves Notify and
	// the attach worker serves attachQ. Without them (a CLI command) the
	// incidents touched are synced by flush, and bundles attached inline.
	running bool
	attachQ chan string
	mu      sync.Mutex
	touched []string
	// attaching holds the incidents whose bundle is being attached, so
	// the worker and the catch-up scan never attach one twice at once.
	attaching map[string]bool
}

// attrPostmortemURL is the incident attribute holding where the bundle
// went; the Grafana overlay links it.
const attrPostmortemURL = "postmortem.url"

// attachTimeout bounds one bundle's build and delivery, apart from the
// snapshot that preceded it.
const attachTimeout = 5 * time.Minute

// catchUpWindow is how far back the catch-up scan looks for resolved
// incidents without a bundle (one whose attach failed, was dropped from a
// full queue, or was resolved while serve was down). Older ones are left
// alone: turning the feature on must not bundle a year of history.
const catchUpWindow = 24 * time.Hour

// newIncidents builds the incident tracker of a command or of serve over
// st, with its outlets. reg receives the Grafana overlay's metrics (nil:
// a registry of its own). opt's Logger and Now are kept.
func newIncidents(st *store.Store, cfg config.Config, log *slog.Logger, reg prometheus.Registerer, running bool, opt incident.Options) (*incident.Tracker, *outlets, error) {
	o := &outlets{log: log.With("component", "incident-outlets"), running: running, attachQ: make(chan string, 256), attaching: map[string]bool{}}
	page := func(id string) string { return livelink.Path(id) }
	if cfg.ExternalURL != "" {
		plain := &livelink.Signer{BaseURL: strings.TrimSuffix(cfg.ExternalURL, "/")}
		page = func(id string) string { return plain.URL(id, time.Time{}) }
	}
	if cfg.Incidents.LinkSecret != "" {
		var err error
		o.links, err = livelink.New([]byte(cfg.Incidents.LinkSecret.Reveal()), cfg.ExternalURL, time.Duration(cfg.Incidents.LinkTTL))
		if err != nil {
			return nil, nil, fmt.Errorf("incidents.link_secret: %w", err)
		}
		opt.LiveLink = func(in store.Incident) string { return o.links.URL(in.ID, in.OpenedAt) }
	} else if cfg.ExternalURL != "" {
		opt.LiveLink = func(in store.Incident) string { return page(in.ID) }
	}
	o.builder = postmortem.NewBuilder(st, postmortem.Options{GrafanaURL: cfg.Grafana.URL})
	if cfg.Grafana.Enabled() {
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		gopt := grafana.Options{Logger: log, Registerer: reg}
		if cfg.ExternalURL != "" {
			gopt.LiveLink = func(in store.Incident) string { return page(in.ID) }
		}
		var err error
		if o.grafana, err = grafana.New(cfg.Grafana, st, gopt); err != nil {
			return nil, nil, err
		}
	}
	if pm := cfg.Postmortem; pm.Dir != "" || pm.WebhookURL != "" {
		if pm.Dir == "" {
			// Undelivered payloads must survive a restart: keep them,
			// and the bundle, beside the data.
			pm.Dir = filepath.Join(cfg.DataDir, "postmortems")
		}
		pm.PublicURL = strings.TrimSuffix(cfg.ExternalURL, "/")
		o.attacher = postmortem.NewAttacher(o.builder, pm, nil, log)
	}
	opt.OnChange = o.changed
	opt.OnResolve = o.resolved
	o.tracker = newTracker(st, cfg, opt)
	return o.tracker, o, nil
}

// changed hears every stored state of an incident.
func (o *outlets) changed(id string) {
	if o.grafana == nil {
		return
	}
	if o.running {
		o.grafana.Notify(id)
		return
	}
	o.mu.Lock()
	if !slices.Contains(o.touched, id) {
		o.touched = append(o.touched, id)
	}
	o.mu.Unlock()
}

// resolved attaches the bundle of a resolved incident: queued for serve's
// worker (a resolve answers without waiting for a webhook; a full queue
// is caught up by the scan), inline for a command.
func (o *outlets) resolved(ctx context.Context, in store.Incident) {
	if o.attacher == nil {
		return
	}
	if !o.running {
		o.attach(ctx, in.ID)
		return
	}
	select {
	case o.attachQ <- in.ID:
	default:
		o.log.Warn("post-mortem queue full; the catch-up scan will attach it", "incident", in.ID)
	}
}

// attach builds and delivers one incident's bundle and records where it
// went. A failure is logged; what was not recorded is tried again by the
// catch-up scan, and an undelivered webhook payload by RetryPending.
func (o *outlets) attach(ctx context.Context, id string) {
	o.mu.Lock()
	if o.attaching[id] {
		o.mu.Unlock()
		return
	}
	o.attaching[id] = true
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.attaching, id)
		o.mu.Unlock()
	}()
	// Not detached from ctx: at serve's shutdown an attach in progress
	// stops, and the catch-up scan of the next start finishes it.
	ctx, cancel := context.WithTimeout(ctx, attachTimeout)
	defer cancel()
	loc, err := o.attacher.OnResolve(ctx, id)
	if err != nil {
		o.log.Error("post-mortem bundle not fully attached", "incident", id, "err", err)
	}
	if loc == "" {
		return
	}
	// A location already recorded (a re-attach) writes no new state.
	if _, err := o.tracker.SetAttributes(ctx, id, map[string]string{attrPostmortemURL: loc}, ""); err != nil {
		o.log.Error("post-mortem location not recorded", "incident", id, "err", err)
	}
}

// catchUp attaches the bundles of recently resolved incidents that have
// none recorded, and returns how many it tried.
func (o *outlets) catchUp(ctx context.Context) int {
	ins, err := o.tracker.List(ctx, incident.ListFilter{Status: incident.StatusResolved, Since: time.Now().Add(-catchUpWindow), Limit: 1000})
	if err != nil {
		o.log.Warn("post-mortem catch-up: cannot list incidents", "err", err)
		return 0
	}
	n := 0
	for _, in := range ins {
		if in.Attributes[attrPostmortemURL] != "" || ctx.Err() != nil {
			continue
		}
		o.attach(ctx, in.ID)
		n++
	}
	return n
}

// flush syncs the incidents a command touched to Grafana (a command has no
// Run loop to hear Notify). Failures are reported, not fatal: serve's next
// full sync catches up.
func (o *outlets) flush(ctx context.Context) error {
	if o.grafana == nil {
		return nil
	}
	o.mu.Lock()
	ids := o.touched
	o.touched = nil
	o.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := o.grafana.SyncIncident(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("grafana annotation not synced (the next sync of correlator serve retries): %v", errs)
	}
	return nil
}

// routes are the post-mortem endpoints: the bundle in the API, behind the
// read scope, and the live page, which a signed link also opens.
func (o *outlets) routes(log *slog.Logger) []api.Route {
	h := postmortem.NewHandler(o.builder, 0, log)
	live := api.Route{Pattern: "GET /incidents/{id}", Handler: h.Live(), Scope: config.ScopeRead}
	if o.links != nil && len(o.links.Key) > 0 {
		live.Allow = func(r *http.Request) bool { return o.links.Check(r, r.PathValue("id")) == nil }
	}
	return []api.Route{
		{Pattern: "GET /api/v1/incidents/{id}/postmortem", Handler: h.Bundle(), Scope: config.ScopeRead},
		live,
	}
}

// run serves the overlay's sync loop, the attach worker, and every
// minute the catch-up scan and the retry of undelivered bundles, until
// ctx ends.
func (o *outlets) run(ctx context.Context, wg *sync.WaitGroup) {
	if o.grafana != nil {
		wg.Go(func() {
			o.log.Info("grafana overlay syncing")
			_ = o.grafana.Run(ctx)
		})
	}
	if o.attacher == nil {
		return
	}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case id := <-o.attachQ:
				o.attach(ctx, id)
			}
		}
	})
	wg.Go(func() {
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				o.catchUp(ctx)
				if n, err := o.attacher.RetryPending(ctx); err != nil && ctx.Err() == nil {
					o.log.Warn("post-mortem deliveries still pending", "pending", n, "err", err)
				}
			}
		}
	})
}
