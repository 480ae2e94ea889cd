package impact

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// population draws the failure counts K of the affected entities among n
// active ones: heavy-tailed activity (Pareto, shape alpha, mean reqs
// requests in the window), each request failing with probability failP.
func population(r *rand.Rand, n int, alpha, reqs, failP float64) []int {
	var ks []int
	for range n {
		a := reqs * (alpha - 1) / alpha * math.Pow(1-r.Float64(), -1/alpha)
		k := int(binomial(r, poisson(r, a), failP))
		if k > 0 {
			ks = append(ks, k)
		}
	}
	return ks
}

func poisson(r *rand.Rand, l float64) int64 {
	if l > 50 {
		return max(0, int64(math.Round(l+math.Sqrt(l)*r.NormFloat64())))
	}
	lim, k, prod := math.Exp(-l), int64(0), 1.0
	for {
		prod *= r.Float64()
		if prod < lim {
			return k
		}
		k++
	}
}

// observe samples every failure at rate p and tabulates what was seen.
func observe(r *rand.Rand, ks []int, p float64) Frequencies {
	f := Frequencies{Rate: p}
	for _, k := range ks {
		x := binomial(r, int64(k), p)
		if x > 0 {
			f.Seen[min(x, MaxSeen)]++
		}
	}
	return f
}

func TestEstimateUnsampledIsExact(t *testing.T) {
	f := Frequencies{Rate: 1}
	f.Seen[1], f.Seen[3], f.Seen[MaxSeen] = 10, 4, 2
	c := Estimator{}.Estimate([]Frequencies{f})
	if c.Observed != 16 || c.Estimate != 16 || c.Low != 16 || c.High != 16 {
		t.Fatalf("unsampled: got %+v, want 16 with a zero-width interval", c)
	}
	if c := (Estimator{}).Estimate(nil); c != (Count{}) {
		t.Fatalf("no data: got %+v", c)
	}
}

func TestEstimateBounds(t *testing.T) {
	// Everyone seen once at rate 0.1: the most that can be missing is
	// everyone having failed once, 10× what was seen.
	f := Frequencies{Rate: 0.1}
	f.Seen[1] = 500
	c := Estimator{}.Estimate([]Frequencies{f})
	if c.Estimate < 500 || c.Estimate > 5000+1e-6 || c.High > 5000+1e-6 || c.Low < 500 {
		t.Fatalf("got %+v, want within [500, 5000]", c)
	}
	// Everyone seen dozens of times: nobody can have been missed.
	g := Frequencies{Rate: 0.5}
	g.Seen[40] = 300
	c = Estimator{}.Estimate([]Frequencies{g})
	if math.Abs(c.Estimate-300) > 1 || c.High-c.Low > 2 {
		t.Fatalf("frequent failers: got %+v, want 300", c)
	}
}

func TestEstimateRecoversSampledPopulations(t *testing.T) {
	cases := []struct {
		name            string
		p, reqs, failP  float64
		alpha           float64
		maxMedianRelErr float64
	}{
		{"half sampled, light users", 0.5, 3, 0.3, 1.6, 0.03},
		{"quarter sampled", 0.25, 20, 0.3, 1.6, 0.05},
		{"tenth sampled, busy users", 0.1, 60, 0.3, 1.2, 0.05},
		{"tenth sampled, all requests fail", 0.1, 20, 1, 2.5, 0.05},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 11))
			var errs []float64
			for range 7 {
				ks := population(r, 20000, tc.alpha, tc.reqs, tc.failP)
				c := Estimator{}.Estimate([]Frequencies{observe(r, ks, tc.p)})
				errs = append(errs, math.Abs(c.Estimate-float64(len(ks)))/float64(len(ks)))
			}
			slices.Sort(errs)
			if med := errs[len(errs)/2]; med > tc.maxMedianRelErr {
				t.Errorf("median relative error %.3f over %v, want ≤ %.2f", med, errs, tc.maxMedianRelErr)
			}
		})
	}
}

