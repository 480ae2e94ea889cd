package scenario

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// incident is what a family injects into the shared background: the causal
// change, where and when symptoms show and how strong they are, and the
// innocent decoy changes planted near it.
type incident struct {
	cause    *plannedChange // nil when the family has no causal change
	causeSvc int            // service whose behaviour changes
	symptom  int            // service the on-call engineer asks about

	onset      time.Time     // first failing request
	ramp       time.Duration // time from onset to full effect, as pods roll
	until      time.Time     // symptoms stop here; zero means the end of data
	ratio      float64       // added error ratio of causeSvc at full effect
	multiplier float64       // causeSvc's error ratio at full effect over its baseline
	latencyMul float64       // causeSvc's p95 at full effect over its baseline
	fp         fingerprint   // the new error of causeSvc
	detected   time.Time

	changes []*plannedChange // cause and decoys, merged into the schedule
	freeze  []freeze         // background changes to drop around them
}

// freeze drops background changes of one service in [from, to); deploysOnly
// limits it to deploys and rollbacks.
type freeze struct {
	svc         int
	from, to    time.Time
	deploysOnly bool
}

// level is the incident's average effect, 0 to 1, over the minute starting
// at t.
func (in *incident) level(t time.Time) float64 {
	if in.cause == nil || t.Add(time.Minute).Before(in.onset) {
		return 0
	}
	const steps = 6
	sum := 0.0
	for k := range steps {
		x := t.Add(time.Duration(k*2+1) * time.Minute / (2 * steps))
		switch {
		case x.Before(in.onset), !in.until.IsZero() && !x.Before(in.until):
		case x.Sub(in.onset) >= in.ramp:
			sum++
		default:
			sum += float64(x.Sub(in.onset)) / float64(in.ramp)
		}
	}
	return sum / steps
}

// planIncident dispatches to the family's plan.
func (g *generator) planIncident(r *rand.Rand) error {
	switch g.opt.Family {
	case BadDeploy:
		x := r.IntN(len(g.svcs))
		return g.planBadDeploy(r, x, x)
	case BadDeployDependency:
		// The caller asked about must send a good part of its requests to
		// the bad service, or its alert would not fire.
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
		return g.planBadDeploy(r, p.x, p.caller)
	}
	return fmt.Errorf("family %q has no plan", g.opt.Family)
}

// Bounds of the injected regression.
const (
	minIncidentRatio = 0.015 // error ratio of the cause at full effect
	maxIncidentRatio = 0.10
	maxCallerRatio   = 0.25 // when raised so that a caller's symptom shows
	minSymptomShare  = 0.15 // of a caller's requests that call the cause's service
)

// planBadDeploy injects a deploy of service x that fails a share of its
// requests with a new error from 1 to 5 minutes later; the failures surface
// in x's callers. The engineer asks about symptom, x or a caller of x.
func (g *generator) planBadDeploy(r *rand.Rand, x, symptom int) error {
	in := &g.inc
	in.causeSvc, in.symptom = x, symptom
	xs := g.svcs[x]

	at, err := g.incidentTime(r)
	if err != nil {
		return err
	}
	in.onset = at.Add(between(r, time.Minute, 5*time.Minute))
	in.ramp = between(r, time.Minute, 3*time.Minute)
	in.detected = in.onset.Add(between(r, 3*time.Minute, 8*time.Minute)).Truncate(time.Minute).Add(time.Minute)
	in.latencyMul = uniform(r, 1.4, 3)
	tmpl := pick(r, regressionErrors[xs.spec.lang])
	in.fp = g.newFingerprint(r, xs, tmpl, tmpl.msg)

	// A caller asked about has no fallback for x: most failed calls fail
	// its requests.
	if symptom != x {
		for _, e := range g.svcs[symptom].deps {
			if e.to == x {
				e.prop = uniform(r, 0.6, 0.9)
			}
		}
		g.computeBaselines()
	}
	total := min(max(xs.baseRatio*logUniform(r, 5, 50), minIncidentRatio), maxIncidentRatio)
	in.ratio = total - xs.baseRatio
	g.propagate(x)
	if symptom != x {
		ss := g.svcs[symptom]
		want := max(4*ss.baseRatio, 0.006)
		if got := ss.incidentCoef * in.ratio; got < want {
			in.ratio = min(want/ss.incidentCoef, maxCallerRatio-xs.baseRatio)
		}
	}
	in.multiplier = (xs.baseRatio + in.ratio) / xs.baseRatio

	in.cause = &plannedChange{Change: event.Change{Time: at, Kind: event.ChangeDeploy}, svc: x, role: roleCause}
	in.changes = append(in.changes, in.cause)
	// No other deploy of x near or after the cause: its release history
	// stays "good version, then the bad one until the end".
	in.freeze = append(in.freeze, freeze{svc: x, from: at.Add(-time.Hour), to: g.end, deploysOnly: true})
	g.plantDecoys(r, at)

	// The cause's own chronic noise stays quiet near the incident, so the
	// ground truth of "its error ratio rose" is the regression alone.
	var kept []blip
	for _, b := range xs.blips {
		if b.end.Before(at.Add(-3 * time.Hour)) {
			kept = append(kept, b)
		}
	}
	xs.blips = kept
	return nil
}

