package correlate

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// candidate computes one change's features and evidence and scores it.
// Every feature is normalised to about [0, 1]; the model weighs them. The
// baseline (the foundation's first score) uses only proximity and the
// error-rate shift.
func (e *Engine) candidate(ctx context.Context, w *window, onset time.Time, c event.Change, fps []store.Fingerprint) Candidate {
	cand := Candidate{Change: c, Features: map[string]float64{}}
	f := cand.Features
	add := func(kind, summary string, values map[string]float64) {
		cand.Evidence = append(cand.Evidence, Evidence{Kind: kind, Summary: summary, Values: values})
	}

	// Time: nothing after the onset can be its cause. A detected onset is
	// the start of the minute in which the rate rose, so a change within
	// that minute may still have caused it. Without an onset, proximity is
	// measured to 5 minutes before the question, the usual delay between
	// symptoms and the alert that prompts it, and nothing is ruled out.
	lead := onset.Sub(c.Time)
	if w.onsetDetected && lead < 0 && lead > -time.Minute {
		lead = 0
	}
	switch {
	case w.onsetNone:
		// lead stays positive (before the question) for the rest.
		near := onset.Add(-5 * time.Minute).Sub(c.Time)
		if near >= 0 {
			f["time"] = math.Exp(-float64(near) / float64(e.opt.TimeDecay))
			f["time_fast"] = math.Exp(-float64(near) / float64(5*time.Minute))
			f["time_slow"] = math.Exp(-float64(near) / float64(6*time.Hour))
		}
		add("time", fmt.Sprintf("%s %s before the question; no symptom onset found to compare with", c.Kind, humanDuration(lead)), map[string]float64{"minutes_before_question": lead.Minutes()})
	case lead < 0:
		f["after_onset"] = 1
		add("time", fmt.Sprintf("%s %s after symptom onset: cannot have caused it", c.Kind, humanDuration(-lead)), map[string]float64{"minutes_before_onset": lead.Minutes()})
	default:
		f["time"] = math.Exp(-float64(lead) / float64(e.opt.TimeDecay))
		f["time_fast"] = math.Exp(-float64(lead) / float64(5*time.Minute))
		f["time_slow"] = math.Exp(-float64(lead) / float64(6*time.Hour))
		add("time", fmt.Sprintf("%s %s before symptom onset", c.Kind, humanDuration(lead)), map[string]float64{"minutes_before_onset": lead.Minutes()})
	}

	// Topology: the asked service itself, or how far down its dependencies.
	d, ok := w.depth[c.Service]
	if !ok {
		d = 3
	}
	f["topology"] = 1 / float64(1+d)
	if c.Service != w.q.Service {
		add("topology", fmt.Sprintf("%s is a dependency of %s (%d hop%s)", c.Service, w.q.Service, d, plural(d)), nil)
	}
	f["kind_"+string(c.Kind)] = 1

	// Error rate of the changed service right after the change.
	s := w.series[c.Service]
	afterEnd := e.afterEnd(w, c)
	if s != nil {
		before := s.rate(c.Time.Add(-e.opt.BeforeWindow), c.Time)
		after := s.rate(c.Time, afterEnd)
		if after.exposure > 0 && before.exposure > 0 {
			z := poissonZ(after.errors, before.perUnit()*after.exposure)
			ratio := (after.perUnit() + 1e-9) / (before.perUnit() + 1e-9)
			if z >= 3 && ratio > 1 {
				f["error_shift"] = math.Min(1, math.Log10(ratio)/math.Log10(20))
			}
			add("error_rate", fmt.Sprintf("%s %s → %s within %s after the %s (%s, z=%.1f)", s.rateName(), s.formatRate(before.perUnit()),
				s.formatRate(after.perUnit()), humanDuration(afterEnd.Sub(c.Time)), c.Kind, ratioText(ratio), z),
				map[string]float64{"before": before.perUnit(), "after": after.perUnit(), "ratio": ratio, "z": z})
		}
		// Symptoms already there before the change speak against it.
		early := s.rate(c.Time.Add(-150*time.Minute), c.Time.Add(-30*time.Minute))
		late := s.rate(c.Time.Add(-30*time.Minute), c.Time)
		if early.exposure > 0 && late.exposure > 0 {
			z := poissonZ(late.errors, early.perUnit()*late.exposure)
			if z >= 4 && late.perUnit() > 2*early.perUnit() {
				f["pre_existing"] = 1
				add("pre_existing", fmt.Sprintf("%s of %s was already rising before the %s (%s → %s)", s.rateName(), c.Service, c.Kind,
					s.formatRate(early.perUnit()), s.formatRate(late.perUnit())), map[string]float64{"z": z})
			}
		}
		if s.requests != nil {
			rb := s.rate(c.Time.Add(-e.opt.BeforeWindow), c.Time)
			ra := s.rate(c.Time, afterEnd)
			mb, ma := rb.exposure/math.Max(1, minutes(c.Time.Add(-e.opt.BeforeWindow), c.Time)), ra.exposure/math.Max(1, minutes(c.Time, afterEnd))
			if mb > 0 && ma/mb > 1.5 {
				f["traffic_shift"] = math.Min(1, math.Log2(ma/mb)/3)
				add("traffic", fmt.Sprintf("traffic of %s rose %.1f× after the %s: more load, not necessarily a defect", c.Service, ma/mb, c.Kind), map[string]float64{"ratio": ma / mb})
			}
		}
	}

	// New error fingerprints first seen after this change (and before the
	// next change of the service), especially in the change's new release.
	var newCount uint64
	for i, fp := range fps {
		newCount += fp.Count
		// A new error right after the change is its doing more surely than
		// one that first shows half an hour later, when anything could
		// have happened, but any error of a release carries its version.
		soon := math.Exp(-float64(fp.FirstSeen.Sub(c.Time)) / float64(10*time.Minute))
		f["new_error_soon"] = math.Max(f["new_error_soon"], soon)
		rel := ""
		if fp.Release != "" && fp.Release == c.Version {
			rel = ", in the new release " + fp.Release
			f["new_error_release"] = 1
			f["new_error_release_soon"] = math.Max(f["new_error_release_soon"], soon)
		}
		if i < 3 {
			add("new_error", fmt.Sprintf("new error %s: %q first seen %s after the %s (%d events%s)", fp.Type, truncate(fp.Message, 80),
				humanDuration(fp.FirstSeen.Sub(c.Time)), c.Kind, fp.Count, rel), map[string]float64{"count": float64(fp.Count)})
		} else if i == 3 {
			add("new_error", fmt.Sprintf("and %d more new error fingerprints", len(fps)-3), nil)
		}
	}
	if newCount > 0 {
		f["new_error"] = math.Min(1, math.Log10(1+float64(newCount))/2)
		if shared := sharedNewErrors(w, c, fps); len(shared) > 0 {
			f["new_error_shared"] = math.Min(1, float64(len(shared))/2)
			add("new_error_shared", fmt.Sprintf("the same new error appeared at the same time in %s, which %s cannot reach: a common cause, not this %s",
				strings.Join(shared, ", "), c.Service, c.Kind), map[string]float64{"services": float64(len(shared))})
		}
	}

	if e.opt.Baseline {
		if lead < 0 {
			f["error_shift"] = 0
		}
		cand.Score = round3(0.4*f["time"] + 0.6*f["error_shift"])
		return cand
	}

	if w.onsetNone {
		// Without an onset, "before the onset" means before the question:
		// proximity says little.
		f["no_onset"] = 1
	}
	e.ownShiftFeatures(w, c, &cand)
	e.externalFeatures(w, c, onset, &cand)
	e.flagFeatures(ctx, c, afterEnd, &cand)
	e.latencyFeatures(w, c, afterEnd, &cand)
	e.canaryFeatures(w, c, &cand)
	e.rollbackFeatures(w, c, &cand)
	e.elsewhereFeatures(w, c, onset, &cand)
	e.logFeatures(w, c, afterEnd, &cand)

	interactions(f)
	cand.Score = round3(e.model.Probability(f))
	if lead < 0 && c.Kind != event.ChangeRollback {
		cand.Score = round3(math.Min(cand.Score, 0.01))
	}
	return cand
}

