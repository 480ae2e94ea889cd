package logpattern

import (
	"math"
	"testing"
)

// binomialUpperTail sums P(X >= k) for X ~ Binomial(n, p) term by term.
func binomialUpperTail(k, n int, p float64) float64 {
	sum := 0.0
	for i := k; i <= n; i++ {
		lc, _ := math.Lgamma(float64(n + 1))
		li, _ := math.Lgamma(float64(i + 1))
		lni, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(lc - li - lni + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return sum
}

func TestLogBinomialUpperTail(t *testing.T) {
	tests := []struct {
		k, n int
		p    float64
	}{
		{1, 1, 0.5}, {5, 5, 0.5}, {3, 10, 0.5}, {8, 10, 0.5}, {0, 10, 0.3},
		{40, 40, 0.5}, {40, 52, 0.5}, {12, 200, 0.05}, {150, 300, 0.5},
		{4, 4, 1.0 / 11}, {290, 300, 0.9}, {1, 1000, 0.001}, {700, 1000, 0.5},
	}
	for _, tt := range tests {
		want := binomialUpperTail(tt.k, tt.n, tt.p)
		got := math.Exp(logBinomialUpperTail(tt.k, tt.n, tt.p))
		if math.Abs(got-want) > 1e-9*want+1e-300 {
			t.Errorf("P(X >= %d), X ~ B(%d, %g) = %g, want %g", tt.k, tt.n, tt.p, got, want)
		}
	}
	// Far in the tail, where the probability underflows: log of 2^-2000.
	if got, want := logBinomialUpperTail(2000, 2000, 0.5), -2000*math.Ln2; math.Abs(got-want) > 1e-6 {
		t.Errorf("log P(X >= 2000), X ~ B(2000, 0.5) = %g, want %g", got, want)
	}
	if got := logBinomialUpperTail(3, 2, 0.5); !math.IsInf(got, -1) {
		t.Errorf("k > n: %g, want -Inf", got)
	}
}

func TestZFromLogP(t *testing.T) {
	tests := []struct {
		p, z float64
	}{
		{0.5, 0}, {0.9, 0}, {0.025, 1.959963985}, {0.001, 3.090232306}, {1e-10, 6.361340902},
	}
	for _, tt := range tests {
		if got := zFromLogP(math.Log(tt.p)); math.Abs(got-tt.z) > 1e-6 {
			t.Errorf("z(%g) = %g, want %g", tt.p, got, tt.z)
		}
	}
	// Beyond float64: the z whose tail is e^-5000 satisfies it.
	z := zFromLogP(-5000)
	if got := logNormalUpperTail(z); math.Abs(got+5000) > 1e-6 {
		t.Errorf("z(e^-5000) = %g with log tail %g", z, got)
	}
	// The two formulas of logNormalUpperTail meet at 30.
	if a, b := logNormalUpperTail(29.999999), logNormalUpperTail(30); math.Abs(a-b) > 1e-3 {
		t.Errorf("log Q around 30: %g and %g", a, b)
	}
}
