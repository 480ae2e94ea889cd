package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/spool"
)

// BatchWriter collects records from many producers (ingest requests,
// imports) into large inserts: ClickHouse wants few big inserts rather than
// many small ones.
//
// Records wait in a queue of segments: with WriterOptions.Spool, a disk
// spool (package spool) that Add writes and fsyncs before it returns, so an
// accepted record survives a crash of the process and any outage of the
// store; without, a bounded queue in memory (for imports and tests, whose
// producers can re-read their source). A segment closes at MaxRows records
// and every Interval; a drain loop writes closed segments to the store in
// order, in inserts of up to MaxRows records, and deletes a segment only
// after its insert succeeded. A failed insert is retried with exponential
// backoff (100 ms doubling to 30 s, each wait drawn from its upper half)
// while Err reports it (readiness) and Add keeps accepting into the spool
// until its byte limit (then a *spool.FullError, which the API answers with
// 503 and Retry-After). In memory, Add blocks while MaxPending records wait
// instead, which pushes back on producers without growing memory. A
// segment the store keeps refusing is retried for ever, blocking the ones
// after it: the writer never skips acknowledged records.
//
// Replays never double-count: records carry deterministic ids (ingest
// derives them from the content when the sender gives none), and every
// table is a ReplacingMergeTree read with FINAL, so a segment that was
// inserted but not yet deleted when the process died, and is inserted
// again after the restart, collapses with its first copy.
type BatchWriter struct {
	store    *Store
	log      *slog.Logger
	metrics  *Metrics
	q        queue
	dir      string // dir is the spool directory, "" in memory.
	maxRows  int
	interval time.Duration

	// addMu is held shared by Add and exclusively by Close, which so waits
	// for every Add under way before the last drain.
	addMu  sync.RWMutex
	closed bool // guarded by addMu

	// drainMu makes drains one at a time, so that segments are written in
	// order and each once per attempt.
	drainMu sync.Mutex
	// cached is the oldest segment as read, kept across retries so an
	// outage does not decode it again every attempt. Guarded by drainMu.
	cached      []*event.Batch
	cachedSeq   uint64
	failedSince time.Time // start of the current run of failures; guarded by drainMu

	errMu sync.Mutex // errMu guards err.
	err   error      // err is the last drain error, cleared by a success.

	// stopCtx ends when Close starts: it stops the drain loop after the
	// segment it is writing (or at once during a backoff), and wakes Adds
	// blocked on a full memory queue.
	stopCtx context.Context
	stop    context.CancelFunc
	// insertCtx is the drain loop's context for inserts. It ends only when
	// Close's context ends first: an insert under way when Close starts is
	// finished, not thrown away and redone.
	insertCtx     context.Context
	cancelInserts context.CancelFunc
	done          chan struct{}
}

// queue holds records between Add and the store as segments handed out
// oldest first: *spool.Spool on disk, or *spool.Memory. Segments are read
// and done by one drain at a time.
type queue interface {
	Append(ctx context.Context, b *event.Batch) error
	Rotate() error
	Ready() <-chan struct{}
	Oldest() (spool.Segment, bool)
	Read(spool.Segment) ([]*event.Batch, error)
	Done(spool.Segment) error
	Stats() spool.Stats
	Close() error
}

// WriterOptions configure a BatchWriter.
type WriterOptions struct {
	MaxRows    int           // close a segment at this many records, and insert at most this many at once; default 50000
	MaxPending int           // in memory only: block Add beyond this many records; default 4 × MaxRows
	Interval   time.Duration // close the current segment and write at least this often; default 1s
	Logger     *slog.Logger
	// Spool, when set, is the write-ahead spool Add writes to; segments
	// already in it (a crash, an outage before the last stop) are written
	// first, in order. The writer owns it from here and closes it in
	// Close. Open it with SegmentRecords = MaxRows so that segments and
	// inserts have the same size.
	Spool *spool.Spool
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
		store: s, log: opt.Logger, metrics: s.metrics, maxRows: opt.MaxRows, interval: opt.Interval,
		done: make(chan struct{}),
	}
	if opt.Spool != nil {
		w.q, w.dir = opt.Spool, opt.Spool.Dir()
		if st := opt.Spool.Stats(); st.Records > 0 {
			w.log.Info("replaying spool: records accepted before the last stop are written first",
				"dir", w.dir, "records", st.Records, "segments", st.Segments, "bytes", st.Bytes, "oldest", st.Oldest)
		}
	} else {
		w.q = spool.NewMemory(opt.MaxPending, opt.MaxRows)
	}
	w.stopCtx, w.stop = context.WithCancel(context.Background())
	w.insertCtx, w.cancelInserts = context.WithCancel(context.Background())
	w.observeQueue()
	go w.run()
	return w
}

