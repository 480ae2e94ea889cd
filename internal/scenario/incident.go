package scenario

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// incident is what a family injects into the shared background: the causal
// change if any, where and when symptoms show and how strong they are, and
// the innocent decoy changes planted near it.
//
// Its effects are per-minute levels, 0 to 1 (1 is full effect), that the
// simulation multiplies into the services' parameters: errLvl scales ratio,
// the error ratio failing the source's requests (the cause service's own,
// or a failing third party's calls); latLvl scales each service's added p95;
// spikeLvl scales each service's extra traffic.
type incident struct {
	cause    *plannedChange // nil when the family has no causal change
	causeSvc int            // service whose behaviour changes, -1 when none
	symptom  int            // service the on-call engineer asks about
	external string         // third party whose outage is the incident, or ""

	onset      time.Time
	ramp       time.Duration // from onset to full effect
	until      time.Time     // the cause service's own failures stop here; zero for never
	detected   time.Time
	ratio      float64     // error ratio at the source at full effect
	multiplier float64     // the cause service's error ratio at full effect over its baseline
	latencyMul float64     // the cause service's p95 at full effect over its baseline
	fp         fingerprint // the error of the cause service whose rate rises
	fpNew      bool        // fp first appears with the incident
	silent     bool        // failures show in metrics only: no error events, no logs

	errLvl, latLvl, spikeLvl []float64 // per minute of data; nil means 0 throughout
	leak                     []float64 // per minute, bytes the cause service leaked; nil for none
	kills                    []kill    // OOM kills of the cause service's replicas

	busy         float64        // multiplies the background change rate; 0 means 1
	reservedFlag map[int]string // per service, the flag the plan owns
	reservedKey  map[int]string // per service, the config key the plan owns
	variant      string

	changes []*plannedChange // cause, decoys and mitigation, merged into the schedule
	freeze  []freeze         // background changes to drop around them
}

// kill is one replica of the cause service killed for memory.
type kill struct {
	at       time.Time
	pod      int
	restarts int
}

// freeze drops background changes of one service in [from, to); deploysOnly
// limits it to deploys and rollbacks.
type freeze struct {
	svc         int
	from, to    time.Time
	deploysOnly bool
}

// level returns the value of lvl, a per-minute level, for minute m.
func level(lvl []float64, m int) float64 {
	if lvl == nil {
		return 0
	}
	return lvl[m]
}

// profile returns per-minute levels of an effect that starts at onset,
// grows linearly to 1 over ramp, and from until (if not zero) falls back to
// 0 over down. Each minute holds its average.
func (g *generator) profile(onset time.Time, ramp time.Duration, until time.Time, down time.Duration) []float64 {
	lvl := make([]float64, g.minutes)
	const steps = 6
	at := func(x time.Time) float64 {
		v := 0.0
		switch {
		case x.Before(onset):
			return 0
		case ramp <= 0 || x.Sub(onset) >= ramp:
			v = 1
		default:
			v = float64(x.Sub(onset)) / float64(ramp)
		}
		if !until.IsZero() && !x.Before(until) {
			if down <= 0 || x.Sub(until) >= down {
				return 0
			}
			v = min(v, 1-float64(x.Sub(until))/float64(down))
		}
		return v
	}
	first := max(int(onset.Sub(g.start)/time.Minute), 0)
	for m := first; m < g.minutes; m++ {
		t := g.start.Add(time.Duration(m) * time.Minute)
		if !until.IsZero() && t.After(until.Add(down)) {
			break
		}
		sum := 0.0
		for k := range steps {
			sum += at(t.Add(time.Duration(k*2+1) * time.Minute / (2 * steps)))
		}
		lvl[m] = sum / steps
	}
	return lvl
}

