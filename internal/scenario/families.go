package scenario

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// This file holds one plan per family of CauseFamilies: which service, which
// change, how strong an effect and which decoys, each chosen by the seed.
// The abstain families are in abstain.go.

// noisy reports whether the family wants a noisy background: many chronic
// and sporadic fingerprints. buildTopology reads it before the plan runs.
func (g *generator) noisy() bool { return g.opt.Family == NoisyBackground }

// changeRate multiplies the rate of background changes.
func (g *generator) changeRate() float64 {
	if g.inc.busy > 0 {
		return g.inc.busy
	}
	return 1
}

// deployRegression is a bad deploy of x at at, asked about at symptom: a
// new error 1 to 5 minutes later, 5 to 50 times the baseline error ratio, a
// p95 1.4 to 3 times higher, an alert 3 to 8 minutes after the onset.
func (g *generator) deployRegression(r *rand.Rand, x, symptom int, at time.Time) regression {
	return regression{
		kind:       event.ChangeDeploy,
		x:          x,
		symptom:    symptom,
		at:         at,
		lag:        [2]time.Duration{time.Minute, 5 * time.Minute},
		ramp:       [2]time.Duration{time.Minute, 3 * time.Minute},
		detect:     [2]time.Duration{3 * time.Minute, 8 * time.Minute},
		ratio:      g.regressionRatio(r, x),
		floor:      max(3*g.svcs[x].baseRatio, 0.006),
		latencyMul: uniform(r, 1.4, 3),
	}
}

// variantOf names a regression's variant: the cause's traffic tier and
// service, who is asked, the effect and the decoy pattern.
func (g *generator) variantOf(tier, pattern string) string {
	in := &g.inc
	ask := "asks the cause"
	if in.symptom != in.causeSvc {
		ask = "asks caller " + g.svcs[in.symptom].name
	}
	effect := effectName(in.multiplier) + " errors"
	if in.ratio == 0 {
		effect = fmt.Sprintf("latency only %.1fx", in.latencyMul)
	}
	return fmt.Sprintf("%s-traffic %s; %s; %s; decoy %s", tier, g.svcs[in.causeSvc].name, ask, effect, pattern)
}

// planBadDeploy plans BadDeploy: a deploy of a service of any traffic tier
// breaks it; the engineer asks about it.
func (g *generator) planBadDeploy(r *rand.Rand) error {
	x, tier := g.pickByTraffic(r, r.IntN(3))
	at, err := g.incidentTime(r, 0, 0)
	if err != nil {
		return err
	}
	g.planRegression(r, g.deployRegression(r, x, x, at))
	g.inc.variant = g.variantOf(tier, g.plantDecoys(r, closeDecoyChance))
	return nil
}

// planBadDeployDependency plans BadDeployDependency: a bad deploy of a
// service asked about at a caller that sends it a good share of its calls.
func (g *generator) planBadDeployDependency(r *rand.Rand) error {
	// The caller asked about must send a good part of its requests to the
	// bad service, or its alert would not fire.
	type pair struct{ x, caller int }
	var pairs []pair
	best, bestShare := pair{}, -1.0
	for _, s := range g.svcs {
		for _, e := range s.deps {
			if e.share >= minSymptomShare {
				pairs = append(pairs, pair{e.to, s.idx})
			}
			if e.share > bestShare {
				best, bestShare = pair{e.to, s.idx}, e.share
			}
		}
	}
	if len(pairs) == 0 {
		pairs = append(pairs, best)
	}
	p := pick(r, pairs)
	at, err := g.incidentTime(r, 0, 0)
	if err != nil {
		return err
	}
	rg := g.deployRegression(r, p.x, p.caller, at)
	rg.keepSymptom = true
	g.planRegression(r, rg)
	g.inc.variant = g.variantOf(tierOf(g, p.x), g.plantDecoys(r, closeDecoyChance))
	return nil
}

// tierOf names the traffic tier of x.
func tierOf(g *generator, x int) string {
	busier := 0
	for _, s := range g.svcs {
		if s.peak > g.svcs[x].peak {
			busier++
		}
	}
	return []string{"high", "mid", "low"}[min(3*busier/len(g.svcs), 2)]
}

