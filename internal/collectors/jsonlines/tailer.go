package jsonlines

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/prometheus/client_golang/prometheus"
)

// Writer receives the records; *store.BatchWriter implements it. Add owns
// the batch it is given. An error means the records were not taken: the
// tailer reads them again at the next poll.
type Writer interface {
	Add(ctx context.Context, b *event.Batch) error
}

// Flusher is implemented by writers that buffer (*store.BatchWriter): Flush
// returns once everything Add took is stored. When the Writer is a Flusher,
// the tailer flushes before it saves an offset.
type Flusher interface {
	Flush(ctx context.Context) error
}

// collectorName is the value of the collector label of the metrics.
const collectorName = "jsonlines"

// Tailer follows the files of a Config. Run drives it; it is not safe for
// concurrent use, and one StateDir must belong to one Tailer.
type Tailer struct {
	cfg     Config
	w       Writer
	flusher Flusher // w, when it can flush; else nil
	log     *slog.Logger
	m       *metrics
	lag     prometheus.Gauge
	now     func() time.Time

	// Everything below belongs to the goroutine running Run.
	states   *stateStore
	live     map[string]*tailFile // by configured path
	draining []*tailFile          // rotated away, still read for RotateWait
	started  bool                 // the first poll ran: start_at no longer applies
	lastGC   time.Time
	pending  []*tailFile // handed lines over in this poll; saved at its end
	bad      int         // rejected lines logged in this poll, to bound the noise
	buf      []byte
	onReject func(LineError) // tests observe rejections through it
}

// tailFile is one open file being read.
type tailFile struct {
	path string // the path it was opened at
	f    *os.File
	id   identity // FP is empty until the first line is complete
	// offset is the start of the first line not yet handed to the writer,
	// line the number of lines before it.
	offset, line int64
	saved        int64 // offset in the saved state; -1 when none
	savedLine    int64 // line in the saved state
	unsaved      bool  // records were handed over past the saved state
	size         int64 // size at the last read, for the lag
	rotatedAt    time.Time
}

// New validates cfg and returns a tailer writing to w. A nil reg registers
// no metrics; a nil log discards.
func New(cfg Config, w Writer, log *slog.Logger, reg prometheus.Registerer) (*Tailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("jsonlines: nil writer")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg, collectorName)
	if err != nil {
		return nil, fmt.Errorf("jsonlines: register metrics: %w", err)
	}
	lag, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "correlator_collector_lag_bytes",
		Help: "Bytes a file-reading collector has yet to read, over the files it follows.",
	}, []string{"collector"}))
	if err != nil {
		return nil, fmt.Errorf("jsonlines: register metrics: %w", err)
	}
	t := &Tailer{
		cfg: cfg.withDefaults(), w: w, log: log.With("collector", collectorName), m: m,
		lag: lag.WithLabelValues(collectorName), now: time.Now, live: map[string]*tailFile{},
	}
	t.flusher, _ = w.(Flusher)
	return t, nil
}

