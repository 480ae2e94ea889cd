package jsonlines

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeStore is a Writer that keeps every record it is given, as the store
// would, and can fail on demand: addFails makes Add fail (after keeping the
// batch when keepOnFail, like a crash after the write reached the store and
// before the offset was saved); flushFails makes Flush fail.
type fakeStore struct {
	mu         sync.Mutex
	delivered  []event.LogRecord // every delivery, replays included
	addFails   int
	keepOnFail bool
	flushFails int
	flushes    int
}

var errCrash = errors.New("simulated crash")

func (s *fakeStore) Add(_ context.Context, b *event.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addFails > 0 {
		s.addFails--
		if s.keepOnFail {
			s.delivered = append(s.delivered, b.Logs...)
		}
		return errCrash
	}
	s.delivered = append(s.delivered, b.Logs...)
	return nil
}

// flushingStore is a fakeStore that is also a Flusher.
type flushingStore struct{ *fakeStore }

func (s flushingStore) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes++
	if s.flushFails > 0 {
		s.flushFails--
		return errCrash
	}
	return nil
}

// unique returns the records by id, as the store deduplicates them, and
// fails the test when two deliveries of one id differ.
func (s *fakeStore) unique(t *testing.T) map[string]event.LogRecord {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]event.LogRecord{}
	for _, r := range s.delivered {
		if prev, ok := out[r.ID]; ok && !reflect.DeepEqual(prev, r) {
			t.Errorf("id %s delivered with different content:\n%+v\n%+v", r.ID, prev, r)
		}
		out[r.ID] = r
	}
	return out
}

func (s *fakeStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.delivered)
}

// clock is a settable clock for rotation waits.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTailer(t *testing.T, cfg Config, w Writer, c *clock) (*Tailer, *[]LineError) {
	t.Helper()
	tl, err := New(cfg, w, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tl.now = c.now
	var rejects []LineError
	tl.onReject = func(e LineError) { rejects = append(rejects, e) }
	if err := tl.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tl.close)
	return tl, &rejects
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

var lineT0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// lines renders the log lines numbered from..to.
func lines(from, to int) string {
	var b strings.Builder
	for n := from; n <= to; n++ {
		fmt.Fprintf(&b, `{"time":%q,"level":"info","msg":"line %d","service":"api"}`+"\n", lineT0.Add(time.Duration(n)*time.Second).Format(time.RFC3339), n)
	}
	return b.String()
}

// checkExactlyOnce asserts that lines 1..n arrived, each exactly once
// after deduplication by id, and nothing else.
func checkExactlyOnce(t *testing.T, s *fakeStore, n int) {
	t.Helper()
	got := map[string]int{}
	for _, r := range s.unique(t) {
		got[r.Body]++
		var n int
		if _, err := fmt.Sscanf(r.Body, "line %d", &n); err == nil {
			if want := lineT0.Add(time.Duration(n) * time.Second); !r.Time.Equal(want) || r.Service != "api" || r.Severity != "INFO" {
				t.Errorf("%s: time %v, service %q, severity %q; want %v, api, INFO", r.Body, r.Time, r.Service, r.Severity, want)
			}
		}
	}
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	var missing, extra []string
	for _, w := range want {
		if got[w] != 1 {
			missing = append(missing, fmt.Sprintf("%s (x%d)", w, got[w]))
		}
		delete(got, w)
	}
	for b := range got {
		extra = append(extra, b)
	}
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("after %d lines: wrong or missing %v; unexpected %v", n, missing, extra)
	}
}

func testConfig(dir string) Config {
	return Config{Paths: []string{filepath.Join(dir, "*.log")}, StateDir: filepath.Join(dir, "state"), RotateWait: 5 * time.Second}
}

