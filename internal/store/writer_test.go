package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

// flakyEngine fails inserts while down is set, like an unreachable server.
type flakyEngine struct {
	store.Engine
	down     atomic.Bool
	failures atomic.Int64
}

func (f *flakyEngine) Insert(ctx context.Context, table string, cols []store.Column, data []any) error {
	if f.down.Load() {
		f.failures.Add(1)
		return errors.New("connection refused")
	}
	return f.Engine.Insert(ctx, table, cols, data)
}

func errorsBatch(from, n int) *event.Batch {
	b := &event.Batch{}
	for i := from; i < from+n; i++ {
		b.Errors = append(b.Errors, event.ErrorEvent{ID: fmt.Sprintf("e%d", i), Time: t0.Add(time.Duration(i) * time.Second),
			Service: "api", Fingerprint: "fp", Level: "error", SampleRate: 1})
	}
	return b
}

// TestBatchWriterKeepsRecordsWhileTheStoreIsDown: records accepted while
// inserts fail stay queued, Err reports the failure (readiness), and once
// the store is back every record is written exactly once.
func TestBatchWriterKeepsRecordsWhileTheStoreIsDown(t *testing.T) {
	base := storetest.Embedded(t)
	fe := &flakyEngine{Engine: base.Engine()}
	s, err := store.New(fe, store.Options{Database: base.Database()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := store.NewBatchWriter(s, store.WriterOptions{MaxRows: 100, MaxPending: 100000, Interval: 10 * time.Millisecond})
	if err := w.Add(ctx, errorsBatch(0, 500)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fe.down.Store(true)
	for i := 1; i <= 5; i++ {
		if err := w.Add(ctx, errorsBatch(i*500, 500)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.Err() == nil || fe.failures.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the writer never reported the failing store")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fe.down.Store(false)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Err() != nil {
		t.Errorf("Err after recovery: %v", w.Err())
	}
	n, err := base.Count(ctx, "errors")
	if err != nil {
		t.Fatal(err)
	}
	if n != 3000 {
		t.Errorf("%d errors stored, want exactly the 3000 accepted", n)
	}
}

// TestBatchWriterBackpressure: Add blocks once MaxPending records wait,
// instead of growing without bound, and gives up when its context ends.
func TestBatchWriterBackpressure(t *testing.T) {
	base := storetest.Embedded(t)
	fe := &flakyEngine{Engine: base.Engine()}
	fe.down.Store(true)
	s, _ := store.New(fe, store.Options{Database: base.Database()})
	w := store.NewBatchWriter(s, store.WriterOptions{MaxRows: 10, MaxPending: 100, Interval: 5 * time.Millisecond})
	if err := w.Add(context.Background(), errorsBatch(0, 100)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	var addErr error
	go func() {
		defer wg.Done()
		addErr = w.Add(ctx, errorsBatch(100, 10))
	}()
	wg.Wait()
	if !errors.Is(addErr, context.DeadlineExceeded) {
		t.Errorf("Add over the pending limit returned %v, want it to block until the deadline", addErr)
	}
	fe.down.Store(false)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := base.Count(context.Background(), "errors"); n != 100 {
		t.Errorf("%d stored, want the 100 accepted", n)
	}
	if err := w.Add(context.Background(), errorsBatch(0, 1)); !errors.Is(err, store.ErrWriterClosed) {
		t.Errorf("Add after Close: %v", err)
	}
}
