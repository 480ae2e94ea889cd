package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/scenario"
)

// The impact suite's scenarios model one product's traffic around one
// incident: a population of users, each belonging to a customer and making
// requests at their own (heavy-tailed) rate, across one or two services in
// scope and one outside it. During the incident window, the requests of an
// affected segment of customers fail with a fixed probability; in every
// window some users fail anyway (chronic failers, plus a tiny background
// rate). Every failure is an error event and, in some scenarios, also a 5xx
// log line with the same trace id; each observation is kept with the
// scenario's sample rate, as an SDK or a log pipeline would keep it.
// Successful requests leave INFO request log lines, sampled at their own
// rate. The truth is counted before sampling.

// The grid of the impact scenarios. ImpactSpecFor draws one cell per seed.
var (
	// ImpactSampleRates are the sample rates of failure observations; the
	// seed cycles through them, so every rate gets an equal share of a split.
	ImpactSampleRates = []float64{1, 0.5, 0.25, 0.1, 0.05, 0.01}
	// impactTraffic is the expected number of active users in the window.
	impactTraffic = []int{500, 5000, 30000}
	// impactShapes are the Pareto shapes of per-user activity: 1.2 is a
	// very heavy tail (a few users make most requests), 2.5 a mild one.
	impactShapes = []float64{1.2, 1.6, 2.5}
	// impactMeans are the mean requests per user in one window.
	impactMeans = []float64{3, 20, 60}
	// impactFailProbs are the per-request failure probabilities of the
	// affected segment during the incident.
	impactFailProbs = []float64{0.1, 0.5, 1}
	// impactShares are the target shares of users in affected customers.
	impactShares = []float64{0.05, 0.3, 1}
	// impactWindows are the incident windows' lengths. Counts per window
	// do not depend on them (the means are per window); they only spread
	// the same records over more or less time.
	impactWindows = []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour}
	// requestLogRates are the sample rates a request log pipeline may be
	// configured with; a scenario takes the highest its budget allows.
	requestLogRates = []float64{1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001}
)

// Budgets keep a split (about 200 scenarios) near 2–3 million records, so it
// loads into the embedded store in minutes on a shared machine.
const (
	// maxScenarioRecords caps one scenario's expected records. A cell over
	// it loses traffic (and then mean requests) one level at a time: teams
	// with that much traffic sample harder, so the biggest cells at high
	// sample rates are also the least realistic.
	maxScenarioRecords = 30000
	// requestLogBudget is the expected number of request log lines over the
	// three windows; the request log rate is the highest that fits.
	requestLogBudget = 9000
	// maxActivity truncates the Pareto tail: a "user" with more than this
	// many requests in a window is a bot or a load test, not a person.
	maxActivity = 2000
	// warningRate is the share of successful requests that also report a
	// warning-level error event, which is not a failure.
	warningRate = 0.001
	// clientErrorRate is the share of request log lines with a 4xx status,
	// which is not a failure either.
	clientErrorRate = 0.03
	// anonymousShare is the anonymous traffic (no user, no customer) as a
	// share of the user population; its failures count in no user total.
	anonymousShare = 0.05
)