// planIncident dispatches to the family's plan.
func (g *generator) planIncident(r *rand.Rand) error {
	g.inc.causeSvc = -1
	g.inc.reservedFlag = map[int]string{}
	g.inc.reservedKey = map[int]string{}
	var err error
	switch g.opt.Family {
	case BadDeploy:
		err = g.planBadDeploy(r)
	case BadFlag:
		err = g.planBadFlag(r)
	case BadConfig:
		err = g.planBadConfig(r)
	case BadDeployDependency:
		err = g.planBadDeployDependency(r)
	case CanaryReleases:
		err = g.planCanaryReleases(r)
	case SlowRegression:
		err = g.planSlowRegression(r)
	case PartialRollout:
		err = g.planPartialRollout(r)
	case ExternalOutage:
		err = g.planExternalOutage(r)
	case TrafficSpike:
		err = g.planTrafficSpike(r)
	case Rollback:
		err = g.planRollback(r)
	case NoisyBackground:
		err = g.planNoisyBackground(r)
	case SparseData:
		err = g.planSparseData(r)
	case LateDetection:
		err = g.planLateDetection(r)
	case BadDeployLatency:
		err = g.planBadDeployLatency(r)
	default:
		err = fmt.Errorf("family %q has no plan", g.opt.Family)
	}
	if err != nil {
		return err
	}
	for _, s := range g.svcs {
		slices.SortFunc(s.sporadic, func(a, b sporadic) int { return a.at.Compare(b.at) })
	}
	return nil
}

// Bounds of the injected regression.
const (
	minIncidentRatio = 0.015 // error ratio of the cause at full effect
	maxIncidentRatio = 0.10
	maxCallerRatio   = 0.25 // when raised so that a caller's symptom shows
	minSymptomShare  = 0.15 // of a caller's requests that call the cause's service
	// incidentBudget bounds the expected failed requests the incident adds
	// over the whole data at TrafficScale 1, so that a day of data stays
	// within about 60k error events: a long incident at a busy service is
	// given a smaller error ratio, never one below its floor.
	incidentBudget = 22_000
)

// regression is a change that breaks its service: what the plan of a cause
// family hands to planRegression.
type regression struct {
	kind    event.ChangeKind
	attrs   map[string]string // preset attributes of the change
	partial bool              // a deploy to the service's canary shards only
	x       int               // the service changed
	symptom int               // the service asked about: x or a caller of x
	at      time.Time         // when the change happens

	lag, ramp  [2]time.Duration // onset after the change; time to full effect
	last       [2]time.Duration // how long the failures last; zero for to the end
	detect     [2]time.Duration // alert after the onset
	ratio      float64          // added error ratio at full effect; 0 for latency only
	floor      float64          // lowest ratio the volume budget may cut to
	latencyMul float64
	fp         *fingerprint // the error that rises; nil means a new regression error
	fpNew      bool         // fp, when set, is new
	pre        float64      // level of the failures before the onset, 0 for none
	// keepSymptom keeps asking the caller when the volume budget cuts the
	// ratio its symptom needs; otherwise the cause service is asked then.
	keepSymptom bool
}

