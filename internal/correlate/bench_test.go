package correlate_test

import (
	"context"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Cleanup()
	os.Exit(code)
}

// BenchmarkWhatChangedDemo answers the default demo's question (12
// services, 3 days) against the embedded store and reports p50 and p95
// latency beside the ceiling measured in the same run: the raw time of
// the answer's heaviest single query (per-minute errors of the whole scope
// over the window, a FINAL read of the errors table).
func BenchmarkWhatChangedDemo(b *testing.B) {
	sc, err := scenario.Generate(scenario.Options{Seed: 1, Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	s := storetest.Embedded(b)
	ctx := context.Background()
	if err := s.Write(ctx, &sc.Batch); err != nil {
		b.Fatal(err)
	}
	eng := correlate.New(s, correlate.Options{})
	q := correlate.Query{Service: sc.Service, At: sc.Detected, Lookback: 2 * time.Hour}
	ans, err := eng.WhatChanged(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	if len(ans.Candidates) == 0 || ans.Candidates[0].Change.ID != sc.ExpectedCause {
		b.Fatalf("the demo's cause is not ranked first: %+v", ans.Candidates)
	}
	runs := max(b.N, 20)
	lat := make([]time.Duration, 0, runs)
	ceil := make([]time.Duration, 0, runs)
	b.ResetTimer()
	for i := 0; i < runs; i++ {
		start := time.Now()
		if _, err := eng.WhatChanged(ctx, q); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		start = time.Now()
		if _, err := s.ErrorsPerMinute(ctx, ans.Scope, q.At.Add(-q.Lookback-30*time.Minute), q.At); err != nil {
			b.Fatal(err)
		}
		ceil = append(ceil, time.Since(start))
	}
	b.StopTimer()
	p := func(d []time.Duration, q float64) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(p(lat, 0.5), "p50_ms")
	b.ReportMetric(p(lat, 0.95), "p95_ms")
	b.ReportMetric(p(ceil, 0.5), "heaviest_query_p50_ms")
	b.ReportMetric(p(lat, 0.5)/p(ceil, 0.5), "ratio")
}
