package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/store/storetest"
)

// BenchmarkWriteErrors writes 1M error events through Store.Write in
// batches of 100k and reports the rate beside the ceiling measured in the
// same run: the engine's own INSERT ... SELECT of the same rows.
// Run with -benchtime 1x.
func BenchmarkWriteErrors(b *testing.B) {
	const n, batch = 1_000_000, 100_000
	events := scenario.ErrorEvents(1, n, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	var rate, ceiling float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := storetest.Embedded(b)
		b.StartTimer()
		start := time.Now()
		for j := 0; j < n; j += batch {
			if err := s.Write(ctx, &event.Batch{Errors: events[j:min(j+batch, n)]}); err != nil {
				b.Fatal(err)
			}
		}
		rate = n / time.Since(start).Seconds()
		b.StopTimer()
		if err := s.Engine().Exec(ctx, "CREATE TABLE errors_ceiling AS errors", nil); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := s.Engine().Exec(ctx, "INSERT INTO errors_ceiling SELECT * FROM errors", nil); err != nil {
			b.Fatal(err)
		}
		ceiling = n / time.Since(start).Seconds()
		b.StartTimer()
	}
	b.ReportMetric(rate, "rows/s")
	b.ReportMetric(ceiling, "insert_select_rows/s")
	b.ReportMetric(rate/ceiling, "ratio")
}
