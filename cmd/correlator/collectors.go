package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/api"
	"github.com/correlator/correlator/internal/collectors/alertmanager"
	"github.com/correlator/correlator/internal/collectors/argocd"
	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/collectors/collectorstat"
	"github.com/correlator/correlator/internal/collectors/flags"
	"github.com/correlator/correlator/internal/collectors/github"
	"github.com/correlator/correlator/internal/collectors/jsonlines"
	"github.com/correlator/correlator/internal/collectors/otlplogs"
	promcollector "github.com/correlator/correlator/internal/collectors/prometheus"
	"github.com/correlator/correlator/internal/collectors/sentry"
	"github.com/correlator/correlator/internal/config"
)

// collectorSet is what serve runs beside the API: the receivers it mounts
// and the pollers it starts.
type collectorSet struct {
	routes  []api.Route
	pollers []namedPoller
}

type namedPoller struct {
	name string
	run  func(ctx context.Context) error
}

// buildCollectors builds every configured collector. Changes go through
// merging (one change however many sources report it), everything else
// straight to the store's writer. A receiver is mounted only when its
// section configures the secret it verifies senders with (Argo CD and the
// generic webhooks also without one, with a warning), so an unconfigured
// receiver is never an open door.
func buildCollectors(cfg config.Config, merging changes.Writer, direct collectorstat.BatchWriter, incidents alertmanager.Incidents, log *slog.Logger, reg prometheus.Registerer) (*collectorSet, error) {
	set := &collectorSet{}
	mount := func(name, pattern string, h http.Handler) error {
		m, err := collectorstat.Register(reg, name)
		if err != nil {
			return err
		}
		set.routes = append(set.routes, api.Route{Pattern: pattern, Handler: m.Handler(h)})
		log.Info("collector mounted", "collector", name, "route", pattern)
		return nil
	}
	counted := func(name string) (changes.Writer, error) {
		m, err := collectorstat.Register(reg, name)
		if err != nil {
			return nil, err
		}
		return m.Writer(merging), nil
	}

	ch := cfg.Changes
	if ch.GitHub.Secret != "" {
		w, err := counted("github")
		if err != nil {
			return nil, err
		}
		h, err := github.NewWebhook(ch.GitHub, w, log)
		if err != nil {
			return nil, err
		}
		if err := mount("github", "POST /collect/github", h); err != nil {
			return nil, err
		}
	}
	if ch.GitHub.Token != "" && len(ch.GitHub.Repositories) > 0 {
		w, err := counted("github_api")
		if err != nil {
			return nil, err
		}
		p, err := github.NewPoller(ch.GitHub, w, nil, log)
		if err != nil {
			return nil, err
		}
		set.pollers = append(set.pollers, namedPoller{"github_api", p.Run})
	}
	if ch.ArgoCD.Secret != "" || len(ch.ArgoCD.Applications) > 0 {
		if ch.ArgoCD.Secret == "" {
			log.Warn("changes.argocd has no secret: its receiver accepts any sender that can reach it")
		}
		w, err := counted("argocd")
		if err != nil {
			return nil, err
		}
		h, err := argocd.NewWebhook(ch.ArgoCD, w, log)
		if err != nil {
			return nil, err
		}
		if err := mount("argocd", "POST /collect/argocd", h); err != nil {
			return nil, err
		}
	}
	if ch.Flags.LaunchDarkly.Secret != "" {
		w, err := counted("launchdarkly")
		if err != nil {
			return nil, err
		}
		h, err := flags.NewLaunchDarkly(ch.Flags, w, log)
		if err != nil {
			return nil, err
		}
		if err := mount("launchdarkly", "POST /collect/launchdarkly", h); err != nil {
			return nil, err
		}
	}
	if ch.Flags.Unleash.Secret != "" {
		w, err := counted("unleash")
		if err != nil {
			return nil, err
		}
		h, err := flags.NewUnleash(ch.Flags, w, log)
		if err != nil {
			return nil, err
		}
		if err := mount("unleash", "POST /collect/unleash", h); err != nil {
			return nil, err
		}
	}
	for name, wc := range ch.Webhooks {
		wc.Name = name
		if wc.Secret == "" {
			log.Warn("change webhook has no secret: it accepts any sender that can reach it", "webhook", name)
		}
		w, err := counted("webhook_" + name)
		if err != nil {
			return nil, err
		}
		h, err := changes.NewWebhook(wc, w, log)
		if err != nil {
			return nil, err
		}
		if err := mount("webhook_"+name, "POST /collect/webhook/"+name, h); err != nil {
			return nil, err
		}
	}

	sc := cfg.Sentry
	if len(sc.Projects) > 0 {
		in, err := sentry.NewIntake(sc, direct, log, reg)
		if err != nil {
			return nil, err
		}
		for _, p := range sentry.IntakePatterns {
			set.routes = append(set.routes, api.Route{Pattern: p, Handler: in})
		}
		log.Info("collector mounted", "collector", "sentry", "route", "/api/{project_id}/envelope/")
		if sc.WebhookSecret != "" {
			h, err := sentry.NewWebhook(sc, direct, log, reg)
			if err != nil {
				return nil, err
			}
			set.routes = append(set.routes, api.Route{Pattern: "POST /collect/sentry", Handler: h})
		}
		if sc.API.AuthToken != "" {
			p, err := sentry.NewPoller(sc, direct, log, reg, sentry.PollerOptions{})
			if err != nil {
				return nil, err
			}
			set.pollers = append(set.pollers, namedPoller{"sentry_api", p.Run})
		}
	}
	if pc := cfg.Prometheus; pc.URL != "" && len(pc.Services) > 0 {
		c, err := promcollector.New(pc, direct, log, reg)
		if err != nil {
			return nil, err
		}
		set.pollers = append(set.pollers, namedPoller{"prometheus", c.Run})
	}
	if ac := cfg.Alertmanager; ac.Enabled {
		if incidents == nil {
			return nil, errors.New("alertmanager: enabled, but no incident store")
		}
		rcv, err := alertmanager.New(ac, incidents, log, reg)
		if err != nil {
			return nil, err
		}
		r := api.Route{Pattern: "POST /collect/alertmanager", Handler: rcv}
		if ac.Credentials.IsZero() {
			r.Scope = config.ScopeIngest
		}
		set.routes = append(set.routes, r)
		log.Info("collector mounted", "collector", "alertmanager", "route", r.Pattern, "bearer_tokens", r.Scope != "")
	}
	otlp, err := otlplogs.New(cfg.OTLPLogs, direct, log, reg)
	if err != nil {
		return nil, err
	}
	set.routes = append(set.routes, api.Route{Pattern: "POST /v1/logs", Handler: otlp, Scope: config.ScopeIngest})
	if jc := cfg.JSONLines; len(jc.Paths) > 0 {
		if jc.StateDir == "" {
			jc.StateDir = filepath.Join(cfg.DataDir, "jsonlines-state")
		}
		t, err := jsonlines.New(jc, direct, log, reg)
		if err != nil {
			return nil, err
		}
		set.pollers = append(set.pollers, namedPoller{"jsonlines", t.Run})
	}
	return set, nil
}
