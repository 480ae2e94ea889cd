// Package spool keeps accepted records on disk until the store has them: a
// write-ahead log between the ingest API and ClickHouse. A record is
// acknowledged to its sender only after it is in the spool and fsynced, so
// neither a crash of the process (kill -9, OOM, power loss) nor an outage of
// ClickHouse loses it; store.BatchWriter drains the spool into the store in
// order and deletes what was written.
//
// # Layout
//
// A spool is a directory of segment files named by a zero-padded sequence
// number (00000000000000000042.seg) and a LOCK file that one process holds
// (flock) while the spool is open. A segment is a 16-byte header (the magic
// "CORSPL", a 2-byte format version, the creation time in Unix nanoseconds)
// followed by records:
//
//	uint32 length of the payload, little-endian
//	uint32 CRC-32C (Castagnoli) of the payload
//	payload: one event.Batch (see codec.go)
//
// Appends go to the newest segment. It is closed (fsynced, and never
// written again) when it holds Options.SegmentRecords records or
// Options.SegmentBytes bytes, or when its owner calls Rotate (the writer
// does every flush interval). Closed segments are handed out oldest first
// (Oldest, Read) and deleted by Done once their records are in the store.
//
// # Durability
//
// Append returns after its record is written and fsynced. Concurrent
// appenders share fsyncs (group commit): each waits for one fsync that
// covers its record, so N requests in flight cost about one fsync, not N.
// A new segment's directory entry is fsynced before a record in it is
// acknowledged.
//
// # Damage
//
// Open reads every segment and checks every record. A crash while a record
// was being written can leave a partial record at the end of the newest
// segment; it was never acknowledged (the ack follows the fsync), so it is
// cut off and logged ("torn tail"). A bad record anywhere else (a CRC
// mismatch or impossible length followed by more data, or in a segment
// that was already closed) is corruption of acknowledged data: Open fails
// with an error naming the segment file and the offset, and the operator
// decides (move the file aside to start without it). The spool never skips
// acknowledged records silently.
//
// # Replays
//
// A segment written to the store but not yet deleted when the process died
// is written again after the restart. That is harmless: records carry
// deterministic ids and the store's ReplacingMergeTree tables, read with
// FINAL, collapse the copies.
package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// Defaults of Options.
const (
	DefaultMaxBytes       = 1 << 30
	DefaultSegmentBytes   = 64 << 20
	DefaultSegmentRecords = 50000
)

// MaxRecordBytes bounds one record's payload; a batch that encodes larger
// is refused by Append, and a larger length in a file is damage.
const MaxRecordBytes = 256 << 20

