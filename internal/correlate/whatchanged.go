// Package correlate answers "what changed?": it ranks the changes in an
// incident's window and scope as likely causes, each with a score in [0, 1]
// and the evidence behind it in words.
//
// This is the first score: how close before the symptom onset a change
// happened, and how much the changed service's error rate shifted right
// after it. Later scores add fingerprints, metrics, logs, rollout scope and
// calibration; the shape of the answer stays.
package correlate

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// Reader is what the engine reads from the store. *store.Store implements
// it; all times are UTC and windows are [from, to).
type Reader interface {
	Topology(ctx context.Context) (map[string][]string, error)
	Changes(ctx context.Context, services []string, from, to time.Time) ([]event.Change, error)
	ErrorsPerMinute(ctx context.Context, services []string, from, to time.Time) ([]store.Bucket, error)
	MetricPerMinute(ctx context.Context, name string, services []string, from, to time.Time) ([]store.Bucket, error)
	NewFingerprints(ctx context.Context, service string, since, from, to time.Time) ([]store.Fingerprint, error)
}

// Query is one "what changed?" question.
type Query struct {
	Service  string
	At       time.Time     // when the question is asked; the window ends here
	Lookback time.Duration // how far back changes are considered
	Onset    time.Time     // symptom onset if known; zero means detect it
}

// Window is a time range [From, To).
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Evidence is one reason for (or against) a candidate, in words, with the
// numbers behind it for tooling.
type Evidence struct {
	Kind    string             `json:"kind"`
	Summary string             `json:"summary"`
	Values  map[string]float64 `json:"values,omitempty"`
}

// Candidate is one ranked change.
type Candidate struct {
	Rank     int          `json:"rank"`
	Score    float64      `json:"score"`
	Change   event.Change `json:"change"`
	Evidence []Evidence   `json:"evidence"`
}

// Answer is the result of a query.
type Answer struct {
	Service string    `json:"service"`
	Window  Window    `json:"window"`
	Onset   time.Time `json:"onset"`
	// OnsetSource says where Onset came from: "given", "detected", or
	// "none" when no shift was found (Onset is then the query time).
	OnsetSource string      `json:"onset_source"`
	Scope       []string    `json:"scope"`
	Candidates  []Candidate `json:"candidates"`
}

// Options tune the engine. The zero value uses the defaults.
type Options struct {
	// RequestsMetric names the per-minute request count metric used as the
	// denominator of error rates; default "requests".
	RequestsMetric string
	// BeforeWindow and AfterWindow bound the error-rate comparison around
	// a change; defaults 30 and 15 minutes.
	BeforeWindow, AfterWindow time.Duration
	// TimeDecay is the time constant of the proximity score; default 30m.
	TimeDecay time.Duration
	// NewFingerprintLookback is how far back a fingerprint must be absent
	// to count as new; default 7 days.
	NewFingerprintLookback time.Duration
}

func (o *Options) defaults() {
	if o.RequestsMetric == "" {
		o.RequestsMetric = "requests"
	}
	if o.BeforeWindow <= 0 {
		o.BeforeWindow = 30 * time.Minute
	}
	if o.AfterWindow <= 0 {
		o.AfterWindow = 15 * time.Minute
	}
	if o.TimeDecay <= 0 {
		o.TimeDecay = 30 * time.Minute
	}
	if o.NewFingerprintLookback <= 0 {
		o.NewFingerprintLookback = 7 * 24 * time.Hour
	}
}

// Engine answers queries from a Reader.
type Engine struct {
	r   Reader
	opt Options
}

// New returns an engine reading from r.
func New(r Reader, opt Options) *Engine {
	opt.defaults()
	return &Engine{r: r, opt: opt}
}

