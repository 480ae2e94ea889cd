package eval

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
)

// seen is what an exact reading of a batch finds for one window and scope,
// by the impact analysis' rules, written out again here so that the
// generator is checked against the rules rather than against itself.
type seen struct {
	users, customers map[string]bool
	// usersAnyway and customersAnyway failed for reasons other than the
	// incident; the generator marks those failures with status 500 (the
	// incident's are 503), which only a test may rely on.
	usersAnyway, customersAnyway map[string]bool
	// active are the users in any record; failures the distinct failed
	// requests (trace ids), anonymous ones included.
	active, failures map[string]bool
	// events and logs count the failure observations.
	events, logs int
}

// isFailure applies the failure rules to an error event or a log line.
func isFailure(level, severity string, attrs map[string]string) bool {
	if level != "" {
		return level != "warning" && level != "info" && level != "debug"
	}
	if severity == "ERROR" || severity == "FATAL" {
		return true
	}
	code, err := strconv.Atoi(attrs["http.status_code"])
	return err == nil && code >= 500
}

// observe reads b's records in q's scope and [from, to).
func observe(b *event.Batch, services []string, from, to time.Time) seen {
	s := seen{users: map[string]bool{}, customers: map[string]bool{}, usersAnyway: map[string]bool{},
		customersAnyway: map[string]bool{}, active: map[string]bool{}, failures: map[string]bool{}}
	add := func(at time.Time, svc, level, severity, user, customer, trace string, attrs map[string]string) {
		if !slices.Contains(services, svc) || at.Before(from) || !at.Before(to) {
			return
		}
		if user != "" {
			s.active[user] = true
		}
		if !isFailure(level, severity, attrs) {
			return
		}
		if level != "" {
			s.events++
		} else {
			s.logs++
		}
		s.failures[trace] = true
		if user == "" {
			return
		}
		s.users[user], s.customers[customer] = true, true
		if attrs["http.status_code"] == "500" {
			s.usersAnyway[user], s.customersAnyway[customer] = true, true
		}
	}
	for _, e := range b.Errors {
		add(e.Time, e.Service, e.Level, "", e.UserID, e.CustomerID, e.TraceID, e.Attributes)
	}
	for _, l := range b.Logs {
		add(l.Time, l.Service, "", l.Severity, l.UserID, l.CustomerID, l.TraceID, l.Attributes)
	}
	return s
}

// smallSpec is a hand-made scenario, small enough to generate often.
func smallSpec() ImpactSpec {
	return ImpactSpec{
		Name: "imptest", Users: 800, ParetoShape: 1.6, MeanRequests: 8, AffectedShare: 0.3, FailProb: 0.5,
		SampleRate: 1, RequestLogRate: 1, BackgroundRate: 0.001, Services: 1,
		FailureLogSeverity: "ERROR", Window: 30 * time.Minute,
	}
}

var impactT0 = time.Date(2025, 2, 3, 4, 0, 0, 0, time.UTC)

