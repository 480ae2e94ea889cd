package correlate

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// Metric names the engine reads besides the request count.
const (
	metricErrors  = "errors"
	metricLatency = "latency_p95_ms"
)

// saturationMetrics are gauges whose steady climb after a change points at
// a leak or exhaustion (the slow regressions).
var saturationMetrics = []string{"memory_usage_bytes", "saturation", "cpu_usage", "memory_bytes"}

// window is everything one question reads from the store, loaded once.
type window struct {
	q               Query
	from, to, rfrom time.Time
	topo            map[string][]string
	scope           []string
	depth           map[string]int // depth is the hop count from q.Service.
	changes         []event.Change
	series          map[string]*series // error rates of the scope, per service
	all             map[string]*series // error counts of every service
	metrics         map[string]map[string]map[string]*keyed
	fps             [][]store.Fingerprint // indexed like changes
	// newErrors are the errors first seen in the window in any service.
	newErrors []store.NewError
	// peers holds, per service in scope and callee, the failed calls per
	// minute (sampling-corrected); known is every service of the topology,
	// so that any other callee is a third party.
	peers map[string]map[string][]float64
	known map[string]bool
	// onsetNone is set when no symptom onset was given or found;
	// onsetDetected when it was detected (to the minute) rather than given.
	onsetNone, onsetDetected bool
	// symExt caches symptomExternal, which is the same for every candidate.
	symExt *symptomExt
	// own holds, per service in scope, when its own error rate, latency
	// and saturation began to shift (zero: no shift found).
	own map[string]ownShift
	// logs holds the log lines of each service whose changes compare
	// them, mined once (see loadLogs).
	logs map[string]*serviceLogs
}

// ownShift is when each signal of one service began to shift.
type ownShift struct{ errors, latency, saturation time.Time }

// keyed is one metric of one service and series key, per minute.
type keyed struct {
	sum, avg []float64 // NaN where no point
}

