package scenario

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// This file holds the plans of AbstainFamilies: symptoms that no change
// explains, among innocent changes that look as if they could.

// planExternalOutage plans ExternalOutage: a third party answers 503 or
// times out for 15 to 90 minutes; every service calling it fails with it.
func (g *generator) planExternalOutage(r *rand.Rand) error {
	in := &g.inc
	callers := map[string][]int{}
	for _, s := range g.svcs {
		for _, x := range s.exts {
			callers[x.ext.name] = append(callers[x.ext.name], s.idx)
		}
	}
	var names, multi []string
	for name, cs := range callers {
		names = append(names, name)
		if len(cs) >= 2 {
			multi = append(multi, name)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("no service calls a third party")
	}
	slices.Sort(names)
	slices.Sort(multi)
	// Half the time one that several services call, which most often is
	// s3: all third parties get their turn.
	name := pick(r, names)
	if len(multi) > 0 && r.Float64() < 0.5 {
		name = pick(r, multi)
	}
	in.external = name
	at, err := g.incidentTime(r, 0, 2*time.Hour)
	if err != nil {
		return err
	}
	unavailable := r.Float64() < 0.6
	dur := between(r, 15*time.Minute, 90*time.Minute)
	in.onset = at
	in.ramp = between(r, 30*time.Second, 3*time.Minute)
	in.errLvl = g.profile(at, in.ramp, at.Add(dur), between(r, time.Minute, 5*time.Minute))
	in.latLvl = in.errLvl
	mode := "answers 503"
	in.ratio = uniform(r, 0.3, 0.95)
	timeoutMs := uniform(r, 3000, 10000)
	if !unavailable {
		mode = "times out"
		in.ratio = uniform(r, 0.2, 0.6)
	}
	for _, c := range callers[name] {
		cs := g.svcs[c]
		for _, x := range cs.exts {
			if x.ext.name != name {
				continue
			}
			x.failing = &x.outage
			cs.ownCoef += x.share * x.prop
			if !unavailable {
				x.failing = &x.timeout
				cs.ownMs += 0.8 * min(max((x.share-0.03)/0.2, 0), 1) * timeoutMs
			}
		}
	}
	g.propagate()
	g.capVolume(in.ratio / 3)

	// The engineer asks about a service whose alert fires: a caller of the
	// third party most often, else a service further up.
	var direct, upstream []int
	for _, s := range g.svcs {
		if s.incidentCoef*in.ratio < max(3*s.baseRatio, 0.005) && s.incidentMs < 0.5*s.p95 {
			continue
		}
		if slices.Contains(callers[name], s.idx) {
			direct = append(direct, s.idx)
		} else {
			upstream = append(upstream, s.idx)
		}
	}
	switch {
	case len(upstream) > 0 && (len(direct) == 0 || r.Float64() < 0.3):
		in.symptom = pick(r, upstream)
	case len(direct) > 0:
		in.symptom = pick(r, direct)
	default:
		best := 0.0
		for _, c := range callers[name] {
			if v := g.svcs[c].incidentCoef * g.svcs[c].peak; v > best {
				best, in.symptom = v, c
			}
		}
	}
	in.detected = alertAt(at.Add(between(r, 3*time.Minute, 8*time.Minute)))
	g.plantAbstainDecoys(r)
	in.variant = fmt.Sprintf("%s %s for %.0f min, %.0f%% of calls fail; %d callers; asks %s",
		name, mode, dur.Minutes(), 100*in.ratio, len(callers[name]), g.svcs[in.symptom].name)
	return nil
}

// planTrafficSpike plans TrafficSpike: a bot through the gateway or a
// marketing push through the frontend multiplies traffic 3 to 10 times for
// 20 minutes to 2 hours.
func (g *generator) planTrafficSpike(r *rand.Rand) error {
	in := &g.inc
	at, err := g.incidentTime(r, 0, 3*time.Hour)
	if err != nil {
		return err
	}
	factor := uniform(r, 3, 10)
	dur := between(r, 20*time.Minute, 2*time.Hour)
	in.onset = at
	in.ramp = between(r, time.Minute, 5*time.Minute)
	in.spikeLvl = g.profile(at, in.ramp, at.Add(dur), between(r, 2*time.Minute, 10*time.Minute))

	extra := make([]float64, len(g.svcs))
	var down func(i int, rpm float64)
	down = func(i int, rpm float64) {
		extra[i] += rpm
		for _, e := range g.svcs[i].deps {
			down(e.to, rpm*e.share)
		}
	}
	gw, fe := g.byName["api-gateway"], g.byName["frontend"]
	var targets []int
	for _, e := range g.svcs[gw].deps {
		targets = append(targets, e.to)
	}
	var what string
	var entry int
	if len(targets) > 0 && r.Float64() < 0.55 {
		// A bot scraping one public API through the gateway.
		entry = pick(r, targets)
		rpm := (factor - 1) * g.trafficAt(g.svcs[entry], at)
		extra[gw] += rpm
		down(entry, rpm)
		what = fmt.Sprintf("bot scraping %s through api-gateway, its traffic x%.1f", g.svcs[entry].name, factor)
	} else {
		// A marketing push: users through the whole site.
		entry = fe
		down(fe, (factor-1)*g.trafficAt(g.svcs[fe], at))
		what = fmt.Sprintf("marketing push, frontend traffic x%.1f", factor)
	}
	// The engineer asks about a service whose error count alert fires: its
	// traffic at least 2.5 times the usual and at least one failure a
	// minute; else the one of those that fails most.
	var loud []int
	best, most := entry, 0.0
	for i, s := range g.svcs {
		usual := g.trafficAt(s, at)
		rel := extra[i] / max(usual, 1e-9)
		s.spikeRPM = extra[i]
		// Load slows a service a little and fails a little more of it.
		s.spikeMs = s.p95 * uniform(r, 0.03, 0.12) * min(rel, 5)
		s.spikeBump = uniform(r, 0, 0.08) * min(rel, 3)
		failing := (usual + extra[i]) * s.baseRatio
		if rel >= 1.5 && failing >= 1 {
			loud = append(loud, i)
		}
		if rel >= 1.5 && failing > most {
			best, most = i, failing
		}
	}
	switch {
	case slices.Contains(loud, entry) && r.Float64() < 0.6:
		in.symptom = entry
	case len(loud) > 0:
		in.symptom = pick(r, loud)
	default:
		in.symptom = best
	}
	in.detected = alertAt(at.Add(between(r, 3*time.Minute, 10*time.Minute)))
	g.plantAbstainDecoys(r)
	in.variant = fmt.Sprintf("%s for %.0f min; asks %s", what, dur.Minutes(), g.svcs[in.symptom].name)
	return nil
}

// plantAbstainDecoys plants innocent changes near symptoms no change caused,
// after quieting the asked service's chronic bursts:
// a deploy in the asked service's scope 10 to 30 minutes before the onset,
// the change a naive engine blames; a flag flip of it or a caller minutes
// before, or else a config edit in scope in the hour or so before; sometimes
// a deploy between the onset and the alert.
func (g *generator) plantAbstainDecoys(r *rand.Rand) {
	in := &g.inc
	s := in.symptom
	// Chronic bursts of the asked service stay away, so that its symptoms
	// are the incident's alone.
	g.quiet(s, in.onset.Add(-3*time.Hour))
	scope := g.scope(s)
	g.addDecoy(pick(r, scope), event.ChangeDeploy, in.onset.Add(-between(r, 10*time.Minute, 30*time.Minute)))
	if r.Float64() < 0.6 {
		g.addDecoy(pick(r, append([]int{s}, g.svcs[s].callers...)), event.ChangeFlag, in.onset.Add(-between(r, time.Minute, 12*time.Minute)))
	} else {
		g.addDecoy(pick(r, scope), event.ChangeConfig, in.onset.Add(-between(r, 30*time.Minute, 90*time.Minute)))
	}
	if r.Float64() < 0.25 {
		g.addDecoy(pick(r, scope), event.ChangeDeploy, in.onset.Add(time.Duration(uniform(r, 0.1, 0.9)*float64(in.detected.Sub(in.onset)))))
	}
}
