package eval

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// Target is one bar the engine must clear, judged on a run's report.
type Target struct {
	Name      string
	AtLeast   bool // the value must be ≥ Threshold; else ≤
	Threshold float64
	// Value returns the engine's value (nil when the metric has no data)
	// and, optionally, a few words naming what it came from.
	Value func(r *Report) (*float64, string)
}

// Targets are the engine's targets, checked on every run.
var Targets = []Target{
	{Name: "overall top-1", AtLeast: true, Threshold: 0.90, Value: func(r *Report) (*float64, string) {
		return &r.Engine.Overall.Top1, ""
	}},
	{Name: "overall top-3", AtLeast: true, Threshold: 0.98, Value: func(r *Report) (*float64, string) {
		return &r.Engine.Overall.Top3, ""
	}},
	{Name: "false-blame", AtLeast: false, Threshold: 0.05, Value: func(r *Report) (*float64, string) {
		if r.Engine.Overall.FalseBlame == nil {
			return nil, "no scenario without a causal change"
		}
		return r.Engine.Overall.FalseBlame, fmt.Sprintf("over %s without a causal change", plural(r.Engine.Overall.AbstainScenarios, "scenario"))
	}},
	{Name: "every family top-1", AtLeast: true, Threshold: 0.75, Value: func(r *Report) (*float64, string) {
		var worst *float64
		var below []string
		for _, f := range r.Families {
			m, ok := r.Engine.Families[string(f)]
			if !ok || m.Scenarios == 0 {
				continue
			}
			v := m.Top1
			if worst == nil || v < *worst {
				worst = &v
			}
			if v < 0.75 {
				below = append(below, fmt.Sprintf("%s %.2f", f, v))
			}
		}
		if worst == nil {
			return nil, "no family"
		}
		if len(below) > 0 {
			return worst, "below: " + strings.Join(below, ", ")
		}
		return worst, "lowest family"
	}},
}

// Target statuses.
const (
	StatusPass = "PASS"
	StatusFail = "FAIL"
	// StatusNA is a target whose metric has no data in the run; it does
	// not fail the run.
	StatusNA = "N/A"
)

// TargetResult is a Target judged on one report.
type TargetResult struct {
	Name      string   `json:"name"`
	Op        string   `json:"op"`
	Threshold float64  `json:"threshold"`
	Value     *float64 `json:"value"`
	Detail    string   `json:"detail,omitempty"`
	Status    string   `json:"status"`
	Pass      bool     `json:"pass"`
}

// symbols returns how a table prints the target's comparison and its
// detail (empty, or two spaces and the detail in parentheses).
func (t TargetResult) symbols() (op, detail string) {
	op = "≥"
	if t.Op == "<=" {
		op = "≤"
	}
	if t.Detail != "" {
		detail = "  (" + t.Detail + ")"
	}
	return op, detail
}

// EvaluateTargets judges every Target on r's engine metrics.
func EvaluateTargets(r *Report) []TargetResult {
	out := make([]TargetResult, 0, len(Targets))
	for _, t := range Targets {
		v, detail := t.Value(r)
		tr := TargetResult{Name: t.Name, Op: "<=", Threshold: t.Threshold, Detail: detail}
		if t.AtLeast {
			tr.Op = ">="
		}
		if v != nil {
			x := *v
			tr.Value = &x
		}
		switch {
		case v == nil:
			tr.Status = StatusNA
		case t.AtLeast && *v >= t.Threshold, !t.AtLeast && *v <= t.Threshold:
			tr.Status = StatusPass
		default:
			tr.Status = StatusFail
		}
		tr.Pass = tr.Status != StatusFail
		out = append(out, tr)
	}
	return out
}

// column is one metric of the table, shown for the engine and the baseline.
type column struct {
	title string
	cell  func(m *Metrics) string
}

var columns = []column{
	{"top-1", func(m *Metrics) string { return rate(&m.Top1) }},
	{"top-3", func(m *Metrics) string { return rate(&m.Top3) }},
	{"MRR", func(m *Metrics) string { return rate(&m.MRR) }},
	{"false-blame", func(m *Metrics) string { return rate(m.FalseBlame) }},
	{"false-abstain", func(m *Metrics) string { return rate(m.FalseAbstain) }},
	{"ECE", func(m *Metrics) string { return rate(m.ECE) }},
	{"ECE top-1", func(m *Metrics) string { return rate(m.ECETop1) }},
	{"p50 ms", func(m *Metrics) string { return millis(m.LatencyP50MS) }},
	{"p95 ms", func(m *Metrics) string { return millis(m.LatencyP95MS) }},
}

func rate(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f", *v)
}

