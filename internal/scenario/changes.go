package scenario

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// role says why a change is in the scenario.
type role int

const (
	roleBackground role = iota // routine and innocent
	roleDecoy                  // innocent, planted near the incident
	roleCause                  // the incident's cause
	roleMitigation             // innocent, ends the incident's symptoms
)

// plannedChange is a change while the schedule is built. Only Time and Kind
// are set until finalizeChanges fills the rest in time order, keeping the
// attributes a plan preset: a flag's or config key's old and new values, a
// partial rollout's "rollout", "canary_percent" or "region".
type plannedChange struct {
	event.Change
	svc     int
	role    role
	undoes  *plannedChange // the deploy a rollback undoes
	partial bool           // a deploy to the service's canary shards only
	reason  string         // a rollback's reason, or "" for a routine one
}

// Rates of background changes.
const (
	flagsPerDay     = 2.5
	configsPerDay   = 1.0
	rollbackChance  = 0.08 // of a background deploy
	workStartHour   = 9
	workEndHour     = 18
	minDeployPerDay = 0.5 // a service deploys every 0.5 to 2 days
	maxDeployPerDay = 2.0
)

// scheduleChanges lays out the routine deploys, rollbacks, flag flips and
// config edits, drops those the incident freezes, and merges the incident's.
func (g *generator) scheduleChanges(r *rand.Rand) {
	var bg []*plannedChange
	add := func(svc int, kind event.ChangeKind, t time.Time) *plannedChange {
		c := &plannedChange{Change: event.Change{Time: t, Kind: kind}, svc: svc}
		bg = append(bg, c)
		return c
	}
	span := g.end.Sub(g.start)
	busy := g.changeRate()
	for _, s := range g.svcs {
		every := time.Duration(uniform(r, minDeployPerDay, maxDeployPerDay) / busy * float64(24*time.Hour))
		n := 0
		for t := g.start.Add(between(r, 0, every)); ; {
			t = g.workingTime(r, t)
			if !t.Before(g.end) {
				break
			}
			d := add(s.idx, event.ChangeDeploy, t)
			n++
			if r.Float64() < rollbackChance {
				if rt := t.Add(between(r, 15*time.Minute, 90*time.Minute)); rt.Before(g.end) {
					add(s.idx, event.ChangeRollback, rt).undoes = d
				}
			}
			t = t.Add(time.Duration(uniform(r, 0.6, 1.4) * float64(every)))
		}
		if n == 0 {
			// A window without working hours (a weekend) still sees a deploy.
			day := g.start.Add(between(r, 0, span)).Truncate(24 * time.Hour)
			t := day.Add(between(r, 10*time.Hour, 17*time.Hour))
			if t.Before(g.start) || !t.Before(g.end) {
				t = g.start.Add(between(r, 0, span))
			}
			add(s.idx, event.ChangeDeploy, t)
		}
	}
	days := float64(g.opt.Days)
	for _, k := range []struct {
		kind   event.ChangeKind
		perDay float64
	}{{event.ChangeFlag, flagsPerDay}, {event.ChangeConfig, configsPerDay}} {
		for range max(2, Poisson(r, k.perDay*days*busy)) {
			// Mostly in working hours, else whenever (an on-call tweak).
			t := g.start.Add(between(r, 0, span))
			if w := g.workingTime(r, t); w.Before(g.end) && r.Float64() < 0.8 {
				t = w
			}
			add(r.IntN(len(g.svcs)), k.kind, t)
		}
	}

	dropped := make(map[*plannedChange]bool)
	for _, c := range bg {
		for _, f := range g.inc.freeze {
			deploy := c.Kind == event.ChangeDeploy || c.Kind == event.ChangeRollback
			if c.svc == f.svc && (deploy || !f.deploysOnly) && !c.Time.Before(f.from) && c.Time.Before(f.to) {
				dropped[c] = true
			}
		}
	}
	for _, c := range bg {
		if !dropped[c] && (c.undoes == nil || !dropped[c.undoes]) {
			g.changes = append(g.changes, c)
		}
	}
	g.changes = append(g.changes, g.inc.changes...)
	slices.SortStableFunc(g.changes, func(a, b *plannedChange) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.svc, b.svc))
	})
}

// workingTime returns t if it falls in working hours (weekdays 09:00 to
// 18:00 UTC), else a time before 15:00 of the next working day.
func (g *generator) workingTime(r *rand.Rand, t time.Time) time.Time {
	for {
		wd := t.Weekday()
		if wd != time.Saturday && wd != time.Sunday && t.Hour() >= workStartHour && t.Hour() < workEndHour {
			return t
		}
		day := t.Truncate(24 * time.Hour)
		if t.Hour() >= workStartHour || wd == time.Saturday || wd == time.Sunday {
			day = day.Add(24 * time.Hour)
		}
		t = day.Add(workStartHour*time.Hour + between(r, 0, 6*time.Hour))
	}
}