// ImpactSpec is the design of one impact scenario. ImpactSpecFor draws it
// from the grid; tests may build one by hand.
type ImpactSpec struct {
	// Name prefixes the scenario's services, users and customers
	// ("imp17"), so that many scenarios can share one store.
	Name string `json:"name"`
	// Users is the expected number of users with a request in the window;
	// the population is larger, since not every user is active in every
	// window.
	Users int `json:"users"`
	// ParetoShape and MeanRequests describe per-user activity: a user's
	// expected requests per window is Pareto distributed with this shape
	// and mean (truncated at maxActivity), the count in each window
	// Poisson around it.
	ParetoShape  float64 `json:"pareto_shape"`
	MeanRequests float64 `json:"mean_requests"`
	// AffectedShare is the target share of users in the customers the
	// incident hits; whole customers are chosen, so the real share is
	// near it, not equal.
	AffectedShare float64 `json:"affected_share"`
	// FailProb is the probability that a request of the affected segment
	// fails during the incident.
	FailProb float64 `json:"fail_prob"`
	// SampleRate is the keep probability of every failure observation:
	// error events and failed-request log lines alike.
	SampleRate float64 `json:"sample_rate"`
	// FailureLogs makes every failure also write a 5xx log line with the
	// error event's trace id, kept independently at SampleRate.
	FailureLogs bool `json:"failure_logs"`
	// FailureLogSeverity is the severity of those lines: ERROR, or WARN
	// where only the status code says the request failed.
	FailureLogSeverity string `json:"failure_log_severity,omitempty"`
	// RequestLogRate is the keep probability of request log lines.
	RequestLogRate float64 `json:"request_log_rate"`
	// ChronicShare is the share of users who fail at a low rate in every
	// window (a broken account, an old client), 0 or about 1%.
	ChronicShare float64 `json:"chronic_share"`
	// BackgroundRate is every request's probability of failing anyway, in
	// every window.
	BackgroundRate float64 `json:"background_rate"`
	// Services is the number of services in scope, 1 or 2.
	Services int `json:"services"`
	// SpillOver makes the incident also fail the out-of-scope service,
	// whose failures must not be counted.
	SpillOver bool `json:"spill_over"`
	// Window is the incident window's length.
	Window time.Duration `json:"window"`
	// Capped says how the record cap changed the drawn cell; empty if it
	// did not.
	Capped string `json:"capped,omitempty"`
}

// ScopeServices are the services the scenario's query asks about.
func (s ImpactSpec) ScopeServices() []string {
	out := []string{s.Name + "-api"}
	if s.Services > 1 {
		out = append(out, s.Name+"-checkout")
	}
	return out
}

// OutsideService is the scenario's service outside the scope.
func (s ImpactSpec) OutsideService() string { return s.Name + "-worker" }

// Validate reports the first field out of range.
func (s ImpactSpec) Validate() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("invalid impact spec: no name")
	case s.Users <= 0:
		return fmt.Errorf("invalid impact spec %s: users %d", s.Name, s.Users)
	case !(s.ParetoShape > 1):
		return fmt.Errorf("invalid impact spec %s: pareto shape %g must exceed 1 (finite mean)", s.Name, s.ParetoShape)
	case !(s.MeanRequests > 0):
		return fmt.Errorf("invalid impact spec %s: mean requests %g", s.Name, s.MeanRequests)
	case !(s.AffectedShare > 0 && s.AffectedShare <= 1):
		return fmt.Errorf("invalid impact spec %s: affected share %g not in (0, 1]", s.Name, s.AffectedShare)
	case !(s.FailProb > 0 && s.FailProb <= 1):
		return fmt.Errorf("invalid impact spec %s: fail probability %g not in (0, 1]", s.Name, s.FailProb)
	case !(s.SampleRate > 0 && s.SampleRate <= 1):
		return fmt.Errorf("invalid impact spec %s: sample rate %g not in (0, 1]", s.Name, s.SampleRate)
	case !(s.RequestLogRate > 0 && s.RequestLogRate <= 1):
		return fmt.Errorf("invalid impact spec %s: request log rate %g not in (0, 1]", s.Name, s.RequestLogRate)
	case !(s.ChronicShare >= 0 && s.ChronicShare < 1), !(s.BackgroundRate >= 0 && s.BackgroundRate < 1):
		return fmt.Errorf("invalid impact spec %s: chronic share %g or background rate %g not in [0, 1)", s.Name, s.ChronicShare, s.BackgroundRate)
	case s.Services != 1 && s.Services != 2:
		return fmt.Errorf("invalid impact spec %s: %d services in scope (want 1 or 2)", s.Name, s.Services)
	case s.Window <= 0 || s.Window > maxImpactWindow:
		return fmt.Errorf("invalid impact spec %s: window %s not in (0, %s]", s.Name, s.Window, maxImpactWindow)
	}
	return nil
}

