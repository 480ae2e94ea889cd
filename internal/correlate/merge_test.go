package correlate

import (
	"slices"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

func TestMerge(t *testing.T) {
	t0 := time.Date(2026, 3, 9, 13, 0, 0, 0, time.UTC)
	cand := func(id string, score float64, min int) Candidate {
		return Candidate{Score: score, Change: event.Change{ID: id, Time: t0.Add(time.Duration(min) * time.Minute)},
			Evidence: []Evidence{{Kind: "time", Summary: id + " evidence"}}}
	}
	ans := func(svc, verdict string, cs ...Candidate) *Answer {
		return &Answer{Service: svc, Verdict: verdict, Summary: svc + " says " + verdict, Scope: []string{svc, "db"}, Candidates: cs}
	}
	ids := func(a *Answer) []string {
		var out []string
		for _, c := range a.Candidates {
			out = append(out, c.Change.ID)
		}
		return out
	}
	cases := []struct {
		name        string
		in          []*Answer
		wantIDs     []string
		wantVerdict string
		wantLead    string
	}{
		{
			name:    "the second service's cause outranks the first's weak suspects",
			in:      []*Answer{ans("api", VerdictAbstain, cand("a1", 0.2, 1), cand("db1", 0.1, 2)), ans("web", VerdictCause, cand("w1", 0.9, 3), cand("db1", 0.3, 2))},
			wantIDs: []string{"w1", "db1", "a1"}, wantVerdict: VerdictCause, wantLead: "web",
		},
		{
			name:    "both blame: the stronger leads; a shared change keeps its best score",
			in:      []*Answer{ans("api", VerdictCause, cand("x", 0.7, 1)), ans("web", VerdictCause, cand("x", 0.8, 1), cand("y", 0.75, 2))},
			wantIDs: []string{"x", "y"}, wantVerdict: VerdictCause, wantLead: "web",
		},
		{
			name:    "no one blames: the first answer's verdict",
			in:      []*Answer{ans("api", VerdictNoChanges), ans("web", VerdictAbstain, cand("w1", 0.1, 1))},
			wantIDs: []string{"w1"}, wantVerdict: VerdictAbstain, wantLead: "api",
		},
		{
			name:    "equal scores: the later change first",
			in:      []*Answer{ans("api", VerdictAbstain, cand("early", 0.2, 1)), ans("web", VerdictAbstain, cand("late", 0.2, 5)), nil},
			wantIDs: []string{"late", "early"}, wantVerdict: VerdictAbstain, wantLead: "api",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Merge(tc.in...)
			if !slices.Equal(ids(got), tc.wantIDs) || got.Verdict != tc.wantVerdict || got.Service != tc.wantLead {
				t.Errorf("merged %v, verdict %s, lead %s; want %v, %s, %s", ids(got), got.Verdict, got.Service, tc.wantIDs, tc.wantVerdict, tc.wantLead)
			}
			for i, c := range got.Candidates {
				if c.Rank != i+1 {
					t.Errorf("candidate %s has rank %d at position %d", c.Change.ID, c.Rank, i+1)
				}
			}
			if !slices.Contains(got.Scope, "web") || !slices.Contains(got.Scope, "api") || len(got.Scope) != 3 {
				t.Errorf("scope %v, want api, db and web once each", got.Scope)
			}
		})
	}
	// The best candidate's evidence travels with it, and the inputs are
	// not changed.
	in := []*Answer{ans("api", VerdictCause, cand("x", 0.7, 1)), ans("web", VerdictCause, cand("x", 0.8, 1))}
	in[1].Candidates[0].Evidence[0].Summary = "web's evidence"
	got := Merge(in...)
	if got.Candidates[0].Evidence[0].Summary != "web's evidence" || in[0].Candidates[0].Rank != 0 {
		t.Errorf("merged evidence %q; first input's rank now %d", got.Candidates[0].Evidence[0].Summary, in[0].Candidates[0].Rank)
	}
	if Merge() != nil || Merge(nil) != nil {
		t.Error("merge of nothing is not nil")
	}
	if one := in[0]; Merge(one) != one {
		t.Error("merge of one answer is not that answer")
	}
}

func TestRankOf(t *testing.T) {
	a := &Answer{Candidates: []Candidate{{Change: event.Change{ID: "x"}}, {Change: event.Change{ID: "y"}}}}
	for id, want := range map[string]int{"x": 1, "y": 2, "z": 0, "": 0} {
		if got := a.RankOf(id); got != want {
			t.Errorf("RankOf(%q) = %d, want %d", id, got, want)
		}
	}
}
