// Package eval is correlator's evaluation suite: it generates scenarios of
// every incident family with known causes, loads each into a fresh embedded
// database through the public ingest API, asks "what changed?" over HTTP as
// an on-call engineer would, and scores the engine beside the first-score
// baseline: top-1, top-3, MRR, false blame, false abstention, calibration
// and latency, per family and overall, against the targets the engine must
// meet. It also fits the engine's model on the development split.
//
// The splits are fixed seed ranges, so the engine is never tuned on the
// scenarios it is judged on: dev is seeds 1..N of every family, test is
// seeds 100001..100000+N.
package eval

import (
	"fmt"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/scenario"
)

// Split names a fixed range of scenario seeds.
type Split string

// The splits. Tune on Dev only; Test is for reporting.
const (
	Dev  Split = "dev"
	Test Split = "test"
)

// testSeedBase offsets the test split's seeds far from the dev split's, so
// that no reasonable --per-family makes them overlap.
const testSeedBase = 100000

// ParseSplit returns the split named by s, or false if s names none.
func ParseSplit(s string) (Split, bool) {
	switch Split(s) {
	case Dev, Test:
		return Split(s), true
	}
	return "", false
}

// Seeds returns the n seeds of the split, in order: 1..n for dev,
// 100001..100000+n for test.
func (s Split) Seeds(n int) []uint64 {
	base := uint64(0)
	if s == Test {
		base = testSeedBase
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = base + uint64(i) + 1
	}
	return out
}

// scenarioStart is the first minute of every scenario's data. A fixed date
// makes a run reproducible (the generator's default depends on the clock);
// it is a Monday, and it lies in the past so that ingest accepts it.
var scenarioStart = time.Date(2025, 3, 10, 6, 0, 0, 0, time.UTC)

// ScenarioOptions are the generator options of one scenario of the suite:
// one day of data and 6 to 10 services, chosen by the seed.
func ScenarioOptions(f scenario.Family, seed uint64) scenario.Options {
	return scenario.Options{
		Seed:     seed,
		Start:    scenarioStart,
		Days:     1,
		Services: 6 + int(seed%5),
		Family:   f,
	}
}

// DefaultLookback is how far back the suite asks for changes, the API's
// default and what an on-call engineer would type.
const DefaultLookback = 2 * time.Hour

// LookbackRule gives the families whose name contains Contains a longer or
// shorter lookback than DefaultLookback.
type LookbackRule struct {
	Contains string
	Lookback time.Duration
}

// Lookbacks is the one table of per-family lookbacks; the first matching
// rule wins. A slow regression's cause can lie hours before it is noticed.
var Lookbacks = []LookbackRule{
	{Contains: "slow", Lookback: 8 * time.Hour},
}

// LookbackFor returns the lookback the suite asks family f with.
func LookbackFor(f scenario.Family) time.Duration {
	for _, r := range Lookbacks {
		if strings.Contains(string(f), r.Contains) {
			return r.Lookback
		}
	}
	return DefaultLookback
}

// ParseFamilies parses a comma-separated list of family names; empty means
// every family of the scenario package.
func ParseFamilies(s string) ([]scenario.Family, error) {
	if strings.TrimSpace(s) == "" {
		return append([]scenario.Family(nil), scenario.Families...), nil
	}
	var out []scenario.Family
	seen := map[scenario.Family]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		f, ok := scenario.ParseFamily(name)
		if !ok {
			known := make([]string, len(scenario.Families))
			for i, k := range scenario.Families {
				known[i] = string(k)
			}
			return nil, fmt.Errorf("unknown family %q (known: %s)", name, strings.Join(known, ", "))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no family given")
	}
	return out, nil
}
