package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// BatchWriter collects records from many producers (ingest requests,
// imports) into large inserts: ClickHouse wants few big inserts rather than
// many small ones. It flushes when MaxRows records are pending, every
// Interval, and on Close, so nothing accepted is lost on a clean shutdown.
// Add blocks while MaxPending records wait, which pushes back on producers
// instead of growing memory without bound.
type BatchWriter struct {
	store    *Store
	log      *slog.Logger
	maxRows  int
	maxPend  int
	interval time.Duration

	mu       sync.Mutex // mu guards pending, inflight and err.
	cond     *sync.Cond // cond signals that pending or inflight shrank.
	pending  event.Batch
	inflight int   // inflight counts records taken by a flush not yet done; they count against MaxPending.
	err      error // err is the last flush error, cleared by a success.

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// WriterOptions configure a BatchWriter.
type WriterOptions struct {
	MaxRows    int           // flush at this many pending records; default 50000
	MaxPending int           // block Add beyond this many; default 4 × MaxRows
	Interval   time.Duration // flush at least this often; default 1s
	Logger     *slog.Logger
}

// NewBatchWriter starts a writer; Close stops it.
func NewBatchWriter(s *Store, opt WriterOptions) *BatchWriter {
	if opt.MaxRows <= 0 {
		opt.MaxRows = 50000
	}
	if opt.MaxPending <= 0 {
		opt.MaxPending = 4 * opt.MaxRows
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Second
	}
	if opt.Logger == nil {
		opt.Logger = s.log
	}
	w := &BatchWriter{
		store: s, log: opt.Logger, maxRows: opt.MaxRows, maxPend: opt.MaxPending, interval: opt.Interval,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	w.cond = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// ErrWriterClosed is returned by Add after Close.
var ErrWriterClosed = errors.New("batch writer is closed")

// Add queues the records of b. It returns once they are queued, not
// written; Flush or Close make them durable.
func (w *BatchWriter) Add(ctx context.Context, b *event.Batch) error {
	w.mu.Lock()
	for w.pending.Len()+w.inflight >= w.maxPend {
		select {
		case <-w.stop:
			w.mu.Unlock()
			return ErrWriterClosed
		default:
		}
		if err := ctx.Err(); err != nil {
			w.mu.Unlock()
			return err
		}
		w.cond.Wait()
	}
	select {
	case <-w.stop:
		w.mu.Unlock()
		return ErrWriterClosed
	default:
	}
	w.pending.Append(b)
	full := w.pending.Len() >= w.maxRows
	w.mu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Err is the error of the last failed flush, nil once a flush succeeds.
// Readiness reports it.
func (w *BatchWriter) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *BatchWriter) run() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.kick:
		}
		w.flush(context.Background())
	}
}

// flush writes everything pending. On failure the records stay pending and
// are retried at the next flush.
func (w *BatchWriter) flush(ctx context.Context) error {
	w.mu.Lock()
	b := w.pending
	w.pending = event.Batch{}
	w.inflight += b.Len()
	w.mu.Unlock()
	if b.Len() == 0 {
		return nil
	}
	err := w.store.Write(ctx, &b)
	w.mu.Lock()
	w.inflight -= b.Len()
	if err != nil {
		// Put the batch back in front so order is kept.
		b.Append(&w.pending)
		w.pending = b
		w.err = err
		w.log.Error("flush failed; records kept for retry", "records", b.Len(), "err", err)
	} else {
		w.err = nil
	}
	w.cond.Broadcast()
	w.mu.Unlock()
	return err
}

// Flush writes everything queued so far.
func (w *BatchWriter) Flush(ctx context.Context) error { return w.flush(ctx) }

// Close stops the writer and flushes what is pending, retrying with backoff
// until ctx ends.
func (w *BatchWriter) Close(ctx context.Context) error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	w.cond.Broadcast()
	w.mu.Unlock()
	backoff := 100 * time.Millisecond
	for {
		err := w.flush(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			w.mu.Lock()
			n := w.pending.Len()
			w.mu.Unlock()
			w.log.Error("records lost at shutdown", "records", n, "err", err)
			return err
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}