// afterEnd is the end of the window right after c that its effects are
// measured in: AfterWindow, cut at the end of the question's window.
func (e *Engine) afterEnd(w *window, c event.Change) time.Time {
	return minTime(c.Time.Add(e.opt.AfterWindow), w.to)
}

func minutes(from, to time.Time) float64 { return to.Sub(from).Minutes() }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// latencyFeatures: the changed service's p95 right after the change against
// before, and the slow climb of latency or saturation gauges since the
// change (leaks show hours later).
func (e *Engine) latencyFeatures(w *window, c event.Change, afterEnd time.Time, cand *Candidate) {
	f := cand.Features
	if lat := w.latency(c.Service); lat != nil {
		b, nb := w.meanRange(lat, c.Time.Add(-e.opt.BeforeWindow), c.Time)
		a, na := w.meanRange(lat, c.Time, afterEnd)
		if nb >= 5 && na >= 3 && b > 0 {
			if r := a / b; r > 1.3 {
				f["latency_shift"] = math.Min(1, math.Log2(r)/2)
				cand.Evidence = append(cand.Evidence, Evidence{Kind: "latency", Summary: fmt.Sprintf("p95 latency %.0f ms → %.0f ms within %s after the %s (%.1f×)",
					b, a, humanDuration(afterEnd.Sub(c.Time)), c.Kind, r), Values: map[string]float64{"before": b, "after": a, "ratio": r}})
			}
			// Drift: the last 30 minutes of the window against before.
			late, nl := w.meanRange(lat, w.to.Add(-30*time.Minute), w.to)
			if nl >= 5 && late/b > 1.5 && w.to.Sub(c.Time) > time.Hour {
				f["latency_drift"] = math.Min(1, math.Log2(late/b)/2)
				cand.Evidence = append(cand.Evidence, Evidence{Kind: "latency", Summary: fmt.Sprintf("p95 latency has climbed %.0f ms → %.0f ms in the %s since the %s",
					b, late, humanDuration(w.to.Sub(c.Time)), c.Kind), Values: map[string]float64{"before": b, "now": late}})
			}
		}
	}
	for _, name := range saturationMetrics {
		v := w.gauge(c.Service, name)
		if v == nil {
			continue
		}
		older, n0 := w.meanRange(v, c.Time.Add(-90*time.Minute), c.Time.Add(-30*time.Minute))
		before, n1 := w.meanRange(v, c.Time.Add(-30*time.Minute), c.Time)
		late, n2 := w.meanRange(v, w.to.Add(-30*time.Minute), w.to)
		if n0 < 5 || n1 < 5 || n2 < 5 || before <= 0 {
			continue
		}
		flatBefore := math.Abs(before/older-1) < 0.1
		if rise := late/before - 1; flatBefore && rise > 0.2 {
			f["saturation_trend"] = math.Max(f["saturation_trend"], math.Min(1, rise))
			cand.Evidence = append(cand.Evidence, Evidence{Kind: "saturation", Summary: fmt.Sprintf("%s flat before the %s, up %.0f%% since", name, c.Kind, 100*rise),
				Values: map[string]float64{"before": before, "now": late}})
		}
	}
}

