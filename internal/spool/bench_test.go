package spool

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/scenario"
)

// BenchmarkCodec encodes and decodes a batch of 5000 error events (one
// ingest chunk) with the spool's codec and, for comparison, with gob in
// self-contained records (a fresh encoder and decoder per record, as a
// record must be readable alone).
func BenchmarkCodec(b *testing.B) {
	batch := &event.Batch{Errors: scenario.ErrorEvents(1, 5000, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))}
	b.Run("spool", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = appendBatch(buf[:0], batch)
			if _, err := decodeBatch(buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf))/5000, "bytes/record")
		b.ReportMetric(float64(b.N)*5000/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("gob", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := gob.NewEncoder(&buf).Encode(batch); err != nil {
				b.Fatal(err)
			}
			var out event.Batch
			if err := gob.NewDecoder(bytes.NewReader(buf.Bytes())).Decode(&out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len())/5000, "bytes/record")
		b.ReportMetric(float64(b.N)*5000/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkAppend appends chunks of 5000 error events from 1 and 4
// goroutines: the cost of durability per accepted record, fsync included,
// and what group commit saves when requests arrive together.
func BenchmarkAppend(b *testing.B) {
	events := scenario.ErrorEvents(1, 5000, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	for _, writers := range []int{1, 4} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{MaxBytes: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var mu sync.Mutex
			n := 0
			var wg sync.WaitGroup
			start := time.Now()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						if n >= b.N {
							mu.Unlock()
							return
						}
						n++
						mu.Unlock()
						if err := s.Append(context.Background(), &event.Batch{Errors: events}); err != nil {
							b.Error(err)
							return
						}
						// Keep the directory small: drop what is closed.
						if seg, ok := s.Oldest(); ok {
							s.Done(seg)
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)*5000/time.Since(start).Seconds(), "records/s")
		})
	}
}
