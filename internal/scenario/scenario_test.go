package scenario

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// testStart is a Monday morning: three days of data end on Thursday.
var testStart = time.Date(2025, 3, 10, 6, 0, 0, 0, time.UTC)

func generate(t testing.TB, opt Options) *Scenario {
	t.Helper()
	s, err := Generate(opt)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", opt, err)
	}
	return s
}

// cache holds scenarios several tests read, which none may modify.
var cache = struct {
	sync.Mutex
	m map[Options]*Scenario
}{m: map[Options]*Scenario{}}

// cached is generate for scenarios shared between tests.
func cached(t testing.TB, opt Options) *Scenario {
	t.Helper()
	cache.Lock()
	defer cache.Unlock()
	if s, ok := cache.m[opt]; ok {
		return s
	}
	s := generate(t, opt)
	cache.m[opt] = s
	return s
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	tests := []Options{
		{Seed: 1, Start: testStart},
		{Seed: 42, Start: testStart, Family: BadDeployDependency, Days: 2},
		{Seed: 7, Start: testStart, Services: 22, Days: 1, ErrorSampleRate: 0.25},
	}
	for _, opt := range tests {
		t.Run(fmt.Sprintf("%s/seed=%d", opt.Family, opt.Seed), func(t *testing.T) {
			t.Parallel()
			a, b := cached(t, opt), generate(t, opt)
			if !reflect.DeepEqual(a, b) {
				t.Fatal("two scenarios generated with equal options differ")
			}
		})
	}
}

func TestGenerateSeedsDiffer(t *testing.T) {
	t.Parallel()
	causes, onsets, services, topologies := map[string]bool{}, map[time.Time]bool{}, map[string]bool{}, map[string]bool{}
	const n = 8
	for seed := range uint64(n) {
		s := generate(t, Options{Seed: seed, Start: testStart, Days: 1})
		causes[s.ExpectedCause] = true
		onsets[s.Onset] = true
		services[s.CauseService] = true
		topologies[fmt.Sprint(s.Topology)] = true
	}
	if len(causes) != n || len(onsets) != n {
		t.Errorf("%d seeds gave %d distinct causes and %d distinct onsets, want %d", n, len(causes), len(onsets), n)
	}
	if len(services) < 4 || len(topologies) < 4 {
		t.Errorf("%d seeds gave %d distinct cause services and %d distinct topologies, want at least 4", n, len(services), len(topologies))
	}
}

// incidentCases are the scenarios whose incident the invariant tests check.
func incidentCases() []Options {
	cases := []Options{
		{Seed: 1, Start: testStart},
		{Seed: 2, Start: testStart, Family: BadDeployDependency},
		{Seed: 3, Start: testStart.Add(13*time.Hour + 17*time.Minute), Days: 2, ErrorSampleRate: 0.1},
		{Seed: 12, Start: testStart, Family: BadDeployDependency, Days: 2, ErrorSampleRate: 0.2},
		{Seed: 4, Start: time.Date(2025, 3, 14, 22, 0, 0, 0, time.FixedZone("CET", 3600)), Family: BadDeployDependency, Services: 22},
		{Seed: 5, Start: testStart, Days: 1, Services: 3, TrafficScale: 0.3},
		{Seed: 6, Start: testStart.Add(-48 * time.Hour), Days: 1}, // a Saturday
	}
	// Many small ones, for breadth.
	for seed := uint64(100); seed < 120; seed++ {
		for _, f := range Families {
			cases = append(cases, Options{Seed: seed, Start: testStart.Add(time.Duration(seed%24) * time.Hour), Days: 1, Services: 6, Family: f})
		}
	}
	return cases
}

func TestGenerateIncident(t *testing.T) {
	t.Parallel()
	for _, opt := range incidentCases() {
		t.Run(fmt.Sprintf("%s/seed=%d", opt.Family, opt.Seed), func(t *testing.T) {
			t.Parallel()
			checkIncident(t, cached(t, opt))
		})
	}
}

