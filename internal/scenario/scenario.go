// Package scenario generates synthetic productions with one injected incident
// whose truth is known: days of diurnal traffic across a service topology,
// with per-minute metrics, sampled error events, structured logs and a
// background of innocent deploys, flag flips, config edits and rollbacks.
//
// It backs `correlator demo` and the evaluation suite: a Family says what
// kind of incident is injected, the seed picks a variant of it (which
// service, how much traffic, how strong an effect, which decoys), Options
// hold the knobs, and everything follows from Options.Seed, so a scenario is
// named by its options and regenerated rather than stored. CauseFamilies have
// a causal change; in AbstainFamilies no change explains the symptoms and the
// right answer is to say so.
//
// The metrics a scenario emits, one point per series per minute, stamped at
// the start of the minute and labelled {"environment":"production"}:
//
//	requests            requests the service handled in that minute
//	errors              requests of that minute that failed (unsampled)
//	latency_p95_ms      95th percentile request latency in that minute, in ms;
//	                    absent for a minute without requests
//	memory_usage_bytes  working set of the service's containers, in bytes
//
// A service has one series of each, except the services of a canary or
// partial rollout (CanaryReleases, PartialRollout), which report requests,
// errors and latency per instance instead, labelled {"instance":
// "<service>-<version>-<pod>", "version": "<version>"}, or per region,
// labelled {"region": "eu-west-1"}, for the whole data; their memory stays
// one series. Their requests and errors sum to the service's: an engine sums
// series per service when it reads rates, and compares the series of a new
// version (or of the region a rollout went to) with the others over the same
// minutes to judge a canary.
//
// Changes carry attributes as their sources would: a flag flip {"flag",
// "old", "new"} (values off, 10%, 50%, 100%), a config edit {"key", "old",
// "new"}, a deploy {"pr", "pipeline"}, and a partial deploy also
// {"rollout": "canary", "canary_percent": "13"} or {"rollout": "region",
// "region": "eu-west-1"}. A rollback's Version is the version it returns to.
//
// Error events carry the release their replica ran and, in "server_name",
// the pod (the instance label of a per-instance service); events of a
// per-region service also carry "region". A failure the incident silences
// (CanaryReleases) counts in the errors metric only.
package scenario

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// The metric names a scenario emits; see the package comment.
const (
	MetricRequests   = "requests"
	MetricErrors     = "errors"
	MetricLatencyP95 = "latency_p95_ms"
	MetricMemory     = "memory_usage_bytes"
)

// Environment is the environment of every generated record.
const Environment = "production"

// Family names a kind of incident. Families share the generator's background
// (topology, traffic, routine changes) and differ in what they inject.
type Family string

// The implemented families. Unless a family says otherwise its cause is a
// change of the cause service, the new failures are an error the service
// never threw before, and the engineer asks about the cause service or one of
// its callers a few minutes after the onset.
const (
	// BadDeploy is a deploy that makes its own service fail with a new error
	// a few minutes later; the on-call engineer asks about that service.
	BadDeploy Family = "bad-deploy"
	// BadFlag is a feature flag rollout step (off → 10%, 10% → 100%...) that
	// sends traffic down a broken code path; no deploy is involved. From 10%
	// the error was already there at a tenth of the rate.
	BadFlag Family = "bad-flag"
	// BadConfig is a config edit that breaks its service: a tiny database
	// pool (latency and pool timeouts), a tiny client timeout (a surge of an
	// existing timeout error), a tiny rate limit (429s) or a disabled cache
	// (latency only).
	BadConfig Family = "bad-config"
	// BadDeployDependency is a bad deploy of a service whose callers fail
	// with it; the on-call engineer asks about a caller, whose own releases
	// are innocent and whose errors are failures of an existing kind.
	BadDeployDependency Family = "bad-deploy-dependency"
	// CanaryReleases is three to six canary deploys within five minutes, one
	// defective. Its failures are in no error event and no log: only the
	// per-instance metrics, labelled by version, tell the canaries apart. The
	// engineer asks about a common caller, or the defective service.
	CanaryReleases Family = "canary-releases"
	// SlowRegression is a deploy that leaks memory: memory climbs, latency
	// creeps up and replicas are OOM-killed hours later. Innocent changes
	// happen in between.
	SlowRegression Family = "slow-regression"
	// PartialRollout is a deploy to a share of the service, canary instances
	// or one region, whose failures are confined to that share; per-instance
	// or per-region metrics show it.
	PartialRollout Family = "partial-rollout"
	// ExternalOutage is a third-party API failing for every service that
	// calls it, with innocent changes nearby. No change is the cause.
	ExternalOutage Family = "external-outage"
	// TrafficSpike is a jump of traffic from a bot or a marketing push: error
	// counts rise with it, the error ratio hardly moves, latency a little,
	// with innocent changes nearby. No change is the cause.
	TrafficSpike Family = "traffic-spike"
	// Rollback is a bad deploy rolled back 10 to 40 minutes after the onset,
	// which ends the symptoms; the engineer asks around or after the rollback.
	// The cause is the deploy, not the rollback.
	Rollback Family = "rollback"
	// NoisyBackground is a bad deploy amid heavy noise: flapping services,
	// many sporadic fingerprints, two to three times the changes, and earlier
	// innocent deploys of the cause service.
	NoisyBackground Family = "noisy-background"
	// SparseData is a bad deploy of a low-traffic service in a quiet
	// production whose errors are sampled: tens of error events in all.
	SparseData Family = "sparse-data"
	// LateDetection is a bad deploy detected 1 to 30 minutes after the
	// onset, with innocent changes between the onset and the question.
	LateDetection Family = "late-detection"
	// BadDeployLatency is a deploy that only slows its service down, p95 3
	// to 10 times higher, with no new error.
	BadDeployLatency Family = "bad-deploy-latency"
)