// ImpactSpecFor draws seed's scenario from the grid. The sample rate
// cycles with the seed; every other dimension is drawn from the seed's own
// random stream, then the record cap may lower traffic and mean requests.
func ImpactSpecFor(seed uint64) ImpactSpec {
	r := rand.New(rand.NewPCG(seed, impactStreamSpec))
	s := ImpactSpec{
		Name:          fmt.Sprintf("imp%d", seed),
		SampleRate:    ImpactSampleRates[(seed+uint64(len(ImpactSampleRates))-1)%uint64(len(ImpactSampleRates))],
		ParetoShape:   impactShapes[r.IntN(len(impactShapes))],
		AffectedShare: impactShares[r.IntN(len(impactShares))],
		FailProb:      impactFailProbs[r.IntN(len(impactFailProbs))],
		FailureLogs:   r.IntN(2) == 0,
		Services:      1 + r.IntN(2),
		SpillOver:     r.IntN(2) == 0,
		Window:        impactWindows[r.IntN(len(impactWindows))],
		// About 0.01% to 0.05% of requests fail for no reason at all.
		BackgroundRate: math.Round(math.Exp(uniformIn(r, math.Log(1e-4), math.Log(5e-4)))*1e6) / 1e6,
	}
	if r.IntN(2) == 0 {
		s.ChronicShare = 0.01
	}
	s.FailureLogSeverity = "ERROR"
	if r.IntN(3) == 0 {
		s.FailureLogSeverity = "WARN"
	}
	ti, mi := r.IntN(len(impactTraffic)), r.IntN(len(impactMeans))
	s.Users, s.MeanRequests = impactTraffic[ti], impactMeans[mi]
	s.RequestLogRate = requestLogRateFor(s)
	drawn := s
	// The cap: step traffic down, then mean requests, until the expected
	// records fit.
	for expectedRecords(s) > maxScenarioRecords {
		switch {
		case ti > 0:
			ti--
		case mi > 0:
			mi--
		default:
			// The smallest cell always fits; this only guards the loop.
			return s
		}
		s.Users, s.MeanRequests = impactTraffic[ti], impactMeans[mi]
		s.RequestLogRate = requestLogRateFor(s)
	}
	if s.Users != drawn.Users || s.MeanRequests != drawn.MeanRequests {
		s.Capped = fmt.Sprintf("drawn users %d, mean %g", drawn.Users, drawn.MeanRequests)
	}
	return s
}

// requestLogRateFor is the highest request log rate within the budget.
func requestLogRateFor(s ImpactSpec) float64 {
	requests := 3 * float64(s.Users) * s.MeanRequests / activeFraction(s) * (1 + anonymousShare)
	for _, r := range requestLogRates {
		if requests*r <= requestLogBudget {
			return r
		}
	}
	return requestLogRates[len(requestLogRates)-1]
}

// expectedRecords estimates the records a spec generates over its three
// windows, for the cap; it ignores the Pareto truncation.
func expectedRecords(s ImpactSpec) float64 {
	perWindow := float64(s.Users) / activeFraction(s) * s.MeanRequests * (1 + anonymousShare)
	obs := s.SampleRate
	if s.FailureLogs {
		obs *= 2
	}
	inScope := 1 - outsideWeight
	if s.SpillOver {
		inScope = 1
	}
	incident := perWindow * s.AffectedShare * s.FailProb * inScope
	// Chronic users fail at 11% of requests on average (uniform 2%–20%).
	anyway := 3 * perWindow * (s.BackgroundRate + s.ChronicShare*0.11)
	return 3*perWindow*s.RequestLogRate + (incident+anyway)*obs + 3*perWindow*warningRate*s.SampleRate
}

// The scenario's random streams, so that changing how one part draws does
// not reshuffle the others.
const (
	impactStreamSpec uint64 = iota + 101
	impactStreamPopulation
	impactStreamTraffic
)

// outsideWeight is the share of a user's requests that go to the service
// outside the scope; the rest split over the services in scope.
const outsideWeight = 0.15

// serviceWeights are the shares of requests per service: the scope's
// services, then the outside one.
func serviceWeights(n int) []float64 {
	if n == 1 {
		return []float64{1 - outsideWeight, outsideWeight}
	}
	return []float64{0.55, 1 - outsideWeight - 0.55, outsideWeight}
}

// activeFraction is the expected share of the population with at least one
// request in a window, E[1 − exp(−λ)] over the truncated Pareto activity λ,
// by the midpoint rule over its quantiles.
func activeFraction(s ImpactSpec) float64 {
	const steps = 2000
	xm := paretoScale(s)
	sum := 0.0
	for i := range steps {
		u := (float64(i) + 0.5) / steps
		sum += 1 - math.Exp(-min(xm/math.Pow(u, 1/s.ParetoShape), maxActivity))
	}
	return sum / steps
}

