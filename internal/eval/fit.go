package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/correlate"
)

// FitOptions configure Fit.
type FitOptions struct {
	L2         float64 // L2 penalty of the logistic regression
	Iterations int     // gradient-descent iterations
}

// FitResult is a fitted model and how it does on the split it was fitted
// on.
type FitResult struct {
	Model     correlate.Model
	Samples   int // candidates fitted on
	Positives int // of which true causes
	// Before is the run with the model the engine had, which gave the
	// features; After is the run with the fitted weights, its verdicts
	// judged at the chosen AbstainBelow. Both are in-sample for After.
	Before, After *Report
}

// Fit fits the engine's model on opt's split, which must be Dev, in two
// runs. The first, with the engine's current model, collects every
// candidate's features labelled by whether it is the true cause, and fits
// logistic-regression weights to them. The second asks again with the new
// weights and chooses AbstainBelow from the engine's own top scores: the
// threshold that maximises top-1 accuracy, ties broken by the lower
// false-blame rate, then the lower false-abstain rate, then the lower
// threshold. Asking again, rather than re-scoring the features offline,
// keeps whatever the engine does beyond the model (scores capped after the
// onset, rounding) in the choice.
//
// second, when not nil, is called before the second run starts.
func Fit(ctx context.Context, opt Options, fopt FitOptions, second func()) (*FitResult, error) {
	if opt.Split != Dev {
		return nil, fmt.Errorf("fit model: the model is fitted on the dev split only, not %q", opt.Split)
	}
	opt.KeepFeatures = true
	r, err := NewRunner(opt)
	if err != nil {
		return nil, err
	}
	before, err := r.Run(ctx)
	if err != nil {
		return nil, err
	}
	res, err := fitWeights(before.Scenarios, fopt)
	if err != nil {
		return nil, err
	}
	res.Before = before

	// The second run blames at any score, so that every top score shows.
	opt.KeepFeatures = false
	m := res.Model
	m.AbstainBelow = 0
	opt.Model = &m
	if second != nil {
		second()
	}
	if r, err = NewRunner(opt); err != nil {
		return nil, err
	}
	after, err := r.Run(ctx)
	if err != nil {
		return nil, err
	}
	t, _ := chooseAbstainBelow(thresholdCases(after.Scenarios))
	res.Model.AbstainBelow = t
	res.After = WithThreshold(after, t)
	res.After.Model = res.Model
	return res, nil
}

// fitWeights fits the weights to the features of every engine candidate in
// results; AbstainBelow is left 0.
func fitWeights(results []ScenarioResult, opt FitOptions) (*FitResult, error) {
	var samples []correlate.Sample
	names := map[string]bool{}
	for _, r := range results {
		for _, c := range r.Engine.Candidates {
			samples = append(samples, correlate.Sample{Features: c.Features, Cause: r.Truth != "" && c.ID == r.Truth})
			for k := range c.Features {
				names[k] = true
			}
		}
	}
	if len(samples) == 0 {
		return nil, errors.New("fit model: the engine returned no candidates")
	}
	if len(names) == 0 {
		return nil, errors.New("fit model: the engine's candidates carry no features")
	}
	res := &FitResult{Samples: len(samples)}
	for _, s := range samples {
		if s.Cause {
			res.Positives++
		}
	}
	if res.Positives == 0 {
		return nil, errors.New("fit model: no candidate is a true cause, so there is nothing to learn")
	}
	res.Model = correlate.FitModel(samples, opt.L2, opt.Iterations)
	for k, w := range res.Model.Weights {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("fit model: weight %q diverged to %v (try a larger --l2)", k, w)
		}
	}
	return res, nil
}

// thresholdCases reduces the engine's answers to what the threshold choice
// needs: the top candidate's score and whether it is the truth.
func thresholdCases(results []ScenarioResult) []thresholdCase {
	cases := make([]thresholdCase, len(results))
	for i, r := range results {
		o := &r.Engine
		tc := thresholdCase{Cause: r.Truth != "", Empty: len(o.Candidates) == 0}
		if !tc.Empty {
			tc.P, tc.TopIsTruth = o.Candidates[0].Score, r.Truth != "" && o.Candidates[0].ID == r.Truth
		}
		cases[i] = tc
	}
	return cases
}

// WithThreshold returns a copy of rep whose engine verdicts are judged
// again as if the engine had abstained below t: the top candidate is blamed
// when its score is at least t. The metrics and targets are recomputed.
func WithThreshold(rep *Report, t float64) *Report {
	out := *rep
	out.Scenarios = make([]ScenarioResult, len(rep.Scenarios))
	for i, r := range rep.Scenarios {
		o := r.Engine
		switch {
		case len(o.Candidates) == 0:
			o.Verdict = correlate.VerdictNoChanges
		case o.Candidates[0].Score >= t:
			o.Verdict = correlate.VerdictCause
		default:
			o.Verdict = correlate.VerdictAbstain
		}
		o.RawVerdict, o.Summary = "", ""
		r.Engine = o
		out.Scenarios[i] = r
	}
	out.Summarize()
	return &out
}

// thresholdCase is one scenario as the threshold choice sees it: the top
// candidate's probability under the model and whether it is the truth.
type thresholdCase struct {
	P          float64 // the top candidate's probability
	TopIsTruth bool
	Cause      bool // a change is the truth
	Empty      bool // no candidates: the answer is "no changes" at any threshold
}

// thresholdScore is how a threshold does over the cases.
type thresholdScore struct {
	top1                     float64
	falseBlame, falseAbstain *float64
}

// scoreThreshold applies "blame the top candidate when P ≥ t" to cases.
func scoreThreshold(cases []thresholdCase, t float64) thresholdScore {
	var hits, blamed, abstainTruth, abstained, causeTruth int
	for _, c := range cases {
		blame := !c.Empty && c.P >= t
		if c.Cause {
			causeTruth++
			if blame && c.TopIsTruth {
				hits++
			}
			if !blame {
				abstained++
			}
		} else {
			abstainTruth++
			if blame {
				blamed++
			} else {
				hits++
			}
		}
	}
	s := thresholdScore{falseBlame: ratio(blamed, abstainTruth), falseAbstain: ratio(abstained, causeTruth)}
	if len(cases) > 0 {
		s.top1 = float64(hits) / float64(len(cases))
	}
	return s
}

// chooseAbstainBelow tries 0 (always blame), every midpoint between
// consecutive distinct top probabilities and one above the highest (never
// blame), and returns the best threshold by top-1, then false-blame, then
// false-abstain, then the lowest.
// MaxFalseBlame is the false-blame rate the threshold choice keeps to on
// the development split when it can: the suite's target.
const MaxFalseBlame = 0.05

func chooseAbstainBelow(cases []thresholdCase) (float64, thresholdScore) {
	var ps []float64
	for _, c := range cases {
		if !c.Empty {
			ps = append(ps, c.P)
		}
	}
	sort.Float64s(ps)
	ts := []float64{0}
	for i := 1; i < len(ps); i++ {
		if ps[i] > ps[i-1] {
			ts = append(ts, (ps[i-1]+ps[i])/2)
		}
	}
	if len(ps) > 0 {
		ts = append(ts, (ps[len(ps)-1]+1)/2)
	}
	val := func(p *float64) float64 {
		if p == nil {
			return 0
		}
		return *p
	}
	// The false-blame target bounds the choice: blaming an innocent
	// change is the costly error on call, so of the thresholds that keep
	// false blame within MaxFalseBlame the best top-1 wins, and only when
	// none does are all thresholds considered.
	var within []float64
	for _, t := range ts {
		if fb := scoreThreshold(cases, t).falseBlame; fb == nil || *fb <= MaxFalseBlame+1e-12 {
			within = append(within, t)
		}
	}
	if len(within) > 0 {
		ts = within
	}
	best, bestScore := ts[0], scoreThreshold(cases, ts[0])
	for _, t := range ts[1:] {
		s := scoreThreshold(cases, t)
		switch {
		case s.top1 > bestScore.top1+1e-12:
		case s.top1 < bestScore.top1-1e-12:
			continue
		case val(s.falseBlame) < val(bestScore.falseBlame)-1e-12:
		case val(s.falseBlame) > val(bestScore.falseBlame)+1e-12:
			continue
		case val(s.falseAbstain) < val(bestScore.falseAbstain)-1e-12:
		default:
			continue
		}
		best, bestScore = t, s
	}
	return best, bestScore
}

// Describe fills in Model.Trained: where the weights came from.
func (f *FitResult) Describe(opt FitOptions, now time.Time) {
	rep := f.After
	fams := make([]string, len(rep.Families))
	for i, x := range rep.Families {
		fams[i] = string(x)
	}
	m := rep.Engine.Overall
	f.Model.Trained = fmt.Sprintf("correlator eval --fit on %s, %s split seeds %d..%d of %s: %d candidates (%d causes), l2 %g, %d iterations; abstain_below maximises dev top-1 with false blame within 0.05 when it can (%.3f, false blame %s)",
		now.UTC().Format("2006-01-02"), rep.Split, rep.FirstSeed, rep.LastSeed, strings.Join(fams, ", "),
		f.Samples, f.Positives, opt.L2, opt.Iterations, m.Top1, rate(m.FalseBlame))
	f.After.Model.Trained = f.Model.Trained
}

// WriteModel writes m to path as indented JSON with correlate.Model's tags,
// through a temporary file so that a failed write leaves the old model.
func WriteModel(path string, m correlate.Model) error {
	for k, w := range m.Weights {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("write model: weight %q is %v", k, w)
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), ".model-*.json")
	if err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write model: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write model: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write model: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write model: %w", err)
	}
	return nil
}