// checkIncident checks the invariants of s's incident.
func checkIncident(t *testing.T, s *Scenario) {
	t.Helper()
	cause := findChange(t, s, s.ExpectedCause)
	if cause.Kind != event.ChangeDeploy || cause.Service != s.CauseService {
		t.Errorf("cause is a %s of %s, want a deploy of %s", cause.Kind, cause.Service, s.CauseService)
	}
	if gap := s.Onset.Sub(cause.Time); gap < time.Minute || gap > 5*time.Minute {
		t.Errorf("onset %v after the cause, want 1 to 5 minutes", gap)
	}
	if gap := s.Detected.Sub(s.Onset); gap < 2*time.Minute || gap > 10*time.Minute {
		t.Errorf("detected %v after onset, want a few minutes", gap)
	}
	if s.Onset.Before(s.End.Add(-24*time.Hour)) || !s.Detected.Before(s.End.Add(-time.Hour)) {
		t.Errorf("onset %v outside the last day of [%v, %v) or too close to its end", s.Onset, s.Start, s.End)
	}
	if mod := s.Onset.Hour()*60 + s.Onset.Minute(); mod < 9*60+30 || mod > 16*60+40 {
		t.Errorf("onset %v outside business hours", s.Onset)
	}
	switch {
	case s.Options.Family == BadDeploy && s.Service != s.CauseService:
		t.Errorf("bad deploy asks about %s, want the cause's service %s", s.Service, s.CauseService)
	case s.Options.Family == BadDeployDependency && !slices.Contains(s.Topology[s.Service], s.CauseService):
		t.Errorf("asks about %s, which does not call the cause's service %s", s.Service, s.CauseService)
	case !dependsOn(s.Topology, s.Service, s.CauseService):
		t.Errorf("cause's service %s is neither %s nor one of its dependencies", s.CauseService, s.Service)
	}

	// The cause's service fails well above its baseline, and the
	// symptomatic service visibly.
	before, after := errorRatio(s, s.CauseService, s.Onset.Add(-2*time.Hour), s.Onset), errorRatio(s, s.CauseService, s.Onset, s.Onset.Add(30*time.Minute))
	if after < 3*before || after < 0.005 {
		t.Errorf("%s error ratio %.4f in the 30 min after onset, %.4f in the 2 h before: want well above", s.CauseService, after, before)
	}
	before, after = errorRatio(s, s.Service, s.Onset.Add(-2*time.Hour), s.Onset), errorRatio(s, s.Service, s.Onset, s.Onset.Add(30*time.Minute))
	if after < 2*before {
		t.Errorf("symptomatic %s error ratio %.4f after onset, %.4f before: want a visible rise", s.Service, after, before)
	}

	// The new error is new, and carries the bad release.
	seen := 0
	for _, e := range s.Batch.Errors {
		if e.Fingerprint != s.Fingerprint {
			continue
		}
		seen++
		if e.Time.Before(s.Onset) || e.Service != s.CauseService || e.Release != cause.Version {
			t.Fatalf("new fingerprint on %s of %s at %v, want only on %s of %s from %v", e.Release, e.Service, e.Time, cause.Version, s.CauseService, s.Onset)
		}
	}
	if seen == 0 {
		t.Error("no error event of the new fingerprint")
	}

	// Innocent changes are near: not only the cause happened before.
	near := 0
	for _, c := range s.Batch.Changes {
		if c.ID != s.ExpectedCause && !c.Time.Before(s.Onset.Add(-2*time.Hour)) && c.Time.Before(s.Onset) && neighbours(s.Topology, s.Service, c.Service) {
			near++
		}
	}
	if near < 2 {
		t.Errorf("%d innocent changes of %s or its neighbours in the 2 h before onset, want at least 2", near, s.Service)
	}
	if len(s.Decoys) < 2 || slices.Contains(s.Decoys, s.ExpectedCause) {
		t.Errorf("decoys %v: want at least 2, without the cause", s.Decoys)
	}
	for _, id := range s.Decoys {
		findChange(t, s, id)
	}
	if !strings.Contains(s.Description, s.ExpectedCause) {
		t.Errorf("description %q does not name the cause", s.Description)
	}
}