// TestIntervalCoverage draws populations over a grid of activity, failure
// probability and rate, and counts how often the 90% interval holds the
// truth: 81 draws know coverage to about ±0.035.
func TestIntervalCoverage(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	r := rand.New(rand.NewPCG(9, 5))
	covered, n := 0, 81
	for i := range n {
		ks := population(r, []int{3000, 10000}[i%2], []float64{1.2, 1.6, 2.5}[i%3], []float64{5, 20, 60}[(i/3)%3], []float64{0.3, 1, 0.1}[(i/9)%3])
		p := []float64{0.5, 0.25, 0.1}[(i/27)%3]
		c := Estimator{}.Estimate([]Frequencies{observe(r, ks, p)})
		if truth := float64(len(ks)); c.Low <= truth && truth <= c.High {
			covered++
		}
	}
	t.Logf("the 90%% interval covered the truth in %d of %d draws", covered, n)
	if cov := float64(covered) / float64(n); cov < 0.82 || cov > 0.97 {
		t.Errorf("the 90%% interval covered the truth in %d of %d draws, want 82%% to 97%%", covered, n)
	}
}

func TestEstimateAddsRates(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	a := population(r, 20000, 1.6, 20, 0.5)
	b := population(r, 20000, 1.6, 20, 0.5)
	exact := Frequencies{Rate: 1}
	for _, k := range a {
		exact.Seen[min(k, MaxSeen)]++
	}
	c := Estimator{}.Estimate([]Frequencies{exact, observe(r, b, 0.25)})
	truth := float64(len(a) + len(b))
	if math.Abs(c.Estimate-truth)/truth > 0.05 {
		t.Fatalf("got %+v, want about %v", c, truth)
	}
	if c.Low < float64(len(a)) {
		t.Fatalf("low %v below the exactly known %d", c.Low, len(a))
	}
}

func BenchmarkEstimate(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	f := observe(r, population(r, 50000, 1.6, 20, 0.3), 0.1)
	for b.Loop() {
		Estimator{}.Estimate([]Frequencies{f})
	}
}

// binomial draws from Binomial(n, p) by counting, or by a normal
// approximation when n·p(1−p) is large.
func binomial(r *rand.Rand, n int64, p float64) int64 {
	if v := float64(n) * p * (1 - p); v > 50 {
		k := math.Round(float64(n)*p + math.Sqrt(v)*r.NormFloat64())
		return int64(min(max(k, 0), float64(n)))
	}
	var k int64
	for range n {
		if r.Float64() < p {
			k++
		}
	}
	return k
}

// TestProfileMatchesScan checks the bisection against a plain scan of the
// profile likelihood: the interval's ends are where the scan crosses the
// cut-off.
func TestProfileMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, p := range []float64{0.5, 0.1, 0.02} {
		obs := observe(r, population(r, 5000, 1.6, 5, 0.5), p)
		f := fitNPMLE(obs.Seen[:], p)
		lo, hi := f.profile(0.9)
		s := float64(f.observed)
		m := newEM(f.seen, s, f.ker)
		ll := func(n float64) float64 { return f.profileLogLik(m, n) }
		best := ll(f.total)
		crit := 1.6448536269514722 * 1.6448536269514722 / 2
		scanLo, scanHi := f.total, f.total
		for n := s; n <= s/p; n += (s/p - s) / 400 {
			if best-ll(n) <= crit {
				scanLo, scanHi = min(scanLo, n), max(scanHi, n)
			}
		}
		step := (s/p - s) / 400
		if math.Abs(lo-scanLo) > step+0.01*f.total || math.Abs(hi-scanHi) > step+0.01*f.total {
			t.Errorf("p=%g: profile [%.1f, %.1f], scan [%.1f, %.1f] (estimate %.1f, step %.1f)", p, lo, hi, scanLo, scanHi, f.total, step)
		}
		if !(lo < f.total && f.total < hi) {
			t.Errorf("p=%g: estimate %.1f outside its interval [%.1f, %.1f]", p, f.total, lo, hi)
		}
	}
}

func TestEstimateRateZero(t *testing.T) {
	f := Frequencies{Rate: 0}
	f.Seen[1] = 10
	c := Estimator{}.Estimate([]Frequencies{f})
	for _, v := range []float64{c.Estimate, c.Low, c.High} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 10 {
			t.Fatalf("rate 0: %+v, want finite counts of at least the 10 seen", c)
		}
	}
}