// ErrWriterClosed is returned by Add after Close.
var ErrWriterClosed = errors.New("batch writer is closed")

// Add queues the records of b. With a spool it returns once they are on
// disk (durable, not yet in the store); Flush or Close put them in the
// store. b is not retained.
func (w *BatchWriter) Add(ctx context.Context, b *event.Batch) error {
	w.addMu.RLock()
	defer w.addMu.RUnlock()
	if w.closed {
		return ErrWriterClosed
	}
	if w.dir == "" {
		// The memory queue may block; Close must be able to end the wait.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		defer context.AfterFunc(w.stopCtx, func() { cancel(ErrWriterClosed) })()
	}
	if err := w.q.Append(ctx, b); err != nil {
		if errors.Is(context.Cause(ctx), ErrWriterClosed) {
			return ErrWriterClosed
		}
		var full *spool.FullError
		if errors.As(err, &full) {
			w.metrics.spoolFull.Inc()
		}
		return err
	}
	w.metrics.spoolAppended.Add(float64(b.Len()))
	w.observeQueue()
	return nil
}

// Err is the error of the last failed write to the store, nil once a write
// succeeds. Readiness reports it.
func (w *BatchWriter) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// Stats reports what waits for the store.
func (w *BatchWriter) Stats() spool.Stats { return w.q.Stats() }

func (w *BatchWriter) setErr(err error) {
	w.errMu.Lock()
	w.err = err
	w.errMu.Unlock()
}

// Backoff bounds of the drain loop's retries.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// nextBackoff doubles d within [minBackoff, maxBackoff].
func nextBackoff(d time.Duration) time.Duration {
	return min(max(2*d, minBackoff), maxBackoff)
}

// jitter spreads d over [d/2, d), so that writers that failed together do
// not retry together, and no wait exceeds maxBackoff.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// run closes a segment every interval and writes closed segments as they
// come; after a failure it waits out the backoff before the next attempt.
func (w *BatchWriter) run() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	var backoff time.Duration
	var retry <-chan time.Time // set while waiting out a backoff
	for {
		select {
		case <-w.stopCtx.Done():
			return
		case <-t.C:
			w.observeQueue()
			if retry != nil {
				// The store is failing: let segments grow to full size
				// rather than leave a small file every interval.
				continue
			}
			if err := w.q.Rotate(); err != nil {
				w.log.Error("close spool segment", "err", err)
			}
		case <-w.q.Ready():
			if retry != nil {
				continue
			}
		case <-retry:
			retry = nil
		}
		if err := w.drain(w.insertCtx, w.stopCtx); err != nil {
			if w.stopCtx.Err() != nil {
				return
			}
			backoff = nextBackoff(backoff)
			retry = time.After(jitter(backoff))
		} else {
			backoff = 0
		}
	}
}

// drain writes every closed segment to the store, oldest first, deleting
// each after its insert succeeded; it stops at the first failure, and
// before the next segment once stop ends.
func (w *BatchWriter) drain(ctx, stop context.Context) error {
	w.drainMu.Lock()
	defer w.drainMu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := stop.Err(); err != nil {
			return err
		}
		seg, ok := w.q.Oldest()
		if !ok {
			return nil
		}
		if err := w.writeSegment(ctx, seg); err != nil {
			if ctx.Err() == nil {
				w.failed(seg, err)
			}
			return err
		}
		if err := w.q.Done(seg); err != nil {
			w.failed(seg, err)
			return err
		}
		w.cached, w.cachedSeq = nil, 0
		w.metrics.spoolWritten.Add(float64(seg.Records))
		if !w.failedSince.IsZero() {
			w.log.Info("writes to the store succeed again", "failing_for", time.Since(w.failedSince).Round(time.Millisecond))
			w.failedSince = time.Time{}
		}
		w.setErr(nil)
		w.observeQueue()
	}
}

