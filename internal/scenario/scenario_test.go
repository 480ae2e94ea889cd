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
		{Seed: 8, Start: testStart, Days: 1, Family: CanaryReleases},
		{Seed: 9, Start: testStart, Days: 1, Family: SlowRegression},
		{Seed: 10, Start: testStart, Days: 1, Family: ExternalOutage},
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
	// Small ones of every family, for breadth; TestFamilies has more.
	for seed := uint64(100); seed < 104; seed++ {
		for _, f := range Families {
			cases = append(cases, Options{Seed: seed, Start: testStart.Add(time.Duration(seed%24) * time.Hour), Days: 1, Services: 6, Family: f})
		}
	}
	// Every family with the default number of services.
	for i, f := range Families {
		cases = append(cases, Options{Seed: 500 + uint64(i), Start: testStart, Days: 1, Family: f})
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
		{Seed: 14, Start: testStart, Days: 1, Family: CanaryReleases},
		{Seed: 15, Start: testStart, Days: 1, Family: PartialRollout},
		{Seed: 16, Start: testStart, Days: 1, Family: PartialRollout, Services: 8},
		{Seed: 17, Start: testStart, Days: 1, Family: NoisyBackground},
		{Seed: 18, Start: testStart, Days: 1, Family: SparseData},
		{Seed: 19, Start: testStart, Days: 1, Family: TrafficSpike},
		{Seed: 20, Start: testStart, Days: 1, Family: Rollback},
	}
	for _, opt := range tests {
		t.Run(fmt.Sprintf("%s/seed=%d", opt.Family, opt.Seed), func(t *testing.T) {
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

			// Releases of error events follow the deploys and rollbacks;
			// after a partial rollout, either version.
			versions := releaseTimelines(b.Changes)
			for _, e := range b.Errors {
				if want := versions.valid(e.Service, e.Time); !slices.Contains(want, e.Release) {
					t.Fatalf("error of %s at %v has release %s, want one of %v", e.Service, e.Time, e.Release, want)
				}
				if e.SampleRate != opt.ErrorSampleRate || e.Fingerprint == "" || e.TraceID == "" {
					t.Fatalf("error event %+v: bad sample rate, fingerprint or trace id", e)
				}
			}

			// Metrics: every minute of every service has requests, errors
			// and memory, summed over its series, and latency; per-instance
			// series carry the version they run. Error events match the
			// errors metric at the sample rate, unless the incident is
			// silent.
			minutes := opt.Days * 24 * 60
			type key struct {
				svc, name string
				t         time.Time
			}
			seen := map[key]bool{}
			count := map[string]int{}
			failed, events := map[string]float64{}, map[string]float64{}
			for _, m := range b.Metrics {
				k := key{m.Service, m.Name, m.Time}
				if !seen[k] {
					seen[k] = true
					count[m.Service+"/"+m.Name]++
				}
				if m.Labels["environment"] != Environment {
					t.Fatalf("metric %+v lacks the environment label", m)
				}
				if in := m.Labels["instance"]; in != "" && !strings.HasPrefix(in, m.Service+"-"+m.Labels["version"]+"-") {
					t.Fatalf("metric %+v: instance does not name its service and version", m)
				}
				if in := m.Labels["instance"]; in != "" && !slices.Contains(versions.valid(m.Service, m.Time), m.Labels["version"]) {
					t.Fatalf("metric %+v: version %s not running then", m, m.Labels["version"])
				}
				if m.Name == MetricErrors {
					failed[m.Service] += m.Value
				}
			}
			for _, e := range b.Errors {
				events[e.Service]++
			}
			for sv := range s.Topology {
				for _, name := range []string{MetricRequests, MetricErrors, MetricMemory} {
					if count[sv+"/"+name] != minutes {
						t.Errorf("%s has %d minutes of %s, want %d", sv, count[sv+"/"+name], name, minutes)
					}
				}
				if n := count[sv+"/"+MetricLatencyP95]; n < minutes/2 {
					t.Errorf("%s has %d minutes of %s, want most of %d", sv, n, MetricLatencyP95, minutes)
				}
				want := failed[sv] * opt.ErrorSampleRate
				if opt.Family != CanaryReleases && math.Abs(events[sv]-want) > 5*math.Sqrt(want)+1 {
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
			case len(b.Metrics) > 4*minutes*DefaultServices || len(b.Metrics) < 3*minutes*DefaultServices:
				t.Errorf("%d metric points, want about %d", len(b.Metrics), 4*minutes*DefaultServices)
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

// BenchmarkGenerateDay generates a day of every family as the evaluation
// suite does, cycling through seeds and topology sizes.
func BenchmarkGenerateDay(b *testing.B) {
	for _, f := range Families {
		b.Run(string(f), func(b *testing.B) {
			seed, records := uint64(0), 0
			for b.Loop() {
				s := generate(b, Options{Seed: seed, Start: testStart, Days: 1, Services: 6 + int(seed%5), Family: f})
				records += s.Batch.Len()
				seed++
			}
			b.ReportMetric(float64(records)/float64(seed), "records/op")
		})
	}
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

// at returns the version service ran at t: the Version of its last full
// deploy or rollback by then, else the PreviousVersion of its first.
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
		if c.Attributes["rollout"] == "" {
			v = c.Version
		}
	}
	return v
}

// valid returns the versions service ran at t: that of at, and the
// version of a partial rollout by then.
func (tl timelines) valid(service string, t time.Time) []string {
	vs := []string{tl.at(service, t)}
	for _, c := range tl[service] {
		if !c.Time.After(t) && c.Attributes["rollout"] != "" {
			vs = append(vs, c.Version)
		}
	}
	return vs
}
