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
	NewFingerprints(ctx context.Context, services []string, since, from, to time.Time) ([]store.Fingerprint, error)
	MetricsByKey(ctx context.Context, services, names []string, from, to time.Time) ([]store.MetricBucket, error)
	AllErrorsPerMinute(ctx context.Context, from, to time.Time) ([]store.Bucket, error)
	LogLines(ctx context.Context, service string, from, to time.Time, minSeverity uint8, limit int) ([]store.LogLine, error)
	NewErrorsAll(ctx context.Context, since, from, to time.Time) ([]store.NewError, error)
	PeerErrorsPerMinute(ctx context.Context, services []string, from, to time.Time) ([]store.PeerBucket, error)
	FlagErrors(ctx context.Context, service, flag string, from, to time.Time) (on, evaluated uint64, err error)
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
	// Features are the model's inputs, each normalised to about [0, 1].
	Features map[string]float64 `json:"features,omitempty"`
}

// Verdicts of an answer.
const (
	// VerdictCause: the top candidate is blamed.
	VerdictCause = "cause"
	// VerdictAbstain: no change in scope explains the symptoms.
	VerdictAbstain = "abstain"
	// VerdictNoChanges: there were no changes in scope at all.
	VerdictNoChanges = "no_changes"
)

// Answer is the result of a query.
type Answer struct {
	Service string    `json:"service"`
	Window  Window    `json:"window"`
	Onset   time.Time `json:"onset"`
	// OnsetSource says where Onset came from: "given", "detected", or
	// "none" when no shift was found (Onset is then the query time).
	OnsetSource string   `json:"onset_source"`
	Scope       []string `json:"scope"`
	// Verdict is VerdictCause, VerdictAbstain or VerdictNoChanges, and
	// Summary says it in one sentence.
	Verdict    string      `json:"verdict"`
	Summary    string      `json:"summary"`
	Candidates []Candidate `json:"candidates"`
}

// RankOf is the 1-based position of the change id among the candidates,
// or 0 when it is not one of them.
func (a *Answer) RankOf(id string) int {
	for i, c := range a.Candidates {
		if c.Change.ID == id {
			return i + 1
		}
	}
	return 0
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
	// Baseline selects the foundation's first score (proximity and error
	// shift only, never abstaining), kept for comparison in the evaluation.
	Baseline bool
	// Model scores candidates; nil means DefaultModel.
	Model *Model
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
	r     Reader
	opt   Options
	model Model
}

// New returns an engine reading from r.
func New(r Reader, opt Options) *Engine {
	opt.defaults()
	m := DefaultModel()
	if opt.Model != nil {
		m = *opt.Model
	}
	return &Engine{r: r, opt: opt, model: m}
}

// attributeFingerprints finds the error fingerprints first seen in the
// window in each changed service and gives each to the latest change of
// that service before it appeared: a new error belongs to the change that
// preceded it, not to every earlier one. The result is indexed like changes
// (which are in time order).
func (e *Engine) attributeFingerprints(ctx context.Context, changes []event.Change, from, to time.Time) ([][]store.Fingerprint, error) {
	out := make([][]store.Fingerprint, len(changes))
	var services []string
	seen := map[string]bool{}
	for _, c := range changes {
		if !seen[c.Service] {
			seen[c.Service] = true
			services = append(services, c.Service)
		}
	}
	if len(services) == 0 {
		return out, nil
	}
	fps, err := e.r.NewFingerprints(ctx, services, from.Add(-e.opt.NewFingerprintLookback), from, to)
	if err != nil {
		return nil, err
	}
	for _, f := range fps {
		owner := -1
		for i, c := range changes {
			if c.Service == f.Service && !c.Time.After(f.FirstSeen) {
				owner = i
			}
		}
		if owner >= 0 {
			out[owner] = append(out[owner], f)
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