const (
	segmentMagic   = "CORSPL"
	segmentVersion = 1
	headerSize     = 16 // magic, version, creation time
	frameSize      = 8  // length and CRC before each payload
	segmentSuffix  = ".seg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure a Spool.
type Options struct {
	// MaxBytes bounds the spool's size on disk; Append returns a *FullError
	// rather than go beyond it. Default DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes and SegmentRecords close the newest segment once it
	// holds this many bytes or records. Defaults DefaultSegmentBytes and
	// DefaultSegmentRecords.
	SegmentBytes   int64
	SegmentRecords int
	// CacheRecords bounds the records of recent segments also kept in
	// memory as appended, so that Read hands them out without reading and
	// decoding the file: in normal operation the disk is only written.
	// Segments beyond it (an outage) and those found at Open are read from
	// disk. Default 4 × SegmentRecords; negative for none.
	CacheRecords int
	Logger       *slog.Logger
}

// Segment describes a closed segment.
type Segment struct {
	Seq     uint64
	Records int       // records (events) in it, not appends
	Bytes   int64     // size of its file
	Created time.Time // when its first record was appended
}

// Stats describe what the spool holds.
type Stats struct {
	Bytes    int64 // on disk, every segment
	Segments int   // closed segments, and the newest if it holds records
	Records  int   // events not yet handed to Done
	Oldest   time.Time
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("spool is closed")

// FullError is Append's error when the record would take the spool over
// its byte limit: the store has been unreachable (or slower than ingest)
// for long. The sender should retry later.
type FullError struct {
	Bytes, Limit int64
}

func (e *FullError) Error() string {
	return fmt.Sprintf("spool is full: %d bytes of records wait for the store (limit %d); retry later", e.Bytes, e.Limit)
}

// RetryAfter is how long a sender should wait before retrying; the API
// sends it as the Retry-After header.
func (e *FullError) RetryAfter() time.Duration { return 5 * time.Second }

// Spool is an open spool directory. Its methods are safe for concurrent
// use; segments are consumed by one reader at a time, in order (Oldest,
// Read, Done).
type Spool struct {
	dir  string
	opt  Options
	log  *slog.Logger
	lock *os.File

	// syncMu serializes fsyncs and rotations; it is taken before mu.
	syncMu sync.Mutex
	// synced is the logical offset (see written) known to be on disk;
	// failedTo and failErr record the last failed fsync: appends at or
	// below failedTo were not made durable and get failErr. Guarded by
	// syncMu.
	synced   int64
	failedTo int64
	failErr  error

	mu      sync.Mutex // mu guards the fields below.
	cur     *openSegment
	closed  []Segment // oldest first
	nextSeq uint64
	bytes   int64 // all segment files
	records int   // events in all segments
	// written counts bytes appended over the spool's life, across segments:
	// a logical offset that group commit compares with synced.
	written  int64
	isClosed bool
	// cache holds the batches of closed segments appended by this process,
	// cached the records in it and in the current segment's batches.
	cache  map[uint64][]*event.Batch
	cached int

	ready chan struct{}
	pool  sync.Pool
}

// openSegment is the newest segment, being appended to.
type openSegment struct {
	Segment
	f *os.File
	// batches are the segment's records as appended while it is cached
	// (see Options.CacheRecords); once over the limit, uncached is set and
	// it will be read from disk.
	batches  []*event.Batch
	uncached bool
}

// Open opens the spool in dir, creating the directory if needed, locks it
// against other processes, checks every segment (cutting off a torn tail,
// failing on corruption) and returns it with the existing segments ready to
// be read, oldest first. New records go to a new segment.
func Open(dir string, opt Options) (*Spool, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = DefaultSegmentBytes
	}
	if opt.SegmentRecords <= 0 {
		opt.SegmentRecords = DefaultSegmentRecords
	}
	if opt.CacheRecords == 0 {
		opt.CacheRecords = 4 * opt.SegmentRecords
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open spool lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("spool directory %s is in use by another process (give each correlator its own ingest.spool_dir)", dir)
		}
		return nil, fmt.Errorf("lock spool directory %s: %w", dir, err)
	}
	s := &Spool{dir: dir, opt: opt, log: opt.Logger.With("component", "spool"), lock: lock, nextSeq: 1,
		ready: make(chan struct{}, 1), cache: map[uint64][]*event.Batch{}}
	if err := s.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	if len(s.closed) > 0 {
		s.signal()
	}
	return s, nil
}

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

func (s *Spool) segmentPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, segmentSuffix))
}

// recover lists and checks the existing segments.
func (s *Spool) recover() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read spool directory: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segmentSuffix)
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			return fmt.Errorf("spool directory %s: unexpected file %s (not a segment name)", s.dir, e.Name())
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	changed := false
	for i, seq := range seqs {
		last := i == len(seqs)-1
		path := s.segmentPath(seq)
		seg, cut, err := scanSegment(path, seq, last)
		if err != nil {
			return err
		}
		if cut >= 0 {
			changed = true
			if seg.Records == 0 {
				s.log.Warn("removing a segment with no complete record, left by a crash while it was written", "segment", path, "bytes", seg.Bytes)
				if err := os.Remove(path); err != nil {
					return fmt.Errorf("remove empty segment: %w", err)
				}
				continue
			}
			s.log.Warn("cut a torn record off the end of the newest segment; it was never acknowledged", "segment", path, "offset", cut, "bytes_cut", seg.Bytes-cut)
			if err := truncateSync(path, cut); err != nil {
				return err
			}
			seg.Bytes = cut
		}
		s.closed = append(s.closed, seg)
		s.bytes += seg.Bytes
		s.records += seg.Records
	}
	if len(seqs) > 0 {
		s.nextSeq = seqs[len(seqs)-1] + 1
	}
	if changed {
		return syncDir(s.dir)
	}
	return nil
}

