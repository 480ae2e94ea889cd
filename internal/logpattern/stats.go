package logpattern

import "math"

// logBinomialUpperTail returns log P(X >= k) for X ~ Binomial(n, p),
// accurate far into the tail where the probability itself underflows.
func logBinomialUpperTail(k, n int, p float64) float64 {
	switch {
	case k <= 0:
		return 0
	case k > n || p <= 0:
		return math.Inf(-1)
	case p >= 1:
		return 0
	}
	// P(X >= k) = I_p(k, n-k+1), the regularised incomplete beta
	// function (DLMF 8.17.5).
	return logIncompleteBeta(float64(k), float64(n-k+1), p)
}

// logIncompleteBeta returns log I_x(a, b) for a, b > 0 and 0 < x < 1,
// evaluating the continued fraction of DLMF 8.17.22 on the side where it
// converges fast and using the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) on
// the other.
func logIncompleteBeta(a, b, x float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	// log of x^a (1-x)^b / B(a,b)
	front := a*math.Log(x) + b*math.Log1p(-x) - (la + lb - lab)
	if x < (a+1)/(a+b+2) {
		return front + math.Log(betaFraction(a, b, x)) - math.Log(a)
	}
	other := math.Exp(front + math.Log(betaFraction(b, a, 1-x)) - math.Log(b))
	return math.Log1p(-math.Min(other, 1))
}

// betaFraction evaluates 1/(1+ d1/(1+ d2/(1+ ...))), the continued
// fraction of I_x(a,b), with the modified Lentz method, where
//
//	d(2m+1) = -(a+m)(a+b+m)x / ((a+2m)(a+2m+1))
//	d(2m)   = m(b-m)x / ((a+2m-1)(a+2m))
func betaFraction(a, b, x float64) float64 {
	const (
		tiny    = 1e-300
		eps     = 1e-14
		maxIter = 1 << 20
	)
	clamp := func(v float64) float64 {
		if math.Abs(v) < tiny {
			return tiny
		}
		return v
	}
	c := 1.0
	d := 1 / clamp(1-(a+b)*x/(a+1))
	h := d
	for m := 1.0; m < maxIter; m++ {
		even := m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m))
		d = 1 / clamp(1+even*d)
		c = clamp(1 + even/c)
		h *= d * c
		odd := -(a + m) * (a + b + m) * x / ((a + 2*m) * (a + 2*m + 1))
		d = 1 / clamp(1+odd*d)
		c = clamp(1 + odd/c)
		step := d * c
		h *= step
		if math.Abs(step-1) < eps {
			break
		}
	}
	return h
}

// zFromLogP returns the z such that a standard normal variable exceeds z
// with probability exp(logp): the significance expressed in standard
// deviations. It is 0 for probabilities of one half and more.
func zFromLogP(logp float64) float64 {
	if !(logp < -math.Ln2) {
		return 0
	}
	if math.IsInf(logp, -1) {
		return math.Inf(1)
	}
	// The upper tail Q(z) <= exp(-z²/2)/2 bounds z; bisect on the
	// monotone log Q.
	lo, hi := 0.0, math.Sqrt(-2*(logp+math.Ln2))+1
	for range 200 {
		mid := (lo + hi) / 2
		if logNormalUpperTail(mid) > logp {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-9 {
			break
		}
	}
	return (lo + hi) / 2
}

// logNormalUpperTail returns log Q(z), Q(z) = P(N(0,1) > z), for z >= 0.
func logNormalUpperTail(z float64) float64 {
	if z < 30 {
		return math.Log(0.5 * math.Erfc(z/math.Sqrt2))
	}
	// Asymptotic expansion: Q(z) ~ φ(z)/z (1 - 1/z² + 3/z⁴).
	z2 := z * z
	return -z2/2 - math.Log(z) - 0.5*math.Log(2*math.Pi) + math.Log1p(-1/z2+3/(z2*z2))
}