// TestRotationTruncationRestart is the tailer's life in one story: lines
// appended, a line written in two parts, a rename rotation while the writer
// still writes to the old file, copytruncate twice (shorter and longer than
// the old offset), restarts mid-file, and a crash between the write and
// the saved offset. After every step exactly the lines written so far have
// arrived, each once.
func TestRotationTruncationRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	cfg := testConfig(dir)
	c := &clock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)}
	store := &fakeStore{}
	tl, _ := newTailer(t, cfg, store, c)
	ctx := context.Background()
	step := func(name string, n int) {
		t.Helper()
		tl.poll(ctx)
		c.t = c.t.Add(time.Second)
		if t.Failed() {
			t.FailNow()
		}
		checkExactlyOnce(t, store, n)
		t.Logf("%s: %d lines, %d deliveries", name, n, store.count())
	}

	appendFile(t, path, lines(1, 5))
	step("appended", 5)

	appendFile(t, path, lines(6, 7)+`{"time":"2026-11-02T10:00:08Z","level":"info",`)
	step("a line half written waits", 7)

	// Rename rotation: the writer finishes line 8 and writes line 9 to the
	// old file through its handle after the rename; the new file starts.
	old, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines(10, 11))
	if _, err := old.WriteString(`"msg":"line 8","service":"api"}` + "\n" + lines(9, 9)); err != nil {
		t.Fatal(err)
	}
	step("rotated by rename", 11)
	// A late line to the old file, within rotate_wait, is still read.
	if _, err := old.WriteString(lines(12, 12)); err != nil {
		t.Fatal(err)
	}
	old.Close()
	step("late write to the rotated file", 12)
	c.t = c.t.Add(cfg.RotateWait)
	appendFile(t, path, lines(13, 14))
	step("rotated file closed", 14)
	if len(tl.draining) != 0 {
		t.Errorf("%d rotated files still open after rotate_wait", len(tl.draining))
	}

	// copytruncate, new content shorter than the old offset.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines(15, 15))
	step("copytruncate, shorter", 15)

	// copytruncate, new content longer than the old offset before the
	// tailer looks: only the changed first line tells.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines(16, 30))
	step("copytruncate, regrown", 30)

	// Restart mid-file: a new tailer on the same state directory.
	tl.close()
	appendFile(t, path, lines(31, 40))
	tl, _ = newTailer(t, cfg, store, c)
	step("restarted", 40)

	// A crash after the batch reached the store and before the offset was
	// saved: the restarted tailer replays the lines with the same ids.
	appendFile(t, path, lines(41, 50))
	store.addFails, store.keepOnFail = 1, true
	before := store.count()
	tl.poll(ctx)
	tl.close() // the crash
	tl, _ = newTailer(t, cfg, store, c)
	step("replayed after a crash", 50)
	if replayed := store.count() - before; replayed != 20 {
		t.Errorf("%d deliveries for 10 new lines, want 20 (10 replayed)", replayed)
	}

	// A rotation, then a crash before rotate_wait: the next run finds the
	// rotated file by its inode and reads the rest of it.
	appendFile(t, path, lines(51, 52))
	step("before the second rotation", 52)
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines(55, 56))
	tl.poll(ctx)
	appendFile(t, path+".2", lines(53, 54))
	tl.close() // the crash
	tl, _ = newTailer(t, cfg, store, c)
	step("rotated file taken up after a restart", 56)
	c.t = c.t.Add(cfg.RotateWait)
	step("and closed", 56)
	if len(tl.draining) != 0 {
		t.Errorf("%d rotated files still open", len(tl.draining))
	}
	if tmp, _ := filepath.Glob(filepath.Join(cfg.StateDir, ".state-*")); len(tmp) != 0 {
		t.Errorf("temporary state files left behind: %q", tmp)
	}
	// One state per live path, one per rotated file (two rotations).
	if st, _ := filepath.Glob(filepath.Join(cfg.StateDir, "*.json")); len(st) != 3 {
		t.Errorf("state files %q, want 3", st)
	}
}

