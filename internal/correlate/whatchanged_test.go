package correlate

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// fakeReader serves in-memory data with the store's window semantics.
type fakeReader struct {
	topo     map[string][]string
	changes  []event.Change
	errors   []store.Bucket
	requests []store.Bucket
	fps      map[string][]store.Fingerprint
	peers    []store.PeerBucket
	// flagErrors answers FlagErrors; nil answers 0 of 0.
	flagErrors func(service, flag string, from, to time.Time) (on, evaluated uint64)
	logs       map[string][]store.LogLine // warnings and worse, by service

	mu       sync.Mutex // mu guards logReads: the engine reads logs concurrently.
	logReads []logRead
}

// logRead is one call of LogLines.
type logRead struct {
	service  string
	from, to time.Time
}

func (f *fakeReader) Topology(context.Context) (map[string][]string, error) { return f.topo, nil }

func in(svcs []string, s string) bool {
	for _, x := range svcs {
		if x == s {
			return true
		}
	}
	return false
}

func (f *fakeReader) Changes(_ context.Context, svcs []string, from, to time.Time) ([]event.Change, error) {
	var out []event.Change
	for _, c := range f.changes {
		if in(svcs, c.Service) && !c.Time.Before(from) && c.Time.Before(to) {
			out = append(out, c)
		}
	}
	return out, nil
}

func filter(bs []store.Bucket, svcs []string, from, to time.Time) []store.Bucket {
	var out []store.Bucket
	for _, b := range bs {
		if in(svcs, b.Service) && !b.Minute.Before(from) && b.Minute.Before(to) {
			out = append(out, b)
		}
	}
	return out
}

func (f *fakeReader) ErrorsPerMinute(_ context.Context, svcs []string, from, to time.Time) ([]store.Bucket, error) {
	return filter(f.errors, svcs, from, to), nil
}

func (f *fakeReader) MetricPerMinute(_ context.Context, _ string, svcs []string, from, to time.Time) ([]store.Bucket, error) {
	return filter(f.requests, svcs, from, to), nil
}

func (f *fakeReader) NewFingerprints(_ context.Context, svcs []string, _, from, to time.Time) ([]store.Fingerprint, error) {
	var out []store.Fingerprint
	for _, svc := range svcs {
		for _, fp := range f.fps[svc] {
			if !fp.FirstSeen.Before(from) && fp.FirstSeen.Before(to) {
				fp.Service = svc
				out = append(out, fp)
			}
		}
	}
	return out, nil
}

// testModel fixes the weights the unit tests assume, so they test the
// features and the ranking rather than the shipped model's fit.
var testModel = &Model{Bias: -4, Weights: map[string]float64{"time": 2, "error_shift": 5, "new_error_release": 1}, AbstainBelow: 0.3}

var base = time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)

// traffic adds per-minute requests and errors for svc over [from, to):
// ratio before burst, burstRatio from burst on (zero burst: none).
func traffic(f *fakeReader, svc string, from, to time.Time, perMin, ratio float64, burst time.Time, burstRatio float64) {
	for m := from; m.Before(to); m = m.Add(time.Minute) {
		r := ratio
		if !burst.IsZero() && !m.Before(burst) {
			r = burstRatio
		}
		f.requests = append(f.requests, store.Bucket{Service: svc, Minute: m, Count: 1, Estimate: perMin})
		if e := perMin * r; e > 0 {
			f.errors = append(f.errors, store.Bucket{Service: svc, Minute: m, Count: uint64(e), Estimate: e})
		}
	}
}

