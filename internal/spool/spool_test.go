package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

var update = flag.Bool("update", false, "rewrite testdata/segment-v1.seg and its JSON from the current code")

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// sampleBatch has n records of every kind, every field set, distinct by
// from+i.
func sampleBatch(from, n int) *event.Batch {
	b := &event.Batch{}
	for i := from; i < from+n; i++ {
		at := t0.Add(time.Duration(i)*time.Second + 123456789)
		attrs := map[string]string{"k8s.pod": fmt.Sprintf("pod-%d", i), "ünïcode": "✓ \x00 nul"}
		b.Changes = append(b.Changes, event.Change{ID: fmt.Sprintf("chg-%d", i), Time: at, Kind: event.ChangeDeploy, Service: "api",
			Environment: "prod", Version: "v2", PreviousVersion: "v1", Commit: "abc", Author: "ann", Title: "Merge #1",
			URL: "https://example.com/1", Source: "github", Attributes: attrs})
		b.Errors = append(b.Errors, event.ErrorEvent{ID: fmt.Sprintf("err-%d", i), Time: at, Service: "api", Environment: "prod",
			Release: "v2", Fingerprint: "fp", Type: "TypeError", Message: strings.Repeat("m", i%300), UserID: "u", CustomerID: "c",
			TraceID: "t", Level: "error", SampleRate: 0.25, Attributes: attrs})
		b.Logs = append(b.Logs, event.LogRecord{ID: fmt.Sprintf("log-%d", i), Time: at, Service: "api", Severity: "WARN",
			Body: "line", UserID: "u", CustomerID: "c", TraceID: "t", SpanID: "s", Attributes: attrs})
		b.Metrics = append(b.Metrics, event.MetricPoint{Time: at, Service: "api", Name: "requests", Value: float64(i) - 0.5,
			Labels: map[string]string{"version": "v2"}})
		b.Services = append(b.Services, event.Service{Service: fmt.Sprintf("svc-%d", i), DependsOn: []string{"db", "cache"}, Time: at})
	}
	return b
}

func open(t *testing.T, dir string, opt Options) (*Spool, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	opt.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &logs
}

// drain reads and deletes every closed segment, returning their batches
// in order.
func drain(t *testing.T, s *Spool) []*event.Batch {
	t.Helper()
	var out []*event.Batch
	for {
		seg, ok := s.Oldest()
		if !ok {
			return out
		}
		bs, err := s.Read(seg)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		n := 0
		for _, b := range bs {
			n += b.Len()
		}
		if n != seg.Records {
			t.Errorf("segment %d: read %d records, Segment says %d", seg.Seq, n, seg.Records)
		}
		out = append(out, bs...)
		if err := s.Done(seg); err != nil {
			t.Fatalf("Done: %v", err)
		}
	}
}

func merged(bs []*event.Batch) *event.Batch {
	var m event.Batch
	for _, b := range bs {
		m.Append(b)
	}
	return &m
}

// TestAppendRotateReadInOrder: records read back as appended, in order,
// whether Read finds them in the cache, on disk, or some in each.
func TestAppendRotateReadInOrder(t *testing.T) {
	for _, tt := range []struct {
		name        string
		cache       int
		wantInCache int // segments
	}{{"cached", 0, 4}, {"from disk", -1, 0}, {"cache overflows", 50, 1}} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := open(t, t.TempDir(), Options{SegmentRecords: 40, CacheRecords: tt.cache})
			ctx := context.Background()
			var want event.Batch
			for i := 0; i < 10; i++ {
				b := sampleBatch(i*3, 3) // 15 records: a segment closes every third append
				want.Append(b)
				if err := s.Append(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			// 10 appends of 15: segments close at 45, 90, 135 records; 15 remain.
			if st := s.Stats(); st.Records != 150 || st.Segments != 4 {
				t.Errorf("stats %+v, want 150 records in 4 segments", st)
			}
			if seg, _ := s.Oldest(); seg.Records != 45 {
				t.Errorf("first segment holds %d records, want 45", seg.Records)
			}
			if err := s.Rotate(); err != nil {
				t.Fatal(err)
			}
			if len(s.cache) != tt.wantInCache {
				t.Errorf("%d segments cached, want %d", len(s.cache), tt.wantInCache)
			}
			got := drain(t, s)
			if len(got) != 10 {
				t.Errorf("%d batches read, want the 10 appended", len(got))
			}
			if !reflect.DeepEqual(merged(got), &want) {
				t.Errorf("records read back differ from those appended")
			}
			if st := s.Stats(); st.Records != 0 || st.Bytes != 0 || st.Segments != 0 {
				t.Errorf("after draining: %+v, want empty", st)
			}
			if s.cached != 0 || len(s.cache) != 0 {
				t.Errorf("cache holds %d records in %d segments after draining", s.cached, len(s.cache))
			}
			if files, _ := filepath.Glob(filepath.Join(s.Dir(), "*.seg")); len(files) != 0 {
				t.Errorf("segment files left after Done: %v", files)
			}
		})
	}
}

