package logpattern

import (
	"strings"
	"testing"
)

// FuzzAddMatch checks, for any line, that mining does not panic; that
// after Add the line matches the cluster Add put it in, and adding it
// again keeps it there; that the template has one token per token of the
// line; and that masking is idempotent, so a template read back as a line
// masks to itself. The Miner is small so that the fuzzer reaches the
// overflow and eviction paths:
//
//	go test -fuzz '^FuzzAddMatch$' -fuzztime 60s ./internal/logpattern/
func FuzzAddMatch(f *testing.F) {
	var seeds []string
	for _, name := range fixtures {
		seeds = append(seeds, readLines(f, name)...)
	}
	for _, line := range seeds {
		f.Add(line)
	}
	f.Add("")
	f.Add("k=\"v\" \"k2=<*>\" (<*>) ::1 0x 1.2.3.4.5 2026-03-12T 10:15 µs 5\u00a0s")
	f.Fuzz(func(t *testing.T, line string) {
		m := New(Options{MaxChildren: 3, MaxClusters: 8})
		for _, s := range seeds[:30] {
			m.Add(s)
		}
		id, template := m.Add(line)
		if got, ok := m.Match(line); !ok || got != id {
			t.Fatalf("Add put %q in %d, Match returns %d, %v", line, id, got, ok)
		}
		if id2, template2 := m.Add(line); id2 != id || template2 != template {
			t.Fatalf("Add(%q) again: %d %q, first %d %q", line, id2, template2, id, template)
		}
		tokens := m.tokenize(line, false)
		if n := len(strings.Fields(template)); template != "" && n != len(tokens) {
			t.Fatalf("template %q has %d tokens, line %q has %d", template, n, line, len(tokens))
		}
		masked := strings.Join(tokens, " ")
		if again := strings.Join(m.tokenize(masked, false), " "); again != masked {
			t.Fatalf("masking is not idempotent: %q -> %q -> %q", line, masked, again)
		}
		if n := len(m.Templates()); n > 8 {
			t.Fatalf("%d clusters, limit 8", n)
		}
	})
}
