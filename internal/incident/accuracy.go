package incident

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/store"
)

// AccuracyReader is what Accuracy reads; *store.Store implements it.
type AccuracyReader interface {
	ListIncidents(ctx context.Context, f store.IncidentFilter) ([]store.Incident, error)
	Snapshots(ctx context.Context, incidentID string) ([]store.Snapshot, error)
}

// Judgement is how one ranking did against a confirmed cause.
type Judgement struct {
	// SnapshotAt and Trigger say which snapshot was judged.
	SnapshotAt time.Time `json:"snapshot_at"`
	Trigger    string    `json:"trigger"`
	// Verdict is the answer's (cause, abstain or no_changes); Top is the
	// id of the change ranked first, "" when none was.
	Verdict string `json:"verdict"`
	Top     string `json:"top,omitempty"`
	// Rank is the confirmed cause's rank, 0 when it was not ranked (or the
	// cause is none).
	Rank int `json:"rank"`
	// Abstained is set when the engine blamed no change (verdict abstain
	// or no_changes).
	Abstained bool `json:"abstained"`
	// Top1 and Top3: the cause (a change) was ranked first, in the first
	// three. Always false for cause none.
	Top1 bool `json:"top1"`
	Top3 bool `json:"top3"`
	// Correct: for a change, the engine blamed it (ranked it first and did
	// not abstain); for none, it abstained.
	Correct bool `json:"correct"`
}

// IncidentAccuracy is one resolved incident with a confirmed cause and how
// the rankings did on it.
type IncidentAccuracy struct {
	ID         string    `json:"id"`
	Title      string    `json:"title"`
	Cause      string    `json:"cause"`
	ResolvedAt time.Time `json:"resolved_at"`
	// AtOpen judges the first snapshot with a ranking taken before the
	// resolve: what was known early, not hindsight. AtResolve judges the
	// resolve snapshot, or the last one with a ranking when that failed.
	// Nil when no such snapshot exists.
	AtOpen    *Judgement `json:"at_open"`
	AtResolve *Judgement `json:"at_resolve"`
}

// Tally counts the judgements of one stage (at open, at resolve).
type Tally struct {
	// Judged incidents had a ranking at this stage; Unjudged had none.
	Judged   int `json:"judged"`
	Unjudged int `json:"unjudged"`
	// Changes were caused by a change; of them, Top1 and Top3 ranked it
	// first and in the first three, and WrongAbstain blamed no change.
	Changes      int `json:"changes"`
	Top1         int `json:"top1"`
	Top3         int `json:"top3"`
	WrongAbstain int `json:"wrong_abstain"`
	// None were caused by no change; of them, Abstained were right to
	// blame none.
	None      int `json:"none"`
	Abstained int `json:"abstained"`
	// AbstainCorrect counts the judged incidents where the choice to blame
	// a change or abstain was right: Abstained + Changes - WrongAbstain.
	AbstainCorrect int `json:"abstain_correct"`
}

func (t *Tally) add(j *Judgement, cause string) {
	if j == nil {
		t.Unjudged++
		return
	}
	t.Judged++
	if cause == CauseNone {
		t.None++
		if j.Abstained {
			t.Abstained++
			t.AbstainCorrect++
		}
		return
	}
	t.Changes++
	if j.Top1 {
		t.Top1++
	}
	if j.Top3 {
		t.Top3++
	}
	if j.Abstained {
		t.WrongAbstain++
	} else {
		t.AbstainCorrect++
	}
}

// AccuracyReport is how the engine did on the team's own incidents.
type AccuracyReport struct {
	Since     time.Time          `json:"since,omitzero"`
	Incidents []IncidentAccuracy `json:"incidents"`
	AtOpen    Tally              `json:"at_open"`
	AtResolve Tally              `json:"at_resolve"`
}

// Accuracy judges the stored rankings of every resolved incident with a
// confirmed cause and a state written since since (zero: all), oldest
// resolved first.
func Accuracy(ctx context.Context, r AccuracyReader, since time.Time) (*AccuracyReport, error) {
	ins, err := r.ListIncidents(ctx, store.IncidentFilter{Status: StatusResolved, Since: since, Attribute: AttrCause})
	if err != nil {
		return nil, fmt.Errorf("list resolved incidents: %w", err)
	}
	slices.SortStableFunc(ins, func(a, b store.Incident) int {
		return cmp.Or(a.ResolvedAt.Compare(b.ResolvedAt), cmp.Compare(a.ID, b.ID))
	})
	rep := &AccuracyReport{Since: since, Incidents: []IncidentAccuracy{}}
	for _, in := range ins {
		sns, err := r.Snapshots(ctx, in.ID)
		if err != nil {
			return nil, fmt.Errorf("read snapshots of %s: %w", in.ID, err)
		}
		cause := in.Attributes[AttrCause]
		ia := IncidentAccuracy{ID: in.ID, Title: in.Title, Cause: cause, ResolvedAt: in.ResolvedAt}
		ia.AtOpen, ia.AtResolve = judgeStages(sns, cause)
		rep.AtOpen.add(ia.AtOpen, cause)
		rep.AtResolve.add(ia.AtResolve, cause)
		rep.Incidents = append(rep.Incidents, ia)
	}
	return rep, nil
}

// judgeStages picks the snapshot of each stage (sns is oldest first) and
// judges it. A snapshot whose causes half failed has no ranking and is
// passed over.
func judgeStages(sns []store.Snapshot, cause string) (atOpen, atResolve *Judgement) {
	var first, last, resolve *store.Snapshot
	for i := range sns {
		sn := &sns[i]
		if sn.Causes == "" {
			continue
		}
		if first == nil && sn.Trigger != TriggerResolve {
			first = sn
		}
		if sn.Trigger == TriggerResolve {
			resolve = sn
		}
		last = sn
	}
	if resolve == nil {
		resolve = last
	}
	return judge(first, cause), judge(resolve, cause)
}

// judge scores one snapshot's ranking against the cause; nil when there is
// no snapshot or its answer cannot be read.
func judge(sn *store.Snapshot, cause string) *Judgement {
	if sn == nil {
		return nil
	}
	var a correlate.Answer
	if err := json.Unmarshal([]byte(sn.Causes), &a); err != nil {
		return nil
	}
	j := &Judgement{SnapshotAt: sn.TakenAt, Trigger: sn.Trigger, Verdict: a.Verdict, Abstained: a.Verdict != correlate.VerdictCause}
	if len(a.Candidates) > 0 {
		j.Top = a.Candidates[0].Change.ID
	}
	if cause == CauseNone {
		j.Correct = j.Abstained
		return j
	}
	j.Rank = a.RankOf(cause)
	j.Top1 = j.Rank == 1
	j.Top3 = j.Rank >= 1 && j.Rank <= 3
	j.Correct = j.Top1 && !j.Abstained
	return j
}