// scanSegment checks the segment at path. For the newest segment (last) a
// damaged end that nothing valid follows is a torn tail: cut is then the
// offset to truncate to (0 and Records 0 when not even the header is
// whole), else -1. Any other damage is an error naming file and offset.
func scanSegment(path string, seq uint64, last bool) (seg Segment, cut int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Segment{}, -1, fmt.Errorf("read spool segment: %w", err)
	}
	seg, cut, off, err := scanData(data, last)
	if err != nil {
		return Segment{}, -1, fmt.Errorf("spool segment %s: offset %d: %w (its records were acknowledged to their senders, so the spool does not skip them; to start without them, move the file out of %s)", path, off, err, filepath.Dir(path))
	}
	seg.Seq = seq
	return seg, cut, nil
}

var errBadHeader = errors.New("not a spool segment (bad header)")

// scanData is scanSegment on the file's bytes; on error off is where the
// damage is.
func scanData(data []byte, last bool) (seg Segment, cut, off int64, err error) {
	seg = Segment{Bytes: int64(len(data))}
	created, err := parseHeader(data)
	if err != nil {
		if last && (len(data) < headerSize || allZero(data[len(segmentMagic):])) {
			// A crash right after the file was created.
			return seg, 0, 0, nil
		}
		return Segment{}, -1, 0, err
	}
	seg.Created = created
	off = int64(headerSize)
	for off < int64(len(data)) {
		n, perr := parseRecord(data[off:])
		if perr == nil {
			seg.Records += n.records
			off += n.size
			continue
		}
		if last && n.reachesEnd {
			return seg, off, off, nil
		}
		return Segment{}, -1, off, perr
	}
	return seg, -1, off, nil
}

// parsed is what parseRecord found at the start of a buffer.
type parsed struct {
	size    int64 // frame and payload
	records int
	payload []byte
	// reachesEnd is set on damage that extends to the end of the buffer:
	// a partial frame, a length beyond the end, a bad checksum on the
	// buffer's last record, or nothing but zeros from here on.
	reachesEnd bool
}

