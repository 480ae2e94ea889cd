package logpattern

import (
	"fmt"
	"strings"
	"testing"
)

// inject returns lines with extra lines of format (rendered by g) put at
// random places.
func inject(g *generator, lines []string, format string, n int) []string {
	for range n {
		i := g.rng.IntN(len(lines) + 1)
		lines = append(lines[:i], append([]string{g.render(format)}, lines[i:]...)...)
	}
	return lines
}

func TestDiff(t *testing.T) {
	const (
		newError = "payment failed: decimal conversion error for order {n}"
		// Agrees with the background "payment failed: card declined for
		// order {n}" on 5 of its 6 constant tokens.
		similar = "payment failed: card expired for order {n}"
		// A background format, to raise its rate.
		retry = `time={ts} level=WARN msg="retrying request" attempt={small} backoff={ms} url=http://inventory.prod.svc:8080/v1/reserve`
	)
	type want struct {
		template    string
		before, new bool // Before > 0 expected; New expected
	}
	tests := []struct {
		name     string
		format   string // injected after the change
		n        int
		minCount int
		want     []want
	}{
		{
			name: "new error among background", format: newError, n: 40, minCount: 5,
			want: []want{{template: "payment failed: decimal conversion error for order <*>", new: true}},
		},
		{name: "unchanged background", n: 0, minCount: 1},
		{name: "new error below minCount", format: newError, n: 4, minCount: 5},
		// 5 new lines in equal windows: p = 2^-5 before the
		// Bonferroni correction, not significant.
		{name: "new error too rare to be significant", format: newError, n: 5, minCount: 1},
		// The retry format has about 330 lines in 10k; 150 more is a
		// significant rise but less than DiffMinRatio, and is not reported.
		{name: "background template rises by half", format: retry, n: 150, minCount: 5},
		{
			name: "background template rises", format: retry, n: 600, minCount: 5,
			want: []want{{template: `time=<*> level=WARN msg="retrying request" attempt=<*> backoff=<*> url=<*>`, before: true}},
		},
		{
			// A weakness of Drain: a new message close to a background
			// one joins its cluster, so it shows as a rise of the
			// generalised template rather than as a new template.
			name: "similar new message absorbed by background", format: similar, n: 200, minCount: 5,
			want: []want{{template: "payment failed: card <*> for order <*>", before: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(5) {
				g := newGenerator(t, seed)
				before, after := g.lines(10_000), g.lines(10_000)
				if tt.n > 0 {
					after = inject(g, after, tt.format, tt.n)
				}
				shifts := Diff(before, after, Options{}, tt.minCount)
				if len(shifts) != len(tt.want) {
					t.Fatalf("seed %d: %d shifts, want %d:\n%s", seed, len(shifts), len(tt.want), formatShifts(shifts))
				}
				for i, w := range tt.want {
					s := shifts[i]
					if s.Template != w.template || (s.Before > 0) != w.before || s.New != w.new {
						t.Errorf("seed %d: shift %d = %+v, want template %q, before %v, new %v", seed, i, s, w.template, w.before, w.new)
					}
					if s.After < tt.n || s.AfterRate != float64(s.After)/float64(len(after)) ||
						s.BeforeRate != float64(s.Before)/float64(len(before)) || s.Z < 3 {
						t.Errorf("seed %d: shift %+v: counts, rates or Z wrong", seed, s)
					}
					if w.new && !strings.HasPrefix(s.Example, "payment failed: decimal conversion error for order ") {
						t.Errorf("seed %d: example %q is not a line of the new template", seed, s.Example)
					}
				}
			}
		})
	}
}

func formatShifts(shifts []Shift) string {
	var b strings.Builder
	for _, s := range shifts {
		fmt.Fprintf(&b, "%+v\n", s)
	}
	return b.String()
}

func TestDiffOrdersBySignificance(t *testing.T) {
	g := newGenerator(t, 7)
	before, after := g.lines(5000), g.lines(5000)
	after = inject(g, after, "payment failed: decimal conversion error for order {n}", 30)
	after = inject(g, after, "ledger write rejected: duplicate entry {n}", 80)
	shifts := Diff(before, after, Options{}, 5)
	if len(shifts) != 2 || shifts[0].After != 80 || shifts[1].After != 30 || !(shifts[0].Z > shifts[1].Z) {
		t.Errorf("shifts, want the 80-line template first:\n%s", formatShifts(shifts))
	}
}

func TestDiffEmptyWindows(t *testing.T) {
	lines := []string{"payment failed: card declined for order 1", "payment failed: card declined for order 2"}
	tests := []struct {
		name          string
		before, after []string
	}{
		{"both empty", nil, nil},
		{"no baseline", nil, lines},
		{"nothing after", lines, nil},
		{"blank lines", []string{"", " "}, []string{""}},
	}
	for _, tt := range tests {
		if got := Diff(tt.before, tt.after, Options{}, 1); len(got) != 0 {
			t.Errorf("%s: Diff = %v, want none", tt.name, got)
		}
	}
}

// TestDiffUnequalWindows checks that rates, not counts, are compared: a
// template with the same rate in a window ten times as large is not a
// rise, and a new template in a short window is judged by its rate.
func TestDiffUnequalWindows(t *testing.T) {
	g := newGenerator(t, 3)
	before, after := g.lines(20_000), g.lines(2_000)
	if got := Diff(before, after, Options{}, 1); len(got) != 0 {
		t.Errorf("same distribution: %s", formatShifts(got))
	}
	after = inject(g, after, "payment failed: decimal conversion error for order {n}", 4)
	got := Diff(before, after, Options{}, 1)
	// With 4 lines in a window 1/11 of the total, p = (1/11)^4 ≈ 7e-5,
	// below 0.01/tested.
	if len(got) != 1 || !got[0].New || got[0].After != 4 {
		t.Errorf("new template in the short window: %s", formatShifts(got))
	}
}

func BenchmarkDiff(b *testing.B) {
	g := newGenerator(b, 1)
	before, after := g.lines(10_000), g.lines(10_000)
	after = inject(g, after, "payment failed: decimal conversion error for order {n}", 40)
	b.ResetTimer()
	for b.Loop() {
		Diff(before, after, Options{}, 5)
	}
}