// finalizeChanges walks the schedule in time order and fills in each
// change: versions (a deploy bumps, a rollback returns to what its deploy
// replaced), commits, authors, pull requests, flag and config states, and an
// ID derived from the content. It also records each service's releases.
// Routine flag flips and config edits leave alone the flag or key a plan
// reserved for a service: its history stays the plan's.
func (g *generator) finalizeChanges(r *rand.Rand) {
	type state struct {
		cur, highest version
		canary       string    // the canary version of a partial release, or ""
		history      []version // versions replaced by deploys, most recent last
		pr           int
		flags        map[string]int // flag -> index into flagSteps
		configs      map[string]int // key -> index into its values
	}
	st := make([]*state, len(g.svcs))
	for i, s := range g.svcs {
		st[i] = &state{cur: s.initial, highest: s.initial, pr: 800 + r.IntN(6000), flags: map[string]int{}, configs: map[string]int{}}
		s.releases = []release{{from: g.start, version: s.initial.String()}}
	}
	kept := g.changes[:0]
	for _, c := range g.changes {
		s, ss := g.svcs[c.svc], st[c.svc]
		c.Service = s.name
		c.Environment = Environment
		c.Author = pick(r, authors)
		preset := c.Attributes
		switch c.Kind {
		case event.ChangeDeploy:
			next := version{ss.highest.major, ss.highest.minor + 1, 0}
			if r.Float64() < 0.2 {
				next = version{ss.highest.major, ss.highest.minor, ss.highest.patch + 1}
			}
			c.PreviousVersion, c.Version = ss.cur.String(), next.String()
			ss.highest = next
			if c.partial {
				ss.canary = next.String()
			} else {
				ss.history = append(ss.history, ss.cur)
				ss.cur, ss.canary = next, ""
			}
			ss.pr += 1 + r.IntN(40)
			c.Commit = HexID(r, 32) + HexID(r, 8)
			c.Title = fmt.Sprintf("Merge PR #%d: %s", ss.pr, g.prSubject(r, s))
			c.URL = fmt.Sprintf("https://github.com/acme/%s/pull/%d", s.name, ss.pr)
			c.Source = "github-actions"
			c.Attributes = map[string]string{"pr": strconv.Itoa(ss.pr), "pipeline": "deploy-production"}
			if c.partial {
				c.Source = "argo-rollouts"
				c.Attributes["pipeline"] = "canary-production"
			}
		case event.ChangeRollback:
			if len(ss.history) == 0 {
				continue // nothing to roll back to; cannot happen for paired rollbacks
			}
			prev := ss.history[len(ss.history)-1]
			ss.history = ss.history[:len(ss.history)-1]
			c.PreviousVersion, c.Version = ss.cur.String(), prev.String()
			ss.cur = prev
			reason := c.reason
			if reason == "" {
				reason = pick(r, rollbackReasons)
			}
			c.Title = fmt.Sprintf("Rollback %s to %s: %s", s.name, prev, reason)
			c.Source = "argocd"
		case event.ChangeFlag, event.ChangeConfig:
			var free []string
			for _, f := range s.spec.flags {
				if f != g.inc.reservedFlag[c.svc] {
					free = append(free, f)
				}
			}
			if c.Kind == event.ChangeFlag && preset == nil && len(free) == 0 {
				c.Kind = event.ChangeConfig // the service's only flag is the plan's
			}
			if c.Kind == event.ChangeFlag {
				var flag, old, new string
				if preset != nil {
					flag, old, new = preset["flag"], preset["old"], preset["new"]
				} else {
					flag = pick(r, free)
					from, ok := ss.flags[flag]
					if !ok {
						from = r.IntN(len(flagSteps) - 1) // mid-rollout when the data starts
					}
					to := (from + 1) % len(flagSteps)
					ss.flags[flag] = to
					old, new = flagSteps[from], flagSteps[to]
				}
				c.Title = fmt.Sprintf("Flag %s: %s → %s", flag, old, new)
				c.URL = "https://app.launchdarkly.com/default/production/features/" + flag
				c.Source = "launchdarkly"
				c.Attributes = map[string]string{"flag": flag, "old": old, "new": new}
				break
			}
			var key, old, new string
			if preset != nil {
				key, old, new = preset["key"], preset["old"], preset["new"]
			} else {
				var keys []configKey
				for _, k := range configKeys {
					if k.key != g.inc.reservedKey[c.svc] {
						keys = append(keys, k)
					}
				}
				k := pick(r, keys)
				from := ss.configs[k.key]
				to := (from + 1) % len(k.values)
				ss.configs[k.key] = to
				key, old, new = k.key, k.values[from], k.values[to]
			}
			c.Commit = HexID(r, 32) + HexID(r, 8)
			c.Title = fmt.Sprintf("%s: set %s to %s (was %s)", s.name, key, new, old)
			c.URL = "https://github.com/acme/k8s-config/commit/" + c.Commit
			c.Source = "argocd"
			c.Attributes = map[string]string{"key": key, "old": old, "new": new}
		}
		if c.Kind == event.ChangeDeploy || c.Kind == event.ChangeRollback {
			s.releases = append(s.releases, release{from: c.Time, version: ss.cur.String(), canary: ss.canary})
		}
		if c.Kind == event.ChangeDeploy {
			for k, v := range preset {
				c.Attributes[k] = v
			}
		}
		c.ID = "chg-" + contentHash(12, string(c.Kind), c.Service, c.Time.Format(time.RFC3339Nano), c.Version, c.Title)
		kept = append(kept, c)
	}
	g.changes = kept
}

// prSubject returns a pull-request subject for a change to s.
func (g *generator) prSubject(r *rand.Rand, s *service) string {
	dep := pick(r, []string{"postgres", "redis", "kafka"})
	if len(s.deps) > 0 && r.Float64() < 0.8 {
		dep = g.svcs[pick(r, s.deps).to].name
	}
	return strings.NewReplacer("{svc}", s.name, "{dep}", dep).Replace(pick(r, prSubjects))
}