func TestRotateBySize(t *testing.T) {
	s, _ := open(t, t.TempDir(), Options{SegmentBytes: 4096})
	for i := 0; i < 20; i++ {
		if err := s.Append(context.Background(), sampleBatch(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	seg, ok := s.Oldest()
	if !ok {
		t.Fatal("no segment closed at 4096 bytes")
	}
	if seg.Bytes < 4096 || seg.Bytes > 4096+2048 {
		t.Errorf("closed segment of %d bytes, want just over 4096", seg.Bytes)
	}
}

func TestReopenKeepsRecordsAndOrder(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{SegmentRecords: 10})
	ctx := context.Background()
	var want event.Batch
	for i := 0; i < 7; i++ {
		b := sampleBatch(i*2, 2)
		want.Append(b)
		if err := s.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// Closed without draining: a stop while the store is unreachable.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, sampleBatch(0, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	s2, _ := open(t, dir, Options{SegmentRecords: 10})
	if st := s2.Stats(); st.Records != 70 || st.Oldest.IsZero() {
		t.Errorf("reopened: %+v, want the 70 records and the oldest segment's time", st)
	}
	select {
	case <-s2.Ready():
	default:
		t.Error("Ready not signalled for the segments found at Open")
	}
	// New records follow the old ones.
	extra := sampleBatch(100, 1)
	want.Append(extra)
	if err := s2.Append(ctx, extra); err != nil {
		t.Fatal(err)
	}
	s2.Rotate()
	if got := merged(drain(t, s2)); !reflect.DeepEqual(got, &want) {
		t.Errorf("after reopening, records differ or are out of order")
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{})
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second Open: %v, want it refused as in use", err)
	}
}

func TestFull(t *testing.T) {
	s, _ := open(t, t.TempDir(), Options{MaxBytes: 8192, SegmentRecords: 5})
	ctx := context.Background()
	var accepted int
	var full *FullError
	for i := 0; i < 1000; i++ {
		err := s.Append(ctx, sampleBatch(i, 1))
		if errors.As(err, &full) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted += 5
	}
	if full == nil {
		t.Fatal("Append never reported a full spool")
	}
	if full.Limit != 8192 || full.Bytes > 8192 || full.RetryAfter() <= 0 || !strings.Contains(full.Error(), "spool is full") {
		t.Errorf("FullError %+v (%q, retry after %v)", full, full, full.RetryAfter())
	}
	if st := s.Stats(); st.Records != accepted || st.Bytes > 8192 {
		t.Errorf("stats %+v, want the %d accepted records within 8192 bytes", st, accepted)
	}
	// Writing the oldest segment to the store makes room.
	seg, _ := s.Oldest()
	if err := s.Done(seg); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, sampleBatch(0, 1)); err != nil {
		t.Errorf("Append after Done freed space: %v", err)
	}
}

func TestDoneOnlyTheOldest(t *testing.T) {
	s, _ := open(t, t.TempDir(), Options{SegmentRecords: 1})
	for i := 0; i < 2; i++ {
		s.Append(context.Background(), sampleBatch(i, 1))
	}
	if err := s.Done(Segment{Seq: 2}); err == nil {
		t.Error("Done of the second segment before the first succeeded")
	}
}

// TestConcurrentAppends: appenders in parallel each see their records
// stored once and in their order, and segments hold whole records.
func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{SegmentRecords: 100})
	const writers, per = 8, 150
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				b := &event.Batch{Errors: []event.ErrorEvent{{ID: fmt.Sprintf("w%d-%04d", w, i), Time: t0, Service: "api"}}}
				if err := s.Append(context.Background(), b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	s2, _ := open(t, dir, Options{})
	got := merged(drain(t, s2))
	if len(got.Errors) != writers*per {
		t.Fatalf("%d records, want %d", len(got.Errors), writers*per)
	}
	last := map[string]string{}
	for _, e := range got.Errors {
		w, _, _ := strings.Cut(e.ID, "-")
		if prev, ok := last[w]; ok && e.ID <= prev {
			t.Fatalf("writer %s: %s after %s", w, e.ID, prev)
		}
		last[w] = e.ID
	}
}