func TestGenerateImpactTruthMatchesBatch(t *testing.T) {
	// At sample rate 1 every failure and every request is in the batch, so
	// reading the batch must give the truth exactly.
	tests := []struct {
		name string
		edit func(s *ImpactSpec)
	}{
		{"plain", func(s *ImpactSpec) {}},
		{"chronic users", func(s *ImpactSpec) { s.ChronicShare = 0.05 }},
		{"two services and spill-over", func(s *ImpactSpec) { s.Services, s.SpillOver = 2, true }},
		{"failure logs", func(s *ImpactSpec) { s.FailureLogs = true; s.ChronicShare = 0.01 }},
		{"failure logs at WARN", func(s *ImpactSpec) { s.FailureLogs, s.FailureLogSeverity = true, "WARN" }},
		{"everyone, always", func(s *ImpactSpec) { s.AffectedShare, s.FailProb, s.Services = 1, 1, 2 }},
		{"heavy tail", func(s *ImpactSpec) { s.ParetoShape, s.MeanRequests, s.FailProb = 1.2, 3, 0.1 }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := smallSpec()
			tt.edit(&spec)
			b, truth := GenerateImpact(uint64(i+1), spec, impactT0)
			q := truth.Query
			got := observe(b, q.Services, q.From, q.To)
			for _, c := range []struct {
				what      string
				got, want int
			}{
				{"affected users", len(got.users), truth.AffectedUsers},
				{"excess users", len(got.users) - len(got.usersAnyway), truth.ExcessUsers},
				{"affected customers", len(got.customers), truth.AffectedCustomers},
				{"excess customers", len(got.customers) - len(got.customersAnyway), truth.ExcessCustomers},
				{"active users", len(got.active), truth.ActiveUsers},
				{"failures", len(got.failures), truth.Failures},
				{"kept failures", len(got.failures), truth.KeptFailures},
				{"records", b.Len(), truth.Records},
			} {
				if c.got != c.want {
					t.Errorf("%s: batch has %d, truth says %d", c.what, c.got, c.want)
				}
			}
			// At rate 1 every affected user is certain to be seen.
			if math.Abs(truth.ExpectedSeen-float64(truth.AffectedUsers)) > 1e-9 {
				t.Errorf("expected seen %v at rate 1, want every one of %d affected users", truth.ExpectedSeen, truth.AffectedUsers)
			}
			// The scenario must be one: someone affected, not everyone
			// active affected unless the spec says so.
			if truth.AffectedUsers == 0 || truth.ExcessUsers > truth.AffectedUsers || truth.AffectedUsers > truth.ActiveUsers {
				t.Errorf("implausible truth: %+v", truth)
			}
			if spec.ChronicShare > 0 && truth.ExcessUsers == truth.AffectedUsers {
				t.Error("chronic users but no user failed anyway")
			}
			// The baselines hold failures too, but none of the incident's.
			for _, w := range []impact.Span{{From: q.From.Add(-spec.Window), To: q.From}, {From: q.From.Add(-week), To: q.To.Add(-week)}} {
				bs := observe(b, q.Services, w.From, w.To)
				if len(bs.users) != len(bs.usersAnyway) {
					t.Errorf("baseline %s: %d users failed, %d of them anyway: incident failures outside the window", w.From, len(bs.users), len(bs.usersAnyway))
				}
				if spec.ChronicShare > 0 && len(bs.users) == 0 {
					t.Errorf("baseline %s: chronic users, yet nobody failed", w.From)
				}
				if len(bs.active) < truth.ActiveUsers/2 {
					t.Errorf("baseline %s: %d active users, the window %d", w.From, len(bs.active), truth.ActiveUsers)
				}
			}
		})
	}
}

func TestGenerateImpactRespectsScope(t *testing.T) {
	// With spill-over the service outside the scope fails for the segment
	// too; without, only anyway. Neither may count in the truth, which the
	// exact reading above confirms; here the outside failures must exist,
	// or that check proves nothing.
	spec := smallSpec()
	spec.SpillOver = true
	b, truth := GenerateImpact(3, spec, impactT0)
	q := truth.Query
	out := observe(b, []string{spec.OutsideService()}, q.From, q.To)
	if len(out.users) == len(out.usersAnyway) {
		t.Fatalf("outside service: %d failing users, all anyway; want incident failures too", len(out.users))
	}
	all := observe(b, append(slices.Clone(q.Services), spec.OutsideService()), q.From, q.To)
	if len(all.users) <= truth.AffectedUsers {
		t.Errorf("scope and outside together: %d users, the scope alone %d; outside failures add nobody", len(all.users), truth.AffectedUsers)
	}
}

func TestGenerateImpactSampling(t *testing.T) {
	// Each observation of a failure is kept with p, independently: event
	// and log counts are Binomial(failures, p), failures seen at all
	// Binomial(failures, 1 − (1 − p)²). Allow 4.5 standard deviations.
	for _, p := range []float64{0.5, 0.1, 0.01} {
		for _, logs := range []bool{false, true} {
			spec := smallSpec()
			spec.Users, spec.MeanRequests, spec.AffectedShare, spec.FailProb = 3000, 20, 1, 1
			spec.SampleRate, spec.FailureLogs, spec.RequestLogRate = p, logs, 0.01
			b, truth := GenerateImpact(7, spec, impactT0)
			q := truth.Query
			got := observe(b, q.Services, q.From, q.To)
			n := float64(truth.Failures)
			within := func(what string, k int, prob float64) {
				t.Helper()
				mean, sd := n*prob, math.Sqrt(n*prob*(1-prob))
				if math.Abs(float64(k)-mean) > 4.5*sd+1 {
					t.Errorf("p %g, logs %v: %s %d, want about %.0f ± %.0f of %d failures", p, logs, what, k, mean, sd, truth.Failures)
				}
			}
			within("error events", got.events, p)
			wantLogs := 0.0
			if logs {
				wantLogs = p
			}
			within("failure log lines", got.logs, wantLogs)
			seenProb := p
			if logs {
				seenProb = 1 - (1-p)*(1-p)
			}
			within("failures seen", len(got.failures), seenProb)
			if len(got.failures) != truth.KeptFailures {
				t.Errorf("p %g: batch holds %d failures, truth kept %d", p, len(got.failures), truth.KeptFailures)
			}
			for _, e := range b.Errors {
				if e.SampleRate != p {
					t.Fatalf("p %g: error event with sample rate %g", p, e.SampleRate)
				}
			}
			for _, l := range b.Logs {
				want := strconv.FormatFloat(spec.RequestLogRate, 'g', -1, 64)
				if isFailure("", l.Severity, l.Attributes) {
					want = strconv.FormatFloat(p, 'g', -1, 64)
				}
				if l.Attributes["sample_rate"] != want {
					t.Fatalf("p %g: log %q with sample_rate %q, want %s", p, l.Body, l.Attributes["sample_rate"], want)
				}
			}
		}
	}
}

