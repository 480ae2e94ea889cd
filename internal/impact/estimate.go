package impact

import (
	"math"
	"slices"
)

// MaxSeen is the largest per-entity event count a frequency table keeps
// apart; counts above it share its bin. An entity seen that often was
// certainly going to be seen, so where exactly its count lies says nothing
// about the entities that were missed.
const MaxSeen = 64

// Frequencies is what the store returns for one sampling rate: how many
// entities (users or customers) were seen exactly x times, x = 1..MaxSeen
// (Seen[x]; Seen[MaxSeen] holds "MaxSeen or more"), among the failures
// that were kept with probability Rate. Seen[0] is unused.
type Frequencies struct {
	Rate float64
	Seen [MaxSeen + 1]uint64
}

// Observed is the number of distinct entities seen.
func (f *Frequencies) Observed() uint64 {
	var n uint64
	for _, v := range f.Seen[1:] {
		n += v
	}
	return n
}

// Count is an estimated number of distinct affected entities: Observed
// were seen; Estimate corrects for sampling, with a Level (0.9) interval
// [Low, High]. Unsampled data gives Estimate = Low = High = Observed.
type Count struct {
	Observed uint64  `json:"observed"`
	Estimate float64 `json:"estimate"`
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
}

// Estimator turns frequency tables into a Count.
//
// The model: an affected entity failed K ≥ 1 times in the window, K
// drawn from an unknown distribution π; each failure was kept with the
// known sampling rate p, so it was seen X ~ Binomial(K, p) times and missed
// with probability (1 − p)^K. π is fitted to the observed frequencies by
// nonparametric maximum likelihood (an EM over a grid of K values, the
// missed entities being the missing data), and the number missed is
// Observed·q₀/(1 − q₀), q₀ being the fitted probability of X = 0. K ≥ 1
// bounds the answer: between Observed (everyone failed often) and
// Observed/p (everyone failed once).
//
// The interval is the profile likelihood's: every total N the data cannot
// reject at the level, π being refitted for each N. It needs no tuning and
// is honest about what sampled data cannot tell: when most entities were
// seen once, "many failed once" and "fewer failed a few times" fit about
// equally well, the profile is flat and the interval wide.
type Estimator struct {
	// Level is the interval's coverage, default 0.9.
	Level float64
}

func (e Estimator) level() float64 {
	if e.Level <= 0 || e.Level >= 1 {
		return 0.9
	}
	return e.Level
}

// MinRate is the smallest sampling rate the estimator works with; the
// store clamps lower rates (and a 0) to it.
const MinRate = 1e-6

// Estimate combines the tables of every sampling rate. An entity belongs
// to exactly one table (the store files it under the highest rate it was
// seen at), so the estimates add up; the intervals' ends are added too,
// which makes the interval of several sampled tables conservative (wider
// than the level).
func (e Estimator) Estimate(tables []Frequencies) Count {
	var c Count
	for _, t := range tables {
		obs := t.Observed()
		if obs == 0 {
			continue
		}
		c.Observed += obs
		if !(t.Rate > 0) {
			t.Rate = MinRate // the store clamps rates; a caller may not have
		}
		if t.Rate >= 1 {
			c.Estimate += float64(obs)
			c.Low += float64(obs)
			c.High += float64(obs)
			continue
		}
		f := fitNPMLE(t.Seen[:], t.Rate)
		lo, hi := f.profile(e.level())
		c.Estimate += f.total
		c.Low += lo
		c.High += hi
	}
	return c
}

// fit is the NPMLE of one sampled table.
type fit struct {
	rate     float64
	seen     []uint64
	observed uint64
	total    float64   // estimated entities, seen and missed
	pi       []float64 // pi[j]: fitted P(K = k_j)
	ker      [][]float64
}

// grid is the set of K values π may put weight on: every count up to 30,
// then steps of 15%, far enough that the largest count seen is no
// surprise at this rate.
func grid(p float64, maxSeen int) []float64 {
	hi := float64(maxSeen+1)/p*3 + 10
	var g []float64
	for k := 1.0; k <= 30 && k <= hi; k++ {
		g = append(g, k)
	}
	for k := 30.0 * 1.15; k < hi*1.15; k *= 1.15 {
		g = append(g, math.Round(k))
	}
	return slices.Compact(g)
}