// TestGenerateNaiveAnswerIsWrongSometimes checks that "the most recent
// change of the service or its neighbours before the alert" is not always
// the cause.
func TestGenerateNaiveAnswerIsWrongSometimes(t *testing.T) {
	t.Parallel()
	const n = 20
	wrong := 0
	for seed := range uint64(n) {
		s := generate(t, Options{Seed: seed, Start: testStart, Days: 1, Services: 8})
		var last event.Change
		for _, c := range s.Batch.Changes {
			if c.Time.Before(s.Detected) && neighbours(s.Topology, s.Service, c.Service) {
				last = c
			}
		}
		if last.ID != s.ExpectedCause {
			wrong++
		}
	}
	if wrong < n/5 || wrong == n {
		t.Errorf("the most recent change is wrong in %d of %d scenarios, want sometimes", wrong, n)
	}
}

// TestGenerateRecords checks the records of every kind: ordering, bounds,
// consistency of releases with deploys, and of events with metrics.
func TestGenerateRecords(t *testing.T) {
	t.Parallel()
	tests := []Options{
		{Seed: 1, Start: testStart},
		{Seed: 12, Start: testStart, Family: BadDeployDependency, Days: 2, ErrorSampleRate: 0.2},
		{Seed: 13, Start: testStart, Days: 1, Services: 22},
	}
	for _, opt := range tests {
		t.Run(fmt.Sprintf("seed=%d", opt.Seed), func(t *testing.T) {
			t.Parallel()
			s := cached(t, opt)
			b := &s.Batch
			opt = s.Options
			checkOrder(t, "changes", b.Changes, func(c event.Change) time.Time { return c.Time }, s)
			checkOrder(t, "errors", b.Errors, func(e event.ErrorEvent) time.Time { return e.Time }, s)
			checkOrder(t, "logs", b.Logs, func(l event.LogRecord) time.Time { return l.Time }, s)
			checkOrder(t, "metrics", b.Metrics, func(m event.MetricPoint) time.Time { return m.Time }, s)

			// Topology: one record per service, deps known, acyclic.
			if len(b.Services) != opt.Services || len(s.Topology) != opt.Services {
				t.Fatalf("%d service records and %d topology entries, want %d", len(b.Services), len(s.Topology), opt.Services)
			}
			for _, sv := range b.Services {
				if !slices.Equal(sv.DependsOn, s.Topology[sv.Service]) {
					t.Errorf("%s depends on %v, topology says %v", sv.Service, sv.DependsOn, s.Topology[sv.Service])
				}
				for _, d := range sv.DependsOn {
					if _, ok := s.Topology[d]; !ok || dependsOn(s.Topology, d, sv.Service) {
						t.Errorf("%s -> %s: unknown dependency or a cycle", sv.Service, d)
					}
				}
			}

			// Changes: every service deploys, and there are flags and configs.
			kinds := map[event.ChangeKind]int{}
			deployed := map[string]bool{}
			for _, c := range b.Changes {
				kinds[c.Kind]++
				if c.Kind == event.ChangeDeploy {
					deployed[c.Service] = true
				}
				if c.ID == "" || c.Author == "" || c.Title == "" || c.Environment != Environment {
					t.Errorf("change %+v lacks id, author, title or environment", c)
				}
			}
			if len(deployed) != opt.Services || kinds[event.ChangeFlag] < 2 || kinds[event.ChangeConfig] < 2 {
				t.Errorf("%d of %d services deploy, change kinds %v", len(deployed), opt.Services, kinds)
			}

			// Releases of error events follow the deploys and rollbacks.
			versions := releaseTimelines(b.Changes)
			for _, e := range b.Errors {
				if want := versions.at(e.Service, e.Time); e.Release != want {
					t.Fatalf("error of %s at %v has release %s, want %s", e.Service, e.Time, e.Release, want)
				}
				if e.SampleRate != opt.ErrorSampleRate || e.Fingerprint == "" || e.TraceID == "" {
					t.Fatalf("error event %+v: bad sample rate, fingerprint or trace id", e)
				}
			}

			// Metrics: a full per-minute series of requests and errors per
			// service; error events match the errors metric at the sample rate.
			minutes := opt.Days * 24 * 60
			count := map[string]int{}
			failed, events := map[string]float64{}, map[string]float64{}
			for _, m := range b.Metrics {
				count[m.Service+"/"+m.Name]++
				if m.Labels["environment"] != Environment {
					t.Fatalf("metric %+v lacks the environment label", m)
				}
				if m.Name == MetricErrors {
					failed[m.Service] += m.Value
				}
			}
			for _, e := range b.Errors {
				events[e.Service]++
			}
			for sv := range s.Topology {
				if count[sv+"/"+MetricRequests] != minutes || count[sv+"/"+MetricErrors] != minutes || count[sv+"/"+MetricLatencyP95] < minutes*9/10 {
					t.Errorf("%s has %d, %d, %d points of %s, %s, %s; want %d each", sv,
						count[sv+"/"+MetricRequests], count[sv+"/"+MetricErrors], count[sv+"/"+MetricLatencyP95],
						MetricRequests, MetricErrors, MetricLatencyP95, minutes)
				}
				want := failed[sv] * opt.ErrorSampleRate
				if math.Abs(events[sv]-want) > 5*math.Sqrt(want)+1 {
					t.Errorf("%s has %v error events, want about %v of %v failed requests", sv, events[sv], want, failed[sv])
				}
			}
		})
	}
}