// paretoScale is the Pareto scale x_m giving mean MeanRequests.
func paretoScale(s ImpactSpec) float64 {
	return s.MeanRequests * (s.ParetoShape - 1) / s.ParetoShape
}

// Where scenarios lie in time. Each takes a slot of a two-week block: its
// week-earlier baseline window in the first week, its "just before"
// baseline and incident window in the second, both at the slot's offset.
// Slots are slotLen apart and hold at most maxImpactWindow before and after
// the onset, so no scenario's data overlaps another's in time either.
var impactEpoch = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC) // a Monday, in the past

const (
	week            = 168 * time.Hour
	maxImpactWindow = 2 * time.Hour
	slotLen         = 2 * maxImpactWindow
	// slotsPerBlock leaves the first and last hours of each week free.
	slotsPerBlock = int((week - slotLen) / slotLen)
)

// ImpactStart is the first instant of the data of the i-th scenario
// (0-based) of a split: the start of its week-earlier baseline window. The
// incident window begins one week later.
func ImpactStart(i int) time.Time {
	block, slot := i/slotsPerBlock, i%slotsPerBlock
	return impactEpoch.Add(time.Duration(2*block)*week + maxImpactWindow + time.Duration(slot)*slotLen)
}

// ImpactTruth is what an impact scenario's analysis should find, counted
// before sampling in the incident window and the scope.
type ImpactTruth struct {
	Spec ImpactSpec `json:"spec"`
	// Query is the question to ask: the scope and the incident window,
	// Onset = From.
	Query impact.Query `json:"query"`
	// Spans are the time ranges holding the scenario's data.
	Spans []impact.Span `json:"spans"`
	// AffectedUsers have at least one failure in the window and the scope.
	AffectedUsers int `json:"affected_users"`
	// ExcessUsers are the affected users without a chronic or background
	// failure in the window: those who failed only because of the
	// incident.
	ExcessUsers       int `json:"excess_users"`
	AffectedCustomers int `json:"affected_customers"`
	ExcessCustomers   int `json:"excess_customers"`
	// ActiveUsers have at least one request in the window and the scope.
	ActiveUsers int `json:"active_users"`
	// SegmentUsers are the users of the customers the incident hits.
	SegmentUsers int `json:"segment_users"`
	// Failures counts failed requests in the window and the scope,
	// anonymous ones included; KeptFailures those with at least one
	// observation kept.
	Failures     int `json:"failures"`
	KeptFailures int `json:"kept_failures"`
	// Records is the number of records in the batch.
	Records int `json:"records"`
	// ExpectedSeen is how many of the affected users a sample is expected
	// to show: the sum over them of 1 − (1 − s)^K, K being the user's
	// failures in the window and the scope and s the chance that a
	// failure leaves a kept observation. Observed/ExpectedSeen·Affected is
	// what an estimator that knew every K would answer: its error is the
	// sampling noise no estimator can remove.
	ExpectedSeen float64 `json:"expected_seen"`
}

// impactQuery is the question about the scenario spec that starts at
// start: its scope and its incident window, a week after start.
func impactQuery(spec ImpactSpec, start time.Time) impact.Query {
	from := start.Add(week)
	return impact.Query{Services: spec.ScopeServices(), From: from, To: from.Add(spec.Window), Onset: from}
}

// impactSpans are the time ranges the scenario's data lies in: the
// week-earlier window, and the window before the onset with the incident's.
func impactSpans(spec ImpactSpec, start time.Time) []impact.Span {
	from := start.Add(week)
	return []impact.Span{{From: start, To: start.Add(spec.Window)}, {From: from.Add(-spec.Window), To: from.Add(spec.Window)}}
}

// impactUser is one member of the population.
type impactUser struct {
	id, customer string
	cust         int     // the customer's index
	activity     float64 // expected requests per window
	chronic      float64 // per-request failure probability in every window
	affected     bool    // in the incident's segment
	// Flags of the incident window, in scope, for the truth.
	active, failed, failedAnyway bool
	failures                     int // in the incident window and the scope
}

