// Package scenario generates synthetic productions with one injected incident
// whose cause is known: days of diurnal traffic across a service topology,
// with per-minute metrics, sampled error events, structured logs and a
// background of innocent deploys, flag flips, config edits and rollbacks.
//
// It backs `correlator demo` and is the seed of an evaluation suite: a
// Family says what kind of incident is injected, Options hold the knobs, and
// everything follows from Options.Seed, so a scenario is named by its options
// and regenerated rather than stored.
//
// The metrics a scenario emits, one point per service per minute, stamped at
// the start of the minute and labelled {"environment":"production"}:
//
//	requests        requests the service handled in that minute
//	errors          requests of that minute that failed (unsampled)
//	latency_p95_ms  95th percentile request latency in that minute, in ms;
//	                absent for a minute without requests
package scenario

import (
	"fmt"
	"slices"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// The metric names a scenario emits; see the package comment.
const (
	MetricRequests   = "requests"
	MetricErrors     = "errors"
	MetricLatencyP95 = "latency_p95_ms"
)

// Environment is the environment of every generated record.
const Environment = "production"

// Family names a kind of incident. Families share the generator's background
// (topology, traffic, routine changes) and differ in what they inject.
type Family string

// The implemented families.
const (
	// BadDeploy is a deploy that makes its own service fail with a new error
	// a few minutes later; the on-call engineer asks about that service.
	BadDeploy Family = "bad-deploy"
	// BadDeployDependency is a bad deploy of a service whose callers fail
	// with it; the on-call engineer asks about a caller, whose own releases
	// are innocent and whose errors are failures of an existing kind.
	BadDeployDependency Family = "bad-deploy-dependency"
)

// Families lists the implemented families in a stable order.
var Families = []Family{BadDeploy, BadDeployDependency}

// ParseFamily returns the Family named by s, or false if s names none.
func ParseFamily(s string) (Family, bool) {
	for _, f := range Families {
		if string(f) == s {
			return f, true
		}
	}
	return "", false
}

// Options are the knobs of a scenario. The zero value of each field means its
// default; Validate reports values out of range.
type Options struct {
	// Seed selects the scenario. Generate with equal Options returns
	// deep-equal Scenarios.
	Seed uint64
	// Start is the beginning of the data, truncated to the minute and taken
	// in UTC. Zero means the current hour minus Days, which depends on the
	// clock: set it when determinism matters.
	Start time.Time
	// Days is the length of the data: 1 to 31, default 3. The incident
	// happens during business hours of the last day.
	Days int
	// Services is how many services the topology has: 3 to 22, default 12.
	Services int
	// Family is the kind of incident; default BadDeploy.
	Family Family
	// ErrorSampleRate is the probability that a failed request is captured
	// as an error event, in (0, 1], default 1. It is the events' SampleRate.
	ErrorSampleRate float64
	// TrafficScale multiplies every request rate, in (0, 100], default 1.
	// Error and log volumes scale with it; the metric volume does not.
	TrafficScale float64
}

// Defaults and limits of Options.
const (
	DefaultDays     = 3
	DefaultServices = 12
	maxDays         = 31
	minServices     = 3
)

// WithDefaults returns o with every zero field set to its default; a zero
// Start becomes now truncated to the hour minus Days.
func (o Options) WithDefaults(now time.Time) Options {
	if o.Days == 0 {
		o.Days = DefaultDays
	}
	if o.Services == 0 {
		o.Services = DefaultServices
	}
	if o.Family == "" {
		o.Family = BadDeploy
	}
	if o.ErrorSampleRate == 0 {
		o.ErrorSampleRate = 1
	}
	if o.TrafficScale == 0 {
		o.TrafficScale = 1
	}
	if o.Start.IsZero() {
		o.Start = now.UTC().Truncate(time.Hour).Add(-time.Duration(o.Days) * 24 * time.Hour)
	}
	o.Start = o.Start.UTC().Truncate(time.Minute)
	return o
}

// Validate reports the first option out of range. It expects defaults to
// have been applied.
func (o Options) Validate() error {
	switch {
	case o.Days < 1 || o.Days > maxDays:
		return fmt.Errorf("invalid option \"days\": %d is not between 1 and %d", o.Days, maxDays)
	case o.Services < minServices || o.Services > len(servicePool):
		return fmt.Errorf("invalid option \"services\": %d is not between %d and %d", o.Services, minServices, len(servicePool))
	case !(o.ErrorSampleRate > 0 && o.ErrorSampleRate <= 1):
		return fmt.Errorf("invalid option \"error_sample_rate\": %g is not in (0, 1]", o.ErrorSampleRate)
	case !(o.TrafficScale > 0 && o.TrafficScale <= 100):
		return fmt.Errorf("invalid option \"traffic_scale\": %g is not in (0, 100]", o.TrafficScale)
	}
	if _, ok := ParseFamily(string(o.Family)); !ok {
		return fmt.Errorf("invalid option \"family\": unknown family %q", o.Family)
	}
	return nil
}

// Scenario is a generated production and the answer to its incident.
type Scenario struct {
	// Options are the options it was generated with, defaults applied.
	Options Options
	// Batch holds every record, each kind ordered by time.
	Batch event.Batch
	// Start and End bound the data: [Start, End).
	Start, End time.Time
	// ExpectedCause is the ID of the change that caused the incident, or ""
	// when the family's incident has no causal change.
	ExpectedCause string
	// CauseService is the service ExpectedCause changed ("" when none).
	CauseService string
	// Service is the symptomatic service an on-call engineer asks about.
	Service string
	// Decoys are the IDs of the innocent changes planted near the incident
	// to make it hard: a neighbour's deploy often between the cause and the
	// onset, a flag flip or config edit of Service, sometimes another deploy.
	Decoys []string
	// Fingerprint is the error fingerprint the cause introduced in
	// CauseService, or "" when the incident introduced none.
	Fingerprint string
	// Onset is when the symptoms start.
	Onset time.Time
	// Detected is when an alert on Service would fire, a few minutes after
	// Onset: the time a user asks "what changed?" at.
	Detected time.Time
	// Topology maps each service to the services it calls.
	Topology map[string][]string
	// Description says in one line what happened, for humans.
	Description string
}

// Generate builds the scenario opt describes.
func Generate(opt Options) (*Scenario, error) {
	opt = opt.WithDefaults(time.Now())
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	g := newGenerator(opt)
	g.buildTopology(newRand(opt.Seed, streamTopology))
	// The incident stream depends on the family too, so that one seed gives
	// unrelated incidents in different families.
	if err := g.planIncident(newRand(opt.Seed, streamIncident^hash64(string(opt.Family)))); err != nil {
		return nil, fmt.Errorf("plan %s incident: %w", opt.Family, err)
	}
	g.scheduleChanges(newRand(opt.Seed, streamChanges))
	g.finalizeChanges(newRand(opt.Seed, streamVersions))
	batch := g.simulate(newRand(opt.Seed, streamTraffic))

	s := &Scenario{
		Options:  opt,
		Start:    g.start,
		End:      g.end,
		Service:  g.svcs[g.inc.symptom].name,
		Onset:    g.inc.onset,
		Detected: g.inc.detected,
		Topology: make(map[string][]string, len(g.svcs)),
	}
	for _, c := range g.changes {
		batch.Changes = append(batch.Changes, c.Change)
		if c.role == roleDecoy {
			s.Decoys = append(s.Decoys, c.ID)
		}
	}
	if c := g.inc.cause; c != nil {
		s.ExpectedCause = c.ID
		s.CauseService = c.Service
		s.Fingerprint = g.inc.fp.id
	}
	for _, sv := range g.svcs {
		deps := make([]string, 0, len(sv.deps))
		for _, e := range sv.deps {
			deps = append(deps, g.svcs[e.to].name)
		}
		s.Topology[sv.name] = deps
		batch.Services = append(batch.Services, event.Service{Service: sv.name, DependsOn: slices.Clone(deps), Time: g.start})
	}
	// The simulation emits errors, logs and metrics in time order; changes
	// are in the schedule's order, by time.
	s.Batch = *batch
	s.Description = g.describe()
	return s, nil
}