func TestGenerateVolumes(t *testing.T) {
	t.Parallel()
	tests := []Options{
		{Seed: 1, Start: testStart},
		{Seed: 2, Start: testStart, Family: BadDeployDependency},
		// The heaviest of a sweep of 400 (228k errors): api-gateway fails
		// early on the last day.
		{Seed: 78, Start: testStart, Family: BadDeployDependency},
	}
	for _, opt := range tests {
		t.Run(fmt.Sprintf("seed=%d", opt.Seed), func(t *testing.T) {
			t.Parallel()
			b := cached(t, opt).Batch
			const minutes = DefaultDays * 24 * 60
			switch {
			case len(b.Errors) < 10_000 || len(b.Errors) > 300_000:
				t.Errorf("%d error events, want 10k to 300k", len(b.Errors))
			case len(b.Logs) < 10_000 || len(b.Logs) > 200_000:
				t.Errorf("%d logs, want 10k to 200k", len(b.Logs))
			case len(b.Metrics) > 3*minutes*DefaultServices || len(b.Metrics) < 2*minutes*DefaultServices:
				t.Errorf("%d metric points, want about %d", len(b.Metrics), 3*minutes*DefaultServices)
			case len(b.Changes) < 20 || len(b.Changes) > 150:
				t.Errorf("%d changes, want 20 to 150", len(b.Changes))
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opt  Options
		want string // in the error; "" for none
	}{
		{Options{}, ""},
		{Options{Days: 31, Services: 22, ErrorSampleRate: 0.01, TrafficScale: 100, Family: BadDeployDependency}, ""},
		{Options{Days: -1}, `"days"`},
		{Options{Days: 32}, `"days"`},
		{Options{Services: 2}, `"services"`},
		{Options{Services: 23}, `"services"`},
		{Options{ErrorSampleRate: 1.5}, `"error_sample_rate"`},
		{Options{ErrorSampleRate: -0.1}, `"error_sample_rate"`},
		{Options{TrafficScale: -1}, `"traffic_scale"`},
		{Options{Family: "meteor-strike"}, `"family"`},
	}
	for _, tt := range tests {
		err := tt.opt.WithDefaults(testStart).Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.opt, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want one naming %s", tt.opt, err, tt.want)
		}
	}
	if _, err := Generate(Options{Days: 40}); err == nil {
		t.Error("Generate accepted 40 days")
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 13, 14, 37, 12, 0, time.FixedZone("CET", 3600))
	got := Options{}.WithDefaults(now)
	want := Options{Start: time.Date(2025, 3, 10, 13, 0, 0, 0, time.UTC), Days: DefaultDays, Services: DefaultServices, Family: BadDeploy, ErrorSampleRate: 1, TrafficScale: 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestServicePool checks the pool's call graph names only pool services and
// is acyclic, which the rewiring of orphans to api-gateway relies on.
func TestServicePool(t *testing.T) {
	t.Parallel()
	graph := map[string][]string{}
	for _, sp := range servicePool {
		graph[sp.name] = sp.deps
		if len(sp.routes) == 0 || len(sp.flags) == 0 || sp.peakRPM <= 0 {
			t.Errorf("%s lacks routes, flags or traffic", sp.name)
		}
		if _, ok := chronicErrors[sp.lang]; !ok {
			t.Errorf("%s has a language without errors", sp.name)
		}
	}
	for _, sp := range servicePool {
		for _, d := range sp.deps {
			if _, ok := graph[d]; !ok {
				t.Errorf("%s depends on %s, not in the pool", sp.name, d)
			}
			if d == "api-gateway" && sp.name != "frontend" || dependsOn(graph, d, sp.name) {
				t.Errorf("%s -> %s makes a cycle possible", sp.name, d)
			}
		}
	}
	if servicePool[0].name != "frontend" || servicePool[1].name != "api-gateway" {
		t.Error("the pool must start with frontend and api-gateway")
	}
}

func TestParseFamily(t *testing.T) {
	t.Parallel()
	for _, f := range Families {
		if got, ok := ParseFamily(string(f)); !ok || got != f {
			t.Errorf("ParseFamily(%q) = %q, %v", f, got, ok)
		}
	}
	if _, ok := ParseFamily("bad"); ok {
		t.Error(`ParseFamily("bad") succeeded`)
	}
}

func BenchmarkGenerate(b *testing.B) {
	var s *Scenario
	for b.Loop() {
		s = generate(b, Options{Seed: 1, Start: testStart})
	}
	b.ReportMetric(float64(s.Batch.Len()), "records/op")
}

func findChange(t *testing.T, s *Scenario, id string) event.Change {
	t.Helper()
	var found []event.Change
	for _, c := range s.Batch.Changes {
		if c.ID == id {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d changes with the expected cause's id %q, want 1", len(found), id)
	}
	return found[0]
}

// dependsOn reports whether from is to or calls it, directly or not.
func dependsOn(graph map[string][]string, from, to string) bool {
	if from == to {
		return true
	}
	for _, d := range graph[from] {
		if dependsOn(graph, d, to) {
			return true
		}
	}
	return false
}

// neighbours reports whether b is a, a dependency of a or a caller of a.
func neighbours(graph map[string][]string, a, b string) bool {
	return a == b || slices.Contains(graph[a], b) || slices.Contains(graph[b], a)
}

// errorRatio is the share of failed requests of service in [from, to),
// computed from the metrics.
func errorRatio(s *Scenario, service string, from, to time.Time) float64 {
	var req, failed float64
	for _, m := range s.Batch.Metrics {
		if m.Service != service || m.Time.Before(from) || !m.Time.Before(to) {
			continue
		}
		switch m.Name {
		case MetricRequests:
			req += m.Value
		case MetricErrors:
			failed += m.Value
		}
	}
	return failed / max(req, 1)
}

func checkOrder[T any](t *testing.T, kind string, recs []T, at func(T) time.Time, s *Scenario) {
	t.Helper()
	for i, r := range recs {
		ti := at(r)
		if ti.Before(s.Start) || !ti.Before(s.End) || ti.Location() != time.UTC {
			t.Fatalf("%s[%d] at %v, outside [%v, %v) or not UTC", kind, i, ti, s.Start, s.End)
		}
		if i > 0 && ti.Before(at(recs[i-1])) {
			t.Fatalf("%s[%d] at %v precedes the one before it", kind, i, ti)
		}
	}
}

// timelines maps a service to its releases in time order.
type timelines map[string][]event.Change

func releaseTimelines(changes []event.Change) timelines {
	tl := timelines{}
	for _, c := range changes {
		if c.Kind == event.ChangeDeploy || c.Kind == event.ChangeRollback {
			tl[c.Service] = append(tl[c.Service], c)
		}
	}
	return tl
}

// at returns the version service ran at t: the Version of its last deploy
// or rollback by then, else the PreviousVersion of its first.
func (tl timelines) at(service string, t time.Time) string {
	cs := tl[service]
	if len(cs) == 0 {
		return ""
	}
	v := cs[0].PreviousVersion
	for _, c := range cs {
		if c.Time.After(t) {
			break
		}
		v = c.Version
	}
	return v
}