// WhatChanged ranks the changes of q.Service and its transitive
// dependencies in [q.At-q.Lookback, q.At).
func (e *Engine) WhatChanged(ctx context.Context, q Query) (*Answer, error) {
	if q.Service == "" {
		return nil, fmt.Errorf("what changed: no service given")
	}
	if q.At.IsZero() {
		q.At = time.Now()
	}
	if q.Lookback <= 0 {
		q.Lookback = 2 * time.Hour
	}
	q.At = q.At.UTC()
	from, to := q.At.Add(-q.Lookback), q.At
	topo, err := e.r.Topology(ctx)
	if err != nil {
		return nil, err
	}
	scope := Dependencies(topo, q.Service)
	changes, err := e.r.Changes(ctx, scope, from, to)
	if err != nil {
		return nil, err
	}
	// Rates are read from one before-window earlier than the window, so
	// that the earliest change has a baseline too.
	rfrom := from.Add(-e.opt.BeforeWindow).Truncate(time.Minute)
	errs, err := e.r.ErrorsPerMinute(ctx, scope, rfrom, to)
	if err != nil {
		return nil, err
	}
	reqs, err := e.r.MetricPerMinute(ctx, e.opt.RequestsMetric, scope, rfrom, to)
	if err != nil {
		return nil, err
	}
	series := buildSeries(errs, reqs, rfrom, to)

	ans := &Answer{Service: q.Service, Window: Window{from, to}, Scope: scope, Candidates: []Candidate{}}
	switch {
	case !q.Onset.IsZero():
		ans.Onset, ans.OnsetSource = q.Onset.UTC(), "given"
	default:
		if on, ok := series[q.Service].detectOnset(from); ok {
			ans.Onset, ans.OnsetSource = on, "detected"
		} else {
			ans.Onset, ans.OnsetSource = to, "none"
		}
	}
	fps, err := e.attributeFingerprints(ctx, changes, from, to)
	if err != nil {
		return nil, err
	}
	for i, c := range changes {
		ans.Candidates = append(ans.Candidates, e.score(q, ans.Onset, c, series[c.Service], fps[i]))
	}
	sort.SliceStable(ans.Candidates, func(i, j int) bool {
		a, b := ans.Candidates[i], ans.Candidates[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.Change.Time.After(b.Change.Time)
	})
	for i := range ans.Candidates {
		ans.Candidates[i].Rank = i + 1
	}
	return ans, nil
}

// score weighs one change: proximity before the onset (40%) and the
// significance-gated error-rate shift of the changed service right after
// the change (60%). A change after the onset cannot be its cause.
func (e *Engine) score(q Query, onset time.Time, c event.Change, s *series, fps []store.Fingerprint) Candidate {
	cand := Candidate{Change: c}
	lead := onset.Sub(c.Time)
	var fTime float64
	if lead < 0 {
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "time",
			Summary: fmt.Sprintf("%s %s after symptom onset: cannot have caused it", c.Kind, humanDuration(-lead)),
			Values:  map[string]float64{"minutes_before_onset": lead.Minutes()}})
	} else {
		fTime = math.Exp(-float64(lead) / float64(e.opt.TimeDecay))
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "time",
			Summary: fmt.Sprintf("%s %s before symptom onset", c.Kind, humanDuration(lead)),
			Values:  map[string]float64{"minutes_before_onset": lead.Minutes()}})
	}
	if c.Service != q.Service {
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "topology",
			Summary: fmt.Sprintf("%s is a dependency of %s", c.Service, q.Service)})
	}
	var fShift float64
	if s != nil {
		before := s.rate(c.Time.Add(-e.opt.BeforeWindow), c.Time)
		afterEnd := c.Time.Add(e.opt.AfterWindow)
		if afterEnd.After(q.At) {
			afterEnd = q.At
		}
		after := s.rate(c.Time, afterEnd)
		if after.exposure > 0 && before.exposure > 0 {
			z := poissonZ(after.errors, before.perUnit()*after.exposure)
			ratio := (after.perUnit() + 1e-9) / (before.perUnit() + 1e-9)
			if z >= 3 && ratio > 1 {
				fShift = math.Min(1, math.Log10(ratio)/math.Log10(20))
			}
			cand.Evidence = append(cand.Evidence, Evidence{Kind: "error_rate",
				Summary: fmt.Sprintf("%s %s → %s within %s after the %s (%s, z=%.1f)", s.rateName(), s.formatRate(before.perUnit()),
					s.formatRate(after.perUnit()), humanDuration(afterEnd.Sub(c.Time)), c.Kind, ratioText(ratio), z),
				Values: map[string]float64{"before": before.perUnit(), "after": after.perUnit(), "ratio": ratio, "z": z}})
		}
	}
	for i, f := range fps {
		if i == 3 {
			cand.Evidence = append(cand.Evidence, Evidence{Kind: "new_error", Summary: fmt.Sprintf("and %d more new error fingerprints", len(fps)-3)})
			break
		}
		rel := ""
		if f.Release != "" && f.Release == c.Version {
			rel = ", in the new release " + f.Release
		}
		cand.Evidence = append(cand.Evidence, Evidence{Kind: "new_error",
			Summary: fmt.Sprintf("new error %s: %q first seen %s after the %s (%d events%s)", f.Type, truncate(f.Message, 80),
				humanDuration(f.FirstSeen.Sub(c.Time)), c.Kind, f.Count, rel),
			Values: map[string]float64{"count": float64(f.Count)}})
	}
	if lead < 0 {
		// Symptoms that began before the change were not caused by it,
		// whatever happened to its service's errors afterwards.
		fShift = 0
	}
	cand.Score = round3(0.4*fTime + 0.6*fShift)
	return cand
}

// attributeFingerprints finds the error fingerprints first seen in the
// window in each changed service and gives each to the latest change of
// that service before it appeared: a new error belongs to the change that
// preceded it, not to every earlier one. The result is indexed like changes
// (which are in time order).
func (e *Engine) attributeFingerprints(ctx context.Context, changes []event.Change, from, to time.Time) ([][]store.Fingerprint, error) {
	out := make([][]store.Fingerprint, len(changes))
	done := map[string]bool{}
	for _, c := range changes {
		if done[c.Service] {
			continue
		}
		done[c.Service] = true
		fps, err := e.r.NewFingerprints(ctx, c.Service, from.Add(-e.opt.NewFingerprintLookback), from, to)
		if err != nil {
			return nil, err
		}
		for _, f := range fps {
			owner := -1
			for i, c2 := range changes {
				if c2.Service == c.Service && !c2.Time.After(f.FirstSeen) {
					owner = i
				}
			}
			if owner >= 0 {
				out[owner] = append(out[owner], f)
			}
		}
	}
	return out, nil
}

// Dependencies returns service followed by every service it depends on,
// transitively, in breadth-first order. Cycles are tolerated.
func Dependencies(topo map[string][]string, service string) []string {
	out := []string{service}
	seen := map[string]bool{service: true}
	for i := 0; i < len(out); i++ {
		deps := append([]string(nil), topo[out[i]]...)
		sort.Strings(deps)
		for _, d := range deps {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}

// poissonZ is the standardised excess of observed over expected counts,
// with the expectation floored so that a quiet baseline does not make one
// error look significant.
func poissonZ(observed, expected float64) float64 {
	if expected < 0.5 {
		expected = 0.5
	}
	return (observed - expected) / math.Sqrt(expected)
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func ratioText(r float64) string {
	switch {
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 1.05 || r <= 0.95:
		return fmt.Sprintf("%.1f×", r)
	}
	return "unchanged"
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d < 2*time.Hour:
		return fmt.Sprintf("%.0f min", d.Minutes())
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