// segmentFile writes three segments of three one-record appends each
// (records of 5 events) and returns the directory and the newest file.
func segmentFiles(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentRecords: 15})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 9; i++ {
		if err := s.Append(context.Background(), sampleBatch(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(files) != 3 {
		t.Fatalf("%d segments, want 3", len(files))
	}
	return dir, files
}

// recordOffsets lists the offsets of the records of a segment file.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := int64(headerSize); off < int64(len(data)); {
		offs = append(offs, off)
		off += frameSize + int64(binary.LittleEndian.Uint32(data[off:]))
	}
	return offs
}

func edit(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTornTail: damage at the end of the newest segment, as a crash while
// a record was written leaves it, is cut off at Open; the complete records
// before it stay.
func TestTornTail(t *testing.T) {
	tests := []struct {
		name        string
		damage      func(data []byte, last int64) []byte
		wantRecords int // of the 45 appended
		wantFiles   int
	}{
		{"partial frame", func(d []byte, _ int64) []byte { return append(d, 0x10, 0, 0) }, 45, 3},
		{"payload cut short", func(d []byte, last int64) []byte { return d[:last+frameSize+20] }, 40, 3},
		{"frame only", func(d []byte, last int64) []byte { return d[:last+frameSize] }, 40, 3},
		{"checksum of the last record", func(d []byte, _ int64) []byte { d[len(d)-1] ^= 0xff; return d }, 40, 3},
		{"zeros after the records", func(d []byte, _ int64) []byte { return append(d, make([]byte, 4096)...) }, 45, 3},
		{"last record zeroed", func(d []byte, last int64) []byte { clear(d[last:]); return d }, 40, 3},
		{"a new segment's partial header", nil, 45, 3},
		{"every record of the newest segment torn", func(d []byte, _ int64) []byte { return d[:headerSize+5] }, 30, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, files := segmentFiles(t)
			newest := files[2]
			if tt.damage == nil {
				// A crash right after a fourth segment was created.
				os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.seg", 4)), []byte("CORS"), 0o600)
			} else {
				offs := recordOffsets(t, newest)
				edit(t, newest, func(d []byte) []byte { return tt.damage(d, offs[len(offs)-1]) })
			}
			s, logs := open(t, dir, Options{})
			if st := s.Stats(); st.Records != tt.wantRecords {
				t.Errorf("%d records after Open, want %d", st.Records, tt.wantRecords)
			}
			if !strings.Contains(logs.String(), "torn") && !strings.Contains(logs.String(), "no complete record") {
				t.Errorf("the cut was not logged:\n%s", logs)
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(files) != tt.wantFiles {
				t.Errorf("%d segment files, want %d", len(files), tt.wantFiles)
			}
			// Appends go on after the cut, and everything reads back.
			if err := s.Append(context.Background(), sampleBatch(50, 1)); err != nil {
				t.Fatal(err)
			}
			s.Rotate()
			if got := merged(drain(t, s)).Len(); got != tt.wantRecords+5 {
				t.Errorf("read %d records, want %d", got, tt.wantRecords+5)
			}
		})
	}
}

// TestCorruption: damage that is not a torn tail (records follow it, or
// it is in a segment that was closed) fails Open with the file and the
// offset, instead of skipping acknowledged records.
func TestCorruption(t *testing.T) {
	tests := []struct {
		name   string
		file   int // which of the three segments
		record int // whose record is damaged
		damage func(d []byte, off int64) []byte
		want   string
	}{
		{"checksum, records follow", 2, 0, func(d []byte, off int64) []byte { d[off+frameSize+3] ^= 1; return d }, "checksum mismatch"},
		{"zero length, records follow", 2, 1, func(d []byte, off int64) []byte { clear(d[off : off+4]); return d }, "impossible record length 0"},
		{"checksum in a closed segment", 0, 2, func(d []byte, off int64) []byte { d[len(d)-1] ^= 1; return d }, "checksum mismatch"},
		{"closed segment cut short", 1, 2, func(d []byte, off int64) []byte { return d[:off+10] }, "extends past the end"},
		{"bad header", 0, 0, func(d []byte, _ int64) []byte { d[0] = 'X'; return d }, "not a spool segment"},
		{"future format version", 1, 0, func(d []byte, _ int64) []byte { d[6] = 9; return d }, "format version 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, files := segmentFiles(t)
			offs := recordOffsets(t, files[tt.file])
			edit(t, files[tt.file], func(d []byte) []byte { return tt.damage(d, offs[tt.record]) })
			_, err := Open(dir, Options{})
			if err == nil {
				t.Fatal("Open succeeded on a corrupt spool")
			}
			wantOff := fmt.Sprintf("offset %d", offs[tt.record])
			if strings.Contains(tt.name, "header") || strings.Contains(tt.name, "version") {
				wantOff = "offset 0"
			}
			for _, w := range []string{files[tt.file], wantOff, tt.want, "move the file out of"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// A failed Open leaves the directory unlocked and unchanged.
			if data, _ := os.ReadFile(files[tt.file]); len(data) == 0 {
				t.Error("the damaged file was emptied")
			}
		})
	}
}

// TestReadDetectsLaterDamage: a segment damaged after Open checked it is
// not handed out as if it were whole.
func TestReadDetectsLaterDamage(t *testing.T) {
	dir, files := segmentFiles(t)
	s, _ := open(t, dir, Options{})
	offs := recordOffsets(t, files[0])
	edit(t, files[0], func(d []byte) []byte { d[offs[1]+frameSize] ^= 1; return d })
	seg, _ := s.Oldest()
	_, err := s.Read(seg)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", offs[1])) {
		t.Errorf("Read of a damaged segment: %v", err)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	tests := map[string]*event.Batch{
		"every kind":  sampleBatch(0, 3),
		"many":        sampleBatch(0, 1000),
		"empty":       {},
		"zero values": {Changes: []event.Change{{}}, Errors: []event.ErrorEvent{{}}, Logs: []event.LogRecord{{}}, Metrics: []event.MetricPoint{{}}, Services: []event.Service{{}}},
		"extremes": {Metrics: []event.MetricPoint{
			{Time: time.Unix(-1, 999999999).UTC(), Value: math.Inf(-1)},
			{Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), Value: math.MaxFloat64},
			{Time: time.Unix(0, 1).UTC(), Value: math.Copysign(0, -1)},
		}},
		"long text": {Logs: []event.LogRecord{{Body: strings.Repeat("é", 100000)}}},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeBatch(appendBatch(nil, b))
			if err != nil {
				t.Fatal(err)
			}
			// The zero time comes back as the zero time in UTC.
			if !reflect.DeepEqual(got, b) {
				t.Errorf("round trip changed the batch:\n got %+v\nwant %+v", got, b)
			}
			if n, err := batchLen(appendBatch(nil, b)); err != nil || n != b.Len() {
				t.Errorf("batchLen = %d, %v; want %d", n, err, b.Len())
			}
		})
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good := appendBatch(nil, sampleBatch(0, 2))
	tests := map[string][]byte{
		"empty":             {},
		"truncated":         good[:len(good)/2],
		"trailing bytes":    append(append([]byte(nil), good...), 0),
		"huge count":        binary.AppendUvarint(nil, 1<<40),
		"count beyond data": {0, 200, 0, 0, 0, 1},
		"overlong varint":   bytes.Repeat([]byte{0xff}, 11),
		"nanoseconds ≥ 1e9": append([]byte{0, 0, 0, 1, 0, 0}, binary.AppendUvarint(nil, 1e9)...),
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeBatch(p); !errors.Is(err, errMalformed) {
				t.Errorf("decodeBatch: %v, want a malformed record", err)
			}
		})
	}
}

