package eval

import (
	"math"
	"testing"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
)

// answer builds a hand-made answer: candidates in rank order as "id:score".
func answer(verdict string, cands ...cand) *correlate.Answer {
	a := &correlate.Answer{Verdict: verdict, Candidates: []correlate.Candidate{}}
	for i, c := range cands {
		a.Candidates = append(a.Candidates, correlate.Candidate{Rank: i + 1, Score: c.score, Change: event.Change{ID: c.id}})
	}
	return a
}

type cand struct {
	id    string
	score float64
}

func judged(truth string, a *correlate.Answer) Case {
	o := Judge(a, truth, 0, false)
	return Case{Truth: truth, Outcome: &o}
}

func TestCaseScores(t *testing.T) {
	tests := []struct {
		name       string
		truth      string
		ans        *correlate.Answer
		verdict    string
		rank       int
		top1, top3 bool
		rr         float64
	}{
		{"blamed first", "c", answer("cause", cand{"c", .9}, cand{"x", .1}), "cause", 1, true, true, 1},
		{"blamed second", "c", answer("cause", cand{"x", .9}, cand{"c", .5}), "cause", 2, false, true, 0.5},
		{"third", "c", answer("cause", cand{"x", .9}, cand{"y", .5}, cand{"c", .4}), "cause", 3, false, true, 1.0 / 3},
		{"fourth", "c", answer("cause", cand{"x", .9}, cand{"y", .5}, cand{"z", .4}, cand{"c", .3}), "cause", 4, false, false, 0.25},
		{"absent", "c", answer("cause", cand{"x", .9}), "cause", 0, false, false, 0},
		// Abstaining with the truth first is a top-3 hit, not a top-1 hit.
		{"abstained over truth", "c", answer("abstain", cand{"c", .2}), "abstain", 1, false, true, 1},
		{"no changes, truth exists", "c", answer("no_changes"), "no_changes", 0, false, false, 0},
		{"no cause, abstained", "", answer("abstain", cand{"x", .2}), "abstain", 0, true, true, 1},
		{"no cause, no changes", "", answer("no_changes"), "no_changes", 0, true, true, 1},
		{"no cause, blamed", "", answer("cause", cand{"x", .8}), "cause", 0, false, false, 0},
		// An engine that sets no verdict yet blames its first candidate.
		{"empty verdict", "c", answer("", cand{"c", .6}), "cause", 1, true, true, 1},
		{"empty verdict, no candidates", "", answer(""), "no_changes", 0, true, true, 1},
		{"empty verdict, no cause", "", answer("", cand{"x", .6}), "cause", 0, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judged(tt.truth, tt.ans)
			if c.Outcome.Verdict != tt.verdict {
				t.Errorf("verdict %q, want %q", c.Outcome.Verdict, tt.verdict)
			}
			if c.Outcome.RankOfTruth != tt.rank {
				t.Errorf("rank of truth %d, want %d", c.Outcome.RankOfTruth, tt.rank)
			}
			if c.Top1() != tt.top1 || c.Top3() != tt.top3 {
				t.Errorf("top-1 %v top-3 %v, want %v %v", c.Top1(), c.Top3(), tt.top1, tt.top3)
			}
			if !near(c.ReciprocalRank(), tt.rr) {
				t.Errorf("reciprocal rank %v, want %v", c.ReciprocalRank(), tt.rr)
			}
		})
	}
}

func TestJudgeTop3(t *testing.T) {
	o := Judge(answer("cause", cand{"a", .9}, cand{"b", .5}, cand{"c", .4}, cand{"d", .1}), "b", 12.5, false)
	if len(o.Top3) != 3 || o.Top3[0].ID != "a" || o.Top3[2].ID != "c" || o.NumCandidates != 4 || o.LatencyMS != 12.5 {
		t.Errorf("outcome %+v", o)
	}
	if o.RawVerdict != "" {
		t.Errorf("raw verdict %q for an answer that set one", o.RawVerdict)
	}
	if o := Judge(answer("", cand{"a", .9}), "a", 0, false); o.RawVerdict == "" {
		t.Error("an empty verdict is not recorded as such")
	}
	if o := Judge(answer("no_changes"), "", 0, false); o.Top3 == nil || len(o.Top3) != 0 {
		t.Errorf("top3 of no candidates = %#v, want an empty list", o.Top3)
	}
}