// canaryFeatures compares the changed service's series of the new version
// (a "version" label equal to it, or instance names containing it) with its
// other series over the same minutes: the comparison that separates one
// bad release from good ones rolled out at the same time.
func (e *Engine) canaryFeatures(w *window, c event.Change, cand *Candidate) {
	region := c.Attributes["region"]
	if c.Version == "" && region == "" {
		return
	}
	byName := w.metrics[c.Service]
	reqs, errs := byName[e.opt.RequestsMetric], byName[metricErrors]
	if len(reqs) == 0 {
		return
	}
	// A series is "new" when it runs the change's version, or lives in the
	// region a partial rollout went to.
	isNew := func(key string) bool {
		if region != "" && key == "region="+region {
			return true
		}
		return c.Version != "" && key != "" && (key == c.Version || strings.Contains(key, c.Version))
	}
	var newKeys, oldKeys int
	for k := range reqs {
		switch {
		case isNew(k):
			newKeys++
		case k != "":
			oldKeys++
		}
	}
	if newKeys == 0 || oldKeys == 0 {
		return
	}
	from, to := w.idx(c.Time), w.idx(w.to)
	var ne, nr, oe, or float64
	for k, r := range reqs {
		er := errs[k]
		for i := from; i < to; i++ {
			// Only minutes where both versions served compare like with like.
			if math.IsNaN(r.sum[i]) {
				continue
			}
			x := 0.0
			if er != nil && !math.IsNaN(er.sum[i]) {
				x = er.sum[i]
			}
			if isNew(k) {
				nr += r.sum[i]
				ne += x
			} else if k != "" {
				or += r.sum[i]
				oe += x
			}
		}
	}
	f := cand.Features
	f["canary_data"] = 1
	if nr < 20 || or < 20 {
		return
	}
	pn, po := ne/nr, oe/or
	p := (ne + oe) / (nr + or)
	z := 0.0
	if p > 0 && p < 1 {
		z = (pn - po) / math.Sqrt(p*(1-p)*(1/nr+1/or))
	}
	ratio := (pn + 1e-6) / (po + 1e-6)
	var latRatio float64
	if lat := byName[metricLatency]; len(lat) > 0 {
		var ln, lo float64
		var cn, co int
		for k, s := range lat {
			for i := from; i < to; i++ {
				if math.IsNaN(s.avg[i]) {
					continue
				}
				if isNew(k) {
					ln += s.avg[i]
					cn++
				} else if k != "" {
					lo += s.avg[i]
					co++
				}
			}
		}
		if cn >= 3 && co >= 3 && lo > 0 {
			latRatio = (ln / float64(cn)) / (lo / float64(co))
		}
	}
	score := 0.0
	if z >= 3 && ratio > 1.5 {
		score = math.Min(1, math.Log10(ratio)/math.Log10(10))
	}
	if latRatio > 1.3 {
		score = math.Max(score, math.Min(1, math.Log2(latRatio)))
	}
	if score > 0 {
		f["canary_bad"] = score
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "canary", Summary: fmt.Sprintf("%s instances of %s fail %.2f%% of requests against %.2f%% on the others over the same minutes (z=%.1f)%s",
			rolloutName(c), c.Service, 100*pn, 100*po, z, latText(latRatio)), Values: map[string]float64{"new": pn, "old": po, "z": z, "latency_ratio": latRatio}})
	} else {
		f["canary_clean"] = 1
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "canary", Summary: fmt.Sprintf("%s instances of %s behave like the others (%.2f%% vs %.2f%% failing)",
			rolloutName(c), c.Service, 100*pn, 100*po), Values: map[string]float64{"new": pn, "old": po, "z": z}})
	}
}

