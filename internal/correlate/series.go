package correlate

import (
	"fmt"
	"math"
	"time"

	"github.com/correlator/correlator/internal/store"
)

// series is one service's per-minute error counts and, when the service
// reports them, request counts: errors per request when requests are known
// (traffic changes are not incidents), errors per minute otherwise.
type series struct {
	start    time.Time
	errors   []float64 // errors[i] is the sampling-corrected count of minute start+i.
	requests []float64 // requests is nil when the service has no request metric.
}

func buildSeries(errs, reqs []store.Bucket, from, to time.Time) map[string]*series {
	n := int(to.Sub(from) / time.Minute)
	out := map[string]*series{}
	get := func(svc string) *series {
		s, ok := out[svc]
		if !ok {
			s = &series{start: from, errors: make([]float64, n)}
			out[svc] = s
		}
		return s
	}
	for _, b := range errs {
		if i := int(b.Minute.Sub(from) / time.Minute); i >= 0 && i < n {
			get(b.Service).errors[i] += b.Estimate
		}
	}
	for _, b := range reqs {
		s := get(b.Service)
		if s.requests == nil {
			s.requests = make([]float64, n)
		}
		if i := int(b.Minute.Sub(from) / time.Minute); i >= 0 && i < n {
			s.requests[i] += b.Estimate
		}
	}
	return out
}

// agg is the sum of errors and of exposure (requests, or minutes) over a
// range of minutes.
type agg struct{ errors, exposure float64 }

func (a agg) perUnit() float64 {
	if a.exposure == 0 {
		return 0
	}
	return a.errors / a.exposure
}

func (s *series) index(t time.Time) int {
	i := int(t.Sub(s.start) / time.Minute)
	return max(0, min(i, len(s.errors)))
}

// rate sums [from, to).
func (s *series) rate(from, to time.Time) agg {
	return s.sum(s.index(from), s.index(to))
}

func (s *series) sum(i, j int) agg {
	var a agg
	for k := i; k < j; k++ {
		a.errors += s.errors[k]
		if s.requests != nil {
			a.exposure += s.requests[k]
		} else {
			a.exposure++
		}
	}
	return a
}

func (s *series) rateName() string {
	if s.requests != nil {
		return "error rate"
	}
	return "errors"
}

func (s *series) formatRate(r float64) string {
	if s.requests != nil {
		switch p := r * 100; {
		case p == 0:
			return "0%"
		case p < 0.1:
			return fmt.Sprintf("%.3f%%", p)
		case p < 10:
			return fmt.Sprintf("%.2f%%", p)
		default:
			return fmt.Sprintf("%.0f%%", p)
		}
	}
	return fmt.Sprintf("%.1f/min", r)
}

// detectOnset finds the single change point of the error rate at or after
// from where the rate rises most convincingly: the split maximising the
// Poisson log-likelihood ratio of two rates over one. It reports false when
// no rise is significant (log-likelihood ratio below 10, about p < 1e-5).
func (s *series) detectOnset(from time.Time) (time.Time, bool) {
	return s.changePoint(from, 10, 1, 1)
}

// detectOnsetWeak is detectOnset with a low bar (log-likelihood ratio 3, a
// rate at least doubled, splits up to the last minute), for when the
// question itself says there are symptoms: an alert fired, maybe only
// minutes after they began, so the rise is short.
func (s *series) detectOnsetWeak(from time.Time) (time.Time, bool) {
	return s.changePoint(from, 3, 2, 0)
}

// changePoint is the split k ≥ from (and before the last tail minutes)
// whose rate after exceeds minRatio × the rate before and maximises the
// log-likelihood ratio, if that ratio reaches minLLR.
func (s *series) changePoint(from time.Time, minLLR, minRatio float64, tail int) (time.Time, bool) {
	if s == nil {
		return time.Time{}, false
	}
	n := len(s.errors)
	// Prefix sums make every split O(1).
	pe, px := make([]float64, n+1), make([]float64, n+1)
	for i := 0; i < n; i++ {
		pe[i+1] = pe[i] + s.errors[i]
		x := 1.0
		if s.requests != nil {
			x = s.requests[i]
		}
		px[i+1] = px[i] + x
	}
	if pe[n] == 0 || px[n] == 0 {
		return time.Time{}, false
	}
	ll := func(e, x float64) float64 {
		if e == 0 || x == 0 {
			return 0
		}
		return e * math.Log(e/x)
	}
	base := ll(pe[n], px[n])
	best, bestK := 0.0, -1
	for k := max(s.index(from), 3); k < n-tail; k++ {
		e1, x1 := pe[k], px[k]
		e2, x2 := pe[n]-pe[k], px[n]-px[k]
		if x1 == 0 || x2 == 0 || e2/x2 <= minRatio*e1/x1 {
			continue
		}
		if llr := ll(e1, x1) + ll(e2, x2) - base; llr > best {
			best, bestK = llr, k
		}
	}
	if bestK < 0 || best < minLLR {
		return time.Time{}, false
	}
	return s.start.Add(time.Duration(bestK) * time.Minute), true
}