func TestCompute(t *testing.T) {
	cases := []Case{
		judged("c1", answer("cause", cand{"c1", 1.0}, cand{"x", 0.0})),   // top-1
		judged("c2", answer("cause", cand{"x", 0.5}, cand{"c2", 0.5})),   // rank 2
		judged("c3", answer("abstain", cand{"c3", 0.15})),                // false abstain, top-3
		judged("c4", answer("cause", cand{"x", 0.95})),                   // absent
		judged("", answer("abstain", cand{"y", 0.05})),                   // correct abstain
		judged("", answer("cause", cand{"y", 0.85}, cand{"z", 0.0})),     // false blame
		judged("", answer("no_changes")),                                 // correct, no candidates
		judged("c8", answer("cause", cand{"c8", 0.75}, cand{"w", 0.35})), // top-1
	}
	for i, l := range []float64{10, 20, 30, 40, 50, 60, 70, 80} {
		cases[i].Outcome.LatencyMS = l
	}
	m := Compute(cases)
	if m.Scenarios != 8 || m.CauseScenarios != 5 || m.AbstainScenarios != 3 {
		t.Fatalf("counts %d %d %d", m.Scenarios, m.CauseScenarios, m.AbstainScenarios)
	}
	// top-1: c1, c8, two abstentions = 4/8. top-3: + c2, c3 = 6/8.
	// MRR: 1 + .5 + 1 + 0 + 1 + 0 + 1 + 1 = 5.5 / 8.
	check(t, "top-1", m.Top1, 4.0/8)
	check(t, "top-3", m.Top3, 6.0/8)
	check(t, "MRR", m.MRR, 5.5/8)
	checkPtr(t, "false-blame", m.FalseBlame, 1.0/3)
	checkPtr(t, "false-abstain", m.FalseAbstain, 1.0/5)
	if m.Candidates != 11 || m.Top1Candidates != 7 {
		t.Errorf("candidates %d, top-1 candidates %d; want 11, 7", m.Candidates, m.Top1Candidates)
	}
	// All 11 scores by bin: [0,.1): 0 0 .05 → mean .0167, 0 true;
	// [.1,.2): .15 true; [.3,.4): .35; [.5,.6): .5 .5(c2 true);
	// [.7,.8): .75 true; [.8,.9): .85; [.9,1]: 1.0 true, .95.
	want := (3*math.Abs(0.05/3-0) + 1*math.Abs(0.15-1) + 1*math.Abs(0.35-0) + 0 /* .5 bin: mean .5, half true */ +
		1*math.Abs(0.75-1) + 1*math.Abs(0.85-0) + 2*math.Abs(0.975-0.5)) / 11
	checkPtr(t, "ECE", m.ECE, want)
	// Top-1 scores: 1.0 T, .5 F, .15 T, .95 F, .05 F, .85 F, .75 T.
	want1 := (1*math.Abs(0.05-0) + 1*math.Abs(0.15-1) + 1*math.Abs(0.5-0) + 1*math.Abs(0.75-1) +
		1*math.Abs(0.85-0) + 2*math.Abs(0.975-0.5)) / 7
	checkPtr(t, "ECE top-1", m.ECETop1, want1)
	check(t, "p50", m.LatencyP50MS, 40)
	check(t, "p95", m.LatencyP95MS, 80)
}

func TestComputeEmptyDenominators(t *testing.T) {
	m := Compute([]Case{judged("c", answer("cause", cand{"c", .9}))})
	if m.FalseBlame != nil {
		t.Errorf("false-blame %v without abstain-truth scenarios, want nil", *m.FalseBlame)
	}
	checkPtr(t, "false-abstain", m.FalseAbstain, 0)
	m = Compute([]Case{judged("", answer("no_changes"))})
	if m.FalseAbstain != nil || m.ECE != nil || m.ECETop1 != nil {
		t.Errorf("metrics without data are not nil: %+v", m)
	}
	if m := Compute(nil); m.Scenarios != 0 || m.Top1 != 0 {
		t.Errorf("empty: %+v", m)
	}
}

func TestECEBinning(t *testing.T) {
	tests := []struct {
		name string
		ps   []Calibrated
		bins int
		want float64
	}{
		{"perfect", []Calibrated{{1, true}, {0, false}}, 10, 0},
		{"overconfident", []Calibrated{{0.9, false}, {0.9, false}}, 10, 0.9},
		// 1.0 falls in the last bin with 0.95, not in an eleventh.
		{"one in last bin", []Calibrated{{1, true}, {0.95, false}}, 10, 0.475},
		// A bin boundary belongs to the bin above: 0.1 sits with 0.15.
		{"boundary", []Calibrated{{0.1, true}, {0.15, false}, {0.05, false}}, 10, (2*math.Abs(0.125-0.5) + 0.05) / 3},
		// Scores outside [0, 1] are clamped.
		{"clamped", []Calibrated{{1.5, true}, {-0.5, false}}, 10, 0},
		{"two bins", []Calibrated{{0.2, false}, {0.4, true}, {0.6, true}, {0.8, true}}, 2,
			0.5*math.Abs(0.3-0.5) + 0.5*math.Abs(0.7-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPtr(t, "ECE", ECE(tt.ps, tt.bins), tt.want)
		})
	}
	if ECE(nil, 10) != nil {
		t.Error("ECE of nothing is not nil")
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, tt := range []struct{ p, want float64 }{{0.5, 3}, {0.95, 5}, {0, 1}, {1, 5}, {0.2, 1}, {0.21, 2}} {
		if got := Percentile(xs, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing")
	}
	if xs[0] != 5 {
		t.Error("Percentile sorted its input")
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func check(t *testing.T, name string, got, want float64) {
	t.Helper()
	if !near(got, want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

func checkPtr(t *testing.T, name string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %v", name, want)
		return
	}
	check(t, name, *got, want)
}