func parseRecord(b []byte) (parsed, error) {
	if len(b) < frameSize {
		return parsed{reachesEnd: true}, fmt.Errorf("partial record frame (%d bytes)", len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if n == 0 || n > MaxRecordBytes {
		return parsed{reachesEnd: allZero(b) || int64(n) > int64(len(b)-frameSize)}, fmt.Errorf("impossible record length %d", n)
	}
	if int64(n) > int64(len(b)-frameSize) {
		return parsed{reachesEnd: true}, fmt.Errorf("record of %d bytes extends past the end of the file", n)
	}
	payload := b[frameSize : frameSize+int(n)]
	if crc32.Checksum(payload, castagnoli) != sum {
		return parsed{reachesEnd: frameSize+int(n) == len(b) || allZero(b[frameSize:])}, errors.New("record checksum mismatch")
	}
	recs, err := batchLen(payload)
	if err != nil {
		return parsed{}, err
	}
	return parsed{size: frameSize + int64(n), records: recs, payload: payload}, nil
}

func parseHeader(b []byte) (time.Time, error) {
	if len(b) < headerSize || string(b[:len(segmentMagic)]) != segmentMagic {
		return time.Time{}, errBadHeader
	}
	if v := binary.LittleEndian.Uint16(b[6:]); v != segmentVersion {
		return time.Time{}, fmt.Errorf("segment format version %d, this correlator reads version %d", v, segmentVersion)
	}
	return time.Unix(0, int64(binary.LittleEndian.Uint64(b[8:]))).UTC(), nil
}

func allZero(b []byte) bool {
	return len(bytes.Trim(b, "\x00")) == 0
}

// Append writes b to the newest segment and returns once it is on disk. It
// fails with a *FullError when the spool is at Options.MaxBytes, and with
// ErrClosed after Close. It never blocks for space; ctx is only checked
// before the write (an abandoned request adds nothing). b is not retained.
func (s *Spool) Append(ctx context.Context, b *event.Batch) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	bufp, _ := s.pool.Get().(*[]byte)
	if bufp == nil {
		bufp = new([]byte)
	}
	defer s.pool.Put(bufp)
	buf := appendBatch(append((*bufp)[:0], 0, 0, 0, 0, 0, 0, 0, 0), b)
	*bufp = buf
	payload := len(buf) - frameSize
	if payload > MaxRecordBytes {
		return fmt.Errorf("spool: batch of %d records encodes to %d bytes, over the record limit of %d", n, payload, MaxRecordBytes)
	}
	binary.LittleEndian.PutUint32(buf, uint32(payload))
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(buf[frameSize:], castagnoli))
	var mem *event.Batch
	if s.opt.CacheRecords > 0 {
		mem = new(event.Batch) // b is the caller's: copy its slices
		mem.Append(b)
	}

	s.mu.Lock()
	if s.isClosed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.bytes+int64(len(buf)) > s.opt.MaxBytes {
		err := &FullError{Bytes: s.bytes, Limit: s.opt.MaxBytes}
		s.mu.Unlock()
		return err
	}
	if s.cur == nil {
		if err := s.create(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	cur := s.cur
	if _, err := cur.f.Write(buf); err != nil {
		// Take back a partial write so that the next record starts at a
		// record boundary (the file is in append mode). If even that
		// fails, close the segment: its readers stop at cur.Bytes, the
		// last good offset, and nothing is appended after the damage.
		if terr := cur.f.Truncate(cur.Bytes); terr != nil {
			s.log.Error("cannot take back a failed write; closing the segment", "segment", s.segmentPath(cur.Seq), "err", terr)
			s.closeCurrent()
		}
		s.mu.Unlock()
		return fmt.Errorf("write spool segment: %w", err)
	}
	cur.Bytes += int64(len(buf))
	cur.Records += n
	switch {
	case cur.uncached || mem == nil:
	case s.cached+n <= s.opt.CacheRecords:
		cur.batches = append(cur.batches, mem)
		s.cached += n
	default:
		s.cached -= cur.Records - n
		cur.batches, cur.uncached = nil, true
	}
	s.bytes += int64(len(buf))
	s.records += n
	s.written += int64(len(buf))
	mine := s.written
	full := cur.Records >= s.opt.SegmentRecords || cur.Bytes >= s.opt.SegmentBytes
	s.mu.Unlock()

	if err := s.syncTo(mine); err != nil {
		return err
	}
	if full {
		return s.rotate(cur.Seq)
	}
	return nil
}

// create starts a new segment: the file with its header, fsynced, and its
// directory entry fsynced, before any record in it is acknowledged.
// s.mu is held.
func (s *Spool) create() error {
	seq := s.nextSeq
	path := s.segmentPath(seq)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create spool segment: %w", err)
	}
	now := time.Now()
	hdr := make([]byte, headerSize)
	copy(hdr, segmentMagic)
	binary.LittleEndian.PutUint16(hdr[6:], segmentVersion)
	binary.LittleEndian.PutUint64(hdr[8:], uint64(now.UnixNano()))
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write spool segment header: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("sync spool segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	s.nextSeq++
	s.cur = &openSegment{Segment: Segment{Seq: seq, Bytes: headerSize, Created: now.UTC()}, f: f}
	s.bytes += headerSize
	s.written += headerSize
	return nil
}

// syncTo returns once the logical offset mine is on disk. Whoever takes
// syncMu first fsyncs everything written so far, on behalf of all.
func (s *Spool) syncTo(mine int64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if mine <= s.failedTo {
		return s.failErr
	}
	if s.synced >= mine {
		return nil
	}
	// No rotation ran since this record was written (rotations fsync and
	// advance synced, under syncMu), so it is in the current segment.
	s.mu.Lock()
	target, cur := s.written, s.cur
	s.mu.Unlock()
	if cur == nil {
		return errors.New("spool: record lost its segment (broken invariant)")
	}
	if err := cur.f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty
		// pages and a retry can report success falsely, so every append
		// up to here fails, and the segment is closed: new records go to a
		// new file. The failed ones may still be replayed, which is
		// harmless (ids are deterministic) while their senders retry.
		s.failedTo, s.failErr = target, fmt.Errorf("sync spool segment: %w", err)
		s.mu.Lock()
		s.closeCurrent()
		s.mu.Unlock()
		return s.failErr
	}
	s.synced = target
	return nil
}

// Rotate closes the newest segment if it holds records, making it available
// to Oldest. The writer calls it every flush interval and before a flush.
func (s *Spool) Rotate() error {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur == nil {
		return nil
	}
	return s.rotate(cur.Seq)
}

// rotate closes segment seq if it is still the newest.
func (s *Spool) rotate(seq uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.Seq != seq || s.cur.Records == 0 {
		return nil
	}
	if err := s.cur.f.Sync(); err != nil {
		s.failedTo, s.failErr = s.written, fmt.Errorf("sync spool segment: %w", err)
		s.closeCurrent()
		return s.failErr
	}
	s.synced = s.written
	s.closeCurrent()
	return nil
}

// closeCurrent moves the newest segment to the closed ones. s.mu is held.
func (s *Spool) closeCurrent() {
	cur := s.cur
	if cur == nil {
		return
	}
	s.cur = nil
	if err := cur.f.Close(); err != nil {
		s.log.Error("close spool segment", "segment", s.segmentPath(cur.Seq), "err", err)
	}
	if cur.Records == 0 {
		// Only a header: nothing to hand out.
		os.Remove(s.segmentPath(cur.Seq))
		s.bytes -= cur.Bytes
		return
	}
	s.closed = append(s.closed, cur.Segment)
	if !cur.uncached && cur.batches != nil {
		s.cache[cur.Seq] = cur.batches
	}
	s.signal()
}

func (s *Spool) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ready receives a value when a segment was closed (also right after Open
// when segments are waiting): a hint to call Oldest.
func (s *Spool) Ready() <-chan struct{} { return s.ready }

// Oldest returns the oldest closed segment, false if there is none.
func (s *Spool) Oldest() (Segment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.closed) == 0 {
		return Segment{}, false
	}
	return s.closed[0], true
}

// Read returns the batches of a closed segment in the order they were
// appended. A damaged record (the disk changed under the spool since Open
// checked it) is an error naming the file and offset.
func (s *Spool) Read(seg Segment) ([]*event.Batch, error) {
	s.mu.Lock()
	cached, ok := s.cache[seg.Seq]
	s.mu.Unlock()
	if ok {
		return cached, nil
	}
	path := s.segmentPath(seg.Seq)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spool segment: %w", err)
	}
	if int64(len(data)) > seg.Bytes {
		data = data[:seg.Bytes] // after a failed write that could not be taken back
	}
	if _, err := parseHeader(data); err != nil {
		return nil, fmt.Errorf("spool segment %s: offset 0: %w", path, err)
	}
	var out []*event.Batch
	for off := int64(headerSize); off < int64(len(data)); {
		p, err := parseRecord(data[off:])
		if err == nil {
			var b *event.Batch
			b, err = decodeBatch(p.payload)
			out = append(out, b)
		}
		if err != nil {
			return nil, fmt.Errorf("spool segment %s: offset %d: %w", path, off, err)
		}
		off += p.size
	}
	return out, nil
}

