package postmortem_test

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// fakeStore serves fixed records, for tests that need no ClickHouse:
// timeline shapes, rendering, handlers. It records nothing, so bundles
// built from it cite no queries.
type fakeStore struct {
	hist    []store.Incident
	snaps   []store.Snapshot
	changes []event.Change
	errs    []store.Bucket
	fps     []store.Fingerprint
	samples []store.ErrorSample
	lines   []store.LogLine
	fail    error // returned by IncidentHistory
}

func (f *fakeStore) IncidentHistory(context.Context, string) ([]store.Incident, error) {
	return f.hist, f.fail
}
func (f *fakeStore) Snapshots(context.Context, string) ([]store.Snapshot, error) { return f.snaps, nil }
func (f *fakeStore) Changes(context.Context, []string, time.Time, time.Time) ([]event.Change, error) {
	return f.changes, nil
}
func (f *fakeStore) ErrorsPerMinute(context.Context, []string, time.Time, time.Time) ([]store.Bucket, error) {
	return f.errs, nil
}
func (f *fakeStore) MetricPerMinute(context.Context, string, []string, time.Time, time.Time) ([]store.Bucket, error) {
	return nil, nil
}
func (f *fakeStore) NewFingerprints(context.Context, []string, time.Time, time.Time, time.Time) ([]store.Fingerprint, error) {
	return f.fps, nil
}
func (f *fakeStore) ErrorSamples(context.Context, []string, []string, time.Time, time.Time) ([]store.ErrorSample, error) {
	return f.samples, nil
}
func (f *fakeStore) LogLines(context.Context, string, time.Time, time.Time, uint8, int) ([]store.LogLine, error) {
	return f.lines, nil
}

var (
	ft0        = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	errStoreDn = errors.New("store down")
)

// hostileText is telemetry trying to break out of every format.
const hostileText = "<script>alert(1)</script> | `code` *bold* [x](javascript:alert(1)) ]]></text><script>"

// fakeIncident is a resolved declared incident with hostile text in its
// records, a framed new error and a snapshot.
func fakeIncident() *fakeStore {
	open := store.Incident{ID: "inc-1", Title: "Checkout " + hostileText, Status: "open", Severity: "major", Services: []string{"api"},
		OpenedAt: ft0.Add(10 * time.Minute), Onset: ft0.Add(5 * time.Minute), UpdatedAt: ft0.Add(10 * time.Minute)}
	widened := open
	widened.Services, widened.UpdatedAt = []string{"api", "db"}, ft0.Add(15*time.Minute)
	acted := widened
	acted.Note, acted.UpdatedAt = "rolled back api to v41 "+hostileText, ft0.Add(20*time.Minute)
	resolved := acted
	resolved.Status, resolved.ResolvedAt, resolved.UpdatedAt, resolved.Note = "resolved", ft0.Add(40*time.Minute), ft0.Add(41*time.Minute), ""
	resolved.Attributes = map[string]string{"cause": "chg-1"}
	change := event.Change{ID: "chg-1", Time: ft0, Kind: event.ChangeDeploy, Service: "api", Version: "v42 " + hostileText, PreviousVersion: "v41",
		Author: "ana", Title: "feature " + hostileText, URL: "javascript:alert(1)"}
	ans := correlate.Answer{Service: "api", Onset: ft0.Add(4 * time.Minute), OnsetSource: "detected", Scope: []string{"api"}, Verdict: correlate.VerdictCause,
		Summary: "Most likely cause: " + hostileText, Candidates: []correlate.Candidate{{Rank: 1, Score: 0.9, Change: change,
			Evidence: []correlate.Evidence{{Kind: "error_shift", Summary: "error rate 3× " + hostileText}}}}}
	causes, _ := json.Marshal(ans)
	return &fakeStore{
		hist:    []store.Incident{open, widened, acted, resolved},
		snaps:   []store.Snapshot{{IncidentID: "inc-1", TakenAt: ft0.Add(10 * time.Minute), Trigger: "open", Causes: string(causes)}},
		changes: []event.Change{change},
		errs:    []store.Bucket{{Service: "api", Minute: ft0, Count: 1, Estimate: 1}, {Service: "api", Minute: ft0.Add(5 * time.Minute), Count: 9, Estimate: 9}},
		fps: []store.Fingerprint{{Service: "api", Fingerprint: "fp1", Type: "KeyError", Message: hostileText, Release: "v42",
			FirstSeen: ft0.Add(4 * time.Minute), LastSeen: ft0.Add(30 * time.Minute), Count: 12}},
		samples: []store.ErrorSample{{Service: "api", Fingerprint: "fp1", Frames: []string{"app.checkout (c.py:10)", "app." + hostileText}}},
		lines:   []store.LogLine{{Time: ft0.Add(6 * time.Minute), Body: "```\n" + hostileText}},
	}
}