func TestWhatChangedRanksTheCause(t *testing.T) {
	at := base.Add(3 * time.Hour)
	onset := at.Add(-20 * time.Minute)
	cause := event.Change{ID: "bad", Time: onset.Add(-4 * time.Minute), Kind: event.ChangeDeploy, Service: "api", Version: "v2"}
	early := event.Change{ID: "early", Time: onset.Add(-90 * time.Minute), Kind: event.ChangeFlag, Service: "api"}
	dep := event.Change{ID: "dep", Time: onset.Add(-2 * time.Minute), Kind: event.ChangeDeploy, Service: "db", Version: "v9"}
	late := event.Change{ID: "late", Time: onset.Add(5 * time.Minute), Kind: event.ChangeConfig, Service: "api"}
	f := &fakeReader{
		topo:    map[string][]string{"api": {"db"}, "db": {}, "web": {"api"}},
		changes: []event.Change{early, cause, dep, late},
		fps: map[string][]store.Fingerprint{"api": {{Fingerprint: "f1", Type: "KeyError", Message: "missing 'price'", Release: "v2",
			FirstSeen: onset.Add(30 * time.Second), Count: 300}}},
	}
	traffic(f, "api", at.Add(-4*time.Hour), at, 1000, 0.002, onset, 0.08)
	traffic(f, "db", at.Add(-4*time.Hour), at, 500, 0.001, time.Time{}, 0)

	ans, err := New(f, Options{Model: testModel}).WhatChanged(context.Background(), Query{Service: "api", At: at, Lookback: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if ans.OnsetSource != "detected" || !ans.Onset.Equal(onset) {
		t.Errorf("onset = %v (%s), want %v detected", ans.Onset, ans.OnsetSource, onset)
	}
	if ans.Verdict != VerdictCause || !strings.Contains(ans.Summary, "Most likely cause: deploy v2 of api") {
		t.Errorf("verdict %q, summary %q", ans.Verdict, ans.Summary)
	}
	if !reflect.DeepEqual(ans.Scope, []string{"api", "db"}) {
		t.Errorf("scope = %v", ans.Scope)
	}
	var ids []string
	for _, c := range ans.Candidates {
		ids = append(ids, c.Change.ID)
		if c.Score < 0 || c.Score > 1 {
			t.Errorf("%s: score %v outside [0,1]", c.Change.ID, c.Score)
		}
	}
	if ids[0] != "bad" {
		t.Fatalf("ranking = %v, want bad first", ids)
	}
	top := ans.Candidates[0]
	if top.Rank != 1 || top.Score < 0.8 {
		t.Errorf("top candidate rank %d score %v", top.Rank, top.Score)
	}
	text := evidenceText(top)
	for _, want := range []string{"4 min before symptom onset", "error rate 0.20% → ", "new error KeyError", "in the new release v2"} {
		if !strings.Contains(text, want) {
			t.Errorf("evidence lacks %q:\n%s", want, text)
		}
	}
	if ev := top.Evidence[1]; ev.Kind != "error_rate" || ev.Values["ratio"] < 20 || ev.Values["z"] < 10 {
		t.Errorf("error-rate evidence of the cause: %+v", ev)
	}
	for _, c := range ans.Candidates {
		switch c.Change.ID {
		case "late":
			if c.Score > 0.01 || !strings.Contains(evidenceText(c), "after symptom onset: cannot have caused it") {
				t.Errorf("a change after onset: score %v, evidence %s", c.Score, evidenceText(c))
			}
		case "dep":
			if !strings.Contains(evidenceText(c), "db is a dependency of api") {
				t.Errorf("dependency evidence missing: %s", evidenceText(c))
			}
			if c.Score >= top.Score {
				t.Errorf("an innocent dependency deploy scored %v ≥ the cause's %v", c.Score, top.Score)
			}
		case "early":
			if len(c.Evidence) > 0 && strings.Contains(evidenceText(c), "new error") {
				t.Errorf("the new error was attributed to an earlier change: %s", evidenceText(c))
			}
		}
	}
}

func TestWhatChangedWithoutShiftReportsNoOnset(t *testing.T) {
	at := base.Add(3 * time.Hour)
	f := &fakeReader{topo: map[string][]string{}, changes: []event.Change{{ID: "c", Time: at.Add(-30 * time.Minute), Kind: event.ChangeDeploy, Service: "api"}}}
	traffic(f, "api", at.Add(-4*time.Hour), at, 1000, 0.002, time.Time{}, 0)
	ans, err := New(f, Options{Model: testModel}).WhatChanged(context.Background(), Query{Service: "api", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if ans.OnsetSource != "none" || !ans.Onset.Equal(at) {
		t.Errorf("onset %v (%s), want none at query time", ans.Onset, ans.OnsetSource)
	}
	if len(ans.Candidates) != 1 || ans.Candidates[0].Score > 0.4 {
		t.Errorf("a change without any shift scored %+v", ans.Candidates)
	}
	if ans.Verdict != VerdictAbstain || !strings.HasPrefix(ans.Summary, "No change explains this") {
		t.Errorf("verdict %q, summary %q: want an abstention", ans.Verdict, ans.Summary)
	}
}

func TestGivenOnsetAndErrorsWithoutRequests(t *testing.T) {
	at := base.Add(3 * time.Hour)
	onset := at.Add(-10 * time.Minute)
	f := &fakeReader{topo: map[string][]string{}, changes: []event.Change{{ID: "c", Time: onset.Add(-time.Minute), Kind: event.ChangeDeploy, Service: "api"}}}
	for m := at.Add(-3 * time.Hour); m.Before(at); m = m.Add(time.Minute) {
		n := 1.0
		if !m.Before(onset) {
			n = 40
		}
		f.errors = append(f.errors, store.Bucket{Service: "api", Minute: m, Count: uint64(n), Estimate: n})
	}
	ans, err := New(f, Options{Model: testModel}).WhatChanged(context.Background(), Query{Service: "api", At: at, Onset: onset})
	if err != nil {
		t.Fatal(err)
	}
	if ans.OnsetSource != "given" {
		t.Errorf("onset source %s", ans.OnsetSource)
	}
	if got := evidenceText(ans.Candidates[0]); !strings.Contains(got, "errors 1.0/min → ") {
		t.Errorf("without a request metric the evidence should speak of errors per minute: %s", got)
	}
	if ans.Candidates[0].Score < 0.8 {
		t.Errorf("score %v", ans.Candidates[0].Score)
	}
}

func TestDependencies(t *testing.T) {
	topo := map[string][]string{"web": {"api", "auth"}, "api": {"db", "cache"}, "db": {"web"}, "auth": {"db"}}
	got := Dependencies(topo, "web")
	want := []string{"web", "api", "auth", "cache", "db"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Dependencies = %v, want %v (cycle web→api→db→web tolerated)", got, want)
	}
	if got := Dependencies(topo, "unknown"); !reflect.DeepEqual(got, []string{"unknown"}) {
		t.Errorf("unknown service: %v", got)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in, want, err string
	}{
		{"now", "2026-11-21T12:00:00Z", ""},
		{"-30m", "2026-11-21T11:30:00Z", ""},
		{"2026-11-21T10:00:00+02:00", "2026-11-21T08:00:00Z", ""},
		{"1763719200000", "2025-11-21T10:00:00Z", ""},
		{"1763719200", "", "looks like Unix seconds"},
		{"yesterday", "", "want RFC 3339"},
		{"-x", "", "offset like -30m"},
	} {
		got, err := ParseTime(tc.in, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTime(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.Format(time.RFC3339) != tc.want {
			t.Errorf("ParseTime(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestParseLookback(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"2h", 2 * time.Hour, false}, {"90m", 90 * time.Minute, false}, {"1d", 24 * time.Hour, false},
		{"0s", 0, true}, {"-1h", 0, true}, {"31d", 0, true}, {"soon", 0, true},
	} {
		got, err := ParseLookback(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseLookback(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func (f *fakeReader) MetricsByKey(_ context.Context, svcs, names []string, from, to time.Time) ([]store.MetricBucket, error) {
	var out []store.MetricBucket
	for _, b := range filter(f.requests, svcs, from, to) {
		out = append(out, store.MetricBucket{Service: b.Service, Name: "requests", Minute: b.Minute, Sum: b.Estimate, Avg: b.Estimate, Max: b.Estimate, Points: 1})
	}
	return out, nil
}

func (f *fakeReader) AllErrorsPerMinute(_ context.Context, from, to time.Time) ([]store.Bucket, error) {
	var out []store.Bucket
	for _, b := range f.errors {
		if !b.Minute.Before(from) && b.Minute.Before(to) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeReader) LogLines(_ context.Context, svc string, from, to time.Time, _ uint8, limit int) ([]store.LogLine, error) {
	f.mu.Lock()
	f.logReads = append(f.logReads, logRead{svc, from, to})
	f.mu.Unlock()
	from, to = from.Truncate(time.Second), to.Truncate(time.Second)
	var out []store.LogLine
	for _, l := range f.logs[svc] {
		if !l.Time.Before(from) && l.Time.Before(to) && len(out) < limit {
			out = append(out, l)
		}
	}
	return out, nil
}

func (f *fakeReader) NewErrorsAll(context.Context, time.Time, time.Time, time.Time) ([]store.NewError, error) {
	return nil, nil
}

func evidenceText(c Candidate) string {
	var lines []string
	for _, e := range c.Evidence {
		lines = append(lines, e.Kind+": "+e.Summary)
	}
	return strings.Join(lines, "\n")
}

func (f *fakeReader) PeerErrorsPerMinute(_ context.Context, svcs []string, from, to time.Time) ([]store.PeerBucket, error) {
	var out []store.PeerBucket
	for _, b := range f.peers {
		if in(svcs, b.Service) && !b.Minute.Before(from) && b.Minute.Before(to) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeReader) FlagErrors(_ context.Context, service, flag string, from, to time.Time) (uint64, uint64, error) {
	if f.flagErrors == nil {
		return 0, 0, nil
	}
	on, n := f.flagErrors(service, flag, from, to)
	return on, n, nil
}

// TestLogPatterns checks the log evidence: each changed service's lines
// are read once, over the windows of all its changes, and each change is
// judged on its own windows of them.
func TestLogPatterns(t *testing.T) {
	at := base.Add(3 * time.Hour)
	onset := at.Add(-10 * time.Minute)
	early := event.Change{ID: "early", Time: onset.Add(-50*time.Minute + 300*time.Millisecond), Kind: event.ChangeDeploy, Service: "api", Version: "v1"}
	bad := event.Change{ID: "bad", Time: onset.Add(-5 * time.Minute), Kind: event.ChangeDeploy, Service: "api", Version: "v2"}
	dep := event.Change{ID: "dep", Time: onset.Add(-30 * time.Minute), Kind: event.ChangeConfig, Service: "db"}
	late := event.Change{ID: "late", Time: onset.Add(time.Minute), Kind: event.ChangeFlag, Service: "cache"}
	f := &fakeReader{
		topo:    map[string][]string{"api": {"db", "cache"}},
		changes: []event.Change{early, dep, bad, late},
		logs:    map[string][]store.LogLine{},
	}
	// Background warnings in api and db all along, and in api a new
	// failure from a minute after the bad deploy.
	for m := at.Add(-3 * time.Hour); m.Before(at); m = m.Add(10 * time.Second) {
		for _, svc := range []string{"api", "db"} {
			f.logs[svc] = append(f.logs[svc], store.LogLine{Time: m, Body: fmt.Sprintf("slow query on table orders took %d ms", 500+m.Second())})
		}
		if !m.Before(bad.Time.Add(time.Minute)) {
			f.logs["api"] = append(f.logs["api"], store.LogLine{Time: m.Add(time.Second), Body: fmt.Sprintf("payment failed: decimal conversion error for order %d", m.Unix())})
		}
	}
	ans, err := New(f, Options{Model: testModel}).WhatChanged(context.Background(), Query{Service: "api", At: at, Onset: onset})
	if err != nil {
		t.Fatal(err)
	}
	// One read per service with a change before the onset, from an hour
	// before its first change to the end of its last change's window.
	slices.SortFunc(f.logReads, func(a, b logRead) int { return strings.Compare(a.service, b.service) })
	want := []logRead{
		{"api", early.Time.Add(-time.Hour).Truncate(time.Second), bad.Time.Add(15 * time.Minute)},
		{"db", dep.Time.Add(-time.Hour), dep.Time.Add(15 * time.Minute)},
	}
	if !reflect.DeepEqual(f.logReads, want) {
		t.Errorf("log reads %+v, want %+v", f.logReads, want)
	}
	for _, c := range ans.Candidates {
		text := evidenceText(c)
		found := strings.Contains(text, `new log pattern after the deploy: "payment failed: decimal conversion error for order`)
		if found != (c.Change.ID == "bad") || (c.Features["log_pattern"] > 0) != found {
			t.Errorf("%s: log_pattern %v, evidence:\n%s", c.Change.ID, c.Features["log_pattern"], text)
		}
	}
}