// window is one of the three time ranges a scenario fills.
type window struct {
	from     time.Time
	incident bool // the incident's window: the segment fails
}

// GenerateImpact generates the scenario spec describes, seeded by seed,
// with its data beginning at start (see ImpactStart), and returns the
// records and the truth. The same arguments give the same batch. It panics
// on an invalid spec, which is a caller's bug.
func GenerateImpact(seed uint64, spec ImpactSpec, start time.Time) (*event.Batch, ImpactTruth) {
	if err := spec.Validate(); err != nil {
		panic(err)
	}
	start = start.UTC().Truncate(time.Millisecond)
	truth := ImpactTruth{Spec: spec, Query: impactQuery(spec, start), Spans: impactSpans(spec, start)}
	from := truth.Query.From
	g := &impactGen{
		spec:     spec,
		services: append(spec.ScopeServices(), spec.OutsideService()),
		weights:  serviceWeights(spec.Services),
		r:        rand.New(rand.NewPCG(seed, impactStreamTraffic)),
		b:        &event.Batch{},
		truth:    &truth,
	}
	g.population(rand.New(rand.NewPCG(seed, impactStreamPopulation)))
	// The week-earlier window, the window just before the onset, the
	// incident: the two baselines the analysis compares with.
	for _, w := range []window{{from: start}, {from: from.Add(-spec.Window)}, {from: from, incident: true}} {
		g.window(w)
	}
	customers, customersAnyway := map[string]bool{}, map[string]bool{}
	for i := range g.users {
		u := &g.users[i]
		if u.active {
			truth.ActiveUsers++
		}
		if u.affected {
			truth.SegmentUsers++
		}
		if u.failed {
			truth.AffectedUsers++
			truth.ExpectedSeen += 1 - math.Pow(1-g.seenChance(), float64(u.failures))
			customers[u.customer] = true
			if u.failedAnyway {
				customersAnyway[u.customer] = true
			} else {
				truth.ExcessUsers++
			}
		}
	}
	truth.AffectedCustomers = len(customers)
	truth.ExcessCustomers = len(customers) - len(customersAnyway)
	truth.Records = g.b.Len()
	return g.b, truth
}

// impactGen holds one scenario's generation state.
type impactGen struct {
	spec     ImpactSpec
	services []string  // the scope's, then the outside one
	weights  []float64 // request shares, as services
	r        *rand.Rand
	b        *event.Batch
	truth    *ImpactTruth
	users    []impactUser
	// anonymous is the anonymous traffic: activity and segment only.
	anonymous []impactUser
}

// population draws the users, their customers, activity and chronic
// failure rates, and the incident's segment.
func (g *impactGen) population(r *rand.Rand) {
	s := g.spec
	n := max(1, int(math.Round(float64(s.Users)/activeFraction(s))))
	// Customers have skewed sizes (Zipf): a few large tenants, many small.
	nc := max(3, n/40)
	zipf := rand.NewZipf(r, 1.2, 3, uint64(nc-1))
	xm := paretoScale(s)
	draw := func() float64 {
		return min(xm/math.Pow(1-r.Float64(), 1/s.ParetoShape), maxActivity)
	}
	g.users = make([]impactUser, n)
	size := make([]int, nc)
	for i := range g.users {
		c := int(zipf.Uint64())
		size[c]++
		u := impactUser{
			id:       fmt.Sprintf("%s-u%06d", s.Name, i),
			customer: fmt.Sprintf("%s-c%04d", s.Name, c),
			cust:     c,
			activity: draw(),
		}
		if r.Float64() < s.ChronicShare {
			u.chronic = uniformIn(r, 0.02, 0.2)
		}
		g.users[i] = u
	}
	// The segment: whole customers in random order until they hold the
	// target share of users.
	hit := make([]bool, nc)
	target := s.AffectedShare * float64(n)
	got := 0
	for _, c := range r.Perm(nc) {
		if float64(got) >= target {
			break
		}
		if size[c] > 0 {
			hit[c] = true
			got += size[c]
		}
	}
	for i := range g.users {
		g.users[i].affected = hit[g.users[i].cust]
	}
	g.anonymous = make([]impactUser, int(math.Round(anonymousShare*float64(n))))
	for i := range g.anonymous {
		g.anonymous[i] = impactUser{activity: draw(), affected: r.Float64() < s.AffectedShare}
	}
}

