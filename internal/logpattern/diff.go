package logpattern

import (
	"math"
	"slices"
	"strings"
)

// Diff's decision rule. A template is reported when its rate per line
// after the change is at least DiffMinRatio times its rate before (any
// rate beats a rate of zero) and the increase is significant at family-wise
// level DiffAlpha over all the templates tested (Bonferroni).
const (
	DiffAlpha    = 0.01
	DiffMinRatio = 2.0
)

// Shift is a template whose rate rose after a change.
type Shift struct {
	Template string
	// Example is the first line of the template after the change.
	Example string
	// Before and After count the lines of the template in each window;
	// the rates divide them by the window's number of lines.
	Before, After         int
	BeforeRate, AfterRate float64
	// New is set when the template has no line before the change.
	New bool
	// Z is the one-sided significance of the increase in standard
	// normal deviations (the unadjusted p-value is Q(Z)).
	Z float64
}

// Diff mines the templates of two windows of log lines, before a change and
// after it, and returns those whose rate after is significantly higher than
// before, templates never seen before included, most significant first.
// Only templates with at least minCount lines after are tested (minCount
// below 1 means 1).
//
// The test treats each template's counts as Poisson with exposure the
// window's line count; conditioned on the template's total k, the count
// after is Binomial(k, nAfter/(nBefore+nAfter)) if the rate did not
// change, and the p-value is the exact binomial upper tail. Z restates
// that p-value in standard deviations. A template never seen before is
// significant only with enough lines: with windows of equal size it needs
// about log2(tested/DiffAlpha) of them (13 for 50 templates tested).
//
// Both windows go through one Miner, before first, so a template is the
// same text in both. Clusters whose final templates are the same text are
// counted as one. An empty window gives nil: without a baseline nothing
// can be shown to have risen.
func Diff(before, after []string, opt Options, minCount int) []Shift {
	if len(before) == 0 || len(after) == 0 {
		return nil
	}
	m := New(opt)
	counts := make(map[*cluster]*tally)
	get := func(c *cluster) *tally {
		t := counts[c]
		if t == nil {
			t = &tally{}
			counts[c] = t
		}
		return t
	}
	for _, line := range before {
		get(m.add(line)).before++
	}
	for _, line := range after {
		t := get(m.add(line))
		if t.after == 0 {
			t.example = line
		}
		t.after++
	}

	// Group by final template text; evicted clusters keep theirs.
	byTemplate := make(map[string]*tally, len(counts))
	for c, t := range counts {
		g := byTemplate[c.template]
		if g == nil {
			g = &tally{}
			byTemplate[c.template] = g
		}
		g.before += t.before
		g.after += t.after
		if g.example == "" {
			g.example = t.example
		}
	}
	return significant(byTemplate, len(before), len(after), minCount)
}

// tally counts one template's lines in the two windows of a comparison.
type tally struct {
	before, after int
	// example is the template's first line after, verbatim.
	example string
}

// significant applies Diff's decision rule to the templates' tallies,
// with nb and na lines in the windows, and returns the shifts, most
// significant first.
func significant(byTemplate map[string]*tally, nb, na, minCount int) []Shift {
	minCount = max(minCount, 1)
	fb, fa := float64(nb), float64(na)
	p0 := fa / (fa + fb)
	tested := 0
	for _, g := range byTemplate {
		if g.after >= minCount {
			tested++
		}
	}
	logAlpha := math.Log(DiffAlpha / float64(max(tested, 1)))
	var out []Shift
	for tmpl, g := range byTemplate {
		if g.after < minCount || float64(g.after)*fb < DiffMinRatio*float64(g.before)*fa {
			continue
		}
		logp := logBinomialUpperTail(g.after, g.before+g.after, p0)
		if logp > logAlpha {
			continue
		}
		out = append(out, Shift{
			Template:   tmpl,
			Example:    strings.Clone(g.example),
			Before:     g.before,
			After:      g.after,
			BeforeRate: float64(g.before) / fb,
			AfterRate:  float64(g.after) / fa,
			New:        g.before == 0,
			Z:          zFromLogP(logp),
		})
	}
	slices.SortFunc(out, func(a, b Shift) int {
		switch {
		case a.Z != b.Z:
			if a.Z > b.Z {
				return -1
			}
			return 1
		case a.After != b.After:
			return b.After - a.After
		}
		return strings.Compare(a.Template, b.Template)
	})
	return out
}
