package incident

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

// ranking is a stored answer: the verdict and the change ids in rank
// order.
func ranking(t *testing.T, verdict string, ids ...string) string {
	t.Helper()
	a := correlate.Answer{Service: "api", Verdict: verdict, Candidates: []correlate.Candidate{}}
	for i, id := range ids {
		a.Candidates = append(a.Candidates, correlate.Candidate{Rank: i + 1, Score: 1 - float64(i)/10, Change: event.Change{ID: id}})
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAccuracy scores a hand-built set of resolved incidents: each one's
// earliest ranking and its resolve ranking against the cause people
// confirmed.
func TestAccuracy(t *testing.T) {
	st := storetest.Embedded(t)
	ctx := context.Background()
	t0 := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	type snap struct {
		trigger string
		causes  string // "" is a snapshot whose engine failed
	}
	incidents := []struct {
		id, status, cause string
		resolved          time.Time
		snaps             []snap
	}{
		// Ranked first at open; third at resolve.
		{"a", StatusResolved, "chg-a", t0.Add(1 * time.Hour), []snap{
			{TriggerOpen, ranking(t, correlate.VerdictCause, "chg-a", "chg-b")},
			{TriggerResolve, ranking(t, correlate.VerdictCause, "chg-b", "chg-c", "chg-a")},
		}},
		// Fourth and abstained at open; the resolve snapshot failed, so the
		// last ranking before it (an interval one, first) stands for it.
		{"b", StatusResolved, "chg-x", t0.Add(2 * time.Hour), []snap{
			{TriggerOpen, ranking(t, correlate.VerdictAbstain, "chg-b", "chg-c", "chg-d", "chg-x")},
			{TriggerInterval, ranking(t, correlate.VerdictCause, "chg-x")},
			{TriggerResolve, ""},
		}},
		// No change caused it: abstained at open (right), blamed one at
		// resolve (wrong).
		{"c", StatusResolved, CauseNone, t0.Add(3 * time.Hour), []snap{
			{TriggerOpen, ranking(t, correlate.VerdictAbstain, "chg-b")},
			{TriggerResolve, ranking(t, correlate.VerdictCause, "chg-b")},
		}},
		// No change caused it, and none was in scope at all.
		{"d", StatusResolved, CauseNone, t0.Add(4 * time.Hour), []snap{
			{TriggerOpen, ranking(t, correlate.VerdictNoChanges)},
			{TriggerResolve, ranking(t, correlate.VerdictNoChanges)},
		}},
		// Only a resolve snapshot: nothing was known at open.
		{"e", StatusResolved, "chg-q", t0.Add(5 * time.Hour), []snap{
			{TriggerResolve, ranking(t, correlate.VerdictCause, "chg-q")},
		}},
		// Left out: resolved without a cause, still open, resolved too early.
		{"no-cause", StatusResolved, "", t0.Add(6 * time.Hour), []snap{{TriggerOpen, ranking(t, correlate.VerdictCause, "chg-a")}}},
		{"open", StatusOpen, "chg-a", time.Time{}, []snap{{TriggerOpen, ranking(t, correlate.VerdictCause, "chg-a")}}},
		{"early", StatusResolved, "chg-a", t0.Add(-48 * time.Hour), []snap{{TriggerOpen, ranking(t, correlate.VerdictCause, "chg-a")}}},
	}
	for i, in := range incidents {
		opened := t0.Add(time.Duration(i) * time.Minute)
		if in.id == "early" {
			opened = t0.Add(-50 * time.Hour)
		}
		attrs := map[string]string{}
		if in.cause != "" {
			attrs[AttrCause] = in.cause
		}
		// The cause is recorded with the resolve: the open state has none.
		states := []store.Incident{{ID: in.id, Status: StatusOpen, Services: []string{"api"}, OpenedAt: opened, Onset: opened, UpdatedAt: opened}}
		if in.status == StatusResolved {
			states = append(states, store.Incident{ID: in.id, Status: StatusResolved, Services: []string{"api"}, OpenedAt: opened, Onset: opened, ResolvedAt: in.resolved, UpdatedAt: in.resolved, Attributes: attrs})
		} else {
			states[0].Attributes = attrs
		}
		for _, s := range states {
			if err := st.WriteIncident(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		for k, s := range in.snaps {
			if err := st.WriteSnapshot(ctx, store.Snapshot{IncidentID: in.id, TakenAt: opened.Add(time.Duration(k) * time.Minute), Trigger: s.trigger, Causes: s.causes}); err != nil {
				t.Fatal(err)
			}
		}
	}

	rep, err := Accuracy(ctx, st, t0.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ia := range rep.Incidents {
		ids = append(ids, ia.ID)
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(ids, want) {
		t.Fatalf("judged incidents %v, want %v (oldest resolved first)", ids, want)
	}
	type stage struct {
		present             bool
		rank                int
		top1, top3, correct bool
		trigger             string
	}
	want := map[string][2]stage{ // at open, at resolve
		"a": {{true, 1, true, true, true, TriggerOpen}, {true, 3, false, true, false, TriggerResolve}},
		"b": {{true, 4, false, false, false, TriggerOpen}, {true, 1, true, true, true, TriggerInterval}},
		"c": {{true, 0, false, false, true, TriggerOpen}, {true, 0, false, false, false, TriggerResolve}},
		"d": {{true, 0, false, false, true, TriggerOpen}, {true, 0, false, false, true, TriggerResolve}},
		"e": {{present: false}, {true, 1, true, true, true, TriggerResolve}},
	}
	for _, ia := range rep.Incidents {
		for k, j := range []*Judgement{ia.AtOpen, ia.AtResolve} {
			w := want[ia.ID][k]
			if (j != nil) != w.present {
				t.Errorf("%s stage %d: judged %v, want %v", ia.ID, k, j != nil, w.present)
				continue
			}
			if j == nil {
				continue
			}
			if j.Rank != w.rank || j.Top1 != w.top1 || j.Top3 != w.top3 || j.Correct != w.correct || j.Trigger != w.trigger {
				t.Errorf("%s stage %d = %+v, want %+v", ia.ID, k, *j, w)
			}
		}
	}
	wantOpen := Tally{Judged: 4, Unjudged: 1, Changes: 2, Top1: 1, Top3: 1, WrongAbstain: 1, None: 2, Abstained: 2, AbstainCorrect: 3}
	wantResolve := Tally{Judged: 5, Changes: 3, Top1: 2, Top3: 3, None: 2, Abstained: 1, AbstainCorrect: 4}
	if rep.AtOpen != wantOpen {
		t.Errorf("at open = %+v\nwant      %+v", rep.AtOpen, wantOpen)
	}
	if rep.AtResolve != wantResolve {
		t.Errorf("at resolve = %+v\nwant         %+v", rep.AtResolve, wantResolve)
	}

	// Without since, the early incident counts too.
	all, err := Accuracy(ctx, st, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Incidents) != 6 || all.Incidents[0].ID != "early" {
		t.Errorf("all incidents: %d, first %v", len(all.Incidents), all.Incidents)
	}
}
