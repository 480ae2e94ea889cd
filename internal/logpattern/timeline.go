package logpattern

import (
	"slices"
	"sort"
	"time"
)

// Line is a log line and when it was written.
type Line struct {
	Time time.Time
	Text string
}

// Window is the time range [From, To).
type Window struct{ From, To time.Time }

// Timeline is a span of one source's log lines mined once, in time order,
// so that any number of before-and-after comparisons inside the span
// (one per change, say) cost a count of the lines in their windows instead
// of mining the windows again. It is immutable, so safe for concurrent
// use.
//
// The templates are the Miner's final ones over the whole span: a line
// belongs to the template its cluster has at the end, as in Diff, where
// the span is the two windows.
type Timeline struct {
	times []int64  // times are the lines' Unix nanoseconds, ascending.
	text  []string // text[i] is line i, verbatim.
	// tmpl[i] indexes templates: the final template of line i's cluster.
	// Clusters whose final templates are the same text share an index.
	tmpl      []int32
	templates []string
	at        [][]int64 // at[k] are the times of template k's lines, ascending.
}

// NewTimeline mines lines in time order (it sorts a copy if they are not
// in order; lines of the same time keep their order).
func NewTimeline(lines []Line, opt Options) *Timeline {
	if !slices.IsSortedFunc(lines, func(a, b Line) int { return a.Time.Compare(b.Time) }) {
		lines = slices.Clone(lines)
		slices.SortStableFunc(lines, func(a, b Line) int { return a.Time.Compare(b.Time) })
	}
	t := &Timeline{
		times: make([]int64, len(lines)),
		text:  make([]string, len(lines)),
		tmpl:  make([]int32, len(lines)),
	}
	m := New(opt)
	clusters := make([]*cluster, len(lines))
	for i, l := range lines {
		t.times[i], t.text[i] = l.Time.UnixNano(), l.Text
		clusters[i] = m.add(l.Text)
	}
	// Only now are the templates final; evicted clusters keep theirs.
	index := make(map[string]int32)
	for i, c := range clusters {
		k, ok := index[c.template]
		if !ok {
			k = int32(len(t.templates))
			index[c.template] = k
			t.templates = append(t.templates, c.template)
			t.at = append(t.at, nil)
		}
		t.tmpl[i] = k
		t.at[k] = append(t.at[k], t.times[i])
	}
	return t
}

// Len is the number of lines.
func (t *Timeline) Len() int { return len(t.times) }

// span returns the lines in w: indexes [i, j).
func (t *Timeline) span(w Window) (int, int) {
	return search(t.times, w.From.UnixNano()), search(t.times, w.To.UnixNano())
}

// search is the index of the first element of ts at or after x.
func search(ts []int64, x int64) int {
	return sort.Search(len(ts), func(i int) bool { return ts[i] >= x })
}

// Diff is Diff of the lines in two windows of the timeline, with the
// templates of the whole timeline; as there, an empty window gives nil.
// The example of a shift is its template's first line after.
func (t *Timeline) Diff(before, after Window, minCount int) []Shift {
	a0, a1 := t.span(after)
	b0, b1 := t.span(before)
	if a0 >= a1 || b0 >= b1 {
		return nil
	}
	// Only templates with lines after can have risen; the lines of the
	// window after are contiguous, those before are counted by template.
	byIndex := make(map[int32]*tally)
	for i := a0; i < a1; i++ {
		g := byIndex[t.tmpl[i]]
		if g == nil {
			g = &tally{example: t.text[i]}
			byIndex[t.tmpl[i]] = g
		}
		g.after++
	}
	byTemplate := make(map[string]*tally, len(byIndex))
	bf, bt := before.From.UnixNano(), before.To.UnixNano()
	for k, g := range byIndex {
		g.before = search(t.at[k], bt) - search(t.at[k], bf)
		byTemplate[t.templates[k]] = g
	}
	return significant(byTemplate, b1-b0, a1-a0, minCount)
}