// flagStep is a rollout step of a feature flag that breaks: the share of
// traffic on the broken path before and after.
type flagStep struct {
	old, new   string
	before, to float64
}

var badFlagSteps = []flagStep{
	{"off", "10%", 0, 0.1},
	{"off", "50%", 0, 0.5},
	{"off", "100%", 0, 1},
	{"10%", "100%", 0.1, 1},
}

// planBadFlag plans BadFlag: a rollout step of one of the service's flags
// sends traffic down a broken path, which fails a share of it.
func (g *generator) planBadFlag(r *rand.Rand) error {
	x, tier := g.pickByTraffic(r, r.IntN(3))
	xs := g.svcs[x]
	symptom := g.askAbout(r, x, 0.35, minSymptomShare)
	flag := pick(r, xs.spec.flags)
	g.inc.reservedFlag[x] = flag
	step := pick(r, badFlagSteps)
	at, err := g.incidentTime(r, 0, 0)
	if err != nil {
		return err
	}
	// The observed ratio is that of a bad deploy; the broken path fails
	// ratio/share of its requests, at most 90%.
	ratio := min(g.regressionRatio(r, x), 0.9*step.to)
	tmpl := pick(r, regressionErrors[xs.spec.lang])
	fp := g.newFingerprint(r, xs, tmpl, tmpl.msg)
	g.planRegression(r, regression{
		kind:       event.ChangeFlag,
		attrs:      map[string]string{"flag": flag, "old": step.old, "new": step.new},
		x:          x,
		symptom:    symptom,
		at:         at,
		lag:        [2]time.Duration{10 * time.Second, 90 * time.Second},
		ramp:       [2]time.Duration{10 * time.Second, time.Minute},
		detect:     [2]time.Duration{3 * time.Minute, 8 * time.Minute},
		ratio:      ratio,
		floor:      max(3*xs.baseRatio, 0.006),
		latencyMul: uniform(r, 1, 1.3),
		fp:         &fp,
		fpNew:      step.before == 0,
		pre:        step.before / step.to,
	})
	pre := "new error"
	if step.before > 0 {
		pre = "error already there at " + step.old
	}
	g.inc.variant = fmt.Sprintf("%s → %s, %s; %s", step.old, step.new, pre, g.variantOf(tier, g.plantDecoys(r, closeDecoyChance)))
	return nil
}

// planBadConfig plans BadConfig: one of configFaults applied to a service.
func (g *generator) planBadConfig(r *rand.Rand) error {
	x, tier := g.pickByTraffic(r, r.IntN(3))
	xs := g.svcs[x]
	fault := pick(r, configFaults)
	old := ""
	for _, k := range configKeys {
		if k.key == fault.key {
			old = k.values[0] // the plan owns the key: no edit moved it
		}
	}
	g.inc.reservedKey[x] = fault.key
	at, err := g.incidentTime(r, 0, 0)
	if err != nil {
		return err
	}
	rg := regression{
		kind:       event.ChangeConfig,
		attrs:      map[string]string{"key": fault.key, "old": old, "new": fault.bad[old]},
		x:          x,
		at:         at,
		lag:        [2]time.Duration{30 * time.Second, 3 * time.Minute},
		ramp:       [2]time.Duration{30 * time.Second, 2 * time.Minute},
		detect:     [2]time.Duration{3 * time.Minute, 8 * time.Minute},
		floor:      max(3*xs.baseRatio, 0.006),
		latencyMul: uniform(r, 1, 1.2),
	}
	if fault.latency > 1 {
		rg.latencyMul = fault.latency * uniform(r, 0.7, 1.4)
	}
	how := "latency only"
	if fault.ratio > 0 {
		rg.ratio = min(max(fault.ratio*logUniform(r, 0.5, 2), 3*xs.baseRatio, minIncidentRatio), 0.15)
		how = "new error"
		var fp fingerprint
		for _, c := range xs.chronic {
			if fault.chronicTyp != "" && c.tmpl.status == 504 {
				fp, how = c, "existing timeout surges"
				break
			}
		}
		if fp.id == "" {
			tmpl := fault.errs[xs.spec.lang]
			fp = g.newFingerprint(r, xs, tmpl, tmpl.msg)
			rg.fpNew = true
		}
		rg.fp = &fp
		rg.symptom = g.askAbout(r, x, 0.35, minSymptomShare)
	} else {
		rg.symptom = g.askAbout(r, x, 0.2, 0.25)
	}
	g.planRegression(r, rg)
	g.inc.variant = fmt.Sprintf("%s %s → %s, %s; %s", fault.key, old, fault.bad[old], how, g.variantOf(tier, g.plantDecoys(r, closeDecoyChance)))
	return nil
}