func rolloutName(c event.Change) string {
	if r := c.Attributes["region"]; r != "" && c.Version == "" {
		return r
	}
	return c.Version
}

func latText(r float64) string {
	if r > 1.3 {
		return fmt.Sprintf(", p95 latency %.1f× theirs", r)
	}
	return ""
}

// rollbackFeatures: a later rollback that undid this change and after
// which the errors of its service fell back is strong evidence for it; a
// rollback itself is rarely a cause.
func (e *Engine) rollbackFeatures(w *window, c event.Change, cand *Candidate) {
	s := w.series[c.Service]
	for _, r := range w.changes {
		if r.Kind != event.ChangeRollback || r.Service != c.Service || !r.Time.After(c.Time) || c.Kind == event.ChangeRollback {
			continue
		}
		undid := (c.Version != "" && r.PreviousVersion == c.Version) || (c.PreviousVersion != "" && r.Version == c.PreviousVersion)
		if !undid {
			continue
		}
		cand.Features["rolled_back"] = 0.5
		summary := fmt.Sprintf("rolled back %s later (%s)", humanDuration(r.Time.Sub(c.Time)), describe(r))
		if s != nil {
			during := s.rate(c.Time, r.Time)
			after := s.rate(r.Time.Add(2*time.Minute), w.to)
			before := s.rate(c.Time.Add(-e.opt.BeforeWindow), c.Time)
			if during.exposure > 0 && after.exposure > 0 && during.perUnit() > 2*before.perUnit() && after.perUnit() < 0.5*during.perUnit() {
				cand.Features["rolled_back"] = 1
				summary += fmt.Sprintf(", and %s fell %s → %s after it", s.rateName(), s.formatRate(during.perUnit()), s.formatRate(after.perUnit()))
			}
		}
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "rollback", Summary: summary})
	}
}