// WhatChanged ranks the changes of q.Service and its transitive
// dependencies in [q.At-q.Lookback, q.At) and says whether one explains the
// symptoms.
func (e *Engine) WhatChanged(ctx context.Context, q Query) (*Answer, error) {
	if q.Service == "" {
		return nil, fmt.Errorf("what changed: no service given")
	}
	if q.At.IsZero() {
		q.At = time.Now()
	}
	if q.Lookback <= 0 {
		q.Lookback = 2 * time.Hour
	}
	q.At = q.At.UTC()
	w, err := e.load(ctx, q)
	if err != nil {
		return nil, err
	}
	ans := &Answer{Service: q.Service, Window: Window{w.from, w.to}, Scope: w.scope, Candidates: []Candidate{}}
	switch {
	case !q.Onset.IsZero():
		ans.Onset, ans.OnsetSource = q.Onset.UTC(), "given"
	default:
		ans.Onset, ans.OnsetSource = w.detectOnset()
	}
	w.onsetNone = ans.OnsetSource == "none"
	w.onsetDetected = strings.HasPrefix(ans.OnsetSource, "detected")
	if !e.opt.Baseline {
		w.logs = e.loadLogs(ctx, w, ans.Onset)
	}
	for i, c := range w.changes {
		ans.Candidates = append(ans.Candidates, e.candidate(ctx, w, ans.Onset, c, w.fps[i]))
	}
	sort.SliceStable(ans.Candidates, func(i, j int) bool {
		a, b := ans.Candidates[i], ans.Candidates[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.Change.Time.After(b.Change.Time)
	})
	for i := range ans.Candidates {
		ans.Candidates[i].Rank = i + 1
	}
	e.verdict(w, ans)
	return ans, nil
}

func (e *Engine) load(ctx context.Context, q Query) (*window, error) {
	w := &window{q: q, from: q.At.Add(-q.Lookback), to: q.At}
	var err error
	if w.topo, err = e.r.Topology(ctx); err != nil {
		return nil, err
	}
	w.scope = Dependencies(w.topo, q.Service)
	w.depth = depths(w.topo, q.Service)
	if w.changes, err = e.r.Changes(ctx, w.scope, w.from, w.to); err != nil {
		return nil, err
	}
	// Rates are read from further back than the window, so that the
	// earliest change has a baseline too.
	w.rfrom = w.from.Add(-2 * time.Hour).Truncate(time.Minute)
	// The engine needs every service's error counts (for surges out of a
	// change's reach), so it reads them once and takes the scope's from
	// them; the baseline reads the scope alone.
	var errs, all []store.Bucket
	var err2 error
	if e.opt.Baseline {
		errs, err2 = e.r.ErrorsPerMinute(ctx, w.scope, w.rfrom, w.to)
	} else {
		all, err2 = e.r.AllErrorsPerMinute(ctx, w.rfrom, w.to)
		inScope := map[string]bool{}
		for _, s := range w.scope {
			inScope[s] = true
		}
		for _, b := range all {
			if inScope[b.Service] {
				errs = append(errs, b)
			}
		}
	}
	if err2 != nil {
		return nil, err2
	}
	reqs, err := e.r.MetricPerMinute(ctx, e.opt.RequestsMetric, w.scope, w.rfrom, w.to)
	if err != nil {
		return nil, err
	}
	w.series = buildSeries(errs, reqs, w.rfrom, w.to)
	if e.opt.Baseline {
		w.fps, err = e.attributeFingerprints(ctx, w.changes, w.from, w.to)
		return w, err
	}
	names := append([]string{e.opt.RequestsMetric, metricErrors, metricLatency}, saturationMetrics...)
	mb, err := e.r.MetricsByKey(ctx, w.scope, names, w.rfrom, w.to)
	if err != nil {
		return nil, err
	}
	w.metrics = buildKeyed(mb, w.rfrom, w.to)
	w.preferMetricErrors(e.opt.RequestsMetric)
	w.all = buildSeries(all, nil, w.rfrom, w.to)
	if w.newErrors, err = e.r.NewErrorsAll(ctx, w.from.Add(-e.opt.NewFingerprintLookback), w.from, w.to); err != nil {
		return nil, err
	}
	pb, err := e.r.PeerErrorsPerMinute(ctx, w.scope, w.rfrom, w.to)
	if err != nil {
		return nil, err
	}
	w.buildPeers(pb)
	w.own = map[string]ownShift{}
	for _, svc := range w.scope {
		var o ownShift
		if t, ok := w.series[svc].detectOnset(w.from); ok {
			o.errors = t
		}
		if lat := w.latency(svc); lat != nil {
			if i, ok := meanShift(lat, w.idx(w.from)); ok {
				o.latency = w.rfrom.Add(time.Duration(i) * time.Minute)
			}
		}
		if sat := w.saturation(svc); sat != nil {
			if i, ok := climbStart(sat, w.idx(w.from)); ok {
				o.saturation = w.rfrom.Add(time.Duration(i) * time.Minute)
			}
		}
		w.own[svc] = o
	}
	w.fps, err = e.attributeFingerprints(ctx, w.changes, w.from, w.to)
	return w, err
}

// saturation is the first saturation gauge the service reports (see
// gauge), nil when it reports none.
func (w *window) saturation(svc string) []float64 {
	for _, name := range saturationMetrics {
		if v := w.gauge(svc, name); v != nil {
			return v
		}
	}
	return nil
}

// gauge sums one gauge of the service over its series per minute (NaN
// where no series has a point), nil when the service does not report it.
func (w *window) gauge(svc, name string) []float64 {
	byKey := w.metrics[svc][name]
	if len(byKey) == 0 {
		return nil
	}
	v := nanSlice(int(w.to.Sub(w.rfrom) / time.Minute))
	for _, k := range byKey {
		for i, x := range k.avg {
			if !math.IsNaN(x) {
				if math.IsNaN(v[i]) {
					v[i] = 0
				}
				v[i] += x
			}
		}
	}
	return v
}

// climbStart finds where a flat gauge starts climbing steadily: the knee
// k of a flat-then-linear fit (v = a before k, a + b·(i−k) after) that
// explains the series far better than a flat line, with a rise of at least
// 20% by the end. It looks at knees from start on.
func climbStart(v []float64, start int) (int, bool) {
	var xs []int
	var ys []float64
	for i, y := range v {
		if !math.IsNaN(y) {
			xs = append(xs, i)
			ys = append(ys, y)
		}
	}
	n := len(ys)
	if n < 30 {
		return 0, false
	}
	var mean float64
	for _, y := range ys {
		mean += y
	}
	mean /= float64(n)
	var sseFlat float64
	for _, y := range ys {
		sseFlat += (y - mean) * (y - mean)
	}
	best, bestK, bestB, bestA := math.Inf(1), -1, 0.0, 0.0
	for j := 10; j < n-10; j++ {
		k := xs[j]
		if k < start {
			continue
		}
		// Least squares of y = a + b·max(0, x−k).
		var sx, sy, sxx, sxy float64
		for i, y := range ys {
			x := math.Max(0, float64(xs[i]-k))
			sx += x
			sy += y
			sxx += x * x
			sxy += x * y
		}
		fn := float64(n)
		den := fn*sxx - sx*sx
		if den == 0 {
			continue
		}
		b := (fn*sxy - sx*sy) / den
		a := (sy - b*sx) / fn
		var sse float64
		for i, y := range ys {
			r := y - a - b*math.Max(0, float64(xs[i]-k))
			sse += r * r
		}
		if sse < best {
			best, bestK, bestB, bestA = sse, k, b, a
		}
	}
	if bestK < 0 || bestB <= 0 || bestA <= 0 {
		return 0, false
	}
	rise := bestB * float64(xs[n-1]-bestK) / bestA
	return bestK, rise > 0.2 && sseFlat > 4*best
}

func buildKeyed(mb []store.MetricBucket, from, to time.Time) map[string]map[string]map[string]*keyed {
	n := int(to.Sub(from) / time.Minute)
	out := map[string]map[string]map[string]*keyed{}
	for _, b := range mb {
		i := int(b.Minute.Sub(from) / time.Minute)
		if i < 0 || i >= n {
			continue
		}
		byName := out[b.Service]
		if byName == nil {
			byName = map[string]map[string]*keyed{}
			out[b.Service] = byName
		}
		byKey := byName[b.Name]
		if byKey == nil {
			byKey = map[string]*keyed{}
			byName[b.Name] = byKey
		}
		k := byKey[b.Key]
		if k == nil {
			k = &keyed{sum: nanSlice(n), avg: nanSlice(n)}
			byKey[b.Key] = k
		}
		k.sum[i], k.avg[i] = b.Sum, b.Avg
	}
	return out
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

// preferMetricErrors counts a service's errors from its "errors" metric
// when it reports both that and request counts: a failed-request counter
// sees every failure, sampled error events do not, and some services send
// no error events at all.
func (w *window) preferMetricErrors(requests string) {
	for svc, byName := range w.metrics {
		em, rm := byName[metricErrors], byName[requests]
		if em == nil || rm == nil {
			continue
		}
		s := w.series[svc]
		if s == nil {
			s = &series{start: w.rfrom, errors: make([]float64, int(w.to.Sub(w.rfrom)/time.Minute))}
			w.series[svc] = s
		}
		errs := make([]float64, len(s.errors))
		reqs := make([]float64, len(s.errors))
		for _, k := range em {
			addFinite(errs, k.sum)
		}
		for _, k := range rm {
			addFinite(reqs, k.sum)
		}
		s.errors, s.requests = errs, reqs
	}
}

func addFinite(dst, src []float64) {
	for i, v := range src {
		if !math.IsNaN(v) {
			dst[i] += v
		}
	}
}

// latency is the service's p95 latency per minute, averaged over its
// series (NaN where none).
func (w *window) latency(svc string) []float64 {
	byKey := w.metrics[svc][metricLatency]
	if len(byKey) == 0 {
		return nil
	}
	n := int(w.to.Sub(w.rfrom) / time.Minute)
	out := nanSlice(n)
	for i := 0; i < n; i++ {
		var sum float64
		var c int
		for _, k := range byKey {
			if v := k.avg[i]; !math.IsNaN(v) {
				sum += v
				c++
			}
		}
		if c > 0 {
			out[i] = sum / float64(c)
		}
	}
	return out
}

func (w *window) idx(t time.Time) int {
	n := int(w.to.Sub(w.rfrom) / time.Minute)
	return max(0, min(int(t.Sub(w.rfrom)/time.Minute), n))
}

// meanRange is the mean of the finite values of v in [from, to).
func (w *window) meanRange(v []float64, from, to time.Time) (float64, int) {
	var sum float64
	var n int
	for i := w.idx(from); i < w.idx(to); i++ {
		if !math.IsNaN(v[i]) {
			sum += v[i]
			n++
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return sum / float64(n), n
}

// detectOnset finds when the symptomatic service's trouble began: the
// error-rate change point, else a latency change point.
func (w *window) detectOnset() (time.Time, string) {
	if on, ok := w.series[w.q.Service].detectOnset(w.from); ok {
		return on, "detected"
	}
	if lat := w.latency(w.q.Service); lat != nil {
		if i, ok := meanShift(lat, w.idx(w.from)); ok {
			return w.rfrom.Add(time.Duration(i) * time.Minute), "detected"
		}
	}
	if on, ok := w.series[w.q.Service].detectOnsetWeak(w.from); ok {
		return on, "detected (weak)"
	}
	// The asked service shows nothing clear (its alert may count what a
	// dependency fails): the earliest shift of a service in its scope.
	var first time.Time
	for _, svc := range w.scope {
		for _, t := range []time.Time{w.own[svc].errors, w.own[svc].latency} {
			if !t.IsZero() && !t.Before(w.from) && (first.IsZero() || t.Before(first)) {
				first = t
			}
		}
	}
	if !first.IsZero() {
		return first, "detected (dependency)"
	}
	return w.to, "none"
}

// meanShift finds the split at or after start that best separates a lower
// mean before from a higher one after (Welch-style t statistic over the
// finite values); it reports false unless the rise is large and clear.
func meanShift(v []float64, start int) (int, bool) {
	type pt struct {
		i int
		x float64
	}
	var pts []pt
	for i, x := range v {
		if !math.IsNaN(x) {
			pts = append(pts, pt{i, x})
		}
	}
	n := len(pts)
	if n < 10 {
		return 0, false
	}
	ps, pq := make([]float64, n+1), make([]float64, n+1)
	for i, p := range pts {
		ps[i+1] = ps[i] + p.x
		pq[i+1] = pq[i] + p.x*p.x
	}
	best, bestI := 0.0, -1
	for k := 5; k < n-2; k++ {
		if pts[k].i < start {
			continue
		}
		n1, n2 := float64(k), float64(n-k)
		m1, m2 := ps[k]/n1, (ps[n]-ps[k])/n2
		v1 := pq[k]/n1 - m1*m1
		v2 := (pq[n]-pq[k])/n2 - m2*m2
		se := math.Sqrt(math.Max(v1, 1e-9)/n1 + math.Max(v2, 1e-9)/n2)
		t := (m2 - m1) / se
		if m2 > 1.3*m1 && t > best {
			best, bestI = t, pts[k].i
		}
	}
	return bestI, bestI >= 0 && best > 8
}

// depths is the hop count from root over the dependency edges.
func depths(topo map[string][]string, root string) map[string]int {
	d := map[string]int{root: 0}
	queue := []string{root}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, x := range topo[s] {
			if _, ok := d[x]; !ok {
				d[x] = d[s] + 1
				queue = append(queue, x)
			}
		}
	}
	return d
}

// dependents is svc and every service that depends on it, transitively:
// where a change to svc can show symptoms.
func dependents(topo map[string][]string, svc string) map[string]bool {
	rev := map[string][]string{}
	for s, deps := range topo {
		for _, d := range deps {
			rev[d] = append(rev[d], s)
		}
	}
	out := map[string]bool{svc: true}
	queue := []string{svc}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, x := range rev[s] {
			if !out[x] {
				out[x] = true
				queue = append(queue, x)
			}
		}
	}
	return out
}

// verdict blames the top candidate or abstains, and says so.
func (e *Engine) verdict(w *window, a *Answer) {
	if len(a.Candidates) == 0 {
		a.Verdict = VerdictNoChanges
		a.Summary = fmt.Sprintf("No changes in %s or its dependencies between %s and %s.", w.q.Service, w.from.Format("15:04"), w.to.Format("15:04 MST"))
		return
	}
	top := a.Candidates[0]
	threshold := e.model.AbstainBelow
	if e.opt.Baseline || top.Score >= threshold {
		a.Verdict = VerdictCause
		why := ""
		if ev, ok := strongestEvidence(top); ok {
			why = "; " + ev.Summary
		}
		a.Summary = fmt.Sprintf("Most likely cause: %s (score %.2f)%s.", describe(top.Change), top.Score, why)
		return
	}
	a.Verdict = VerdictAbstain
	var last *event.Change
	for i := range w.changes {
		if !w.changes[i].Time.After(a.Onset) {
			last = &w.changes[i]
		}
	}
	why := ""
	if w.symExt != nil && w.symExt.share >= 0.5 {
		why = fmt.Sprintf(" %.0f%% of the errors %s added at the onset are failed calls to %s, which is not one of our services: check its status.",
			100*w.symExt.share, w.symExt.svc, w.symExt.peer)
	} else if r := w.trafficRatio(a.Onset, a.OnsetSource == "none"); r >= 1.5 {
		why = fmt.Sprintf(" Traffic to %s rose %.1f× at the onset: more load, not a defect.", w.q.Service, r)
	}
	defer func() { a.Summary += why }()
	switch {
	case a.OnsetSource == "none":
		a.Summary = fmt.Sprintf("No change explains this: no clear symptom onset in %s, and the strongest candidate, %s, scores only %.2f.", w.q.Service, describe(top.Change), top.Score)
	case last == nil:
		a.Summary = fmt.Sprintf("No change explains this: symptoms began at %s, before every change in scope.", a.Onset.Format("15:04 MST"))
	default:
		a.Summary = fmt.Sprintf("No change explains this: symptoms began at %s, %s after the last change in scope (%s), and no change's service shows them first (best score %.2f).",
			a.Onset.Format("15:04 MST"), humanDuration(a.Onset.Sub(last.Time)), describe(*last), top.Score)
	}
}

func describe(c event.Change) string {
	parts := []string{string(c.Kind)}
	if c.Version != "" {
		parts = append(parts, c.Version)
	}
	parts = append(parts, "of "+c.Service)
	if c.Kind == event.ChangeFlag || c.Kind == event.ChangeConfig {
		if c.Title != "" {
			parts = append(parts, fmt.Sprintf("(%s)", truncate(c.Title, 60)))
		}
	}
	return strings.Join(parts, " ")
}

// strongestEvidence picks the evidence that best says why a candidate is
// blamed, for the one-line summary: the most specific kinds first, and an
// error-rate line only when the rate rose.
func strongestEvidence(c Candidate) (Evidence, bool) {
	for _, kind := range []string{"canary", "new_error", "error_rate", "shift", "saturation", "latency", "logs", "rollback"} {
		for _, ev := range c.Evidence {
			if ev.Kind != kind || (kind == "error_rate" && ev.Values["ratio"] <= 1.5) {
				continue
			}
			return ev, true
		}
	}
	return Evidence{}, false
}

func (w *window) buildPeers(pb []store.PeerBucket) {
	n := int(w.to.Sub(w.rfrom) / time.Minute)
	w.peers = map[string]map[string][]float64{}
	for _, b := range pb {
		i := int(b.Minute.Sub(w.rfrom) / time.Minute)
		if i < 0 || i >= n {
			continue
		}
		byPeer := w.peers[b.Service]
		if byPeer == nil {
			byPeer = map[string][]float64{}
			w.peers[b.Service] = byPeer
		}
		v := byPeer[b.Peer]
		if v == nil {
			v = make([]float64, n)
			byPeer[b.Peer] = v
		}
		v[i] += b.Estimate
	}
	w.known = map[string]bool{}
	for svc, deps := range w.topo {
		w.known[svc] = true
		for _, d := range deps {
			w.known[d] = true
		}
	}
}

// thirdParty reports whether a callee named by a failed call is none of
// our services. A cluster-internal host names a service: "inventory:8080",
// "inventory.prod", "inventory.prod.svc.cluster.local"; a public host
// whose first label happens to be a service's name ("api.stripe.com") does
// not.
func (w *window) thirdParty(peer string) bool {
	host, _, _ := strings.Cut(peer, ":")
	if w.known[host] {
		return false
	}
	svc, rest, ok := strings.Cut(host, ".")
	if !ok || !w.known[svc] {
		return true
	}
	internal := !strings.Contains(rest, ".") || strings.Contains(rest, ".svc") || strings.HasSuffix(rest, ".local") || strings.HasSuffix(rest, ".internal")
	return !internal
}

// excess is how many more events v has in [at, at+15 min) than its rate in
// the hour before (up to 2 minutes before at) predicts, and the Poisson z
// of that excess.
func (w *window) excess(v []float64, at time.Time) (float64, float64) {
	b0, b1 := w.idx(at.Add(-time.Hour)), w.idx(at.Add(-2*time.Minute))
	a0, a1 := w.idx(at), w.idx(minTime(at.Add(15*time.Minute), w.to))
	if b1 <= b0 || a1 <= a0 {
		return 0, 0
	}
	var before, after float64
	for i := b0; i < b1; i++ {
		before += v[i]
	}
	for i := a0; i < a1; i++ {
		after += v[i]
	}
	expected := before / float64(b1-b0) * float64(a1-a0)
	return after - expected, poissonZ(after, expected)
}

// externalShare is the share of svc's error surge from at that is failed
// calls to third parties, and the third party with the largest part of it.
// ok is false when svc has no significant surge at at.
func (w *window) externalShare(svc string, at time.Time) (share float64, peer string, ok bool) {
	s := w.all[svc]
	if s == nil {
		return 0, "", false
	}
	total, z := w.excess(s.errors, at)
	if total < 10 || z < 3 {
		return 0, "", false
	}
	var ext, best float64
	for p, v := range w.peers[svc] {
		if !w.thirdParty(p) {
			continue
		}
		x, _ := w.excess(v, at)
		if x <= 0 {
			continue
		}
		ext += x
		if x > best {
			best, peer = x, p
		}
	}
	return math.Min(1, ext/total), peer, true
}

type symptomExt struct {
	share     float64
	svc, peer string
}

// symptomExternal is the largest third-party share (see externalShare) of
// the error surges that begin around the onset in the scope: the asked
// service's at the onset, and each service's own shift within 5 minutes
// before to 10 after it.
func (w *window) symptomExternal(onset time.Time) (float64, string, string) {
	if w.symExt != nil {
		return w.symExt.share, w.symExt.svc, w.symExt.peer
	}
	best := symptomExt{}
	try := func(svc string, at time.Time) {
		if share, peer, ok := w.externalShare(svc, at); ok && share > best.share {
			best = symptomExt{share, svc, peer}
		}
	}
	try(w.q.Service, onset)
	for _, svc := range w.scope {
		if at := w.own[svc].errors; !at.IsZero() && !at.Before(onset.Add(-5*time.Minute)) && !at.After(onset.Add(10*time.Minute)) {
			try(svc, at)
		}
	}
	w.symExt = &best
	return best.share, best.svc, best.peer
}

// trafficRatio is the asked service's request rate in the 15 minutes from
// t (the last 15 minutes of the window when there is no onset) against the
// hour before; 0 when it reports no requests.
func (w *window) trafficRatio(t time.Time, none bool) float64 {
	if none {
		t = w.to.Add(-15 * time.Minute)
	}
	s := w.series[w.q.Service]
	if s == nil || s.requests == nil {
		return 0
	}
	before := s.rate(t.Add(-time.Hour), t.Add(-2*time.Minute))
	after := s.rate(t, minTime(t.Add(15*time.Minute), w.to))
	nb := minutes(t.Add(-time.Hour), t.Add(-2*time.Minute))
	na := minutes(t, minTime(t.Add(15*time.Minute), w.to))
	if before.exposure == 0 || na <= 0 {
		return 0
	}
	return (after.exposure / na) / (before.exposure / nb)
}