// TestFlushBeforeSave checks the order with a flushing writer (the real
// BatchWriter): no offset is saved before a flush succeeded, so a failed
// flush followed by a crash replays the lines.
func TestFlushBeforeSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	cfg := testConfig(dir)
	c := &clock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)}
	store := &fakeStore{}
	w := flushingStore{store}
	tl, _ := newTailer(t, cfg, w, c)
	ctx := context.Background()

	appendFile(t, path, lines(1, 3))
	tl.poll(ctx)
	if w.flushes != 1 {
		t.Fatalf("%d flushes, want 1 before the offset is saved", w.flushes)
	}
	st := tl.states.byPath[path]
	if fi, _ := os.Stat(path); st.Offset != fi.Size() || st.Line != 3 {
		t.Fatalf("saved state %+v, want the whole file (%d bytes, 3 lines)", st, fi.Size())
	}

	appendFile(t, path, lines(4, 6))
	store.flushFails = 1
	tl.poll(ctx)
	if got := tl.states.byPath[path].Offset; got != st.Offset {
		t.Fatalf("offset saved (%d) although the flush failed", got)
	}
	tl.close() // a crash: the records of lines 4-6 may be lost in the writer
	tl, _ = newTailer(t, cfg, w, c)
	tl.poll(ctx)
	checkExactlyOnce(t, store, 6)
	if store.count() != 9 {
		t.Errorf("%d deliveries, want 9 (lines 4-6 twice)", store.count())
	}
}

func TestWriterRefusalRetried(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	c := &clock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)}
	store := &fakeStore{addFails: 2}
	tl, _ := newTailer(t, testConfig(dir), store, c)
	appendFile(t, path, lines(1, 4))
	tl.poll(context.Background())
	tl.poll(context.Background())
	if store.count() != 0 {
		t.Fatalf("records delivered while the writer refused")
	}
	if got := testutil.ToFloat64(tl.m.errors.WithLabelValues("write")); got != 2 {
		t.Errorf("errors{reason=write} = %v, want 2", got)
	}
	tl.poll(context.Background())
	checkExactlyOnce(t, store, 4)
}

func TestStartAtEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, lines(1, 3)+`{"time":"2026-11-02T10:00:04Z","msg":"line`)
	cfg := testConfig(dir)
	cfg.StartAt = "end"
	c := &clock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)}
	store := &fakeStore{}
	tl, _ := newTailer(t, cfg, store, c)
	tl.poll(context.Background())
	appendFile(t, path, ` 4","service":"api"}`+"\n")
	// A file that appears later is read from its start.
	appendFile(t, filepath.Join(dir, "new.log"), strings.ReplaceAll(lines(5, 5), "api", "web"))
	tl.poll(context.Background())
	var bodies []string
	for _, r := range store.unique(t) {
		bodies = append(bodies, r.Service+": "+r.Body)
	}
	slices.Sort(bodies)
	if want := []string{"api: line 4", "web: line 5"}; !slices.Equal(bodies, want) {
		t.Errorf("read %q, want %q (the existing lines skipped, the half-written one completed)", bodies, want)
	}
}

// formatCase maps one recorded log format.
var formatCases = []struct {
	file   string
	fields Fields
	maxLen int
}{
	{"slog.ndjson", Fields{}, 0},
	{"zap.ndjson", Fields{Time: "ts", FixedService: "fetcher"}, 0},
	{"pino.ndjson", Fields{FixedService: "web"}, 0},
	{"bunyan.ndjson", Fields{Service: "name"}, 0},
	{"bad_lines.ndjson", Fields{}, 512},
}

// formatGolden is what a file gave: the records (ids and the temporary
// path left out) and the rejections.
type formatGolden struct {
	Records  []event.LogRecord `json:"records"`
	Rejected []LineError       `json:"rejected"`
}

