package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
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
type outlets struct {
	grafana  *grafana.Syncer
	attacher *postmortem.Attacher
	builder  *postmortem.Builder
	links    *livelink.Signer
	tracker  *incident.Tracker
	log      *slog.Logger

	// running says the Grafana syncer's Run loop serves Notify (serve);
	// without it (a CLI command) the incidents touched are synced by
	// flush before the command returns.
	running bool
	mu      sync.Mutex
	touched []string
}

// attrPostmortemURL is the incident attribute holding where the bundle
// went; the Grafana overlay links it.
const attrPostmortemURL = "postmortem.url"

// newIncidents builds the incident tracker of a command or of serve over
// st, with its outlets. reg receives the Grafana overlay's metrics (nil:
// a registry of its own). opt's Logger and Now are kept.
func newIncidents(st *store.Store, cfg config.Config, log *slog.Logger, reg prometheus.Registerer, running bool, opt incident.Options) (*incident.Tracker, *outlets, error) {
	o := &outlets{log: log.With("component", "incident-outlets"), running: running}
	if cfg.Incidents.LinkSecret != "" || cfg.ExternalURL != "" {
		var err error
		if cfg.Incidents.LinkSecret != "" {
			o.links, err = livelink.New([]byte(cfg.Incidents.LinkSecret.Reveal()), cfg.ExternalURL, time.Duration(cfg.Incidents.LinkTTL))
		} else {
			o.links = &livelink.Signer{BaseURL: cfg.ExternalURL}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("incidents.link_secret: %w", err)
		}
	}
	o.builder = postmortem.NewBuilder(st, postmortem.Options{GrafanaURL: cfg.Grafana.URL})
	if cfg.Grafana.Enabled() {
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		gopt := grafana.Options{Logger: log, Registerer: reg}
		if cfg.ExternalURL != "" {
			gopt.LiveLink = func(in store.Incident) string { return o.links.URL(in.ID, in.OpenedAt) }
		}
		var err error
		if o.grafana, err = grafana.New(cfg.Grafana, st, gopt); err != nil {
			return nil, nil, err
		}
	}
	if pm := cfg.Postmortem; pm.Dir != "" || pm.WebhookURL != "" {
		pm.PublicURL = cfg.ExternalURL
		if cfg.ExternalURL != "" {
			pm.LiveLink = o.links.URL
		}
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

// resolved attaches the bundle of a resolved incident and records where
// it went; that new state reaches Grafana through changed.
func (o *outlets) resolved(ctx context.Context, in store.Incident) {
	if o.attacher == nil {
		return
	}
	loc, err := o.attacher.OnResolve(ctx, in.ID)
	if err != nil {
		// The bundle is on disk (when a dir is set) and an undelivered
		// payload is kept for RetryPending: log, never fail the resolve.
		o.log.Error("post-mortem bundle not fully attached", "incident", in.ID, "err", err)
	}
	if loc == "" || loc == in.Attributes[attrPostmortemURL] {
		return
	}
	if _, err := o.tracker.SetAttributes(ctx, in.ID, map[string]string{attrPostmortemURL: loc}, "post-mortem bundle attached"); err != nil {
		o.log.Error("post-mortem location not recorded", "incident", in.ID, "err", err)
	}
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

// run serves the overlay's sync loop and retries undelivered bundles,
// until ctx ends.
func (o *outlets) run(ctx context.Context, wg *sync.WaitGroup) {
	if o.grafana != nil {
		wg.Go(func() {
			o.log.Info("grafana overlay syncing")
			_ = o.grafana.Run(ctx)
		})
	}
	if o.attacher != nil {
		wg.Go(func() {
			tick := time.NewTicker(time.Minute)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if n, err := o.attacher.RetryPending(ctx); err != nil && ctx.Err() == nil {
						o.log.Warn("post-mortem deliveries still pending", "pending", n, "err", err)
					}
				}
			}
		})
	}
}