// elsewhereFeatures: error surges at the onset in services the change
// cannot reach (services that do not depend on its service) point to a
// common cause outside our changes, such as a third-party outage.
func (e *Engine) elsewhereFeatures(w *window, c event.Change, onset time.Time, cand *Candidate) {
	if w.all == nil || onset.Equal(w.to) {
		return
	}
	reach := dependents(w.topo, c.Service)
	var hit []string
	outside := 0
	for svc, s := range w.all {
		if reach[svc] {
			continue
		}
		outside++
		before := s.rate(onset.Add(-time.Hour), onset.Add(-2*time.Minute))
		after := s.rate(onset.Add(-2*time.Minute), minTime(onset.Add(20*time.Minute), w.to))
		if after.exposure == 0 || before.exposure == 0 {
			continue
		}
		if z := poissonZ(after.errors, before.perUnit()*after.exposure); z >= 4 && after.perUnit() > 3*before.perUnit() && after.errors >= 10 {
			hit = append(hit, svc)
		}
	}
	if len(hit) > 0 {
		sort.Strings(hit)
		cand.Features["elsewhere"] = math.Min(1, float64(len(hit))/2)
		cand.Features["elsewhere_share"] = float64(len(hit)) / float64(outside)
		// A shift of the change's own service that coincides with surges
		// it cannot have caused is probably the same outside cause.
		cand.Features["shift_shared"] = cand.Features["elsewhere"] * math.Max(cand.Features["error_shift"], cand.Features["owns_error_shift"])
		if len(hit) > 4 {
			hit = append(hit[:4], "…")
		}
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "elsewhere", Summary: fmt.Sprintf("errors surged at the same time in %s, which %s cannot reach", strings.Join(hit, ", "), c.Service),
			Values: map[string]float64{"services": float64(len(hit))}})
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// logFeatures compares the changed service's warning-and-worse log lines
// in the hour before the change and in the minutes after it, mined into
// templates (Drain, see loadLogs), and reports templates that are new or
// significantly more frequent after it: a new failure mode of the changed
// code. Without lines in either window there is nothing to compare.
func (e *Engine) logFeatures(w *window, c event.Change, afterEnd time.Time, cand *Candidate) {
	if cand.Features["after_onset"] == 1 || !afterEnd.After(c.Time) {
		return
	}
	sl := w.logs[c.Service]
	if sl == nil {
		return
	}
	if sl.err != nil {
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "logs", Summary: "log patterns unavailable: " + sl.err.Error()})
		return
	}
	before, after := logWindows(c, afterEnd)
	shifts := sl.timeline.Diff(before, after, 5)
	n := 0
	for _, sh := range shifts {
		if !sh.New && sh.Z < 4 {
			continue
		}
		n++
		if n <= 2 {
			what := "new log pattern"
			if !sh.New {
				what = fmt.Sprintf("log pattern %.0f× more frequent", sh.AfterRate/math.Max(sh.BeforeRate, 1e-9))
			}
			cand.Evidence = append(cand.Evidence, Evidence{Kind: "logs", Summary: fmt.Sprintf("%s after the %s: %q (%d lines after, %d before)",
				what, c.Kind, truncate(sh.Example, 100), sh.After, sh.Before), Values: map[string]float64{"after": float64(sh.After), "before": float64(sh.Before), "z": sh.Z}})
		}
	}
	if n > 0 {
		cand.Features["log_pattern"] = math.Min(1, float64(n)/2)
	}
}