func TestGenerateImpactIsDeterministic(t *testing.T) {
	spec := ImpactSpecFor(11)
	b1, t1 := GenerateImpact(11, spec, ImpactStart(10))
	b2, t2 := GenerateImpact(11, spec, ImpactStart(10))
	if !reflect.DeepEqual(b1, b2) || !reflect.DeepEqual(t1, t2) {
		t.Fatal("the same seed gave different scenarios")
	}
	b3, _ := GenerateImpact(12, spec, ImpactStart(10))
	if reflect.DeepEqual(b1, b3) {
		t.Fatal("another seed gave the same batch")
	}
	if !reflect.DeepEqual(ImpactSpecFor(11), spec) {
		t.Fatal("the same seed gave different specs")
	}
}

func TestImpactScenariosAreDisjoint(t *testing.T) {
	// Scenarios share one store: no two may have a service in common or
	// data at the same time, and every record must lie in its scenario's
	// spans and services.
	const n = DefaultImpactScenarios
	type owned struct {
		span impact.Span
		seed uint64
	}
	var spans []owned
	services := map[string]uint64{}
	for _, split := range []Split{Dev, Test} {
		for i, seed := range split.Seeds(n) {
			spec := ImpactSpecFor(seed)
			for _, svc := range append(spec.ScopeServices(), spec.OutsideService()) {
				if other, dup := services[svc]; dup {
					t.Fatalf("service %s in seeds %d and %d", svc, other, seed)
				}
				services[svc] = seed
			}
			if split == Dev {
				for _, s := range impactSpans(spec, ImpactStart(i)) {
					spans = append(spans, owned{s, seed})
				}
			}
		}
	}
	slices.SortFunc(spans, func(a, b owned) int { return a.span.From.Compare(b.span.From) })
	for i := 1; i < len(spans); i++ {
		if spans[i].span.From.Before(spans[i-1].span.To) {
			t.Fatalf("seeds %d and %d overlap in time: %v and %v", spans[i-1].seed, spans[i].seed, spans[i-1].span, spans[i].span)
		}
	}
	if last := spans[len(spans)-1].span.To; last.After(time.Now()) {
		t.Errorf("the last scenario ends %s, in the future: ingest would refuse it", last)
	}
	// Every record of a few scenarios, one at a block's edge.
	for _, i := range []int{0, slotsPerBlock - 1, slotsPerBlock} {
		seed := Dev.Seeds(i + 1)[i]
		spec := ImpactSpecFor(seed)
		b, truth := GenerateImpact(seed, spec, ImpactStart(i))
		check := func(kind string, at time.Time, svc string) {
			if services[svc] != seed {
				t.Fatalf("seed %d: %s of service %s", seed, kind, svc)
			}
			for _, s := range truth.Spans {
				if !at.Before(s.From) && at.Before(s.To) {
					return
				}
			}
			t.Fatalf("seed %d: %s at %s outside %v", seed, kind, at, truth.Spans)
		}
		for _, e := range b.Errors {
			check("error", e.Time, e.Service)
		}
		for _, l := range b.Logs {
			check("log", l.Time, l.Service)
		}
	}
}