// kernel[j][x] is P(X = x | K = grid[j]) at rate p; the last bin is
// P(X ≥ MaxSeen).
func kernel(g []float64, p float64) [][]float64 {
	ker := make([][]float64, len(g))
	lp, lq := math.Log(p), math.Log1p(-p)
	for j, k := range g {
		row := make([]float64, MaxSeen+1)
		lk, _ := math.Lgamma(k + 1)
		sum := 0.0
		for x := 0; x < MaxSeen && float64(x) <= k; x++ {
			lx, _ := math.Lgamma(float64(x) + 1)
			lkx, _ := math.Lgamma(k - float64(x) + 1)
			row[x] = math.Exp(lk - lx - lkx + float64(x)*lp + (k-float64(x))*lq)
			sum += row[x]
		}
		row[MaxSeen] = max(0, 1-sum)
		ker[j] = row
	}
	return ker
}

// fitNPMLE fits π to seen (seen[x], x ≥ 1, entities seen x times) at rate
// p by EM and returns the fit.
func fitNPMLE(seen []uint64, p float64) fit {
	f := fit{rate: p, seen: seen}
	maxSeen := 0
	for x := 1; x < len(seen); x++ {
		f.observed += seen[x]
		if seen[x] > 0 {
			maxSeen = x
		}
	}
	if f.observed == 0 {
		return f
	}
	g := grid(p, maxSeen)
	f.ker = kernel(g, p)
	f.pi = make([]float64, len(g))
	for j := range f.pi {
		f.pi[j] = 1 / float64(len(g))
	}
	m := newEM(seen, float64(f.observed), f.ker)
	m.solve(f.pi, 500, 1e-10)
	m.mix(f.pi)
	f.total = float64(f.observed) / (1 - m.q[0])
	return f
}

// profile returns the totals the data cannot reject at the level: every
// N whose profile log-likelihood (π refitted with exactly N − seen missed)
// is within half the χ²₁ quantile of the best, found by bisection on each
// side of the estimate, within what K ≥ 1 allows.
func (f fit) profile(level float64) (lo, hi float64) {
	z := normalQuantile(0.5 + level/2)
	crit := z * z / 2
	s := float64(f.observed)
	m := newEM(f.seen, s, f.ker)
	at := func(total float64) float64 { return f.profileLogLik(m, total) }
	best := at(f.total)
	search := func(inside, outside float64) float64 {
		if best-at(outside) <= crit {
			return outside
		}
		for range 14 {
			mid := (inside + outside) / 2
			if best-at(mid) <= crit {
				inside = mid
			} else {
				outside = mid
			}
			if math.Abs(outside-inside) < 1e-3*f.total+0.5 {
				break
			}
		}
		return (inside + outside) / 2
	}
	return search(f.total, s), search(f.total, s/f.rate)
}

// profileLogLik is the profile log-likelihood of total entities: π
// refitted on m (an em over f's table) with exactly total − seen missed.
func (f fit) profileLogLik(m *em, total float64) float64 {
	m.missed = total - float64(f.observed)
	// Start near the best fit, but never at zero: EM cannot move weight
	// to where there is none.
	pi := slices.Clone(f.pi)
	for j := range pi {
		pi[j] = 0.9*pi[j] + 0.1/float64(len(pi))
	}
	return m.solve(pi, 500, 1e-10)
}

// normalQuantile is the standard normal's q-quantile.
func normalQuantile(q float64) float64 { return math.Sqrt2 * math.Erfinv(2*q-1) }

// em is one EM problem: fit π over a kernel to seen frequencies, by the
// likelihood conditional on being seen. Only bin 0 (the missed) and the
// bins something was seen in enter the likelihood, so the kernel is kept
// for those alone: a few columns instead of MaxSeen+1.
type em struct {
	s float64 // entities seen
	// missed, when not negative, fixes the number of missed entities:
	// the likelihood is then the full one of s seen among s+missed.
	missed float64
	n      []float64 // n[b]: entities in bin b (n[0], the missed, is computed)
	ker    [][]float64
	q, c   []float64 // scratch: q[b] over the kept bins, c over the grid
}