// ownShiftFeatures: when the changed service's own error rate, latency or
// saturation began to shift, and this change is the last change of that
// service before the shift, the shift is attributed to it (as new error
// fingerprints are). Earlier changes of the service get nothing: the
// later one stands between them and the shift.
func (e *Engine) ownShiftFeatures(w *window, c event.Change, cand *Candidate) {
	o, ok := w.own[c.Service]
	if !ok {
		return
	}
	last := func(t time.Time) bool {
		if t.IsZero() || t.Before(c.Time) {
			return false
		}
		for _, x := range w.changes {
			if x.Service == c.Service && x.ID != c.ID && x.Time.After(c.Time) && !x.Time.After(t) {
				return false
			}
		}
		return true
	}
	type sig struct {
		name, feature string
		at            time.Time
		decay         time.Duration
	}
	for _, s := range []sig{
		{"error rate", "owns_error_shift", o.errors, 10 * time.Minute},
		{"p95 latency", "owns_latency_shift", o.latency, 10 * time.Minute},
		{"saturation", "owns_saturation_climb", o.saturation, 30 * time.Minute},
	} {
		if !last(s.at) {
			continue
		}
		lag := s.at.Sub(c.Time)
		v := math.Exp(-float64(lag) / float64(s.decay))
		if v < 0.05 {
			continue
		}
		cand.Features[s.feature] = v
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "shift", Summary: fmt.Sprintf("%s of %s began to rise at %s, %s after this %s, the last change of %s before it",
			s.name, c.Service, s.at.Format("15:04"), humanDuration(lag), c.Kind, c.Service), Values: map[string]float64{"lag_minutes": lag.Minutes()}})
	}
}

// sharedNewErrors lists the services, out of the change's reach, where an
// error with the same type and message as one of the change's new errors
// also first appeared within 15 minutes of it.
func sharedNewErrors(w *window, c event.Change, fps []store.Fingerprint) []string {
	if len(w.newErrors) == 0 {
		return nil
	}
	reach := dependents(w.topo, c.Service)
	seen := map[string]bool{}
	var out []string
	for _, fp := range fps {
		for _, ne := range w.newErrors {
			if reach[ne.Service] || seen[ne.Service] || ne.Type != fp.Type || ne.Message != fp.Message {
				continue
			}
			if d := ne.FirstSeen.Sub(fp.FirstSeen); d < -15*time.Minute || d > 15*time.Minute {
				continue
			}
			seen[ne.Service] = true
			out = append(out, ne.Service)
		}
	}
	sort.Strings(out)
	return out
}

// externalFeatures: when the errors that surged are failed calls to a third
// party (a callee that is none of our services), its outage explains them
// better than a change of ours. own_external is about the changed
// service's own surge; symptom_external about the surge at the onset in
// the asked service's scope, the same for every candidate.
func (e *Engine) externalFeatures(w *window, c event.Change, onset time.Time, cand *Candidate) {
	if w.all == nil {
		return
	}
	f := cand.Features
	at := onset
	if o := w.own[c.Service].errors; !o.IsZero() && !o.Before(c.Time) {
		at = o
	}
	if share, peer, ok := w.externalShare(c.Service, at); ok && share >= 0.25 {
		f["own_external"] = share
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "external", Summary: fmt.Sprintf("%.0f%% of the errors %s added from %s are failed calls to %s, a third party: its outage, not this %s",
			100*share, c.Service, at.Format("15:04"), peer, c.Kind), Values: map[string]float64{"share": share}})
	}
	if w.onsetNone {
		return
	}
	if share, svc, peer := w.symptomExternal(onset); share >= 0.25 {
		f["symptom_external"] = share
		if svc != c.Service {
			cand.Evidence = append(cand.Evidence, Evidence{Kind: "external", Summary: fmt.Sprintf("the symptoms are failed calls to a third party: %.0f%% of the errors %s added at the onset are calls to %s",
				100*share, svc, peer), Values: map[string]float64{"share": share}})
		}
	}
}

