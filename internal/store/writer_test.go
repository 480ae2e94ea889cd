package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/spool"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

// flakyEngine fails inserts while down is set, like an unreachable server,
// and records the size of every insert that went through.
type flakyEngine struct {
	store.Engine
	down     atomic.Bool
	failures atomic.Int64

	mu      sync.Mutex // mu guards inserts.
	inserts []int      // rows per successful insert
}

func (f *flakyEngine) Insert(ctx context.Context, table string, cols []store.Column, data []any) error {
	if f.down.Load() {
		f.failures.Add(1)
		return errors.New("dial tcp 10.0.0.7:9000: connection refused")
	}
	err := f.Engine.Insert(ctx, table, cols, data)
	if err == nil {
		f.mu.Lock()
		f.inserts = append(f.inserts, rowsOf(data))
		f.mu.Unlock()
	}
	return err
}

func rowsOf(data []any) int {
	switch c := data[0].(type) {
	case []string:
		return len(c)
	case []time.Time:
		return len(c)
	}
	return -1
}

// flaky opens a store on a fresh embedded database behind a switchable
// failing engine; base reads the same database directly.
func flaky(t *testing.T) (s, base *store.Store, fe *flakyEngine) {
	t.Helper()
	base = storetest.Embedded(t)
	fe = &flakyEngine{Engine: base.Engine()}
	s, err := store.New(fe, store.Options{Database: base.Database()})
	if err != nil {
		t.Fatal(err)
	}
	return s, base, fe
}

func errorsBatch(from, n int) *event.Batch {
	b := &event.Batch{}
	for i := from; i < from+n; i++ {
		b.Errors = append(b.Errors, event.ErrorEvent{ID: fmt.Sprintf("e%d", i), Time: t0.Add(time.Duration(i) * time.Second),
			Service: "api", Fingerprint: "fp", Level: "error", SampleRate: 1})
	}
	return b
}

// mixedBatch holds 50 errors, 10 logs and 2 changes, distinct by i.
func mixedBatch(i int) *event.Batch {
	b := errorsBatch(i*50, 50)
	for j := 0; j < 10; j++ {
		b.Logs = append(b.Logs, event.LogRecord{Time: t0.Add(time.Duration(i*10+j) * time.Millisecond), Service: "api", Severity: "INFO", Body: fmt.Sprintf("log %d/%d", i, j)})
	}
	for j := 0; j < 2; j++ {
		b.Changes = append(b.Changes, event.Change{ID: fmt.Sprintf("c%d-%d", i, j), Time: t0.Add(time.Duration(i) * time.Minute), Kind: event.ChangeConfig, Service: "api"})
	}
	return b
}