// planBadDeployLatency plans BadDeployLatency: a deploy that makes its
// service 3 to 10 times slower and fails nothing.
func (g *generator) planBadDeployLatency(r *rand.Rand) error {
	x, tier := g.pickByTraffic(r, r.IntN(3))
	at, err := g.incidentTime(r, 0, 0)
	if err != nil {
		return err
	}
	rg := g.deployRegression(r, x, g.askAbout(r, x, 0.3, 0.25), at)
	rg.ratio, rg.latencyMul = 0, logUniform(r, 3, 10)
	g.planRegression(r, rg)
	g.inc.variant = g.variantOf(tier, g.plantDecoys(r, closeDecoyChance))
	return nil
}

// planSparseData plans SparseData: a bad deploy of one of the quietest
// services, in a production scaled down and sampled by WithDefaults.
func (g *generator) planSparseData(r *rand.Rand) error {
	x, tier := g.pickByTraffic(r, 2)
	at, err := g.incidentTime(r, 0, 2*time.Hour)
	if err != nil {
		return err
	}
	rg := g.deployRegression(r, x, x, at)
	// A broken endpoint of a quiet service: a large share of few requests,
	// found late because the alert needs 5 to 12 failures to fire.
	rg.ratio = uniform(r, 0.2, 0.5) - g.svcs[x].baseRatio
	rg.latencyMul = uniform(r, 1.2, 2)
	perMin := g.trafficAt(g.svcs[x], at) * (rg.ratio + g.svcs[x].baseRatio)
	wait := time.Duration(uniform(r, 5, 12) / max(perMin, 0.01) * float64(time.Minute))
	wait = min(max(wait, 8*time.Minute), 40*time.Minute)
	rg.detect = [2]time.Duration{wait, wait + time.Minute}
	g.planRegression(r, rg)
	g.inc.variant = fmt.Sprintf("sample rate %g, traffic x%g; %s", g.opt.ErrorSampleRate, g.opt.TrafficScale, g.variantOf(tier, g.plantDecoys(r, closeDecoyChance)))
	return nil
}

// planLateDetection plans LateDetection: a bad deploy whose alert comes 1
// to 30 minutes after the onset, with innocent changes in between.
func (g *generator) planLateDetection(r *rand.Rand) error {
	x, tier := g.pickByTraffic(r, r.IntN(3))
	at, err := g.incidentTime(r, 0, 45*time.Minute)
	if err != nil {
		return err
	}
	rg := g.deployRegression(r, x, g.askAbout(r, x, 0.25, minSymptomShare), at)
	late := "1-10 min"
	rg.detect = [2]time.Duration{time.Minute, 10 * time.Minute}
	if r.Float64() < 0.35 {
		late, rg.detect = "10-30 min", [2]time.Duration{10 * time.Minute, 30 * time.Minute}
	}
	g.planRegression(r, rg)
	in := &g.inc
	// Innocent changes between the onset and the question: someone
	// shipping as usual, someone trying to help.
	n := 1 + r.IntN(3)
	for range n {
		svc := pick(r, g.scope(in.symptom))
		kind := event.ChangeDeploy
		if svc == x || r.Float64() < 0.4 {
			kind = pick(r, []event.ChangeKind{event.ChangeFlag, event.ChangeConfig})
		}
		g.addDecoy(svc, kind, in.onset.Add(time.Duration(uniform(r, 0.05, 0.95)*float64(in.detected.Sub(in.onset)))))
	}
	g.inc.variant = fmt.Sprintf("detected %s after onset, %d changes in between; %s", late, n, g.variantOf(tier, g.plantDecoys(r, closeDecoyChance)))
	return nil
}