// TestGoldenSegment reads a segment written by an earlier build: the
// on-disk format must stay readable across upgrades, since a spool
// outlives the process that wrote it.
func TestGoldenSegment(t *testing.T) {
	const seg, js = "testdata/segment-v1.seg", "testdata/segment-v1.json"
	want := []*event.Batch{sampleBatch(0, 2), {Services: []event.Service{{Service: "lonely"}}}, sampleBatch(7, 1)}
	if *update {
		dir := t.TempDir()
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range want {
			if err := s.Append(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%020d.seg", 1)))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(seg, data, 0o644)
		j, _ := json.MarshalIndent(want, "", "  ")
		os.WriteFile(js, append(j, '\n'), 0o644)
	}
	dir := t.TempDir()
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.seg", 7)), data, 0o600)
	var golden []*event.Batch
	j, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, &golden); err != nil {
		t.Fatal(err)
	}
	s, _ := open(t, dir, Options{})
	got := drain(t, s)
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(golden)
	if !bytes.Equal(gj, wj) {
		t.Errorf("golden segment reads as\n%s\nwant\n%s", gj, wj)
	}
	// A new segment continues the sequence after the golden one.
	s.Append(context.Background(), sampleBatch(0, 1))
	s.Rotate()
	if seg, _ := s.Oldest(); seg.Seq != 8 {
		t.Errorf("new segment has sequence %d, want 8", seg.Seq)
	}
}

func TestStrayFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "backup.seg"), nil, 0o600)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "backup.seg") {
		t.Errorf("Open with a stray .seg file: %v", err)
	}
}