// planRegression plans the incident of a regression: the cause, the onset
// and the alert, the failures and their spread to callers, and freezes
// other deploys of the service from an hour before to the end, so its
// release history stays "good version, then the bad one". Decoys are the
// family's to plant.
func (g *generator) planRegression(r *rand.Rand, rg regression) {
	in := &g.inc
	in.causeSvc, in.symptom = rg.x, rg.symptom
	xs := g.svcs[rg.x]
	in.onset = rg.at.Add(between(r, rg.lag[0], rg.lag[1]))
	in.ramp = between(r, rg.ramp[0], rg.ramp[1])
	in.detected = alertAt(in.onset.Add(between(r, rg.detect[0], rg.detect[1])))
	in.latencyMul = rg.latencyMul
	switch {
	case rg.fp != nil:
		in.fp, in.fpNew = *rg.fp, rg.fpNew
	case rg.ratio > 0:
		tmpl := pick(r, regressionErrors[xs.spec.lang])
		in.fp, in.fpNew = g.newFingerprint(r, xs, tmpl, tmpl.msg), true
	}
	if rg.last[1] > 0 {
		in.until = in.onset.Add(between(r, rg.last[0], rg.last[1]))
	}
	in.errLvl = g.profile(in.onset, in.ramp, in.until, 0)
	in.latLvl = in.errLvl
	if rg.pre > 0 {
		// The broken path already served some traffic: the same failures
		// at a lower level since the data starts.
		in.errLvl = slices.Clone(in.errLvl)
		for m := range int(in.onset.Sub(g.start) / time.Minute) {
			in.errLvl[m] = rg.pre
		}
	}

	// A caller asked about has no fallback for x: most failed calls fail
	// its requests.
	if rg.symptom != rg.x {
		if e := g.svcs[rg.symptom].edgeTo(rg.x); e != nil {
			e.prop = uniform(r, 0.6, 0.9)
		}
		g.computeBaselines()
	}
	xs.ownCoef = 1
	if rg.partial {
		xs.ownCoef = xs.canaryShare()
	}
	xs.ownMs = xs.p95 * (rg.latencyMul - 1)
	in.ratio = rg.ratio
	g.propagate()
	floor, want := rg.floor, 0.0
	ss := g.svcs[rg.symptom]
	if rg.symptom != rg.x && in.ratio > 0 {
		want = max(4*ss.baseRatio, 0.006)
		limit := maxCallerRatio - xs.baseRatio
		if rg.partial {
			limit = 0.5 // of the canary's requests
		}
		if got := ss.incidentCoef * in.ratio; got < want {
			in.ratio = min(want/ss.incidentCoef, limit)
			if rg.keepSymptom {
				floor = in.ratio // the budget must not hide it again
			}
		}
	}
	g.capVolume(floor)
	switch {
	case rg.symptom == rg.x:
	case in.ratio > 0 && !rg.keepSymptom && ss.incidentCoef*in.ratio < 0.8*want:
		in.symptom = rg.x // the caller would raise no alert
	case in.ratio == 0 && ss.incidentMs < 0.4*ss.p95:
		in.symptom = rg.x // a caller that hardly slows down raises no alert
	}
	in.multiplier = (xs.baseRatio + in.ratio*xs.ownCoef) / xs.baseRatio

	in.cause = &plannedChange{Change: event.Change{Time: rg.at, Kind: rg.kind, Attributes: rg.attrs}, svc: rg.x, role: roleCause, partial: rg.partial}
	in.changes = append(in.changes, in.cause)
	in.freeze = append(in.freeze, freeze{svc: rg.x, from: rg.at.Add(-time.Hour), to: g.end, deploysOnly: true})
	g.quiet(rg.x, rg.at.Add(-3*time.Hour))
}

// quiet drops the chronic bursts of s that end after from, so that the
// ground truth of "its error ratio rose" is the incident alone.
func (g *generator) quiet(s int, from time.Time) {
	var kept []blip
	for _, b := range g.svcs[s].blips {
		if b.end.Before(from) {
			kept = append(kept, b)
		}
	}
	g.svcs[s].blips = kept
}

// alertAt returns the start of the minute after t: alerts evaluate on
// whole minutes.
func alertAt(t time.Time) time.Time {
	return t.Truncate(time.Minute).Add(time.Minute)
}

// regressionRatio draws the added error ratio of a regression of x: 5 to
// 50 times its baseline, within the usual bounds.
func (g *generator) regressionRatio(r *rand.Rand, x int) float64 {
	xs := g.svcs[x]
	total := min(max(xs.baseRatio*logUniform(r, 5, 50), minIncidentRatio), maxIncidentRatio)
	return total - xs.baseRatio
}

// effectName names the strength of a regression for variants.
func effectName(multiplier float64) string {
	switch {
	case multiplier < 8:
		return "weak"
	case multiplier < 25:
		return "moderate"
	}
	return "strong"
}

