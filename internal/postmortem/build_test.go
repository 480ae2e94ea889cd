package postmortem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/postmortem"
	"github.com/correlator/correlator/internal/store"
)

// The demo incident's bundle: the injected cause first, the impact the
// snapshot's, the timeline in UTC order with the deploy and the onset.
func TestDemoBundle(t *testing.T) {
	d := loadDemo(t)
	b := demoBundle(t, d, postmortem.Options{GrafanaURL: "https://grafana.example.com/"})

	// Causes: what was known at open and last, the injected cause first.
	for name, k := range map[string]*postmortem.Known{"first": b.Causes.First, "last": b.Causes.Last} {
		if k == nil || k.Answer == nil || len(k.Answer.Candidates) == 0 {
			t.Fatalf("%s causes: %+v, want a ranked answer", name, k)
		}
		if got := k.Answer.Candidates[0].Change.ID; got != d.sc.ExpectedCause {
			t.Errorf("%s snapshot ranks %s first, want the injected cause %s", name, got, d.sc.ExpectedCause)
		}
		if len(k.QueryIDs) < 2 {
			t.Errorf("%s causes cite %v, want the snapshot read and the engine's queries", name, k.QueryIDs)
		}
	}
	if b.Causes.First.Trigger != "open" || b.Causes.Last.Trigger != "resolve" {
		t.Errorf("snapshots = %s, %s; want open, resolve", b.Causes.First.Trigger, b.Causes.Last.Trigger)
	}
	if b.Causes.Confirmed != d.sc.ExpectedCause {
		t.Errorf("confirmed cause %q, want %q", b.Causes.Confirmed, d.sc.ExpectedCause)
	}

	// Impact: the last snapshot's report, figure for figure.
	if b.Impact == nil {
		t.Fatal("no impact")
	}
	want := roundTrip(t, d.reports[1])
	if !reflect.DeepEqual(roundTrip(t, b.Impact.Report), want) {
		t.Errorf("impact report differs from the snapshot's:\n got %+v\nwant %+v", b.Impact.Report, want)
	}
	if b.Impact.Report.AffectedUsers.Observed == 0 {
		t.Error("the demo incident affected no user: the fixture is wrong")
	}
	if got, want := time.Duration(b.Incident.Duration), d.resolved.Sub(d.answers[1].Onset); got != want {
		t.Errorf("duration %s, want onset to resolution %s", got, want)
	}

	// Timeline: UTC, in order, with the deploy, the onset, the alert, the
	// action and the resolution.
	if !slices.IsSortedFunc(b.Timeline, func(a, b postmortem.TimelineEntry) int { return a.Time.Compare(b.Time) }) {
		t.Error("timeline not in time order")
	}
	at := map[string]int{}
	for i, e := range b.Timeline {
		if e.Time.Location() != time.UTC {
			t.Errorf("entry %d (%s) not in UTC: %s", i, e.Text, e.Time)
		}
		if len(e.QueryIDs) == 0 {
			t.Errorf("entry %d (%s) cites no query", i, e.Text)
		}
		key := e.Kind
		if e.Kind == postmortem.EntryChange && e.Ref == d.sc.ExpectedCause {
			key = "cause"
		}
		if _, ok := at[key]; !ok {
			at[key] = i
		}
	}
	for _, k := range []string{"cause", postmortem.EntryOnset, postmortem.EntryAlert, postmortem.EntryOpened, postmortem.EntryAction, postmortem.EntryResolution} {
		if _, ok := at[k]; !ok {
			t.Errorf("timeline lacks a %s entry:\n%s", k, timelineText(b))
		}
	}
	if !(at["cause"] < at[postmortem.EntryOnset] && at[postmortem.EntryOnset] < at[postmortem.EntryAlert] && at[postmortem.EntryAlert] < at[postmortem.EntryResolution]) {
		t.Errorf("want deploy < onset < alert < resolution, got %v:\n%s", at, timelineText(b))
	}

	// New errors: the injected new fingerprint, with its first release.
	if d.sc.FingerprintNew {
		i := slices.IndexFunc(b.NewErrors, func(e postmortem.NewError) bool { return e.Fingerprint == d.sc.Fingerprint })
		if i < 0 {
			t.Errorf("new errors %+v lack the injected fingerprint %s", b.NewErrors, d.sc.Fingerprint)
		} else if e := b.NewErrors[i]; e.Release == "" || e.Count == 0 {
			t.Errorf("new error %+v: want a first-seen release and a count", e)
		}
	}
	// The demo's errors come without frames: the bundle says so.
	if b.NewErrorsNote == "" {
		t.Error("no note that the errors carry no stack frames")
	}

	if len(b.Charts) != 2 || len(b.Charts[0].Series) == 0 || len(b.Charts[0].Series[0].Points) == 0 {
		t.Fatalf("charts = %+v, want error rate and latency with points", b.Charts)
	}
	if !slices.ContainsFunc(b.Charts[0].Markers, func(m postmortem.Marker) bool { return m.Time.Equal(causeTime(t, d)) }) {
		t.Errorf("error-rate chart has no marker at the cause (%s): %+v", causeTime(t, d), b.Charts[0].Markers)
	}
	if len(b.Logs) != 1 || len(b.Logs[0].Lines) == 0 {
		t.Errorf("logs = %+v, want lines of %s", b.Logs, d.sc.Service)
	}
	if len(b.Links) != 2 || !strings.HasPrefix(b.Links[0].URL, "https://grafana.example.com/d/correlator-incident?") ||
		!strings.Contains(b.Links[1].URL, "/d/correlator-service?") || !strings.Contains(b.Links[1].URL, "var-service="+d.sc.Service) {
		t.Errorf("links = %+v", b.Links)
	}
	// Every cited query exists.
	ids := map[string]bool{}
	for _, q := range b.Queries {
		ids[q.ID] = true
	}
	cited := append(slices.Clone(b.Incident.QueryIDs), b.Impact.QueryIDs...)
	for _, e := range b.Timeline {
		cited = append(cited, e.QueryIDs...)
	}
	for _, id := range cited {
		if !ids[id] {
			t.Errorf("cited query %s is not in the bundle", id)
		}
	}
}