func newEM(seen []uint64, s float64, ker [][]float64) *em {
	bins := []int{0}
	n := []float64{0}
	for x := 1; x < len(seen) && x <= MaxSeen; x++ {
		if seen[x] > 0 {
			bins = append(bins, x)
			n = append(n, float64(seen[x]))
		}
	}
	m := &em{s: s, n: n, missed: -1, ker: make([][]float64, len(ker)), q: make([]float64, len(bins)), c: make([]float64, len(ker))}
	for j, row := range ker {
		m.ker[j] = make([]float64, len(bins))
		for b, x := range bins {
			m.ker[j][b] = row[x]
		}
	}
	return m
}

// solve runs EM from pi (updated in place) to convergence and returns the
// log-likelihood. EM for a mixing distribution creeps; SQUAREM (Varadhan
// and Roland, 2008) extrapolates two EM steps at a time and falls back to
// plain EM whenever the jump lowers the likelihood, keeping EM's
// guarantee of never going down.
func (m *em) solve(pi []float64, maxIter int, tol float64) float64 {
	n := len(pi)
	p1, p2, jump := make([]float64, n), make([]float64, n), make([]float64, n)
	ll := m.loglik(pi)
	for range maxIter {
		m.step(pi, p1)
		m.step(p1, p2)
		var rr, vv float64
		for j := range pi {
			r, v := p1[j]-pi[j], p2[j]-2*p1[j]+pi[j]
			rr += r * r
			vv += v * v
		}
		if vv == 0 {
			copy(pi, p2)
			return m.loglik(pi)
		}
		alpha := min(-math.Sqrt(rr/vv), -1)
		sum := 0.0
		for j := range pi {
			r, v := p1[j]-pi[j], p2[j]-2*p1[j]+pi[j]
			jump[j] = max(0, pi[j]-2*alpha*r+alpha*alpha*v)
			sum += jump[j]
		}
		for j := range jump {
			jump[j] /= sum
		}
		m.step(jump, jump)
		next := m.loglik(jump)
		if l2 := m.loglik(p2); !(next >= l2) {
			copy(jump, p2)
			next = l2
		}
		copy(pi, jump)
		done := next-ll < tol*math.Max(1, math.Abs(ll))
		ll = next
		if done {
			break
		}
	}
	return ll
}

// mix sets q to the distribution of X, over the kept bins, under pi.
func (m *em) mix(pi []float64) {
	clear(m.q)
	for j, row := range m.ker {
		if w := pi[j]; w != 0 {
			for b, k := range row {
				m.q[b] += w * k
			}
		}
	}
}

// loglik is the log-likelihood of the seen frequencies under pi,
// conditional on being seen.
func (m *em) loglik(pi []float64) float64 {
	m.mix(pi)
	var ll float64
	if m.missed < 0 {
		ll = -m.s * math.Log(1-m.q[0])
	} else {
		a, _ := math.Lgamma(m.s + m.missed + 1)
		b, _ := math.Lgamma(m.missed + 1)
		ll = a - b + m.missed*math.Log(max(m.q[0], 1e-300))
	}
	for b := 1; b < len(m.n); b++ {
		ll += m.n[b] * math.Log(max(m.q[b], 1e-300))
	}
	return ll
}

// step is one EM step from pi into out (which may be pi).
func (m *em) step(pi, out []float64) {
	m.mix(pi)
	missed := m.missed
	if missed < 0 {
		missed = m.s * m.q[0] / (1 - m.q[0])
	}
	total := m.s + missed
	// E step: every entity, seen or missed, is shared among the K values
	// in proportion to how well each explains its count.
	m.n[0] = missed
	for b := range m.q {
		if m.q[b] > 0 {
			m.q[b] = m.n[b] / m.q[b] // the weight of each of b's entities
		}
	}
	for j, row := range m.ker {
		var c float64
		for b, k := range row {
			c += m.q[b] * k
		}
		m.c[j] = c * pi[j]
	}
	// M step.
	for j := range out {
		out[j] = m.c[j] / total
	}

}
