package logpattern

import (
	"reflect"
	"testing"
	"time"
)

// timed spaces lines a second apart from start.
func timed(start time.Time, lines []string) []Line {
	out := make([]Line, len(lines))
	for i, l := range lines {
		out[i] = Line{Time: start.Add(time.Duration(i) * time.Second), Text: l}
	}
	return out
}

// TestTimelineDiffIsDiff checks that a timeline of two windows compares
// them as Diff does: the same lines in the same order make the same
// templates, and the counts and the decision are Diff's.
func TestTimelineDiffIsDiff(t *testing.T) {
	const newError = "payment failed: decimal conversion error for order {n}"
	start := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name           string
		nBefore, nNew  int
		blankLineAfter bool // a line without tokens among those after
	}{
		{name: "new error", nBefore: 2000, nNew: 40},
		{name: "nothing new", nBefore: 2000},
		{name: "unequal windows", nBefore: 300, nNew: 25},
		{name: "blank line after", nBefore: 2000, nNew: 40, blankLineAfter: true},
		{name: "silent before", nNew: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(3) {
				g := newGenerator(t, seed)
				before, after := g.lines(tt.nBefore), g.lines(1000)
				after = inject(g, after, newError, tt.nNew)
				if tt.blankLineAfter {
					after = append(after, "  ")
				}
				lines := timed(start, append(append([]string(nil), before...), after...))
				split := start.Add(time.Duration(len(before)) * time.Second)
				tl := NewTimeline(lines, Options{})
				got := tl.Diff(Window{start, split}, Window{split, start.Add(time.Hour)}, 5)
				want := Diff(before, after, Options{}, 5)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("seed %d: timeline\n%s\nDiff\n%s", seed, formatShifts(got), formatShifts(want))
				}
				if tt.nNew >= 40 && len(before) > 0 && len(want) == 0 {
					t.Errorf("seed %d: the new error was not found; the case tests nothing", seed)
				}
			}
		})
	}
}

// TestTimelineWindows checks that windows inside a longer timeline count
// only their own lines, with inclusive starts and exclusive ends, and that
// lines given out of order are mined in time order.
func TestTimelineWindows(t *testing.T) {
	start := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	var lines []Line
	add := func(at time.Duration, text string) {
		lines = append(lines, Line{Time: start.Add(at), Text: text})
	}
	// Background all along, a new error from minute 60 to 70 only.
	for s := 0; s < 7200; s += 6 {
		add(time.Duration(s)*time.Second, "cache miss for key user:"+string(rune('a'+s%26)))
	}
	for s := 3600; s < 4200; s += 20 {
		add(time.Duration(s)*time.Second, "upstream reset by peer on conn 42")
	}
	// Reversed: NewTimeline must sort.
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	tl := NewTimeline(lines, Options{})
	if tl.Len() != len(lines) {
		t.Fatalf("Len = %d, want %d", tl.Len(), len(lines))
	}
	at := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name          string
		before, after Window
		want          []string // templates of the shifts
		after0        int      // lines of the first shift after
		example       string
	}{
		{"the change before the error", Window{at(0), at(60)}, Window{at(60), at(75)}, []string{"upstream reset by peer on conn <*>"}, 30, "upstream reset by peer on conn 42"},
		{"a quiet stretch", Window{at(10), at(30)}, Window{at(30), at(45)}, nil, 0, ""},
		{"after the error stopped", Window{at(60), at(70)}, Window{at(70), at(85)}, nil, 0, ""},
		{"empty window after", Window{at(0), at(60)}, Window{at(200), at(215)}, nil, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shifts := tl.Diff(tt.before, tt.after, 5)
			var got []string
			for _, s := range shifts {
				got = append(got, s.Template)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("shifts %q, want %q:\n%s", got, tt.want, formatShifts(shifts))
			}
			if len(shifts) > 0 && (shifts[0].After != tt.after0 || shifts[0].Before != 0 || !shifts[0].New || shifts[0].Example != tt.example) {
				t.Errorf("first shift %+v, want %d lines after, none before, example %q", shifts[0], tt.after0, tt.example)
			}
		})
	}
}