// Run tails until ctx ends, then closes its files and returns nil. It
// returns an error only when it cannot start (the state directory is
// unusable); trouble with single files is logged, counted and retried.
func (t *Tailer) Run(ctx context.Context) error {
	if err := t.start(); err != nil {
		return err
	}
	defer t.close()
	tick := time.NewTicker(t.cfg.PollInterval)
	defer tick.Stop()
	for {
		t.poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// start loads the saved states and takes up rotated files left unfinished
// by the previous run.
func (t *Tailer) start() error {
	ss, err := newStateStore(t.cfg.StateDir)
	if err != nil {
		return fmt.Errorf("jsonlines: %w", err)
	}
	t.states = ss
	for _, err := range ss.load() {
		t.m.errors.WithLabelValues("state").Inc()
		t.log.Warn("state file skipped; its file will be read from the start", "err", err)
	}
	t.recoverRotated()
	return nil
}

func (t *Tailer) close() {
	for _, tf := range t.live {
		tf.f.Close()
	}
	for _, tf := range t.draining {
		tf.f.Close()
	}
	t.live, t.draining = map[string]*tailFile{}, nil
}

// poll does one round: notices rotations, finishes rotated files, opens
// new ones and reads every file to its current end.
func (t *Tailer) poll(ctx context.Context) {
	now := t.now()
	t.bad = 0
	failed := false

	for _, p := range sortedKeys(t.live) {
		tf := t.live[p]
		if fi, err := os.Stat(p); err == nil {
			if dev, ino := deviceInode(fi); dev == tf.id.Dev && ino == tf.id.Ino {
				continue
			}
		}
		// The path names another file now, or none: read this one on
		// through its handle for a while.
		delete(t.live, p)
		tf.rotatedAt = now
		t.draining = append(t.draining, tf)
		t.log.Info("file rotated; reading the old file to its end", "path", p, "offset", tf.offset)
		// From now on its state is kept per file, apart from the path's,
		// which the new file takes over: record it now, at an offset
		// the store already has.
		switch {
		case tf.id.FP == "":
		case tf.unsaved && t.checkpoint(ctx, []*tailFile{tf}):
		case !tf.unsaved:
			t.save(tf, tf.offset, tf.line, false)
		case tf.saved >= 0:
			t.save(tf, tf.saved, tf.savedLine, false)
		}
	}

	keep := t.draining[:0]
	var finished []*tailFile
	for _, tf := range t.draining {
		final := now.Sub(tf.rotatedAt) >= t.cfg.RotateWait
		if err := t.read(ctx, tf, final); err != nil {
			failed = true
			keep = append(keep, tf)
			continue
		}
		if final {
			finished = append(finished, tf)
		}
		keep = append(keep, tf)
	}
	t.draining = keep

	for _, p := range t.expand() {
		if _, ok := t.live[p]; !ok {
			t.openPath(p)
		}
	}
	t.started = true
	var lag int64
	for _, p := range sortedKeys(t.live) {
		if ctx.Err() != nil {
			return
		}
		if err := t.read(ctx, t.live[p], false); err != nil {
			failed = true
		}
	}
	// One flush for every file read in this poll, then their offsets.
	if !t.checkpoint(ctx, t.pending) {
		failed = true
	} else {
		for _, tf := range finished {
			if tf.id.FP != "" {
				t.save(tf, tf.offset, tf.line, true)
			}
			tf.f.Close()
			t.draining = slices.DeleteFunc(t.draining, func(x *tailFile) bool { return x == tf })
			t.log.Info("rotated file finished", "path", tf.path, "lines", tf.line)
		}
	}
	t.pending = t.pending[:0]
	for _, tf := range t.live {
		lag += max(0, tf.size-tf.offset)
	}
	for _, tf := range t.draining {
		lag += max(0, tf.size-tf.offset)
	}
	t.lag.Set(float64(lag))
	if !failed {
		t.m.lastSuccess.SetToCurrentTime()
	}
	if now.Sub(t.lastGC) >= time.Hour {
		t.lastGC = now
		t.states.gc(now, t.cfg.StateRetention, t.held)
	}
}

// expand returns the regular files the globs match, sorted, without
// duplicates.
func (t *Tailer) expand() []string {
	var out []string
	for _, g := range t.cfg.Paths {
		m, err := filepath.Glob(g)
		if err != nil {
			continue // Validate checked the pattern
		}
		out = append(out, m...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// openPath starts following the file at p, from its saved offset if it
// has one.
func (t *Tailer) openPath(p string) {
	f, err := os.Open(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.m.errors.WithLabelValues("open").Inc()
			t.log.Warn("cannot open log file", "path", p, "err", err)
		}
		return
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return
	}
	dev, ino := deviceInode(fi)
	tf := &tailFile{path: p, f: f, id: identity{Dev: dev, Ino: ino}, saved: -1}
	if fp, ok := fingerprint(f, false); ok {
		tf.id.FP = fp
		if t.held(state{identity: tf.id}) {
			// A rotated file we are still reading, matched by a glob
			// under its new name: one reader is enough.
			f.Close()
			return
		}
		if s, ok := t.states.byID[tf.id]; ok {
			tf.offset, tf.line, tf.saved, tf.savedLine = s.Offset, s.Line, s.Offset, s.Line
			t.log.Debug("resuming file", "path", p, "offset", s.Offset, "line", s.Line)
		} else if !t.started && t.cfg.StartAt == "end" {
			tf.offset = lastLineEnd(f, fi.Size())
			t.log.Info("tailing from the end", "path", p, "offset", tf.offset)
		}
	}
	t.live[p] = tf
}

// held reports whether a file of s's identity is open, or s's path is
// followed.
func (t *Tailer) held(s state) bool {
	if tf, ok := t.live[s.Path]; ok && tf.id == s.identity {
		return true
	}
	for _, tf := range t.live {
		if tf.id == s.identity {
			return true
		}
	}
	for _, tf := range t.draining {
		if tf.id == s.identity {
			return true
		}
	}
	return false
}

// recoverRotated finds files that were rotated away from their path before
// the last run read them to the end, by device and inode in the directory
// of that path, and reads them to the end.
func (t *Tailer) recoverRotated() {
	now := t.now()
	for _, s := range t.states.byID {
		if s.Done || s.Ino == 0 {
			continue
		}
		if fi, err := os.Stat(s.Path); err == nil {
			if dev, ino := deviceInode(fi); dev == s.Dev && ino == s.Ino {
				continue // still at its path: it is resumed as any file
			}
		}
		tf := t.findFile(s)
		if tf == nil {
			t.log.Warn("a rotated file was gone before it was read to the end", "path", s.Path, "offset", s.Offset)
			s.Rotated, s.Done, s.Updated = true, true, now
			if err := t.states.save(s); err != nil {
				t.log.Warn("cannot save state", "path", s.Path, "err", err)
			}
			continue
		}
		tf.offset, tf.line, tf.saved, tf.savedLine, tf.rotatedAt = s.Offset, s.Line, s.Offset, s.Line, now
		t.draining = append(t.draining, tf)
		t.log.Info("resuming a rotated file", "path", s.Path, "now_at", tf.f.Name(), "offset", s.Offset)
	}
}

func (t *Tailer) findFile(s state) *tailFile {
	dir := filepath.Dir(s.Path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if dev, ino := deviceInode(fi); dev != s.Dev || ino != s.Ino {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil
		}
		if fp, ok := fingerprint(f, true); ok && fp == s.FP {
			return &tailFile{path: s.Path, f: f, id: s.identity}
		}
		f.Close()
	}
	return nil
}

// read hands the complete lines of tf past its offset to the writer.
// final also takes a last line without its newline: the file is rotated
// and done. It returns an error when the file cannot be read or the writer
// refused; what was committed before stays committed.
func (t *Tailer) read(ctx context.Context, tf *tailFile, final bool) error {
	fi, err := tf.f.Stat()
	if err != nil {
		t.m.errors.WithLabelValues("read").Inc()
		return fmt.Errorf("stat %s: %w", tf.path, err)
	}
	size := fi.Size()
	tf.size = size
	fp, ok := fingerprint(tf.f, final)
	switch {
	case size < tf.offset:
		t.log.Warn("file truncated; reading it again from the start", "path", tf.path, "size", size, "offset", tf.offset)
		tf.restart(fp, ok)
	case tf.id.FP != "" && (!ok || fp != tf.id.FP):
		t.log.Warn("file rewritten (its first line changed); reading it again from the start", "path", tf.path)
		tf.restart(fp, ok)
	case tf.id.FP == "" && ok:
		tf.id.FP = fp
	}
	if tf.id.FP == "" || tf.offset >= size {
		return t.commit(ctx, tf, nil, tf.offset, tf.line, false)
	}

	if t.buf == nil {
		t.buf = make([]byte, 0, 64<<10)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(tf.f, tf.offset, size-tf.offset), 64<<10)
	p := parser{f: t.cfg.Fields, now: t.now()}
	var batch []event.LogRecord
	pos, lineStart, line := tf.offset, tf.offset, tf.line
	cur := t.buf[:0]
	overlong := false
	for {
		chunk, err := br.ReadSlice('\n')
		pos += int64(len(chunk))
		if !overlong {
			// The limit is on the line; its line ending may come on top.
			if len(cur)+len(chunk) > t.cfg.MaxLineBytes+2 {
				overlong, cur = true, cur[:0]
			} else {
				cur = append(cur, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			t.m.errors.WithLabelValues("read").Inc()
			t.log.Warn("cannot read log file", "path", tf.path, "err", err)
			return errors.Join(fmt.Errorf("read %s: %w", tf.path, err), t.commit(ctx, tf, batch, lineStart, line, false))
		}
		eof := err == io.EOF
		if eof && (pos == lineStart || !final) {
			break // a line still being written waits for its newline
		}
		line++
		if overlong {
			t.reject(LineError{Path: tf.path, Line: line, Message: fmt.Sprintf("line longer than %d bytes", t.cfg.MaxLineBytes), Reason: "too_long"})
		} else if rec, ok := t.parseLine(&p, tf, cur, lineStart, line); ok {
			batch = append(batch, rec)
		}
		lineStart, cur, overlong = pos, cur[:0], false
		if len(batch) >= t.cfg.BatchSize {
			// A long backlog is saved as it goes, so a crash replays at
			// most one batch of it.
			if err := t.commit(ctx, tf, batch, lineStart, line, true); err != nil {
				return err
			}
			batch = nil
		}
		if eof {
			break
		}
	}
	t.buf = cur[:0]
	return t.commit(ctx, tf, batch, lineStart, line, false)
}

// parseLine decodes one line; blank lines are skipped, bad ones rejected.
func (t *Tailer) parseLine(p *parser, tf *tailFile, raw []byte, offset, line int64) (event.LogRecord, bool) {
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if offset == 0 {
		raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return event.LogRecord{}, false
	}
	rec, ferr := p.parse(raw)
	if ferr != nil {
		t.reject(LineError{Path: tf.path, Line: line, Field: ferr.field, Message: ferr.msg, Reason: ferr.reason})
		return rec, false
	}
	rec.ID = recordID(tf.id, offset)
	rec.Attributes["log.file.path"] = tf.path
	return rec, true
}

// maxBadLogged bounds the rejected lines logged per poll; all are counted.
const maxBadLogged = 20

func (t *Tailer) reject(e LineError) {
	t.m.rejected.WithLabelValues(e.Reason).Inc()
	if t.onReject != nil {
		t.onReject(e)
	}
	t.bad++
	switch {
	case t.bad <= maxBadLogged:
		t.log.Warn("log line rejected", "path", e.Path, "line", e.Line, "field", e.Field, "err", e.Message)
	case t.bad == maxBadLogged+1:
		t.log.Warn("more log lines rejected in this poll; counted in correlator_collector_events_rejected_total, not logged")
	}
}

// commit hands batch to the writer and moves tf to offset and line. The
// new offset is saved by checkpoint: at once when now, else at the end of
// the poll, together with the other files read.
func (t *Tailer) commit(ctx context.Context, tf *tailFile, batch []event.LogRecord, offset, line int64, now bool) error {
	if len(batch) > 0 {
		if err := t.w.Add(ctx, &event.Batch{Logs: batch}); err != nil {
			t.m.errors.WithLabelValues("write").Inc()
			t.log.Warn("cannot hand log lines to the writer; retrying at the next poll", "path", tf.path, "lines", len(batch), "err", err)
			return fmt.Errorf("write %d lines of %s: %w", len(batch), tf.path, err)
		}
		t.m.accepted.Add(float64(len(batch)))
		tf.unsaved = true
	}
	tf.offset, tf.line = offset, line
	if now {
		t.checkpoint(ctx, []*tailFile{tf})
	} else if !slices.Contains(t.pending, tf) {
		t.pending = append(t.pending, tf)
	}
	return nil
}

// checkpoint saves the offsets of tfs that moved, after one flush of the
// writer when records were handed over: a saved offset never runs ahead
// of the store. A failed flush leaves the states behind, to be saved after
// a later flush; a crash before then replays the lines, whose records keep
// their ids. It reports whether everything was saved.
func (t *Tailer) checkpoint(ctx context.Context, tfs []*tailFile) bool {
	var due []*tailFile
	flush := false
	for _, tf := range tfs {
		if tf.id.FP != "" && (tf.unsaved || tf.saved != tf.offset) {
			due = append(due, tf)
			flush = flush || tf.unsaved
		}
	}
	if len(due) == 0 {
		return true
	}
	if flush && t.flusher != nil {
		if err := t.flusher.Flush(ctx); err != nil {
			t.m.errors.WithLabelValues("flush").Inc()
			t.log.Warn("writer flush failed; offsets not saved yet", "files", len(due), "err", err)
			return false
		}
	}
	ok := true
	for _, tf := range due {
		if t.save(tf, tf.offset, tf.line, false) {
			tf.unsaved, tf.saved, tf.savedLine = false, tf.offset, tf.line
		} else {
			ok = false
		}
	}
	return ok
}

// save writes tf's state at offset and line; done marks a rotated file
// read to its end.
func (t *Tailer) save(tf *tailFile, offset, line int64, done bool) bool {
	s := state{Path: tf.path, identity: tf.id, Offset: offset, Line: line,
		Rotated: !tf.rotatedAt.IsZero(), Done: done, Updated: t.now()}
	if err := t.states.save(s); err != nil {
		t.m.errors.WithLabelValues("state").Inc()
		t.log.Warn("cannot save state", "path", tf.path, "err", err)
		return false
	}
	return true
}

// restart sends tf back to the start of its file, which is now another
// file (with first line fp when ok).
func (tf *tailFile) restart(fp string, ok bool) {
	tf.id.FP = ""
	if ok {
		tf.id.FP = fp
	}
	tf.offset, tf.line, tf.saved, tf.savedLine, tf.unsaved = 0, 0, -1, 0, false
}

// fingerprintBytes is how much of the first line identifies a file.
const fingerprintBytes = 1024

// fingerprint hashes the file's first line (at most fingerprintBytes of
// it). It reports false while there is no complete first line, unless
// final, when any content counts.
func fingerprint(f *os.File, final bool) (string, bool) {
	buf := make([]byte, fingerprintBytes)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return "", false
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
	} else if n < fingerprintBytes && !(final && n > 0) {
		return "", false
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:8]), true
}

// lastLineEnd is the offset just past the last newline before size: where
// reading starts for start_at "end", so that a line being written is not
// cut in two.
func lastLineEnd(f *os.File, size int64) int64 {
	const step = 64 << 10
	buf := make([]byte, step)
	for end := size; end > 0; {
		start := max(0, end-step)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && err != io.EOF {
			return size
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1
		}
		end = start
	}
	return 0
}

// idVersion tags the id encoding; changing it changes every id.
const idVersion = "correlator.jsonlines.id.v1"

// recordID derives a line's id from its file's identity and its byte
// offset: the same line read twice (a replay after a crash, a restart) has
// the same id, and no two lines share one.
func recordID(id identity, offset int64) string {
	b := make([]byte, 0, 64)
	b = append(b, idVersion...)
	b = binary.BigEndian.AppendUint64(b, id.Dev)
	b = binary.BigEndian.AppendUint64(b, id.Ino)
	b = binary.AppendUvarint(b, uint64(len(id.FP)))
	b = append(b, id.FP...)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func sortedKeys(m map[string]*tailFile) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