// The figures the bundle claims come back when the cited queries run
// again against the store.
func TestEvidenceReplays(t *testing.T) {
	d := loadDemo(t)
	b := demoBundle(t, d, postmortem.Options{})
	ctx := context.Background()
	byID := map[string]postmortem.Query{}
	for _, q := range b.Queries {
		byID[q.ID] = q
	}
	cited := func(ids []string, name string) postmortem.Query {
		t.Helper()
		for _, id := range ids {
			if q := byID[id]; q.Name == name {
				return q
			}
		}
		t.Fatalf("no %s query among %v", name, ids)
		return postmortem.Query{}
	}

	t.Run("affected users", func(t *testing.T) {
		q := cited(b.Impact.QueryIDs, "failure_frequencies")
		var observed uint64
		replay(t, ctx, d.st, q, func(r store.Rows) {
			var win int32
			var kind, service string
			var rate float64
			var seen, entities, xe, xl, xb uint64
			if err := r.Scan(&win, &kind, &service, &rate, &seen, &entities, &xe, &xl, &xb); err != nil {
				t.Fatal(err)
			}
			if win == 0 && kind == "user" && service == "" {
				observed += entities
			}
		})
		if want := b.Impact.Report.AffectedUsers.Observed; observed != want || want == 0 {
			t.Errorf("re-run counts %d affected users, the bundle claims %d", observed, want)
		}
	})
	t.Run("first-seen errors", func(t *testing.T) {
		if len(b.NewErrors) == 0 {
			t.Fatal("no new errors")
		}
		e := b.NewErrors[0]
		q := cited(e.QueryIDs, "new_fingerprints")
		found := false
		replay(t, ctx, d.st, q, func(r store.Rows) {
			var f store.Fingerprint
			if err := r.Scan(&f.Service, &f.Fingerprint, &f.Type, &f.Message, &f.Release, &f.FirstSeen, &f.LastSeen, &f.Count); err != nil {
				t.Fatal(err)
			}
			if f.Fingerprint == e.Fingerprint {
				found = true
				if f.Count != e.Count || f.Release != e.Release || !f.FirstSeen.Equal(e.FirstSeen) {
					t.Errorf("re-run: %d events first in %s at %s; the bundle claims %d, %s, %s", f.Count, f.Release, f.FirstSeen, e.Count, e.Release, e.FirstSeen)
				}
			}
		})
		if !found {
			t.Errorf("re-run does not return fingerprint %s", e.Fingerprint)
		}
	})
	t.Run("the deploy in the timeline", func(t *testing.T) {
		i := slices.IndexFunc(b.Timeline, func(e postmortem.TimelineEntry) bool { return e.Ref == d.sc.ExpectedCause })
		if i < 0 {
			t.Fatal("no cause in the timeline")
		}
		q := cited(b.Timeline[i].QueryIDs, "changes")
		var at time.Time
		replay(t, ctx, d.st, q, func(r store.Rows) {
			var id, kind, svc, env, ver, prev, commit, author, title, url, source string
			var tm time.Time
			var attrs map[string]string
			if err := r.Scan(&id, &tm, &kind, &svc, &env, &ver, &prev, &commit, &author, &title, &url, &source, &attrs); err != nil {
				t.Fatal(err)
			}
			if id == d.sc.ExpectedCause {
				at = tm
			}
		})
		if !at.Equal(b.Timeline[i].Time) {
			t.Errorf("re-run puts the cause at %s, the bundle at %s", at, b.Timeline[i].Time)
		}
	})
	t.Run("error rate", func(t *testing.T) {
		c := b.Charts[0]
		q := cited(c.QueryIDs, "errors_per_minute")
		errs := map[time.Time]float64{}
		replay(t, ctx, d.st, q, func(r store.Rows) {
			var bk store.Bucket
			if err := r.Scan(&bk.Service, &bk.Minute, &bk.Count, &bk.Estimate); err != nil {
				t.Fatal(err)
			}
			errs[bk.Minute.UTC()] = bk.Estimate
		})
		// The peak minute's rate has its errors in the re-run.
		peak := slices.MaxFunc(c.Series[0].Points, func(a, b postmortem.Point) int { return cmpFloat(a.V, b.V) })
		if errs[peak.T] == 0 || peak.V == 0 {
			t.Errorf("peak %.2f%% at %s, but the re-run has %v errors that minute", peak.V, peak.T, errs[peak.T])
		}
	})
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// replay runs a recorded query again, as a reviewer would.
func replay(t *testing.T, ctx context.Context, st *store.Store, q postmortem.Query, row func(store.Rows)) {
	t.Helper()
	if q.Database != st.Database() {
		t.Fatalf("query %s recorded on %s, store is %s", q.ID, q.Database, st.Database())
	}
	rows, err := st.Engine().Query(ctx, q.SQL, q.Params)
	if err != nil {
		t.Fatalf("re-run %s: %v", q.ID, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		row(rows)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("re-run of %s (%s) returned no rows", q.ID, q.Name)
	}
}

func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func causeTime(t *testing.T, d *demo) time.Time {
	t.Helper()
	for _, c := range d.sc.Batch.Changes {
		if c.ID == d.sc.ExpectedCause {
			return c.Time.UTC().Truncate(time.Millisecond)
		}
	}
	t.Fatal("no cause change in the scenario")
	return time.Time{}
}

func timelineText(b *postmortem.Bundle) string {
	var buf bytes.Buffer
	for _, e := range b.Timeline {
		buf.WriteString(e.Time.Format(time.RFC3339) + " " + e.Kind + " " + e.Text + "\n")
	}
	return buf.String()
}