func millis(v float64) string {
	// Compare after rounding, so that 99.97 reads 100, not 100.0.
	if v >= 99.95 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// WriteTable writes the report for a person: a heading, one row per family
// and the overall row with the engine and the baseline side by side, and
// the targets with PASS or FAIL.
func WriteTable(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "correlator eval: %s split (seeds %d..%d), %d families × %d = %d scenarios in %.0f s: %.1f s per scenario (each took %.1f s, %d at a time)\n",
		r.Split, r.FirstSeed, r.LastSeed, len(r.Families), r.PerFamily, len(r.Scenarios), r.DurationS,
		r.DurationS/float64(max(1, len(r.Scenarios))), r.ScenarioS, r.Parallel)
	fmt.Fprintf(&b, "engine model: abstain below %.3f; %s\n", r.Model.AbstainBelow, orDash(r.Model.Trained))
	if lb := lookbackNote(r); lb != "" {
		fmt.Fprintf(&b, "lookback: %s\n", lb)
	}
	b.WriteString("each metric: engine | baseline\n\n")

	// Cells: family, n, then engine and baseline for every column.
	head1 := []string{"", ""}
	head2 := []string{"family", "n"}
	for _, c := range columns {
		head1 = append(head1, c.title, "")
		head2 = append(head2, "eng", "base")
	}
	rows := [][]string{}
	row := func(name string, e, bl *Metrics) []string {
		cells := []string{name, fmt.Sprint(e.Scenarios)}
		for _, c := range columns {
			cells = append(cells, c.cell(e), c.cell(bl))
		}
		return cells
	}
	for _, f := range r.Families {
		e, bl := r.Engine.Families[string(f)], r.Baseline.Families[string(f)]
		rows = append(rows, row(string(f), &e, &bl))
	}
	rows = append(rows, row("overall", &r.Engine.Overall, &r.Baseline.Overall))

	// Widths: each pair must also fit its title, which spans both cells.
	width := make([]int, len(head2))
	for _, cells := range append([][]string{head2}, rows...) {
		for i, c := range cells {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	// Both cells of a pair get one width, enough for the title over them.
	const gap, pairGap = 3, 1
	for i, c := range columns {
		a, z := 2+2*i, 3+2*i
		wd := max(width[a], width[z], (utf8.RuneCountInString(c.title)-pairGap+1)/2)
		width[a], width[z] = wd, wd
	}
	total := width[0] + gap + width[1]
	for i := range columns {
		total += gap + width[2+2*i] + pairGap + width[3+2*i]
	}
	rule := strings.Repeat("─", total) + "\n"
	line := func(cells []string) {
		for i, c := range cells {
			switch {
			case i == 0:
				b.WriteString(pad(c, width[i], false))
			case i >= 2 && i%2 == 1:
				b.WriteString(strings.Repeat(" ", pairGap) + pad(c, width[i], true))
			default:
				b.WriteString(strings.Repeat(" ", gap) + pad(c, width[i], true))
			}
		}
		b.WriteString("\n")
	}
	// The first heading row: each title left-aligned over its pair.
	var h strings.Builder
	h.WriteString(strings.Repeat(" ", width[0]+gap+width[1]))
	for i, c := range columns {
		span := width[2+2*i] + pairGap + width[3+2*i]
		h.WriteString(strings.Repeat(" ", gap) + pad(c.title, span, false))
	}
	b.WriteString(strings.TrimRight(h.String(), " ") + "\n")
	line(head2)
	b.WriteString(rule)
	for i, cells := range rows {
		if i == len(rows)-1 {
			b.WriteString(rule)
		}
		line(cells)
	}
	b.WriteString("\ntargets (engine):\n")
	for _, t := range r.Targets {
		op, detail := t.symbols()
		fmt.Fprintf(&b, "  %-4s  %-20s %s %.2f   %s%s\n", t.Status, t.Name, op, t.Threshold, rate(t.Value), detail)
	}
	status := StatusPass
	if !r.Pass {
		status = StatusFail
	}
	fmt.Fprintf(&b, "result: %s\n", status)
	_, err := io.WriteString(w, b.String())
	return err
}

// lookbackNote lists the lookbacks in force, grouped: "2h (bad-deploy, ...)".
func lookbackNote(r *Report) string {
	by := map[string][]string{}
	for _, f := range r.Families {
		lb := r.Lookbacks[string(f)]
		by[lb] = append(by[lb], string(f))
	}
	if len(by) <= 1 {
		for lb := range by {
			return lb
		}
		return ""
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s (%s)", k, strings.Join(by[k], ", ")))
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// pad pads s with spaces to n runes, on the left when right-aligning.
func pad(s string, n int, right bool) string {
	k := n - utf8.RuneCountInString(s)
	if k <= 0 {
		return s
	}
	if right {
		return strings.Repeat(" ", k) + s
	}
	return s + strings.Repeat(" ", k)
}

// plural says "1 scenario", "2 scenarios".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