// flagFeatures compares, for a flag change, the share of the service's
// errors after it that had the flag on with the share of requests the
// rollout turned it on for: errors of a bad flag's path all have it on,
// errors it has nothing to do with follow the rollout share. A rollout to
// everyone cannot be told apart this way.
func (e *Engine) flagFeatures(ctx context.Context, c event.Change, afterEnd time.Time, cand *Candidate) {
	flag := c.Attributes["flag"]
	if c.Kind != event.ChangeFlag || flag == "" || cand.Features["after_onset"] == 1 || !afterEnd.After(c.Time) {
		return
	}
	p, ok := rolloutShare(c.Attributes["new"])
	if !ok {
		return
	}
	from, to, when := c.Time, afterEnd, "since the flip"
	if p >= 0.9 {
		// Rolled out to everyone: every error has it on now, but before the
		// flip its path may already have failed more than the rest.
		old, ok := rolloutShare(c.Attributes["old"])
		if !ok || old <= 0 || old >= 0.9 {
			return
		}
		p, from, to, when = old, c.Time.Add(-time.Hour), c.Time, "in the hour before the flip"
	}
	on, n, err := e.r.FlagErrors(ctx, c.Service, flag, from, to)
	if err != nil || n < 5 {
		return
	}
	q := float64(on) / float64(n)
	pp := math.Min(math.Max(p, 0.01), 0.99)
	z := (float64(on) - pp*float64(n)) / math.Sqrt(float64(n)*pp*(1-pp))
	values := map[string]float64{"errors_on": q, "rollout": p, "z": z}
	if z >= 3 {
		cand.Features["flag_errors_on"] = math.Min(1, (q-p)/(1-p))
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "flag", Summary: fmt.Sprintf("%.0f%% of %s's errors %s had %s on, though it was on for %.0f%% of requests (%d of %d errors, z=%.1f)",
			100*q, c.Service, when, flag, 100*p, on, n, z), Values: values})
		return
	}
	if n >= 10 && math.Abs(z) < 2 {
		cand.Features["flag_errors_even"] = 1
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "flag", Summary: fmt.Sprintf("%s's errors %s had %s on no more often than its %.0f%% rollout (%.0f%% of %d errors)",
			c.Service, when, flag, 100*p, 100*q, n), Values: values})
	}
}

// rolloutShare reads a flag state: "off", "on", or a percentage.
func rolloutShare(s string) (float64, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "off", "false", "disabled":
		return 0, true
	case "on", "true", "enabled":
		return 1, true
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, false
	}
	return v / 100, true
}

// effectFeatures are the evidence that a change did something, as opposed
// to merely happening at the right time.
var effectFeatures = []string{"error_shift", "owns_error_shift", "owns_latency_shift", "owns_saturation_climb", "new_error_soon",
	"latency_shift", "canary_bad", "log_pattern", "flag_errors_on", "saturation_trend", "rolled_back"}

// interactions adds the products a logistic model cannot form itself:
// timing_only, a change close before the onset with no sign of any effect
// of its own (what a traffic spike or an outage leaves for a deploy that
// happened to land then); external_late, a surge of third-party failures
// in the changed service that began well after the change (a change's own
// misconfiguration fails calls within minutes); error_shift_internal, the
// error shift discounted by the share of it that is third-party failures.
func interactions(f map[string]float64) {
	effect := 0.0
	for _, k := range effectFeatures {
		effect = math.Max(effect, f[k])
	}
	if v := f["time_fast"] * (1 - math.Min(1, effect)); v > 0 {
		f["timing_only"] = v
	}
	if v := f["own_external"] * (1 - f["time_fast"]); v > 0 {
		f["external_late"] = v
	}
	// The part of the error shift that is not third-party failures.
	if v := f["error_shift"] * (1 - f["own_external"]); v > 0 {
		f["error_shift_internal"] = v
	}
}
