package correlate

import (
	"cmp"
	"slices"
)

// Merge combines the answers about several symptomatic services of one
// incident into one ranking. Each change keeps the best candidate any
// answer made of it (its score and the evidence behind that score): a
// change that explains one service's symptoms is a suspect of the
// incident, whatever another service's answer thinks of it. The verdict,
// summary, onset and service are those of the answer whose top candidate
// is the strongest among the answers that blame a change; when none
// blames one, those of the first answer (abstaining, or no changes). The
// scope is every answer's. Nil answers are skipped; Merge of none is nil.
func Merge(answers ...*Answer) *Answer {
	answers = slices.DeleteFunc(slices.Clone(answers), func(a *Answer) bool { return a == nil })
	switch len(answers) {
	case 0:
		return nil
	case 1:
		return answers[0]
	}
	lead := answers[0]
	for _, a := range answers {
		if a.Verdict != VerdictCause || len(a.Candidates) == 0 {
			continue
		}
		if lead.Verdict != VerdictCause || len(lead.Candidates) == 0 || a.Candidates[0].Score > lead.Candidates[0].Score {
			lead = a
		}
	}
	out := *lead
	out.Scope = nil
	best := map[string]Candidate{}
	for _, a := range answers {
		for _, s := range a.Scope {
			if !slices.Contains(out.Scope, s) {
				out.Scope = append(out.Scope, s)
			}
		}
		for _, c := range a.Candidates {
			if prev, ok := best[c.Change.ID]; !ok || c.Score > prev.Score {
				best[c.Change.ID] = c
			}
		}
	}
	out.Candidates = make([]Candidate, 0, len(best))
	for _, c := range best {
		out.Candidates = append(out.Candidates, c)
	}
	// Highest score first; ties by the later change (closer to the onset),
	// then by id, so the order does not depend on map iteration.
	slices.SortFunc(out.Candidates, func(a, b Candidate) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		if c := b.Change.Time.Compare(a.Change.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Change.ID, b.Change.ID)
	})
	for i := range out.Candidates {
		out.Candidates[i].Rank = i + 1
	}
	if out.Verdict == VerdictNoChanges && len(out.Candidates) > 0 {
		// Another service had changes in its scope: nothing was blamed,
		// but there were changes to weigh.
		out.Verdict = VerdictAbstain
	}
	return &out
}