func openSpool(t *testing.T, dir string, opt spool.Options) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func counts(t *testing.T, s *store.Store, tables ...string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, table := range tables {
		n, err := s.Count(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// rawCount counts rows without FINAL: copies not yet merged count twice.
func rawCount(t *testing.T, s *store.Store, query string) uint64 {
	t.Helper()
	rows, err := s.Engine().Query(context.Background(), query, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n uint64
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestOutage is the first proof: while the store refuses inserts,
// every Add is still accepted (into the spool), Err reports the failure,
// the drain loop backs off instead of hammering the store; once the store
// is back, exactly the records sent are stored, the later of two versions
// of a record winning as it arrived last.
func TestOutage(t *testing.T) {
	s, base, fe := flaky(t)
	ctx := context.Background()
	sp := openSpool(t, t.TempDir(), spool.Options{SegmentRecords: 100})
	w := store.NewBatchWriter(s, store.WriterOptions{MaxRows: 100, Interval: 10 * time.Millisecond, Spool: sp})
	defer w.Close(ctx)
	if err := w.Add(ctx, mixedBatch(0)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	fe.down.Store(true)
	const batches = 40
	for i := 1; i <= batches; i++ {
		if err := w.Add(ctx, mixedBatch(i)); err != nil {
			t.Fatalf("Add %d while the store is down: %v", i, err)
		}
	}
	// One metric point sent twice with different values, in different
	// segments: the second must win.
	point := func(v float64) *event.Batch {
		return &event.Batch{Metrics: []event.MetricPoint{{Time: t0, Service: "api", Name: "requests", Value: v}}}
	}
	w.Add(ctx, point(1))
	w.Flush(ctx) // fails, but closes the segment
	w.Add(ctx, point(2))

	waitFor(t, "Err to report the failing store", func() bool { return w.Err() != nil && fe.failures.Load() >= 2 })
	if !strings.Contains(w.Err().Error(), "connection refused") {
		t.Errorf("Err = %v, want the insert's error", w.Err())
	}
	if st := w.Stats(); st.Records != batches*62+2 || st.Bytes == 0 {
		t.Errorf("spool holds %+v, want the %d records accepted while down", st, batches*62+2)
	}
	// Backoff: 100 ms doubling, so few attempts in a second and a half,
	// where the 10 ms interval alone would give about 150.
	before := fe.failures.Load()
	time.Sleep(1500 * time.Millisecond)
	if n := fe.failures.Load() - before; n > 12 {
		t.Errorf("%d insert attempts in 1.5 s of outage: no backoff", n)
	}

	fe.down.Store(false)
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush after the store came back: %v", err)
	}
	if w.Err() != nil {
		t.Errorf("Err after recovery: %v", w.Err())
	}
	want := map[string]uint64{"errors": 50 * (batches + 1), "otel_logs": 10 * (batches + 1), "changes": 2 * (batches + 1), "metric_points": 1}
	if got := counts(t, base, "errors", "otel_logs", "changes", "metric_points"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored %v, want exactly %v", got, want)
	}
	if v := rawCount(t, base, "SELECT toUInt64(value) FROM metric_points FINAL"); v != 2 {
		t.Errorf("metric value %d, want 2, the one sent last", v)
	}
	if st := w.Stats(); st.Records != 0 || st.Segments != 0 {
		t.Errorf("spool after recovery: %+v, want empty", st)
	}
	if files, _ := filepath.Glob(filepath.Join(sp.Dir(), "*.seg")); len(files) != 0 {
		t.Errorf("segment files left: %v", files)
	}
}

// TestOutageAcrossRestart: a writer closed while the store is down keeps
// what it could not write in the spool (nothing dropped), and the next
// writer on that spool writes it first.
func TestOutageAcrossRestart(t *testing.T) {
	s, base, fe := flaky(t)
	dir := t.TempDir()
	fe.down.Store(true)
	w := store.NewBatchWriter(s, store.WriterOptions{MaxRows: 100, Interval: time.Hour, Spool: openSpool(t, dir, spool.Options{SegmentRecords: 100})})
	for i := 0; i < 10; i++ {
		if err := w.Add(context.Background(), errorsBatch(i*70, 70)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := w.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "700 records wait in the spool") {
		t.Errorf("Close during an outage: %v, want it to say 700 records wait in the spool", err)
	}
	if err := w.Add(context.Background(), errorsBatch(0, 1)); !errors.Is(err, store.ErrWriterClosed) {
		t.Errorf("Add after Close: %v", err)
	}

	fe.down.Store(false)
	w2 := store.NewBatchWriter(s, store.WriterOptions{MaxRows: 100, Interval: time.Hour, Spool: openSpool(t, dir, spool.Options{SegmentRecords: 100})})
	// The replay starts by itself, before any Add or Flush.
	waitFor(t, "the replay", func() bool { return w2.Stats().Records == 0 })
	if err := w2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := counts(t, base, "errors")["errors"]; n != 700 {
		t.Errorf("%d errors stored, want the 700 accepted", n)
	}
}

// TestReplayOfAWrittenSegmentCountsOnce simulates a crash after a
// segment's insert succeeded but before its file was deleted: the segment
// is inserted again at the next start, and readers (FINAL) still see each
// record once.
func TestReplayOfAWrittenSegmentCountsOnce(t *testing.T) {
	s, base, _ := flaky(t)
	dir := t.TempDir()
	sp := openSpool(t, dir, spool.Options{SegmentRecords: 300})
	for i := 0; i < 4; i++ {
		if err := sp.Append(context.Background(), errorsBatch(i*100, 100)); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close()
	saved := copyDir(t, dir)
	w := store.NewBatchWriter(s, store.WriterOptions{MaxRows: 300, Interval: time.Hour, Spool: openSpool(t, dir, spool.Options{SegmentRecords: 300})})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The crash: the deleted segments are back.
	for name, data := range saved {
		os.WriteFile(filepath.Join(dir, name), data, 0o600)
	}
	w = store.NewBatchWriter(s, store.WriterOptions{MaxRows: 300, Interval: time.Hour, Spool: openSpool(t, dir, spool.Options{SegmentRecords: 300})})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if raw := rawCount(t, base, "SELECT count() FROM errors"); raw != 800 {
		t.Fatalf("%d rows before merging, want 800: the replay did not insert again, so this test shows nothing", raw)
	}
	if n := counts(t, base, "errors")["errors"]; n != 400 {
		t.Errorf("%d errors read with FINAL, want 400", n)
	}
	if err := base.Engine().Exec(context.Background(), "OPTIMIZE TABLE errors FINAL", nil); err != nil {
		t.Fatal(err)
	}
	if raw := rawCount(t, base, "SELECT count() FROM errors"); raw != 400 {
		t.Errorf("%d rows after merging, want 400", raw)
	}
}

func copyDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = data
	}
	if len(out) == 0 {
		t.Fatal("no segments to copy")
	}
	return out
}

// TestSegmentsBecomeInsertsOfMaxRows: the drain loop writes on its own
// every interval, merging small appends into inserts of up to MaxRows.
func TestSegmentsBecomeInsertsOfMaxRows(t *testing.T) {
	for _, mode := range []string{"spool", "memory"} {
		t.Run(mode, func(t *testing.T) {
			s, base, fe := flaky(t)
			opt := store.WriterOptions{MaxRows: 100, Interval: 200 * time.Millisecond}
			if mode == "spool" {
				opt.Spool = openSpool(t, t.TempDir(), spool.Options{SegmentRecords: 100})
			}
			w := store.NewBatchWriter(s, opt)
			defer w.Close(context.Background())
			for i := 0; i < 40; i++ {
				if err := w.Add(context.Background(), errorsBatch(i*30, 30)); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the drain loop", func() bool { return w.Stats().Records == 0 })
			fe.mu.Lock()
			inserts := append([]int(nil), fe.inserts...)
			fe.mu.Unlock()
			total := 0
			for _, n := range inserts {
				total += n
				if n > 100 {
					t.Errorf("insert of %d rows, over MaxRows 100", n)
				}
			}
			if total != 1200 || len(inserts) > 24 {
				t.Errorf("inserts %v: %d rows in %d inserts, want 1200 in few inserts", inserts, total, len(inserts))
			}
			if n := counts(t, base, "errors")["errors"]; n != 1200 {
				t.Errorf("%d stored, want 1200", n)
			}
		})
	}
}

// TestSpoolFull: beyond the spool's byte limit Add fails at once with a
// *spool.FullError (the API's 503), and records accepted before are kept.
func TestSpoolFull(t *testing.T) {
	s, base, fe := flaky(t)
	fe.down.Store(true)
	w := store.NewBatchWriter(s, store.WriterOptions{MaxRows: 100, Interval: time.Hour, Spool: openSpool(t, t.TempDir(), spool.Options{MaxBytes: 64 << 10, SegmentRecords: 100})})
	accepted := 0
	var full *spool.FullError
	for i := 0; i < 1000; i++ {
		err := w.Add(context.Background(), errorsBatch(i*10, 10))
		if errors.As(err, &full) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted += 10
	}
	if full == nil || accepted == 0 {
		t.Fatalf("no FullError after %d records", accepted)
	}
	fe.down.Store(false)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := counts(t, base, "errors")["errors"]; n != uint64(accepted) {
		t.Errorf("%d stored, want the %d accepted", n, accepted)
	}
}

// TestBatchWriterBackpressure: in memory, Add blocks once MaxPending
// records wait, instead of growing without bound, and gives up when its
// context ends.
func TestBatchWriterBackpressure(t *testing.T) {
	s, base, fe := flaky(t)
	fe.down.Store(true)
	w := store.NewBatchWriter(s, store.WriterOptions{MaxRows: 10, MaxPending: 100, Interval: 5 * time.Millisecond})
	if err := w.Add(context.Background(), errorsBatch(0, 100)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Add(ctx, errorsBatch(100, 10)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Add over the pending limit returned %v, want it to block until the deadline", err)
	}
	// A blocked Add is released by Close.
	blocked := make(chan error, 1)
	go func() { blocked <- w.Add(context.Background(), errorsBatch(100, 10)) }()
	time.Sleep(50 * time.Millisecond)
	fe.down.Store(false)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-blocked:
		if err != nil && !errors.Is(err, store.ErrWriterClosed) {
			t.Errorf("blocked Add ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked Add outlived Close")
	}
	if n := counts(t, base, "errors")["errors"]; n != 100 && n != 110 {
		t.Errorf("%d stored, want the 100 accepted (110 if the blocked Add got in)", n)
	}
	if err := w.Add(context.Background(), errorsBatch(0, 1)); !errors.Is(err, store.ErrWriterClosed) {
		t.Errorf("Add after Close: %v", err)
	}
}

// BenchmarkBatchWriterErrors adds 1M error events in chunks of 5000 (as
// the ingest decoder emits them) from 4 producers and closes the writer,
// so every record is in the store: the writer's rate in memory and with
// the write-ahead spool, to set beside BenchmarkWriteErrors (Store.Write
// alone). It also reports the process's CPU time per row (user and
// system, the engine's threads included), which a busy machine disturbs
// less than the rate. Run with -benchtime 1x.
func BenchmarkBatchWriterErrors(b *testing.B) {
	const n, chunk, producers = 1_000_000, 5000, 4
	events := scenario.ErrorEvents(1, n, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	for _, mode := range []string{"memory", "spool"} {
		b.Run(mode, func(b *testing.B) {
			var rate, cpu float64
			for range b.N {
				b.StopTimer()
				s := storetest.Embedded(b)
				opt := store.WriterOptions{MaxRows: 100_000}
				if mode == "spool" {
					sp, err := spool.Open(b.TempDir(), spool.Options{SegmentRecords: opt.MaxRows})
					if err != nil {
						b.Fatal(err)
					}
					opt.Spool = sp
				}
				w := store.NewBatchWriter(s, opt)
				b.StartTimer()
				start, cpu0 := time.Now(), cpuTime()
				next := make(chan int)
				var wg sync.WaitGroup
				for range producers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range next {
							if err := w.Add(context.Background(), &event.Batch{Errors: events[i:min(i+chunk, n)]}); err != nil {
								b.Error(err)
							}
						}
					}()
				}
				for i := 0; i < n; i += chunk {
					next <- i
				}
				close(next)
				wg.Wait()
				if err := w.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
				rate = n / time.Since(start).Seconds()
				cpu = (cpuTime() - cpu0).Seconds() / n * 1e6
				b.StopTimer()
				if got, err := s.Count(context.Background(), "errors"); err != nil || got != n {
					b.Fatalf("stored %d (%v), want %d", got, err, n)
				}
			}
			b.ReportMetric(rate, "rows/s")
			b.ReportMetric(cpu, "cpu_µs/row")
		})
	}
}

// cpuTime is the user and system time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