// window generates one window's requests for every user.
func (g *impactGen) window(w window) {
	for i := range g.users {
		g.requests(w, &g.users[i])
	}
	for i := range g.anonymous {
		g.requests(w, &g.anonymous[i])
	}
}

// requests generates one user's requests in w, service by service: which
// failed and why, and which observations of them were kept.
func (g *impactGen) requests(w window, u *impactUser) {
	s := g.spec
	for si, svc := range g.services {
		n := scenario.Poisson(g.r, u.activity*g.weights[si])
		if n == 0 {
			continue
		}
		inScope := si < s.Services
		// Failures anyway (chronic or background) are drawn first and
		// independently of the incident: a request that would have failed
		// anyway counts as such, which is what "excess" subtracts.
		anyway := binomialN(g.r, n, 1-(1-s.BackgroundRate)*(1-u.chronic))
		byIncident := 0
		if w.incident && u.affected && (inScope || s.SpillOver) {
			byIncident = binomialN(g.r, n-anyway, s.FailProb)
		}
		ok := n - anyway - byIncident
		if w.incident && inScope {
			g.truth.Failures += anyway + byIncident
			u.active = true
			if anyway+byIncident > 0 {
				u.failed = true
			}
			u.failures += anyway + byIncident
			if anyway > 0 {
				u.failedAnyway = true
			}
		}
		g.failures(w, u, svc, inScope, anyway, false)
		g.failures(w, u, svc, inScope, byIncident, true)
		g.successes(w, u, svc, ok)
	}
}

// seenChance is the chance that a failure leaves a kept observation: its
// error event or its log line is kept, each independently with the rate.
func (g *impactGen) seenChance() float64 {
	p := g.spec.SampleRate
	if g.spec.FailureLogs {
		return 1 - (1-p)*(1-p)
	}
	return p
}

// failures writes the kept observations of n failed requests.
func (g *impactGen) failures(w window, u *impactUser, svc string, inScope bool, n int, incident bool) {
	if n == 0 {
		return
	}
	p := g.spec.SampleRate
	seen := g.seenChance()
	kept := binomialN(g.r, n, seen)
	if w.incident && inScope {
		g.truth.KeptFailures += kept
	}
	for range kept {
		keepEvent, keepLog := true, false
		if g.spec.FailureLogs {
			// Given that at least one was kept: event only, log only or
			// both, in proportion to p(1−p), (1−p)p and p².
			x := g.r.Float64() * seen
			switch {
			case x < p*(1-p):
				keepEvent, keepLog = true, false
			case x < 2*p*(1-p):
				keepEvent, keepLog = false, true
			default:
				keepEvent, keepLog = true, true
			}
		}
		g.failure(w, u, svc, incident, keepEvent, keepLog)
	}
}

// failureKinds are the errors a failure reports: the incident's, and those
// that happen anyway.
var (
	incidentErrors = []struct{ typ, msg string }{
		{"UpstreamTimeout", "upstream inventory-db timed out after 5000ms"},
		{"ConnectionRefused", "dial tcp 10.0.4.17:5432: connect: connection refused"},
	}
	anywayErrors = []struct{ typ, msg string }{
		{"ValidationError", "invalid payment method for account"},
		{"NullPointerException", "cart item price is null"},
		{"TimeoutError", "context deadline exceeded"},
	}
	routes = []string{"/api/cart", "/api/checkout", "/api/orders/{id}", "/api/search", "/api/login"}
)

