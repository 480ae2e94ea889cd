package eval

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/correlator/correlator/internal/correlate"
)

func TestChooseAbstainBelow(t *testing.T) {
	tests := []struct {
		name      string
		cases     []thresholdCase
		want      float64
		wantTop1  float64
		wantBlame *float64
	}{
		{
			// Causes score high, the innocent tops of no-cause scenarios low:
			// the threshold falls between them.
			name: "separable",
			cases: []thresholdCase{
				{P: 0.9, TopIsTruth: true, Cause: true},
				{P: 0.8, TopIsTruth: true, Cause: true},
				{P: 0.3, Cause: false},
				{P: 0.2, Cause: false},
			},
			want: 0.55, wantTop1: 1, wantBlame: ptr(0),
		},
		{
			// Without no-cause scenarios blaming always is best; of the equal
			// thresholds the lowest wins.
			name: "always blame",
			cases: []thresholdCase{
				{P: 0.9, TopIsTruth: true, Cause: true},
				{P: 0.4, TopIsTruth: true, Cause: true},
			},
			want: 0, wantTop1: 1,
		},
		{
			// Top-1 is equal at 0.5 and 0.65 (a wrong top blamed or not
			// costs nothing); equal false blame; 0.5 abstains less.
			name: "tie to fewer abstentions",
			cases: []thresholdCase{
				{P: 0.9, TopIsTruth: true, Cause: true},
				{P: 0.6, TopIsTruth: false, Cause: true},
				{P: 0.4, Cause: false},
			},
			want: 0.5, wantTop1: 2.0 / 3, wantBlame: ptr(0),
		},
		{
			// 0.65 and 0.85 both reach top-1 3/4: the first blames 0.7's cause
			// and 0.8's innocent, the second neither. 0.85 blames nothing
			// wrongly, so it wins.
			name: "tie to lower false blame",
			cases: []thresholdCase{
				{P: 0.9, TopIsTruth: true, Cause: true},
				{P: 0.8, Cause: false},
				{P: 0.7, TopIsTruth: true, Cause: true},
				{P: 0.6, Cause: false},
			},
			want: 0.85, wantTop1: 0.75, wantBlame: ptr(0),
		},
		{
			// Top-1 is best at 0.4 (6 of 7), but it blames one of four
			// innocents (0.25, over the 0.05 bound); 0.75 blames none.
			name: "false blame bound",
			cases: []thresholdCase{
				{P: 0.9, TopIsTruth: true, Cause: true},
				{P: 0.5, TopIsTruth: true, Cause: true},
				{P: 0.45, TopIsTruth: true, Cause: true},
				{P: 0.6, Cause: false},
				{P: 0.1, Cause: false},
				{P: 0.1, Cause: false},
				{P: 0.1, Cause: false},
			},
			want: 0.75, wantTop1: 5.0 / 7, wantBlame: ptr(0),
		},
		{
			name: "never blame",
			cases: []thresholdCase{
				{P: 0.6, Cause: false},
				{P: 0.2, Cause: false},
				{Empty: true, Cause: false},
			},
			want: 0.8, wantTop1: 1, wantBlame: ptr(0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, s := chooseAbstainBelow(tt.cases)
			check(t, "threshold", got, tt.want)
			check(t, "top-1", s.top1, tt.wantTop1)
			if tt.wantBlame == nil {
				if s.falseBlame != nil {
					t.Errorf("false blame %v, want nil", *s.falseBlame)
				}
			} else {
				checkPtr(t, "false blame", s.falseBlame, *tt.wantBlame)
			}
		})
	}
}

func ptr(f float64) *float64 { return &f }

// TestFitWeights fits on separable hand-made features: the cause's error
// shift must get a positive weight, and the fitted probabilities must put
// every cause above its decoy.
func TestFitWeights(t *testing.T) {
	feat := func(shift, time float64) map[string]float64 {
		return map[string]float64{"error_shift": shift, "time": time}
	}
	var results []ScenarioResult
	for i := range 20 {
		r := ScenarioResult{Truth: "cause"}
		r.Engine.Candidates = []Scored{
			{ID: "decoy", Features: feat(0.1, 0.9)},
			{ID: "cause", Features: feat(0.9, 0.5)},
		}
		if i%4 == 0 {
			r.Truth = ""
			r.Engine.Candidates[1].ID = "innocent"
			r.Engine.Candidates[1].Features = feat(0.05, 0.5)
		}
		results = append(results, r)
	}
	f, err := fitWeights(results, FitOptions{L2: 0.01, Iterations: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if f.Samples != 40 || f.Positives != 15 {
		t.Errorf("samples %d positives %d, want 40, 15", f.Samples, f.Positives)
	}
	if f.Model.Weights["error_shift"] <= 0 {
		t.Errorf("error_shift weight %v, want positive", f.Model.Weights["error_shift"])
	}
	if p, q := f.Model.Probability(feat(0.9, 0.5)), f.Model.Probability(feat(0.1, 0.9)); p <= q {
		t.Errorf("cause %.3f not above decoy %.3f", p, q)
	}

	path := filepath.Join(t.TempDir(), "model.json")
	f.Model.AbstainBelow = 0.42
	if err := WriteModel(path, f.Model); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back correlate.Model
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.AbstainBelow != 0.42 || back.Weights["time"] != f.Model.Weights["time"] || back.Bias != f.Model.Bias {
		t.Errorf("model did not round-trip: %+v vs %+v", back, f.Model)
	}
}

func TestFitWeightsWithoutFeatures(t *testing.T) {
	r := ScenarioResult{Truth: "c"}
	r.Engine.Candidates = []Scored{{ID: "c"}}
	if _, err := fitWeights([]ScenarioResult{r}, FitOptions{L2: 0.01, Iterations: 10}); err == nil {
		t.Error("fit without features succeeded")
	}
	if _, err := fitWeights(nil, FitOptions{L2: 0.01, Iterations: 10}); err == nil {
		t.Error("fit without candidates succeeded")
	}
}

// TestWithThreshold judges the hand-made report's engine answers again at
// a threshold of 0.85.
func TestWithThreshold(t *testing.T) {
	rep := handMadeReport()
	cases := thresholdCases(rep.Scenarios)
	if !cases[0].TopIsTruth || cases[0].P != 0.9 || cases[2].Cause || cases[4].TopIsTruth {
		t.Errorf("threshold cases %+v", cases)
	}
	got := WithThreshold(rep, 0.85)
	// Top scores: .9 .8 .1 .2 .6 .9.
	want := []string{"cause", "abstain", "abstain", "abstain", "abstain", "cause"}
	for i, r := range got.Scenarios {
		if r.Engine.Verdict != want[i] {
			t.Errorf("scenario %d: verdict %s, want %s", i, r.Engine.Verdict, want[i])
		}
		if r.Baseline.Verdict != rep.Scenarios[i].Baseline.Verdict {
			t.Errorf("scenario %d: the baseline changed", i)
		}
	}
	if rep.Scenarios[1].Engine.Verdict != "cause" {
		t.Error("WithThreshold changed its input")
	}
	// Seed 2 of bad-deploy is now a false abstention; seeds 1 and 2 of
	// slow-regression abstain too (3 of 5 cause scenarios).
	check(t, "top-1", got.Engine.Overall.Top1, 3.0/6)
	checkPtr(t, "false-abstain", got.Engine.Overall.FalseAbstain, 3.0/5)
}
