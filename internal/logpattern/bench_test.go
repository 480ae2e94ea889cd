package logpattern

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkAdd mines 100k lines drawn from testdata/background.formats
// (access logs, slog lines, Go and Java errors, k8s events) into a fresh
// Miner per iteration and reports lines/s. Beside it, ceiling_lines/s is
// strings.Fields over the same lines in the same run: splitting on white
// space, the least any tokeniser does.
func BenchmarkAdd(b *testing.B) {
	lines := newGenerator(b, 1).lines(100_000)
	start := time.Now()
	for range 5 {
		for _, line := range lines {
			_ = strings.Fields(line)
		}
	}
	ceiling := float64(5*len(lines)) / time.Since(start).Seconds()
	b.ResetTimer()
	for b.Loop() {
		m := New(Options{})
		for _, line := range lines {
			m.Add(line)
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(ceiling, "ceiling_lines/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMatch matches the same lines against a Miner that has learnt
// them.
func BenchmarkMatch(b *testing.B) {
	lines := newGenerator(b, 1).lines(100_000)
	m := New(Options{})
	for _, line := range lines {
		m.Add(line)
	}
	b.ResetTimer()
	for b.Loop() {
		for _, line := range lines {
			m.Match(line)
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(0, "ns/op")
}
