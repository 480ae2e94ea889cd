package flags

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/event"
)

// LaunchDarklySource is the source name of LaunchDarkly's changes.
const LaunchDarklySource = "launchdarkly"

// ldStateActions are the audit-log actions that change what a flag serves
// in an environment.
var ldStateActions = []string{
	"updateOn", "updateFallthrough", "updateOffVariation", "updateRules", "updateTargets",
	"updateContextTargets", "updatePrerequisites", "updateFallthroughWithMeasuredRollout",
	"updateRulesWithMeasuredRollout", "stopMeasuredRolloutOnFlagFallthrough", "stopMeasuredRolloutOnFlagRule",
	"updateFlagVariations", "updateFlagDefaultVariations", "updateExpiringRules", "updateExpiringTargets",
}

// ldEntry is what the collector reads of an audit log entry.
type ldEntry struct {
	ID       string `json:"_id"`
	Date     int64  `json:"date"`
	Kind     string `json:"kind"`
	Accesses []struct {
		Action   string `json:"action"`
		Resource string `json:"resource"`
	} `json:"accesses"`
	Member *struct {
		Email     string `json:"email"`
		FirstName string `json:"firstName"`
		LastName  string `json:"lastName"`
	} `json:"member"`
	Comment         string  `json:"comment"`
	PreviousVersion *ldFlag `json:"previousVersion"`
	CurrentVersion  *ldFlag `json:"currentVersion"`
}

type ldFlag struct {
	Key        string   `json:"key"`
	Kind       string   `json:"kind"`
	Tags       []string `json:"tags"`
	Variations []struct {
		Value json.RawMessage `json:"value"`
	} `json:"variations"`
	Defaults *struct {
		OffVariation *int `json:"offVariation"`
	} `json:"defaults"`
	Environments map[string]ldEnv `json:"environments"`
}

type ldEnv struct {
	On           bool `json:"on"`
	OffVariation *int `json:"offVariation"`
	Fallthrough  struct {
		Variation *int `json:"variation"`
		Rollout   *struct {
			Variations []struct {
				Variation int `json:"variation"`
				Weight    int `json:"weight"`
			} `json:"variations"`
		} `json:"rollout"`
	} `json:"fallthrough"`
	Site *struct {
		Href string `json:"href"`
	} `json:"_site"`
}

// state returns the flag's state in an environment, "" if unknown.
func (f *ldFlag) state(env string) string {
	if f == nil {
		return ""
	}
	e, ok := f.Environments[env]
	if !ok {
		return ""
	}
	if !e.On {
		return "off"
	}
	off := -1
	if e.OffVariation != nil {
		off = *e.OffVariation
	} else if f.Defaults != nil && f.Defaults.OffVariation != nil {
		off = *f.Defaults.OffVariation
	}
	// A boolean flag serves its treatment as true; any other flag serves
	// it as every variation but the off one.
	isBool := f.Kind == "boolean" || f.allBool()
	treatment := func(i int) bool {
		if i < 0 || i >= len(f.Variations) {
			return false
		}
		if isBool {
			var b bool
			_ = json.Unmarshal(f.Variations[i].Value, &b)
			return b
		}
		return i != off
	}
	switch ft := e.Fallthrough; {
	case ft.Variation != nil:
		if treatment(*ft.Variation) {
			return "on"
		}
		return "off"
	case ft.Rollout != nil:
		total, on := 0, 0
		for _, v := range ft.Rollout.Variations {
			total += v.Weight
			if treatment(v.Variation) {
				on += v.Weight
			}
		}
		if total <= 0 {
			return ""
		}
		return changes.FormatPercent(100 * float64(on) / float64(total))
	}
	return ""
}

func (f *ldFlag) allBool() bool {
	for _, v := range f.Variations {
		var b bool
		if json.Unmarshal(v.Value, &b) != nil {
			return false
		}
	}
	return len(f.Variations) > 0
}

// ldResource is one parsed "proj/P:env/E:flag/K" resource.
type ldResource struct{ project, env, flag string }

func parseLDResource(s string) ldResource {
	var r ldResource
	for _, part := range strings.Split(s, ":") {
		typ, name, ok := strings.Cut(part, "/")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, ";") // "proj/default;tag" carries tags after ';'
		switch typ {
		case "proj":
			r.project = name
		case "env":
			r.env = name
		case "flag":
			r.flag = name
		}
	}
	return r
}

// LaunchDarkly receives LaunchDarkly's webhooks.
type LaunchDarkly struct {
	cfg Config
	w   changes.Writer
	log *slog.Logger
}

// NewLaunchDarkly returns the receiver writing to w (a changes.MergingWriter).
func NewLaunchDarkly(cfg Config, w changes.Writer, log *slog.Logger) (*LaunchDarkly, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &LaunchDarkly{cfg: cfg, w: w, log: log.With("collector", "launchdarkly")}, nil
}