// incidentTime returns a time during business hours (09:30 to 16:30 UTC) of
// the last day of data with at least before of data before it (and three
// hours in all) and after of data after it (and 75 minutes), so that the
// symptoms and what preceded them are in the data.
func (g *generator) incidentTime(r *rand.Rand, before, after time.Duration) (time.Time, error) {
	lo := max(g.minutes-24*60, 180, int(before/time.Minute))
	hi := g.minutes - max(75, int(after/time.Minute))
	if hi <= lo {
		return time.Time{}, fmt.Errorf("%d minutes of data are too few for an incident", g.minutes)
	}
	var business []int
	for m := lo; m < hi; m++ {
		t := g.start.Add(time.Duration(m) * time.Minute)
		if mod := t.Hour()*60 + t.Minute(); mod >= 9*60+30 && mod < 16*60+30 {
			business = append(business, m)
		}
	}
	m := lo + r.IntN(hi-lo)
	if len(business) > 0 {
		m = pick(r, business)
	}
	return g.start.Add(time.Duration(m)*time.Minute + between(r, 0, time.Minute)), nil
}

// propagate sets every service's share of the incident's error ratio and
// its added latency, from the sources (services with ownCoef or ownMs) up to
// their callers.
func (g *generator) propagate() {
	for _, i := range g.order {
		s := g.svcs[i]
		s.incidentCoef, s.depMs = s.ownCoef, 0
		for _, e := range s.deps {
			d := g.svcs[e.to]
			s.incidentCoef += e.share * e.prop * d.incidentCoef
			// A p95 moves once more than a few percent of requests slow.
			slow := e.share
			if d.split != nil && d.ownMs > 0 {
				slow *= d.canaryShare()
			}
			s.depMs += 0.8 * min(max((slow-0.03)/0.2, 0), 1) * d.incidentMs
		}
		s.incidentMs = s.ownMs + s.depMs
	}
}

// capVolume lowers the incident's error ratio, not below floor, so that the
// failures it adds over the data stay within incidentBudget.
func (g *generator) capVolume(floor float64) {
	in := &g.inc
	if in.ratio <= 0 || in.errLvl == nil {
		return
	}
	failed := 0.0
	for m := 0; m < g.minutes; m += 5 {
		if in.errLvl[m] == 0 {
			continue
		}
		t := g.start.Add(time.Duration(m) * time.Minute)
		for _, s := range g.svcs {
			failed += 5 * in.errLvl[m] * diurnal(t) * s.peak * s.dayFactor[m/(24*60)] * s.incidentCoef * in.ratio
		}
	}
	if budget := incidentBudget * g.opt.TrafficScale; failed > budget {
		in.ratio = max(in.ratio*budget/failed, min(floor, in.ratio))
	}
}

// askAbout returns x, or with probability callerChance a caller of x that
// sends it at least minShare of its requests, if there is one.
func (g *generator) askAbout(r *rand.Rand, x int, callerChance, minShare float64) int {
	if r.Float64() >= callerChance {
		return x
	}
	var callers []int
	for _, c := range g.svcs[x].callers {
		if e := g.svcs[c].edgeTo(x); e != nil && e.share >= minShare {
			callers = append(callers, c)
		}
	}
	if len(callers) == 0 {
		return x
	}
	return pick(r, callers)
}

// pickByTraffic returns a service of the given traffic tier, 0 the busiest
// third, 1 the middle, 2 the quietest, and the tier's name.
func (g *generator) pickByTraffic(r *rand.Rand, tier int) (int, string) {
	idx := make([]int, len(g.svcs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return -cmp.Compare(g.svcs[a].peak, g.svcs[b].peak) })
	n := len(idx)
	lo, hi := tier*n/3, (tier+1)*n/3
	if hi <= lo {
		hi = lo + 1
	}
	return idx[lo+r.IntN(hi-lo)], []string{"high", "mid", "low"}[tier]
}