// Done deletes seg, whose records are now in the store. Segments are done
// in order: seg must be the oldest.
func (s *Spool) Done(seg Segment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.closed) == 0 || s.closed[0].Seq != seg.Seq {
		return fmt.Errorf("spool: segment %d is not the oldest", seg.Seq)
	}
	// The removal need not be fsynced: if it is lost in a crash, the
	// segment is written again, and the store collapses the copies.
	if err := os.Remove(s.segmentPath(seg.Seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove spool segment: %w", err)
	}
	s.closed = s.closed[1:]
	if _, ok := s.cache[seg.Seq]; ok {
		delete(s.cache, seg.Seq)
		s.cached -= seg.Records
	}
	s.bytes -= seg.Bytes
	s.records -= seg.Records
	return nil
}

// Stats reports what the spool holds.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Bytes: s.bytes, Segments: len(s.closed), Records: s.records}
	if len(s.closed) > 0 {
		st.Oldest = s.closed[0].Created
	}
	if s.cur != nil && s.cur.Records > 0 {
		st.Segments++
		if st.Oldest.IsZero() {
			st.Oldest = s.cur.Created
		}
	}
	return st
}

// Close closes the newest segment (its records stay for the next Open),
// stops Append and releases the directory.
func (s *Spool) Close() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return nil
	}
	s.isClosed = true
	var err error
	if s.cur != nil {
		if err = s.cur.f.Sync(); err != nil {
			err = fmt.Errorf("sync spool segment: %w", err)
			s.failedTo, s.failErr = s.written, err
		} else {
			s.synced = s.written
		}
		s.closeCurrent()
	}
	if cerr := s.lock.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open spool segment: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate spool segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync spool segment: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open spool directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync spool directory: %w", err)
	}
	return nil
}