// failure writes one failed request's kept observations.
func (g *impactGen) failure(w window, u *impactUser, svc string, incident, keepEvent, keepLog bool) {
	r := g.r
	kind := anywayErrors[r.IntN(len(anywayErrors))]
	status := 500
	if incident {
		kind = incidentErrors[r.IntN(len(incidentErrors))]
		status = 503
	}
	at := g.instant(w)
	trace := scenario.HexID(r, 32)
	route := routes[r.IntN(len(routes))]
	rate := strconv.FormatFloat(g.spec.SampleRate, 'g', -1, 64)
	if keepEvent {
		g.b.Errors = append(g.b.Errors, event.ErrorEvent{
			ID:          scenario.HexID(r, 32),
			Time:        at,
			Service:     svc,
			Environment: "production",
			Release:     svc + "@1.42.0",
			Fingerprint: svc + ":" + kind.typ,
			Type:        kind.typ,
			Message:     kind.msg,
			UserID:      u.id,
			CustomerID:  u.customer,
			TraceID:     trace,
			Level:       "error",
			SampleRate:  g.spec.SampleRate,
			Attributes:  map[string]string{"http.route": route, "http.status_code": strconv.Itoa(status)},
		})
	}
	if keepLog {
		g.b.Logs = append(g.b.Logs, event.LogRecord{
			// The log line is written a moment after the error is
			// captured, but within the window: a failure belongs to one.
			Time:       at.Add(min(time.Duration(1+r.IntN(20))*time.Millisecond, w.from.Add(g.spec.Window-time.Millisecond).Sub(at))),
			Service:    svc,
			Severity:   g.spec.FailureLogSeverity,
			Body:       fmt.Sprintf("POST %s %d: %s", route, status, kind.msg),
			UserID:     u.id,
			CustomerID: u.customer,
			TraceID:    trace,
			SpanID:     scenario.HexID(r, 16),
			Attributes: map[string]string{"http.route": route, "http.status_code": strconv.Itoa(status), "sample_rate": rate},
		})
	}
}

// successes writes the kept request log lines and warning events of n
// requests that did not fail.
func (g *impactGen) successes(w window, u *impactUser, svc string, n int) {
	r := g.r
	logRate := strconv.FormatFloat(g.spec.RequestLogRate, 'g', -1, 64)
	for range binomialN(r, n, g.spec.RequestLogRate) {
		route := routes[r.IntN(len(routes))]
		status := 200
		if r.Float64() < clientErrorRate {
			status = 404
		}
		g.b.Logs = append(g.b.Logs, event.LogRecord{
			Time:       g.instant(w),
			Service:    svc,
			Severity:   "INFO",
			Body:       fmt.Sprintf("GET %s %d", route, status),
			UserID:     u.id,
			CustomerID: u.customer,
			TraceID:    scenario.HexID(r, 32),
			SpanID:     scenario.HexID(r, 16),
			Attributes: map[string]string{"http.route": route, "http.status_code": strconv.Itoa(status), "sample_rate": logRate},
		})
	}
	// A warning is captured by the same SDK, sampled like errors, and is
	// not a failure.
	for range binomialN(r, n, warningRate*g.spec.SampleRate) {
		g.b.Errors = append(g.b.Errors, event.ErrorEvent{
			ID:          scenario.HexID(r, 32),
			Time:        g.instant(w),
			Service:     svc,
			Environment: "production",
			Release:     svc + "@1.42.0",
			Fingerprint: svc + ":SlowQuery",
			Type:        "SlowQuery",
			Message:     "query took 1200ms",
			UserID:      u.id,
			CustomerID:  u.customer,
			TraceID:     scenario.HexID(r, 32),
			Level:       "warning",
			SampleRate:  g.spec.SampleRate,
		})
	}
}

// instant is a uniformly random millisecond of w.
func (g *impactGen) instant(w window) time.Time {
	return w.from.Add(time.Duration(g.r.Int64N(int64(g.spec.Window/time.Millisecond))) * time.Millisecond)
}

// uniformIn returns a float in [lo, hi).
func uniformIn(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

// binomialN draws from Binomial(n, p): exactly, by geometric waiting times
// between successes, while n·min(p, 1−p) < 40; by the rounded, clamped
// normal approximation beyond. Thinning small counts exactly matters: a
// user's few failures decide whether the user is seen at all.
func binomialN(r *rand.Rand, n int, p float64) int {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return n
	case p > 0.5:
		return n - binomialN(r, n, 1-p)
	}
	if float64(n)*p >= 40 {
		k := math.Round(float64(n)*p + math.Sqrt(float64(n)*p*(1-p))*r.NormFloat64())
		return int(min(max(k, 0), float64(n)))
	}
	lq := math.Log1p(-p)
	k := 0
	for i := 0; ; k++ {
		i += int(math.Floor(math.Log(1-r.Float64())/lq)) + 1
		if i > n {
			return k
		}
	}
}