// Chances of the decoy patterns.
const (
	// closeDecoyChance is the chance of an innocent change in the asked
	// service's dependency scope after the cause and before the alert, which
	// makes "the most recent change" wrong.
	closeDecoyChance = 0.6
	// afterOnsetChance is the share of those after the onset.
	afterOnsetChance = 0.35
)

// plantDecoys adds innocent changes near a regression so that it is not
// trivial: with probability closeChance one in the asked service's
// dependency scope between the cause and the alert; a deploy of a neighbour
// shortly before the cause; a flag flip or config edit of the asked service
// in the two hours before; and a deploy of the asked service when it is not
// the cause, or sometimes of another service. It returns the name of the
// close decoy's pattern for the variant.
func (g *generator) plantDecoys(r *rand.Rand, closeChance float64) string {
	in := &g.inc
	at := in.cause.Time
	x, s := in.causeSvc, in.symptom
	pattern := g.closeDecoy(r, closeChance)

	var near []int
	for _, e := range g.svcs[s].deps {
		if e.to != x {
			near = append(near, e.to)
		}
	}
	for _, c := range g.svcs[s].callers {
		if c != x {
			near = append(near, c)
		}
	}
	if len(near) == 0 {
		for i := range g.svcs {
			if i != x && i != s {
				near = append(near, i)
			}
		}
	}
	n1 := pick(r, near)
	g.addDecoy(n1, event.ChangeDeploy, at.Add(-between(r, 3*time.Minute, 40*time.Minute)))

	kind := event.ChangeFlag
	if r.Float64() < 0.35 {
		kind = event.ChangeConfig
	}
	g.addDecoy(s, kind, in.onset.Add(-between(r, 15*time.Minute, 110*time.Minute)))

	switch {
	case s != x:
		g.addDecoy(s, event.ChangeDeploy, in.onset.Add(-between(r, 20*time.Minute, 100*time.Minute)))
	case r.Float64() < 0.5:
		var others []int
		for i := range g.svcs {
			if i != x && i != n1 {
				others = append(others, i)
			}
		}
		g.addDecoy(pick(r, others), event.ChangeDeploy, in.onset.Add(-between(r, 5*time.Minute, 100*time.Minute)))
	}
	return pattern
}

// closeDecoy plants, with probability chance, an innocent change in the
// asked service's dependency scope after the cause and before the alert,
// which makes "the most recent change" wrong, and names the pattern.
func (g *generator) closeDecoy(r *rand.Rand, chance float64) string {
	in := &g.inc
	at := in.cause.Time
	if r.Float64() >= chance {
		return "none close"
	}
	var t time.Time
	pattern := "in scope after onset"
	if gap := in.onset.Sub(at); gap >= 20*time.Second && r.Float64() >= afterOnsetChance {
		t = at.Add(time.Duration(uniform(r, 0.15, 0.85) * float64(gap)))
		pattern = "in scope before onset"
	} else {
		t = in.onset.Add(time.Duration(uniform(r, 0.05, 0.95) * float64(in.detected.Sub(in.onset))))
	}
	svc := pick(r, g.scope(in.symptom))
	kind := event.ChangeDeploy
	if svc == in.causeSvc || g.svcs[svc].split != nil {
		kind = pick(r, []event.ChangeKind{event.ChangeFlag, event.ChangeConfig})
	}
	g.addDecoy(svc, kind, t)
	return pattern
}

// addDecoy plants an innocent change and, for a deploy, clears that
// service's background deploys around it so its version history stays simple.
func (g *generator) addDecoy(svc int, kind event.ChangeKind, t time.Time) *plannedChange {
	in := &g.inc
	c := &plannedChange{Change: event.Change{Time: t, Kind: kind}, svc: svc, role: roleDecoy}
	in.changes = append(in.changes, c)
	if kind == event.ChangeDeploy {
		in.freeze = append(in.freeze, freeze{svc: svc, from: t.Add(-90 * time.Minute), to: t.Add(90 * time.Minute), deploysOnly: true})
	}
	return c
}

