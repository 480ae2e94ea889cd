package flags

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/event"
)

// UnleashSource is the source name of Unleash's changes.
const UnleashSource = "unleash"

// unleashEvent is what the collector reads of an Unleash event, which the
// webhook addon posts as it is when no body template is set.
type unleashEvent struct {
	ID          int64           `json:"id"`
	Type        string          `json:"type"`
	CreatedBy   string          `json:"createdBy"`
	CreatedAt   time.Time       `json:"createdAt"`
	Data        json.RawMessage `json:"data"`
	PreData     json.RawMessage `json:"preData"`
	FeatureName string          `json:"featureName"`
	Project     string          `json:"project"`
	Environment string          `json:"environment"`
	Tags        []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"tags"`
}

// unleashStrategy is an activation strategy.
type unleashStrategy struct {
	Name       string         `json:"name"`
	Disabled   bool           `json:"disabled"`
	Parameters map[string]any `json:"parameters"`
}

// state is what the strategy serves: a percentage, "on", or "" when it
// depends on who asks (user ids, IPs, custom strategies).
func (s *unleashStrategy) state() string {
	if s == nil {
		return ""
	}
	if s.Disabled {
		return "off"
	}
	param := ""
	switch s.Name {
	case "default":
		return "on"
	case "flexibleRollout":
		param = "rollout"
	case "gradualRolloutRandom", "gradualRolloutUserId", "gradualRolloutSessionId":
		param = "percentage"
	default:
		return ""
	}
	var p float64
	switch v := s.Parameters[param].(type) {
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return ""
		}
		p = f
	case float64:
		p = v
	default:
		return ""
	}
	if p < 0 || p > 100 || math.IsNaN(p) { // ParseFloat reads "NaN"
		return ""
	}
	return changes.FormatPercent(p)
}

func parseStrategy(raw json.RawMessage) *unleashStrategy {
	var s unleashStrategy
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &s) != nil || s.Name == "" {
		return nil
	}
	return &s
}

// legacyState reads the state of a whole feature of a feature-updated event
// (Unleash before 4.3): off when disabled, else its strategy's state when
// it has one strategy.
func legacyState(raw json.RawMessage) string {
	var f struct {
		Enabled    *bool             `json:"enabled"`
		Strategies []unleashStrategy `json:"strategies"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &f) != nil || f.Enabled == nil {
		return ""
	}
	if !*f.Enabled {
		return "off"
	}
	if len(f.Strategies) == 1 {
		return f.Strategies[0].state()
	}
	return "on"
}

// Unleash receives Unleash's webhook addon.
type Unleash struct {
	cfg Config
	w   changes.Writer
	log *slog.Logger
}

// NewUnleash returns the receiver writing to w (a changes.MergingWriter).
func NewUnleash(cfg Config, w changes.Writer, log *slog.Logger) (*Unleash, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Unleash{cfg: cfg, w: w, log: log.With("collector", "unleash")}, nil
}

// ServeHTTP handles one delivery.
func (h *Unleash) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := changes.ReadRequest(w, r, h.cfg.MaxBody)
	if !ok {
		return
	}
	if s := h.cfg.Unleash.Secret.Reveal(); s != "" {
		// The addon sends its "Authorization header" value verbatim.
		got := r.Header.Get("Authorization")
		if !changes.SecretEqual(got, s) && !changes.SecretEqual(changes.SharedSecret(r), s) {
			changes.Fail(w, http.StatusUnauthorized, "missing or wrong Authorization header")
			return
		}
	}
	var e unleashEvent
	if err := json.Unmarshal(body, &e); err != nil {
		changes.Fail(w, http.StatusBadRequest, "invalid JSON: %v (configure the addon without a body template)", err)
		return
	}
	c, reason := h.Change(e)
	if reason != "" {
		changes.Ignore(w, "%s", reason)
		return
	}
	if err := h.w.Add(r.Context(), &event.Batch{Changes: []event.Change{c}}); err != nil {
		h.log.Error("cannot write a change", "err", err)
		changes.Fail(w, http.StatusServiceUnavailable, "cannot write the change now")
		return
	}
	changes.Accept(w, 1)
}

// Change maps an event to its flag change; reason says why there is none.
func (h *Unleash) Change(e unleashEvent) (event.Change, string) {
	var old, new string
	switch e.Type {
	case "feature-environment-enabled":
		old, new = "off", "on"
	case "feature-environment-disabled":
		old, new = "on", "off"
	case "feature-strategy-add":
		new = parseStrategy(e.Data).state()
	case "feature-strategy-update":
		old, new = parseStrategy(e.PreData).state(), parseStrategy(e.Data).state()
	case "feature-strategy-remove":
		old = parseStrategy(e.PreData).state()
	case "feature-updated":
		old, new = legacyState(e.PreData), legacyState(e.Data)
	default:
		return event.Change{}, fmt.Sprintf("event %q is not a flag change", e.Type)
	}
	if e.FeatureName == "" {
		return event.Change{}, "event without featureName"
	}
	info := flagInfo{key: e.FeatureName, project: e.Project}
	for _, t := range e.Tags {
		info.tags = append(info.tags, t.Value, t.Type+":"+t.Value)
	}
	svc := service(&h.cfg, info)
	if svc == "" {
		return event.Change{}, fmt.Sprintf("flag %s maps to no service (see flags.services)", e.FeatureName)
	}
	attrs := map[string]string{changes.FlagAttr: e.FeatureName, "unleash.event": e.Type}
	for k, v := range map[string]string{changes.OldAttr: old, changes.NewAttr: new, "unleash.project": e.Project, "unleash.environment": e.Environment} {
		if v != "" {
			attrs[k] = v
		}
	}
	t := e.CreatedAt
	if t.IsZero() {
		t = time.Now()
	}
	c := event.Change{
		Time: t.UTC(), Kind: event.ChangeFlag, Service: svc, Author: e.CreatedBy,
		Title: flagTitle(e.FeatureName, old, new), Source: UnleashSource, Attributes: attrs,
	}
	if e.Environment != "" {
		c.Environment = environment(&h.cfg.Unleash, e.Environment)
	}
	if site := h.cfg.Unleash.SiteURL; site != "" && e.Project != "" {
		c.URL = site + "/projects/" + url.PathEscape(e.Project) + "/features/" + url.PathEscape(e.FeatureName)
	}
	if e.ID != 0 {
		c.ID = changes.HashID(UnleashSource, strconv.FormatInt(e.ID, 10))
	}
	if err := changes.Validate(&c); err != nil {
		return event.Change{}, err.Error()
	}
	changes.AssignID(&c)
	return c, ""
}
