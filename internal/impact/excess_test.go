package impact

import (
	"math"
	"testing"
)

func TestSetExcess(t *testing.T) {
	const z = 1.6448536269514722
	exact := func(n float64) Count { return Count{Estimate: n, Low: n, High: n} }
	cases := []struct {
		name                string
		estimate, low, high float64
		windows             []Count
		wantBaseline        float64
		wantLow, wantHigh   float64
	}{
		{
			name: "no baseline window: the excess is the estimate", estimate: 100, low: 90, high: 120,
			windows: nil, wantBaseline: 0, wantLow: 90, wantHigh: 120,
		},
		{
			// Poisson noise of a baseline of 25: sd 5.
			name: "exact baselines: Poisson noise only", estimate: 100, low: 100, high: 100,
			windows: []Count{exact(25), exact(25)}, wantBaseline: 25, wantLow: 75 - z*5, wantHigh: 75 + z*5,
		},
		{
			// Each window's interval is ±z·8 (se 8); the mean of two
			// carries se² 8²·2/4 = 32, beside the Poisson 25.
			name: "sampled baselines widen the excess interval", estimate: 100, low: 100, high: 100,
			windows:      []Count{{Estimate: 25, Low: 25 - z*8, High: 25 + z*8}, {Estimate: 25, Low: 25 - z*8, High: 25 + z*8}},
			wantBaseline: 25, wantLow: 75 - z*math.Sqrt(25+32), wantHigh: 75 + z*math.Sqrt(25+32),
		},
		{
			name: "windows that disagree: their spread", estimate: 100, low: 100, high: 100,
			windows: []Count{exact(10), exact(40)}, wantBaseline: 25, wantLow: 75 - z*math.Sqrt(450), wantHigh: 75 + z*math.Sqrt(450),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := Affected{Count: Count{Estimate: tc.estimate, Low: tc.low, High: tc.high}}
			a.setExcess(tc.windows, z)
			if math.Abs(a.Baseline-tc.wantBaseline) > 1e-9 || math.Abs(a.ExcessLow-tc.wantLow) > 1e-9 || math.Abs(a.ExcessHigh-tc.wantHigh) > 1e-9 {
				t.Errorf("baseline %g, excess [%g, %g], want %g, [%g, %g]", a.Baseline, a.ExcessLow, a.ExcessHigh, tc.wantBaseline, tc.wantLow, tc.wantHigh)
			}
		})
	}
}
