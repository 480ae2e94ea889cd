package spool

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// Memory has the methods of Spool but keeps its segments in memory: for
// producers that can wait and re-read their source (correlator import, the
// demo, the evaluation, tests), where a disk copy of the input would buy
// nothing. It holds at most maxRecords records: Append blocks beyond that
// until segments are done or ctx ends, which pushes back on the producer.
// What it holds is lost with the process.
type Memory struct {
	maxRecords, segRecords int

	mu       sync.Mutex // mu guards the fields below.
	cur      []*event.Batch
	curSeg   Segment
	closed   []Segment // oldest first; their batches are in segs
	segs     map[uint64][]*event.Batch
	nextSeq  uint64
	records  int           // records in every segment, the current one included
	space    chan struct{} // closed (and replaced) when records leave
	isClosed bool

	ready chan struct{}
}

// NewMemory returns an empty in-memory queue that blocks Append at
// maxRecords records and closes a segment at segRecords.
func NewMemory(maxRecords, segRecords int) *Memory {
	if segRecords <= 0 {
		segRecords = DefaultSegmentRecords
	}
	if maxRecords <= 0 {
		maxRecords = 4 * segRecords
	}
	return &Memory{maxRecords: maxRecords, segRecords: segRecords, segs: map[uint64][]*event.Batch{},
		nextSeq: 1, space: make(chan struct{}), ready: make(chan struct{}, 1)}
}

// Append queues a copy of b's slices (b may be reused by the caller),
// waiting while the queue holds maxRecords records or more.
func (m *Memory) Append(ctx context.Context, b *event.Batch) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	for {
		m.mu.Lock()
		if m.isClosed {
			m.mu.Unlock()
			return ErrClosed
		}
		if m.records < m.maxRecords {
			break
		}
		space := m.space
		m.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer m.mu.Unlock()
	c := new(event.Batch)
	c.Append(b)
	if len(m.cur) == 0 {
		m.curSeg = Segment{Seq: m.nextSeq, Created: time.Now().UTC()}
		m.nextSeq++
	}
	m.cur = append(m.cur, c)
	m.curSeg.Records += n
	m.records += n
	if m.curSeg.Records >= m.segRecords {
		m.rotate()
	}
	return nil
}

// rotate closes the current segment. m.mu is held.
func (m *Memory) rotate() {
	if len(m.cur) == 0 {
		return
	}
	m.closed = append(m.closed, m.curSeg)
	m.segs[m.curSeg.Seq] = m.cur
	m.cur, m.curSeg = nil, Segment{}
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// Rotate closes the current segment if it holds records.
func (m *Memory) Rotate() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rotate()
	return nil
}

// Ready is as Spool.Ready.
func (m *Memory) Ready() <-chan struct{} { return m.ready }

// Oldest is as Spool.Oldest.
func (m *Memory) Oldest() (Segment, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.closed) == 0 {
		return Segment{}, false
	}
	return m.closed[0], true
}

// Read is as Spool.Read.
func (m *Memory) Read(seg Segment) ([]*event.Batch, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.segs[seg.Seq]
	if !ok {
		return nil, fmt.Errorf("memory queue: no segment %d", seg.Seq)
	}
	return b, nil
}

// Done is as Spool.Done, and wakes blocked appenders.
func (m *Memory) Done(seg Segment) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.closed) == 0 || m.closed[0].Seq != seg.Seq {
		return fmt.Errorf("memory queue: segment %d is not the oldest", seg.Seq)
	}
	m.closed = m.closed[1:]
	delete(m.segs, seg.Seq)
	m.records -= seg.Records
	if !m.isClosed { // Close closed space for good
		close(m.space)
		m.space = make(chan struct{})
	}
	return nil
}

// Stats is as Spool.Stats; Bytes is 0.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Stats{Segments: len(m.closed), Records: m.records}
	if len(m.closed) > 0 {
		st.Oldest = m.closed[0].Created
	}
	if len(m.cur) > 0 {
		st.Segments++
		if st.Oldest.IsZero() {
			st.Oldest = m.curSeg.Created
		}
	}
	return st
}

// Close rejects further appends (blocked ones return ErrClosed) and closes
// the current segment; what is queued can still be read and done.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.isClosed {
		m.isClosed = true
		m.rotate()
		close(m.space)
	}
	return nil
}