// describe says in one line what happened.
func (g *generator) describe() string {
	in := &g.inc
	s := g.svcs[in.symptom]
	ask := fmt.Sprintf("; the alert on %s fires at %s", s.name, in.detected.Format("15:04Z"))
	switch g.opt.Family {
	case ExternalOutage:
		var callers []string
		for _, sv := range g.svcs {
			for _, x := range sv.exts {
				if x.failing != nil {
					callers = append(callers, sv.name)
				}
			}
		}
		return fmt.Sprintf("%s: third party %s fails from %s (%s); its callers %s fail with it; no change is the cause%s",
			g.opt.Family, in.external, in.onset.Format("2006-01-02 15:04:05Z"), in.variant, strings.Join(callers, ", "), ask)
	case TrafficSpike:
		return fmt.Sprintf("%s: %s from %s; error counts rise with traffic, the error ratio hardly moves; no change is the cause%s",
			g.opt.Family, in.variant, in.onset.Format("2006-01-02 15:04:05Z"), ask)
	}
	if in.cause == nil {
		return fmt.Sprintf("%s: no causal change; symptoms on %s from %s", g.opt.Family, s.name, in.onset.Format(time.RFC3339))
	}
	x, c := g.svcs[in.causeSvc], in.cause
	what := fmt.Sprintf("deploy %s of %s", c.Version, x.name)
	switch {
	case c.Kind == event.ChangeFlag || c.Kind == event.ChangeConfig:
		what = fmt.Sprintf("%s %q", c.Kind, c.Title)
	case c.partial && c.Attributes["region"] != "":
		what = fmt.Sprintf("deploy %s of %s to %s only", c.Version, x.name, c.Attributes["region"])
	case c.partial:
		what = fmt.Sprintf("canary deploy %s of %s (%s%% of instances)", c.Version, x.name, c.Attributes["canary_percent"])
	}
	var effect string
	switch {
	case g.opt.Family == SlowRegression:
		effect = fmt.Sprintf("p95 creeps up as memory climbs (up to %.1fx), replicas OOM-killed from %s (%d kills) with %s %q",
			in.latencyMul, in.kills[0].at.Format("15:04:05Z"), len(in.kills), in.fp.tmpl.typ, in.fp.msg)
	case in.silent:
		effect = fmt.Sprintf("its canary instances fail %.0f%% of requests and are %.1fx slower, seen only in per-instance metrics: no error event, no log",
			100*in.ratio, in.latencyMul)
	case in.ratio == 0:
		effect = fmt.Sprintf("its p95 rises %.1fx, with no new error", in.latencyMul)
	case in.fpNew:
		effect = fmt.Sprintf("its errors rise %.0fx with new %s: %q", in.multiplier, in.fp.tmpl.typ, strings.ReplaceAll(in.fp.msg, "%d", "N"))
	default:
		effect = fmt.Sprintf("its errors rise %.0fx as existing %s %q surges", in.multiplier, in.fp.tmpl.typ, strings.ReplaceAll(in.fp.msg, "%d", "N"))
	}
	d := fmt.Sprintf("%s: %s (%s) at %s; from %s %s", g.opt.Family, what, c.ID, c.Time.Format("2006-01-02 15:04:05Z"), in.onset.Format("15:04:05Z"), effect)
	for _, m := range in.changes {
		if m.role == roleMitigation {
			d += fmt.Sprintf("; rollback %s at %s ends it", m.ID, m.Time.Format("15:04:05Z"))
		}
	}
	if s != x {
		d += fmt.Sprintf("; its caller %s fails with it", s.name)
	}
	return d + ask
}

// trafficAt is the expected requests per minute of s at t, without noise.
func (g *generator) trafficAt(s *service, t time.Time) float64 {
	d := min(max(int(t.Sub(g.start)/(24*time.Hour)), 0), len(s.dayFactor)-1)
	return s.peak * diurnal(t) * s.dayFactor[d]
}