// ServeHTTP handles one delivery.
func (h *LaunchDarkly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := changes.ReadRequest(w, r, h.cfg.MaxBody)
	if !ok {
		return
	}
	if s := h.cfg.LaunchDarkly.Secret; s != "" && !changes.ValidHMACSHA256(s.Reveal(), body, r.Header.Get("X-LD-Signature")) {
		changes.Fail(w, http.StatusUnauthorized, "missing or wrong X-LD-Signature")
		return
	}
	var e ldEntry
	if err := json.Unmarshal(body, &e); err != nil {
		changes.Fail(w, http.StatusBadRequest, "invalid JSON: %v", err)
		return
	}
	cs, reason := h.Changes(e)
	if len(cs) == 0 {
		changes.Ignore(w, "%s", reason)
		return
	}
	if err := h.w.Add(r.Context(), &event.Batch{Changes: cs}); err != nil {
		h.log.Error("cannot write changes", "err", err)
		changes.Fail(w, http.StatusServiceUnavailable, "cannot write the changes now")
		return
	}
	changes.Accept(w, len(cs))
}

// Changes maps an audit log entry to its flag changes, one per environment
// whose state-changing actions it records; reason says why there are none.
func (h *LaunchDarkly) Changes(e ldEntry) ([]event.Change, string) {
	if e.Kind != "flag" {
		return nil, fmt.Sprintf("entry of kind %q is not a flag change", e.Kind)
	}
	type envActions struct {
		res     ldResource
		actions []string
	}
	var envs []*envActions
	for _, a := range e.Accesses {
		if !slices.Contains(ldStateActions, a.Action) {
			continue
		}
		res := parseLDResource(a.Resource)
		if res.env == "" || res.env == "*" {
			continue
		}
		i := slices.IndexFunc(envs, func(x *envActions) bool { return x.res.env == res.env })
		if i < 0 {
			envs = append(envs, &envActions{res: res})
			i = len(envs) - 1
		}
		if !slices.Contains(envs[i].actions, a.Action) {
			envs[i].actions = append(envs[i].actions, a.Action)
		}
	}
	if len(envs) == 0 {
		return nil, "no action that changes what the flag serves"
	}
	cur := e.CurrentVersion
	if cur == nil {
		cur = e.PreviousVersion
	}
	key := ""
	var tags []string
	if cur != nil {
		key, tags = cur.Key, cur.Tags
	}
	var out []event.Change
	reason := ""
	for _, ea := range envs {
		k := key
		if k == "" {
			k = ea.res.flag
		}
		if k == "" {
			reason = "no flag key in the entry"
			continue
		}
		svc := service(&h.cfg, flagInfo{key: k, project: ea.res.project, tags: tags})
		if svc == "" {
			reason = fmt.Sprintf("flag %s maps to no service (see flags.services)", k)
			continue
		}
		old, new := e.PreviousVersion.state(ea.res.env), e.CurrentVersion.state(ea.res.env)
		slices.Sort(ea.actions)
		attrs := map[string]string{
			changes.FlagAttr: k, changes.OldAttr: old, changes.NewAttr: new,
			"launchdarkly.project": ea.res.project, "launchdarkly.environment": ea.res.env,
			"launchdarkly.actions": strings.Join(ea.actions, ","),
		}
		for a, v := range attrs {
			if v == "" {
				delete(attrs, a)
			}
		}
		c := event.Change{
			Time: time.UnixMilli(e.Date).UTC(), Kind: event.ChangeFlag, Service: svc,
			Environment: environment(&h.cfg.LaunchDarkly, ea.res.env), Author: e.author(),
			Title: flagTitle(k, old, new), URL: h.url(cur, ea.res, k), Source: LaunchDarklySource,
			Attributes: attrs, ID: changes.HashID(LaunchDarklySource, e.ID, ea.res.env),
		}
		if e.ID == "" {
			c.ID = ""
		}
		if err := changes.Validate(&c); err != nil {
			reason = err.Error()
			continue
		}
		changes.AssignID(&c)
		out = append(out, c)
	}
	return out, reason
}

func (e *ldEntry) author() string {
	if e.Member == nil {
		return ""
	}
	if e.Member.Email != "" {
		return e.Member.Email
	}
	return strings.TrimSpace(e.Member.FirstName + " " + e.Member.LastName)
}

func (h *LaunchDarkly) url(f *ldFlag, res ldResource, key string) string {
	site := h.cfg.LaunchDarkly.SiteURL
	if f != nil {
		if e, ok := f.Environments[res.env]; ok && e.Site != nil && strings.HasPrefix(e.Site.Href, "/") {
			return site + e.Site.Href
		}
	}
	if res.project == "" {
		return ""
	}
	return site + "/" + res.project + "/" + res.env + "/features/" + key
}

// flagTitle describes a flip: "Flag checkout-v2: off → 10%".
func flagTitle(key, old, new string) string {
	switch {
	case old != "" && new != "" && old != new:
		return fmt.Sprintf("Flag %s: %s → %s", key, old, new)
	case new != "" && old == new:
		return fmt.Sprintf("Flag %s: targeting changed (%s)", key, new)
	case new != "":
		return fmt.Sprintf("Flag %s: %s", key, new)
	case old != "":
		return fmt.Sprintf("Flag %s: was %s", key, old)
	}
	return "Flag " + key + " changed"
}