func TestImpactSpecGrid(t *testing.T) {
	// Every seed of both splits draws a valid, affordable cell; the rates
	// are balanced and every level of every dimension occurs.
	levels := map[string]map[float64]int{}
	count := func(dim string, v float64) {
		if levels[dim] == nil {
			levels[dim] = map[float64]int{}
		}
		levels[dim][v]++
	}
	for _, split := range []Split{Dev, Test} {
		for _, seed := range split.Seeds(DefaultImpactScenarios) {
			s := ImpactSpecFor(seed)
			if err := s.Validate(); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if e := expectedRecords(s); e > maxScenarioRecords {
				t.Errorf("seed %d: %.0f expected records, over the cap %d", seed, e, maxScenarioRecords)
			}
			count(string(split)+" rate", s.SampleRate)
			count("users", float64(s.Users))
			count("shape", s.ParetoShape)
			count("mean", s.MeanRequests)
			count("share", s.AffectedShare)
			count("fail", s.FailProb)
			count("services", float64(s.Services))
			count("chronic", s.ChronicShare)
		}
	}
	for _, split := range []Split{Dev, Test} {
		for _, r := range ImpactSampleRates {
			if got := levels[string(split)+" rate"][r]; got != DefaultImpactScenarios/len(ImpactSampleRates) {
				t.Errorf("%s: %d scenarios at rate %g, want %d", split, got, r, DefaultImpactScenarios/len(ImpactSampleRates))
			}
		}
	}
	want := map[string]int{"users": 3, "shape": 3, "mean": 3, "share": 3, "fail": 3, "services": 2, "chronic": 2}
	for dim, n := range want {
		if len(levels[dim]) != n {
			t.Errorf("%s takes %d levels, want %d: %v", dim, len(levels[dim]), n, levels[dim])
		}
	}
}

func TestImpactSplitBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a whole split")
	}
	// A split must stay well under 3 million records to load in minutes.
	total := 0
	for i, seed := range Dev.Seeds(DefaultImpactScenarios) {
		b, _ := GenerateImpact(seed, ImpactSpecFor(seed), ImpactStart(i))
		total += b.Len()
	}
	t.Logf("dev split: %d records", total)
	if total > 3_000_000 {
		t.Errorf("dev split has %d records, over the 3 000 000 budget", total)
	}
}

func TestImpactSpecValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(s *ImpactSpec)
	}{
		{"no name", func(s *ImpactSpec) { s.Name = "" }},
		{"no users", func(s *ImpactSpec) { s.Users = 0 }},
		{"infinite mean", func(s *ImpactSpec) { s.ParetoShape = 1 }},
		{"rate 0", func(s *ImpactSpec) { s.SampleRate = 0 }},
		{"rate above 1", func(s *ImpactSpec) { s.SampleRate = 1.5 }},
		{"three services", func(s *ImpactSpec) { s.Services = 3 }},
		{"window too long", func(s *ImpactSpec) { s.Window = 3 * time.Hour }},
		{"share 0", func(s *ImpactSpec) { s.AffectedShare = 0 }},
	} {
		s := smallSpec()
		tt.edit(&s)
		if s.Validate() == nil {
			t.Errorf("%s: valid", tt.name)
		}
	}
	if err := smallSpec().Validate(); err != nil {
		t.Errorf("small spec: %v", err)
	}
}

func TestImpactBinomial(t *testing.T) {
	// Both branches, exact and normal, must have the binomial's mean and
	// variance.
	r := newTestRand(5)
	for _, c := range []struct {
		n int
		p float64
	}{{10, 0.3}, {200, 0.05}, {5000, 0.2}, {5000, 0.9}, {3, 1}, {0, 0.5}} {
		const reps = 4000
		var sum, sq float64
		for range reps {
			k := float64(binomialN(r, c.n, c.p))
			if k < 0 || k > float64(c.n) {
				t.Fatalf("Binomial(%d, %g) gave %g", c.n, c.p, k)
			}
			sum += k
			sq += k * k
		}
		mean := sum / reps
		variance := sq/reps - mean*mean
		wantMean, wantVar := float64(c.n)*c.p, float64(c.n)*c.p*(1-c.p)
		if math.Abs(mean-wantMean) > 5*math.Sqrt(wantVar/reps)+1e-9 {
			t.Errorf("Binomial(%d, %g): mean %.3f, want %.3f", c.n, c.p, mean, wantMean)
		}
		if wantVar > 0 && math.Abs(variance/wantVar-1) > 0.15 {
			t.Errorf("Binomial(%d, %g): variance %.3f, want %.3f", c.n, c.p, variance, wantVar)
		}
	}
}

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }
