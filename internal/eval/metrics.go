package eval

import (
	"math"
	"sort"

	"github.com/correlator/correlator/internal/correlate"
)

// Scored is one ranked candidate of an answer, reduced to what the metrics
// and the model fit need.
type Scored struct {
	ID    string  `json:"id"`
	Score float64 `json:"score"`
	// Features and Evidence are kept only when the run collects them (for
	// a fit, or --features for analysis).
	Features map[string]float64 `json:"features,omitempty"`
	Kind     string             `json:"kind,omitempty"`
	Service  string             `json:"service,omitempty"`
	Evidence []string           `json:"evidence,omitempty"`
}

// Outcome is one system's answer to one scenario, judged against the truth.
type Outcome struct {
	// Verdict is the answer's verdict, normalised: an empty verdict (an
	// engine that does not set one yet) reads as "cause" when there are
	// candidates and "no_changes" when there are none.
	Verdict string `json:"verdict"`
	// RawVerdict is the verdict as answered, when it differs from Verdict.
	RawVerdict string `json:"raw_verdict,omitempty"`
	Summary    string `json:"summary,omitempty"`
	// Candidates are all candidates in rank order; JSON shows the top 3.
	Candidates []Scored `json:"-"`
	Top3       []Scored `json:"top3"`
	// Detail is every candidate with its features and evidence, when the
	// run keeps them.
	Detail []Scored `json:"detail,omitempty"`
	// Onset is the answer's symptom onset and where it came from.
	Onset string `json:"onset,omitempty"`
	// NumCandidates is len(Candidates).
	NumCandidates int `json:"candidates"`
	// RankOfTruth is the rank of the true cause, 0 when it is not among the
	// candidates or when no change is the truth.
	RankOfTruth int     `json:"rank_of_truth"`
	LatencyMS   float64 `json:"latency_ms"`
}

// Abstained reports whether the answer blamed nothing.
func (o *Outcome) Abstained() bool {
	return o.Verdict == correlate.VerdictAbstain || o.Verdict == correlate.VerdictNoChanges
}

// Judge reduces an answer to its Outcome against truth, the ID of the
// causal change ("" when no change explains the incident). Candidates are
// taken in the order answered, which is rank order.
func Judge(a *correlate.Answer, truth string, latencyMS float64, keepFeatures bool) Outcome {
	o := Outcome{Verdict: a.Verdict, Summary: a.Summary, LatencyMS: latencyMS, NumCandidates: len(a.Candidates)}
	if o.Verdict == "" {
		o.Verdict = correlate.VerdictCause
		if len(a.Candidates) == 0 {
			o.Verdict = correlate.VerdictNoChanges
		}
		o.RawVerdict = "(none)"
	}
	o.Candidates = make([]Scored, len(a.Candidates))
	for i, c := range a.Candidates {
		o.Candidates[i] = Scored{ID: c.Change.ID, Score: c.Score}
		if keepFeatures {
			d := &o.Candidates[i]
			d.Features, d.Kind, d.Service = c.Features, string(c.Change.Kind), c.Change.Service
			for _, ev := range c.Evidence {
				d.Evidence = append(d.Evidence, ev.Kind+": "+ev.Summary)
			}
		}
	}
	if truth != "" {
		o.RankOfTruth = a.RankOf(truth)
	}
	o.Top3 = make([]Scored, min(3, len(o.Candidates)))
	for i := range o.Top3 {
		o.Top3[i] = Scored{ID: o.Candidates[i].ID, Score: o.Candidates[i].Score}
	}
	if keepFeatures {
		o.Detail = o.Candidates
		o.Onset = a.Onset.Format("15:04:05") + " (" + a.OnsetSource + ")"
	}
	return o
}

// Case is one scenario as one system answered it.
type Case struct {
	// Truth is the causal change's ID, "" when no change explains it.
	Truth   string
	Outcome *Outcome
}

// Top1 reports a top-1 hit: the true cause blamed first, or an abstention
// when no change is the truth.
func (c Case) Top1() bool {
	if c.Truth == "" {
		return c.Outcome.Abstained()
	}
	return c.Outcome.Verdict == correlate.VerdictCause && c.Outcome.RankOfTruth == 1
}

// Top3 reports a top-3 hit: the true cause among the first three whatever
// the verdict, or an abstention when no change is the truth.
func (c Case) Top3() bool {
	if c.Truth == "" {
		return c.Outcome.Abstained()
	}
	return c.Outcome.RankOfTruth >= 1 && c.Outcome.RankOfTruth <= 3
}

// ReciprocalRank is 1/rank of the true cause (0 when absent), or 1 for an
// abstention (0 for a blame) when no change is the truth.
func (c Case) ReciprocalRank() float64 {
	if c.Truth == "" {
		if c.Outcome.Abstained() {
			return 1
		}
		return 0
	}
	if c.Outcome.RankOfTruth == 0 {
		return 0
	}
	return 1 / float64(c.Outcome.RankOfTruth)
}

// Metrics summarise a set of cases. Rates whose denominator is empty are
// nil (null in JSON, "—" in the table).
type Metrics struct {
	Scenarios        int `json:"scenarios"`
	CauseScenarios   int `json:"cause_scenarios"`
	AbstainScenarios int `json:"abstain_scenarios"`

	Top1 float64 `json:"top1"`
	Top3 float64 `json:"top3"`
	MRR  float64 `json:"mrr"`
	// FalseBlame is the fraction of abstain-truth scenarios answered with
	// verdict "cause".
	FalseBlame *float64 `json:"false_blame"`
	// FalseAbstain is the fraction of cause scenarios answered with an
	// abstention.
	FalseAbstain *float64 `json:"false_abstain"`
	// ECE is the expected calibration error of every candidate's score
	// against "is the true cause"; ECETop1 of rank-1 candidates only.
	ECE     *float64 `json:"ece"`
	ECETop1 *float64 `json:"ece_top1"`
	// Candidates and Top1Candidates count the scores ECE and ECETop1 bin.
	Candidates     int `json:"candidates"`
	Top1Candidates int `json:"top1_candidates"`

	LatencyP50MS float64 `json:"latency_p50_ms"`
	LatencyP95MS float64 `json:"latency_p95_ms"`
}

// Compute summarises cases.
func Compute(cases []Case) Metrics {
	var m Metrics
	m.Scenarios = len(cases)
	if len(cases) == 0 {
		return m
	}
	var top1, top3, blamed, abstained int
	var rr float64
	var all, first []Calibrated
	lat := make([]float64, 0, len(cases))
	for _, c := range cases {
		o := c.Outcome
		if c.Top1() {
			top1++
		}
		if c.Top3() {
			top3++
		}
		rr += c.ReciprocalRank()
		if c.Truth == "" {
			m.AbstainScenarios++
			if o.Verdict == correlate.VerdictCause {
				blamed++
			}
		} else {
			m.CauseScenarios++
			if o.Abstained() {
				abstained++
			}
		}
		for i, s := range o.Candidates {
			p := Calibrated{Score: s.Score, Cause: c.Truth != "" && s.ID == c.Truth}
			all = append(all, p)
			if i == 0 {
				first = append(first, p)
			}
		}
		lat = append(lat, o.LatencyMS)
	}
	n := float64(len(cases))
	m.Top1, m.Top3, m.MRR = float64(top1)/n, float64(top3)/n, rr/n
	m.FalseBlame = ratio(blamed, m.AbstainScenarios)
	m.FalseAbstain = ratio(abstained, m.CauseScenarios)
	m.ECE, m.ECETop1 = ECE(all, 10), ECE(first, 10)
	m.Candidates, m.Top1Candidates = len(all), len(first)
	m.LatencyP50MS, m.LatencyP95MS = Percentile(lat, 0.50), Percentile(lat, 0.95)
	return m
}

func ratio(num, den int) *float64 {
	if den == 0 {
		return nil
	}
	v := float64(num) / float64(den)
	return &v
}

// Calibrated is one predicted probability and whether the event happened.
type Calibrated struct {
	Score float64
	Cause bool
}

// ECE is the expected calibration error of ps over bins equal-width bins of
// [0, 1]: Σ over bins of (bin size / total) · |mean score − fraction true|.
// A score of exactly 1 falls in the last bin; scores outside [0, 1] are
// clamped. It is nil when ps is empty.
func ECE(ps []Calibrated, bins int) *float64 {
	if len(ps) == 0 || bins <= 0 {
		return nil
	}
	n := make([]int, bins)
	sum := make([]float64, bins)
	hits := make([]int, bins)
	for _, p := range ps {
		s := math.Min(1, math.Max(0, p.Score))
		b := min(int(s*float64(bins)), bins-1)
		n[b]++
		sum[b] += s
		if p.Cause {
			hits[b]++
		}
	}
	var e float64
	for b := range bins {
		if n[b] == 0 {
			continue
		}
		k := float64(n[b])
		e += k / float64(len(ps)) * math.Abs(sum[b]/k-float64(hits[b])/k)
	}
	return &e
}

// Percentile is the nearest-rank p-quantile of xs (0 when xs is empty).
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