func TestFormats(t *testing.T) {
	for _, tc := range formatCases {
		t.Run(tc.file, func(t *testing.T) {
			dir := t.TempDir()
			src, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "app.log")
			appendFile(t, path, string(src))
			cfg := testConfig(dir)
			cfg.Fields, cfg.MaxLineBytes = tc.fields, tc.maxLen
			store := &fakeStore{}
			c := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
			tl, rejects := newTailer(t, cfg, store, c)
			tl.poll(context.Background())

			var g formatGolden
			ids := map[string]bool{}
			for _, r := range store.delivered {
				if len(r.ID) != 32 || ids[r.ID] {
					t.Errorf("id %q: not 32 hex digits or repeated", r.ID)
				}
				ids[r.ID] = true
				if r.Attributes["log.file.path"] != path {
					t.Errorf("log.file.path = %q", r.Attributes["log.file.path"])
				}
				r.ID = ""
				delete(r.Attributes, "log.file.path")
				g.Records = append(g.Records, r)
			}
			for _, e := range *rejects {
				e.Path = "app.log"
				g.Rejected = append(g.Rejected, e)
			}
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", tc.file+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s:\n%s", tc.file, golden, got)
			}
			// Every line is accounted for: records, rejections, blank lines.
			n := int64(bytes.Count(src, []byte("\n")))
			if st := tl.states.byPath[path]; st.Line != n || st.Offset != int64(len(src)) {
				t.Errorf("state %+v, want line %d, offset %d", st, n, len(src))
			}
		})
	}
}

func TestBadLinesCountedByReason(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/bad_lines.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(dir, "app.log"), string(src))
	cfg := testConfig(dir)
	cfg.MaxLineBytes = 512
	store := &fakeStore{}
	tl, _ := newTailer(t, cfg, store, &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
	tl.poll(context.Background())
	for reason, want := range map[string]float64{"json": 3, "time": 3, "service": 1, "too_long": 1, "user": 1} {
		if got := testutil.ToFloat64(tl.m.rejected.WithLabelValues(reason)); got != want {
			t.Errorf("rejected{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := testutil.ToFloat64(tl.m.accepted); got != 4 {
		t.Errorf("accepted = %v, want 4", got)
	}
	if got := testutil.ToFloat64(tl.lag); got != 0 {
		t.Errorf("lag = %v bytes after reading everything", got)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Paths: []string{"/var/log/*.log"}, StateDir: "/var/lib/correlator/jsonlines"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Paths = nil }, "paths"},
		{func(c *Config) { c.Paths = []string{"[x"} }, "paths[0]: invalid glob"},
		{func(c *Config) { c.StateDir = "" }, "state_dir"},
		{func(c *Config) { c.PollInterval = 5 }, "poll_interval"},
		{func(c *Config) { c.StartAt = "middle" }, "start_at"},
		{func(c *Config) { c.Fields.TimeFormat = "epoch" }, "fields.time_format"},
		{func(c *Config) { c.Fields.Time = "-" }, "fields.time"},
		{func(c *Config) { c.Fields.Service = "-" }, "fixed_service"},
	} {
		c := ok
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want an error naming %s", err, tc.want)
		}
		if _, err := New(c, &fakeStore{}, nil, nil); err == nil {
			t.Errorf("New accepted an invalid config (%s)", tc.want)
		}
	}
}

func TestRunStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	appendFile(t, filepath.Join(dir, "app.log"), lines(1, 2))
	cfg := testConfig(dir)
	cfg.PollInterval = 10 * time.Millisecond
	store := &fakeStore{}
	tl, err := New(cfg, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for store.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	checkExactlyOnce(t, store, 2)
}

// TestOneFlushPerPoll: many files with new lines cost the store one
// flush (one insert) per poll, not one per file.
func TestOneFlushPerPoll(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 5; i++ {
		appendFile(t, filepath.Join(dir, fmt.Sprintf("app%d.log", i)), lines(1, 2))
	}
	store := &fakeStore{}
	w := flushingStore{store}
	tl, _ := newTailer(t, testConfig(dir), w, &clock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)})
	tl.poll(context.Background())
	if store.count() != 10 || w.flushes != 1 {
		t.Errorf("%d records with %d flushes; want 10 with 1", store.count(), w.flushes)
	}
	if n := len(tl.states.byPath); n != 5 {
		t.Errorf("%d states saved, want 5", n)
	}
	tl.poll(context.Background())
	if w.flushes != 1 {
		t.Errorf("a poll with nothing new flushed (%d flushes)", w.flushes)
	}
}