// incidentTime returns a time during business hours (09:30 to 16:30 UTC) of
// the last day of data, at least three hours after the start and 75 minutes
// before the end so that the symptoms and what preceded them are in the data.
func (g *generator) incidentTime(r *rand.Rand) (time.Time, error) {
	lo, hi := max(g.minutes-24*60, 180), g.minutes-75
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

// propagate sets every service's share of x's incident error ratio and its
// added latency, following calls from x up to its callers.
func (g *generator) propagate(x int) {
	xs := g.svcs[x]
	for _, i := range g.order {
		s := g.svcs[i]
		s.incidentCoef, s.incidentMs = 0, 0
		if i == x {
			s.incidentCoef, s.incidentMs = 1, xs.p95*(g.inc.latencyMul-1)
			continue
		}
		for _, e := range s.deps {
			d := g.svcs[e.to]
			s.incidentCoef += e.share * e.prop * d.incidentCoef
			// A p95 moves once more than a few percent of requests slow.
			s.incidentMs += 0.8 * min(max((e.share-0.03)/0.2, 0), 1) * d.incidentMs
		}
	}
}

// plantDecoys adds innocent changes near the incident so that it is not
// trivial: a deploy of a neighbour of the symptomatic service, often between
// the cause and the onset (so "the most recent change" is wrong); a flag flip
// or config edit of the symptomatic service in the two hours before; and a
// deploy of the symptomatic service itself when it is not the cause, or
// sometimes of another service.
func (g *generator) plantDecoys(r *rand.Rand, at time.Time) {
	in := &g.inc
	x, s := in.causeSvc, in.symptom
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
	t1 := at.Add(-between(r, 3*time.Minute, 40*time.Minute))
	if r.Float64() < 0.6 {
		t1 = at.Add(time.Duration(uniform(r, 0.25, 0.75) * float64(in.onset.Sub(at))))
	}
	g.addDecoy(n1, event.ChangeDeploy, t1)

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
}

// addDecoy plants an innocent change and, for a deploy, clears that
// service's background deploys around it so its version history stays simple.
func (g *generator) addDecoy(svc int, kind event.ChangeKind, t time.Time) {
	in := &g.inc
	in.changes = append(in.changes, &plannedChange{Change: event.Change{Time: t, Kind: kind}, svc: svc, role: roleDecoy})
	if kind == event.ChangeDeploy {
		in.freeze = append(in.freeze, freeze{svc: svc, from: t.Add(-90 * time.Minute), to: t.Add(90 * time.Minute), deploysOnly: true})
	}
}

// describe says in one line what happened.
func (g *generator) describe() string {
	in := &g.inc
	if in.cause == nil {
		return fmt.Sprintf("%s: no causal change; symptoms on %s from %s", g.opt.Family, g.svcs[in.symptom].name, in.onset.Format(time.RFC3339))
	}
	x, s := g.svcs[in.causeSvc], g.svcs[in.symptom]
	d := fmt.Sprintf("%s: deploy %s of %s (%s) at %s; from %s its errors rise %.0fx with new %s: %q",
		g.opt.Family, in.cause.Version, x.name, in.cause.ID, in.cause.Time.Format("2006-01-02 15:04:05Z"),
		in.onset.Format("15:04:05Z"), in.multiplier, in.fp.tmpl.typ, strings.ReplaceAll(in.fp.msg, "%d", "N"))
	if s != x {
		d += fmt.Sprintf("; its caller %s fails with it", s.name)
	}
	return d + fmt.Sprintf("; the alert on %s fires at %s", s.name, in.detected.Format("15:04Z"))
}