// planRollback plans Rollback: a bad deploy rolled back 10 to 40 minutes
// after the onset, asked about around or after the rollback.
func (g *generator) planRollback(r *rand.Rand) error {
	x, tier := g.pickByTraffic(r, r.IntN(3))
	at, err := g.incidentTime(r, 0, 150*time.Minute)
	if err != nil {
		return err
	}
	// The rollback switches traffic back to the good replicas at once,
	// which ends the failures.
	rg := g.deployRegression(r, x, g.askAbout(r, x, 0.25, minSymptomShare), at)
	rg.last = [2]time.Duration{10 * time.Minute, 40 * time.Minute}
	g.planRegression(r, rg)
	in := &g.inc
	rb := in.until
	in.changes = append(in.changes, &plannedChange{
		Change: event.Change{Time: rb, Kind: event.ChangeRollback},
		svc:    x, role: roleMitigation, undoes: in.cause, reason: pick(r, mitigationReasons),
	})
	in.detected = alertAt(maxTime(rb.Add(between(r, -3*time.Minute, 30*time.Minute)), in.onset.Add(3*time.Minute)))
	in.variant = fmt.Sprintf("rollback %.0f min after onset, asked %.0f min after it; %s",
		rb.Sub(in.onset).Minutes(), in.detected.Sub(rb).Minutes(), g.variantOf(tier, g.plantDecoys(r, closeDecoyChance)))
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// planNoisyBackground plans NoisyBackground: a bad deploy among busier
// changes, earlier deploys of the same service, flapping neighbours and
// new-looking fingerprints near the onset.
func (g *generator) planNoisyBackground(r *rand.Rand) error {
	in := &g.inc
	in.busy = uniform(r, 2.5, 3.5) // freezes around the incident drop some
	x, tier := g.pickByTraffic(r, r.IntN(3))
	at, err := g.incidentTime(r, 9*time.Hour, 0)
	if err != nil {
		return err
	}
	g.planRegression(r, g.deployRegression(r, x, g.askAbout(r, x, 0.25, minSymptomShare), at))
	s := in.symptom
	pattern := g.plantDecoys(r, 0.7)

	// Earlier innocent deploys of the cause service.
	for range 1 + r.IntN(2) {
		if t := at.Add(-between(r, 75*time.Minute, 8*time.Hour)); t.After(g.start.Add(10 * time.Minute)) {
			g.addDecoy(x, event.ChangeDeploy, t)
		}
	}
	// More changes around the onset in the asked service's scope.
	for range 1 + r.IntN(2) {
		svc := pick(r, g.scope(s))
		kind := pick(r, []event.ChangeKind{event.ChangeFlag, event.ChangeConfig, event.ChangeDeploy})
		if svc == x && kind == event.ChangeDeploy {
			kind = event.ChangeConfig
		}
		g.addDecoy(svc, kind, in.onset.Add(between(r, -30*time.Minute, 20*time.Minute)))
	}
	// Flapping: periodic bursts of a chronic error in the neighbours all
	// along, and in the cause service until a while before the deploy.
	near := []int{x}
	for _, e := range g.svcs[s].deps {
		near = append(near, e.to)
	}
	near = append(near, g.svcs[s].callers...)
	near = append(near, g.svcs[x].callers...)
	slices.Sort(near)
	near = slices.Compact(near)
	flappers := 0
	for _, i := range r.Perm(len(near)) {
		f := near[i]
		if flappers == 4 {
			break
		}
		if f != x && flappers > 0 && r.Float64() < 0.3 {
			continue
		}
		flappers++
		end := g.end
		if f == x {
			end = at.Add(-between(r, 20*time.Minute, 90*time.Minute))
		}
		g.flap(r, g.svcs[f], end)
	}
	// New-looking fingerprints near the onset in the neighbours.
	for range 2 + r.IntN(3) {
		g.addSporadic(r, g.svcs[pick(r, near)], 1, in.onset.Add(-30*time.Minute), in.onset.Add(15*time.Minute))
	}
	in.variant = fmt.Sprintf("changes x%.1f, %d flapping services; %s", in.busy, flappers, g.variantOf(tier, pattern))
	return nil
}

// flap gives s periodic bursts of one chronic error until end: every 12 to
// 45 minutes for 2 to 6 minutes, 4 to 12 times its usual rate.
func (g *generator) flap(r *rand.Rand, s *service, end time.Time) {
	fp := r.IntN(len(s.chronic))
	period := between(r, 12*time.Minute, 45*time.Minute)
	length := between(r, 2*time.Minute, 6*time.Minute)
	factor := uniform(r, 4, 12)
	for t := g.start.Add(between(r, 0, period)); t.Before(end); t = t.Add(time.Duration(uniform(r, 0.8, 1.2) * float64(period))) {
		s.blips = append(s.blips, blip{fp: fp, start: t, end: minTime(t.Add(length), end), factor: factor})
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// planPartialRollout plans PartialRollout: a deploy to some instances or to
// one region fails there only; another service's innocent partial rollout
// and a third split service keep split series from naming the cause.
func (g *generator) planPartialRollout(r *rand.Rand) error {
	x, tier := g.pickByTraffic(r, r.IntN(3))
	xs := g.svcs[x]
	byRegion := r.Float64() < 0.4
	var attrs map[string]string
	var where string
	if byRegion {
		region := pick(r, []string{"eu-west-1", "ap-southeast-1"})
		g.splitByRegion(r, xs, region)
		attrs = map[string]string{"rollout": "region", "region": region}
		where = fmt.Sprintf("region %s (%.0f%% of traffic)", region, 100*xs.canaryShare())
	} else {
		n, k := canaryShape(r)
		g.splitByInstance(r, xs, n, k)
		attrs = map[string]string{"rollout": "canary", "canary_percent": strconv.Itoa(int(math.Round(100 * float64(k) / float64(n))))}
		where = fmt.Sprintf("%d of %d instances", k, n)
	}
	at, err := g.incidentTime(r, 0, 0)
	if err != nil {
		return err
	}
	ratio := min(max(xs.baseRatio*logUniform(r, 20, 100), 0.04), 0.35)
	g.planRegression(r, regression{
		kind:       event.ChangeDeploy,
		attrs:      attrs,
		partial:    true,
		x:          x,
		symptom:    g.askAbout(r, x, 0.3, minSymptomShare),
		at:         at,
		lag:        [2]time.Duration{time.Minute, 5 * time.Minute},
		ramp:       [2]time.Duration{30 * time.Second, 2 * time.Minute},
		detect:     [2]time.Duration{3 * time.Minute, 8 * time.Minute},
		ratio:      ratio,
		floor:      max(10*xs.baseRatio, 0.03),
		latencyMul: uniform(r, 1.3, 3),
	})
	in := &g.inc
	// Other services report per shard too, so that split series do not
	// give the cause away: one with an innocent partial rollout of its own,
	// preferably in the asked service's scope, and one without.
	var others, inScope []int
	for i := range g.svcs {
		if i != x {
			others = append(others, i)
			if slices.Contains(g.scope(in.symptom), i) {
				inScope = append(inScope, i)
			}
		}
	}
	if len(inScope) == 0 {
		inScope = others
	}
	o1 := pick(r, inScope)
	os := g.svcs[o1]
	var dattrs map[string]string
	if byRegion {
		region := pick(r, []string{"eu-west-1", "ap-southeast-1"})
		g.splitByRegion(r, os, region)
		dattrs = map[string]string{"rollout": "region", "region": region}
	} else {
		n, k := canaryShape(r)
		g.splitByInstance(r, os, n, k)
		dattrs = map[string]string{"rollout": "canary", "canary_percent": strconv.Itoa(int(math.Round(100 * float64(k) / float64(n))))}
	}
	t := at.Add(-between(r, 5*time.Minute, 50*time.Minute))
	if r.Float64() < 0.4 {
		t = at.Add(time.Duration(uniform(r, 0.1, 0.9) * float64(in.detected.Sub(at))))
	}
	d := g.addDecoy(o1, event.ChangeDeploy, t)
	d.partial, d.Attributes = true, dattrs
	in.freeze = append(in.freeze, freeze{svc: o1, from: t.Add(-90 * time.Minute), to: g.end, deploysOnly: true})
	var rest []int
	for _, i := range others {
		if i != o1 {
			rest = append(rest, i)
		}
	}
	if len(rest) > 0 {
		o2 := g.svcs[pick(r, rest)]
		if byRegion {
			g.splitByRegion(r, o2, "")
		} else {
			g.splitByInstance(r, o2, 3+r.IntN(6), 0)
		}
	}
	in.variant = fmt.Sprintf("%s; %s", where, g.variantOf(tier, g.plantDecoys(r, closeDecoyChance)))
	return nil
}

// canaryShape draws how many instances a canaried service has, 4 to 8, and
// how many of them take the canary.
func canaryShape(r *rand.Rand) (n, k int) {
	n, k = 4+r.IntN(5), 1
	if n >= 8 && r.Float64() < 0.5 {
		k = 2
	}
	return n, k
}

// planCanaryReleases plans CanaryReleases: canaries of several services a
// common caller depends on, within five minutes, one defective and silent.
func (g *generator) planCanaryReleases(r *rand.Rand) error {
	// The common caller: a service with at least two services beneath it,
	// api-gateway more often than not.
	var ups []int
	for i := range g.svcs {
		if len(g.scope(i)) >= 3 {
			ups = append(ups, i)
		}
	}
	if len(ups) == 0 {
		return fmt.Errorf("no service calls two others")
	}
	u := pick(r, ups)
	if gw, ok := g.byName["api-gateway"]; ok && slices.Contains(ups, gw) && r.Float64() < 0.6 {
		u = gw
	}
	cands := g.scope(u)[1:]
	n := min(len(cands), 3+r.IntN(4))
	var chosen []int
	for _, i := range r.Perm(len(cands))[:n] {
		chosen = append(chosen, cands[i])
	}
	// The defective one sends u's alert off when u calls it enough.
	var direct []int
	for _, c := range chosen {
		if e := g.svcs[u].edgeTo(c); e != nil && e.share >= 0.1 {
			direct = append(direct, c)
		}
	}
	bad := pick(r, chosen)
	if len(direct) > 0 {
		bad = pick(r, direct)
	}
	at, err := g.incidentTime(r, 2*time.Hour, 0)
	if err != nil {
		return err
	}
	in := &g.inc
	var badAt time.Time
	var badAttrs map[string]string
	for _, c := range chosen {
		cs := g.svcs[c]
		pods, canary := canaryShape(r)
		g.splitByInstance(r, cs, pods, canary)
		attrs := map[string]string{"rollout": "canary", "canary_percent": strconv.Itoa(int(math.Round(100 * float64(canary) / float64(pods))))}
		t := at.Add(between(r, 0, 5*time.Minute))
		in.freeze = append(in.freeze, freeze{svc: c, from: t.Add(-90 * time.Minute), to: g.end, deploysOnly: true})
		if c == bad {
			badAt, badAttrs = t, attrs
			continue
		}
		d := g.addDecoy(c, event.ChangeDeploy, t)
		d.partial, d.Attributes = true, attrs
	}
	symptom := u
	if r.Float64() < 0.2 {
		symptom = bad
	}
	g.planRegression(r, regression{
		kind:       event.ChangeDeploy,
		attrs:      badAttrs,
		partial:    true,
		x:          bad,
		symptom:    symptom,
		at:         badAt,
		lag:        [2]time.Duration{time.Minute, 3 * time.Minute},
		ramp:       [2]time.Duration{30 * time.Second, 2 * time.Minute},
		detect:     [2]time.Duration{3 * time.Minute, 10 * time.Minute},
		ratio:      logUniform(r, 0.1, 0.4),
		floor:      0.1,
		latencyMul: uniform(r, 1.5, 4),
	})
	// The failing canary instances answer 5xx that nothing reports as an
	// error event, and log nothing unusual.
	in.silent, in.fp, in.fpNew = true, fingerprint{}, false
	if ss := g.svcs[symptom]; symptom != bad && ss.incidentCoef*in.ratio < max(3*ss.baseRatio, 0.003) && ss.incidentMs < 0.3*ss.p95 {
		in.symptom = bad // u would not notice: the on-call looks at the failing service
	}
	kind := event.ChangeFlag
	if r.Float64() < 0.35 {
		kind = event.ChangeConfig
	}
	g.addDecoy(in.symptom, kind, in.onset.Add(-between(r, 15*time.Minute, 110*time.Minute)))
	pattern := "canaries"
	if in.symptom == bad {
		pattern = g.closeDecoy(r, closeDecoyChance)
	}
	bs := g.svcs[bad]
	ask := "asks the defective service"
	if in.symptom != bad {
		ask = "asks common caller " + g.svcs[in.symptom].name
	}
	in.variant = fmt.Sprintf("%d canaries within 5 min; defective %s (%d of %d instances fail %.0f%%); %s; decoy %s",
		len(chosen), bs.name, bs.canaryPods(), bs.replicas, 100*in.ratio, ask, pattern)
	return nil
}

// planSlowRegression plans SlowRegression: a deploy that leaks memory,
// noticed 2 to 6 hours later, with innocent changes in between.
func (g *generator) planSlowRegression(r *rand.Rand) error {
	x, tier := g.pickByTraffic(r, r.IntN(3))
	xs := g.svcs[x]
	lead := between(r, 2*time.Hour, 6*time.Hour)
	t, err := g.incidentTime(r, lead+time.Hour, lead/2+2*time.Hour)
	if err != nil {
		return err
	}
	at := t.Add(-lead)
	tmpl := oomErrors[xs.spec.lang]
	fp := g.newFingerprint(r, xs, tmpl, tmpl.msg)
	// The error ratio is the levels themselves: the share of requests in
	// flight on killed replicas. floor 1 keeps the budget from cutting it.
	g.planRegression(r, regression{
		kind:       event.ChangeDeploy,
		x:          x,
		symptom:    g.askAbout(r, x, 0.3, 0.2),
		at:         at,
		lag:        [2]time.Duration{lead, lead + time.Second},
		ramp:       [2]time.Duration{time.Second, 2 * time.Second},
		detect:     [2]time.Duration{time.Minute, 2 * time.Minute},
		ratio:      1,
		floor:      1,
		latencyMul: uniform(r, 2.5, 6),
		fp:         &fp,
		fpNew:      true,
	})
	in := &g.inc
	// Tune the leak until its symptoms show about lead after the deploy:
	// how fast depends on the replicas and the traffic over the day.
	limit := xs.memPod / uniform(r, 0.35, 0.5)
	leakSeed := r.Uint64()
	speed := 4 * float64(time.Hour) / float64(lead)
	for try := 0; ; try++ {
		ok := g.leak(newRand(leakSeed, streamIncident), at, limit, speed)
		got := in.onset.Sub(at)
		if ok && (math.Abs(float64(got-lead)) < 0.1*float64(lead) || try >= 8) {
			break
		}
		switch {
		case try == 16:
			return fmt.Errorf("memory leak of %s does not surface within the data", xs.name)
		case !ok || got <= 0:
			speed *= 1.3 // too late for the data: leak faster
		default:
			speed *= float64(got) / float64(lead)
		}
	}
	g.propagate()
	g.plantDecoys(r, 0)
	// Innocent changes in the hours between the deploy and the onset.
	n := 2 + r.IntN(3)
	for range n {
		svc := pick(r, g.scope(in.symptom))
		kind := event.ChangeDeploy
		if svc == x || r.Float64() < 0.4 {
			kind = pick(r, []event.ChangeKind{event.ChangeFlag, event.ChangeConfig})
		}
		g.addDecoy(svc, kind, at.Add(10*time.Minute+time.Duration(uniform(r, 0, 1)*float64(in.onset.Sub(at)-12*time.Minute))))
	}
	ask := "asks the cause"
	if in.symptom != x {
		ask = "asks caller " + g.svcs[in.symptom].name
	}
	in.variant = fmt.Sprintf("%s-traffic %s; %d replicas leak, noticeable %.1f h after the deploy, first OOM kill %.1f h after; %s; %d changes in between",
		tier, xs.name, xs.replicas, in.onset.Sub(at).Hours(), in.kills[0].at.Sub(at).Hours(), ask, n)
	return nil
}

// leak simulates the cause service's replicas leaking memory from the
// deploy at at, at a speed that fills their limit in about four hours (over
// speed) under average load; a full replica is OOM-killed and restarts empty.
// It sets the incident's levels, leak and kills, its onset (p95 15% above
// usual) and its alert (p95 50% above usual or the first kill, whichever
// comes first, and a few minutes), and reports false if the alert would
// come too late for the data or more than maxSlowLead after the deploy.
func (g *generator) leak(r *rand.Rand, at time.Time, limit, speed float64) bool {
	in := &g.inc
	xs := g.svcs[in.causeSvc]
	n := xs.replicas
	perMin := speed * (limit - xs.memPod) / 240
	rate := make([]float64, n)
	mem := make([]float64, n)
	restarts := make([]int, n)
	for i := range rate {
		rate[i] = perMin * uniform(r, 0.8, 0.97)
		mem[i] = xs.memPod * uniform(r, 0.95, 1.05)
	}
	rate[r.IntN(n)] = perMin
	in.errLvl = make([]float64, g.minutes)
	in.latLvl = make([]float64, g.minutes)
	in.leak = make([]float64, g.minutes)
	in.kills = nil
	in.onset = time.Time{}
	var alert time.Time
	first := int(at.Sub(g.start)/time.Minute) + 1
	for m := first; m < g.minutes; m++ {
		t := g.start.Add(time.Duration(m) * time.Minute)
		f := 0.6 + 0.4*diurnal(t)/0.75 // it leaks per request
		sum := 0.0
		for i := range mem {
			mem[i] += rate[i] * f
			if mem[i] >= limit {
				restarts[i]++
				in.kills = append(in.kills, kill{at: t.Add(between(r, 0, time.Minute)), pod: i, restarts: restarts[i]})
				// Requests in flight fail, and the replica is unready while
				// it restarts.
				in.errLvl[m] = min(in.errLvl[m]+uniform(r, 0.3, 0.6)/float64(n), 1)
				mem[i] = xs.memPod * uniform(r, 0.95, 1.05)
				if alert.IsZero() {
					alert = t
				}
			}
			// Garbage collection thrashes as the heap fills.
			x := min(max((mem[i]/limit-0.6)/0.4, 0), 1)
			sum += x * x
			in.leak[m] += mem[i] - xs.memPod
		}
		in.latLvl[m] = sum / float64(n)
		added := in.latLvl[m] * (in.latencyMul - 1)
		if in.onset.IsZero() && added >= 0.15 {
			in.onset = t
		}
		if alert.IsZero() && added >= 0.5 {
			alert = t
		}
	}
	if in.onset.IsZero() || alert.IsZero() || len(in.kills) == 0 {
		return false
	}
	slices.SortFunc(in.kills, func(a, b kill) int { return a.at.Compare(b.at) })
	in.detected = alertAt(maxTime(alert, in.onset).Add(between(r, 2*time.Minute, 8*time.Minute)))
	return in.detected.Before(g.end.Add(-time.Hour)) && in.detected.Sub(at) <= maxSlowLead
}

// maxSlowLead bounds the time from a slow regression's deploy to its
// alert, so that asking with a lookback of eight hours finds the deploy.
const maxSlowLead = 7 * time.Hour