// Families lists the implemented families in a stable order.
var Families = []Family{
	BadDeploy, BadFlag, BadConfig, BadDeployDependency, CanaryReleases,
	SlowRegression, PartialRollout, ExternalOutage, TrafficSpike, Rollback,
	NoisyBackground, SparseData, LateDetection, BadDeployLatency,
}

// CauseFamilies returns the families whose incident has a causal change, in
// the order of Families.
func CauseFamilies() []Family {
	var out []Family
	for _, f := range Families {
		if !f.Abstain() {
			out = append(out, f)
		}
	}
	return out
}

// AbstainFamilies returns the families whose incident no change explains,
// in the order of Families.
func AbstainFamilies() []Family {
	var out []Family
	for _, f := range Families {
		if f.Abstain() {
			out = append(out, f)
		}
	}
	return out
}

// ParseFamily returns the Family named by s, or false if s names none.
func ParseFamily(s string) (Family, bool) {
	for _, f := range Families {
		if string(f) == s {
			return f, true
		}
	}
	return "", false
}

// Abstain reports whether f's incidents have no causal change, so that the
// right answer to "what changed?" is that nothing explains them.
func (f Family) Abstain() bool {
	return f == ExternalOutage || f == TrafficSpike
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
	// as an error event, in (0, 1], default 1, or 0.1 to 0.25 chosen by the
	// seed for SparseData. It is the events' SampleRate.
	ErrorSampleRate float64
	// TrafficScale multiplies every request rate, in (0, 100], default 1,
	// or 0.02 to 0.05 chosen by the seed for SparseData. Error and log
	// volumes scale with it; the metric volume does not.
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
	if o.Family == SparseData {
		// A quiet production that samples its errors: the family's point.
		r := newRand(o.Seed, streamOptions)
		rate, scale := uniform(r, 0.1, 0.25), uniform(r, 0.02, 0.05)
		if o.ErrorSampleRate == 0 {
			o.ErrorSampleRate = math.Round(rate*100) / 100
		}
		if o.TrafficScale == 0 {
			o.TrafficScale = math.Round(scale*1000) / 1000
		}
	}
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
	// when the family's incident has no causal change (Abstain).
	ExpectedCause string
	// Abstain is true when no change explains the incident: the right
	// answer to "what changed?" is "nothing here", not the best-ranked one.
	Abstain bool
	// CauseService is the service ExpectedCause changed ("" when none).
	CauseService string
	// Service is the symptomatic service an on-call engineer asks about.
	Service string
	// Decoys are the IDs of the innocent changes planted near the incident
	// to make it hard: often one in Service's dependency scope between the
	// cause and Detected, so that "the most recent change" is wrong; a
	// neighbour's deploy, a flag flip or config edit of Service.
	Decoys []string
	// Mitigation is the ID of the change that ended the symptoms (the
	// Rollback family's rollback), or "".
	Mitigation string
	// External is the third party whose outage caused the incident
	// (ExternalOutage), or "".
	External string
	// Fingerprint is the error fingerprint whose rise the cause drove in
	// CauseService, or "" when the incident raised none (latency only,
	// canaries that report no errors, abstain families).
	Fingerprint string
	// FingerprintNew is true when Fingerprint first appears at the onset,
	// false when it is an existing error that surged.
	FingerprintNew bool
	// Onset is when the symptoms start.
	Onset time.Time
	// Detected is when an alert on Service would fire, after Onset: the
	// time a user asks "what changed?" at.
	Detected time.Time
	// Topology maps each service to the services it calls.
	Topology map[string][]string
	// Variant says in a few words which variant of the family the seed
	// chose: where, how strong, which decoys.
	Variant string
	// Description says in one line what happened, for humans.
	Description string
}

// Generate builds the scenario opt describes.
func Generate(opt Options) (*Scenario, error) {
	g, err := plan(opt)
	if err != nil {
		return nil, err
	}
	batch := g.simulate(newRand(g.opt.Seed, streamTraffic))

	s := &Scenario{
		Options:  g.opt,
		Start:    g.start,
		End:      g.end,
		Abstain:  g.opt.Family.Abstain(),
		Service:  g.svcs[g.inc.symptom].name,
		Onset:    g.inc.onset,
		Detected: g.inc.detected,
		Topology: make(map[string][]string, len(g.svcs)),
		Variant:  g.inc.variant,
	}
	for _, c := range g.changes {
		batch.Changes = append(batch.Changes, c.Change)
		switch c.role {
		case roleDecoy:
			s.Decoys = append(s.Decoys, c.ID)
		case roleMitigation:
			s.Mitigation = c.ID
		}
	}
	if c := g.inc.cause; c != nil {
		s.ExpectedCause = c.ID
		s.CauseService = c.Service
		s.Fingerprint = g.inc.fp.id
		s.FingerprintNew = g.inc.fpNew
	}
	if x := g.inc.external; x != "" {
		s.External = x
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

// plan runs every phase of generation but the simulation: topology,
// incident, changes. Its generator holds the truth and the changes, which
// tests of the incident's shape read without simulating traffic.
func plan(opt Options) (*generator, error) {
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
	return g, nil
}