// failed records a failed drain. w.drainMu is held.
func (w *BatchWriter) failed(seg spool.Segment, err error) {
	w.setErr(err)
	w.metrics.spoolWriteFailures.Inc()
	if w.failedSince.IsZero() {
		w.failedSince = time.Now()
	}
	st := w.q.Stats()
	w.log.Error("write to the store failed; records stay queued and are retried", "segment", seg.Seq,
		"records_waiting", st.Records, "spool_bytes", st.Bytes, "err", err)
}

// writeSegment inserts the records of seg, up to MaxRows at a time. When a
// later insert of the segment fails after an earlier one succeeded, the
// retry inserts the earlier rows again, which the tables collapse.
func (w *BatchWriter) writeSegment(ctx context.Context, seg spool.Segment) error {
	if w.cached == nil || w.cachedSeq != seg.Seq {
		batches, err := w.q.Read(seg)
		if err != nil {
			return unreadableError{err}
		}
		w.cached, w.cachedSeq = batches, seg.Seq
	}
	batches := w.cached
	if len(batches) == 1 {
		return w.store.Write(ctx, batches[0])
	}
	var cur event.Batch
	for _, b := range batches {
		if cur.Len() > 0 && cur.Len()+b.Len() > w.maxRows {
			if err := w.store.Write(ctx, &cur); err != nil {
				return err
			}
			cur = event.Batch{}
		}
		cur.Append(b)
	}
	return w.store.Write(ctx, &cur)
}

// unreadableError is a segment that cannot be read (damaged on disk since
// the spool was opened). Retrying cannot help, and skipping it would drop
// acknowledged records, so the drain stops there and reports it until an
// operator moves the file aside (see package spool).
type unreadableError struct{ err error }

func (e unreadableError) Error() string { return e.err.Error() }
func (e unreadableError) Unwrap() error { return e.err }

// observeQueue updates the queue gauges.
func (w *BatchWriter) observeQueue() {
	st := w.q.Stats()
	w.metrics.observeSpool(st)
}

// Flush closes the current segment and writes everything queued so far,
// now: once, without retrying (the drain loop retries).
func (w *BatchWriter) Flush(ctx context.Context) error {
	if err := w.q.Rotate(); err != nil {
		return err
	}
	return w.drain(ctx, context.Background())
}

// Close stops accepting records, then writes everything queued, retrying
// with backoff until ctx ends. With a spool, what could not be written
// stays in it for the next start (and Close says how many records); in
// memory it is lost, which Close logs. Close closes the spool.
func (w *BatchWriter) Close(ctx context.Context) error {
	w.stop()
	w.addMu.Lock()
	already := w.closed
	w.closed = true
	w.addMu.Unlock()
	if already {
		return nil
	}
	// Let the drain loop finish the insert under way, unless ctx ends
	// first.
	defer context.AfterFunc(ctx, w.cancelInserts)()
	<-w.done
	w.cancelInserts()
	var err error
	for backoff := time.Duration(0); ; {
		if err = w.Flush(ctx); err == nil || ctx.Err() != nil || errors.As(err, new(unreadableError)) {
			break
		}
		backoff = nextBackoff(backoff)
		select {
		case <-ctx.Done():
		case <-time.After(jitter(backoff)):
		}
	}
	st := w.q.Stats()
	w.observeQueue()
	cerr := w.q.Close()
	switch {
	case err != nil && w.dir != "":
		w.log.Warn("records not yet written stay in the spool for the next start", "dir", w.dir, "records", st.Records, "segments", st.Segments, "err", err)
		return fmt.Errorf("%d records wait in the spool %s for the next start: %w", st.Records, w.dir, err)
	case err != nil:
		w.log.Error("records lost at shutdown", "records", st.Records, "err", err)
		return err
	}
	return cerr
}
