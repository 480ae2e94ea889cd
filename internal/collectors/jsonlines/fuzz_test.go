package jsonlines

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/ingest"
)

var fuzzNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func seedLines(f *testing.F) {
	paths, err := filepath.Glob("testdata/*.ndjson")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		for _, l := range bytes.Split(b, []byte("\n")) {
			f.Add(l)
		}
	}
	for _, s := range []string{"", "{}", `{"time":1e300,"service":"a"}`, `{"time":"-1","service":"a"}`,
		`{"time":9223372036854775807,"service":"a"}`, `{"time":"2026-11-02 10:00:00z","service":{"a":[1,{"b":null}]},"level":99}`,
		`{"a":{"b":1},"a.b":2,"time":"2026-11-02T10:00:00Z","service":"s"}`, "\xef\xbb\xbf{}\r\n{\n"} {
		f.Add([]byte(s))
	}
}

// FuzzParseLine feeds arbitrary lines to the line parser: it must never
// panic, and what it accepts must be a record the store can take.
func FuzzParseLine(f *testing.F) {
	seedLines(f)
	p := parser{f: Config{}.withDefaults().Fields, now: fuzzNow}
	p.f.FixedService = "fixed"
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, ferr := p.parse(line)
		if ferr != nil {
			if ferr.msg == "" || ferr.reason == "" {
				t.Fatalf("rejection without message or reason: %+v", ferr)
			}
			return
		}
		switch {
		case rec.Service == "" || len(rec.Service) > maxIdent:
			t.Fatalf("service %q", rec.Service)
		case rec.Time.Before(minTime) || rec.Time.After(fuzzNow.Add(maxFuture)):
			t.Fatalf("time %v out of range", rec.Time)
		case len(rec.Body) > maxText:
			t.Fatalf("body of %d bytes", len(rec.Body))
		}
		if s, ok := ingest.NormalizeSeverity(rec.Severity); !ok || s != rec.Severity {
			t.Fatalf("severity %q not canonical", rec.Severity)
		}
	})
}

// FuzzTailFile tails a file of arbitrary content: no panic, every complete
// line accounted for, the offset never past the end.
func FuzzTailFile(f *testing.F) {
	seedLines(f)
	f.Fuzz(func(t *testing.T, content []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(dir)
		cfg.MaxLineBytes = 4096
		cfg.Fields.FixedService = "fixed"
		store := &fakeStore{}
		tl, rejects := newTailer(t, cfg, store, &clock{t: fuzzNow})
		tl.poll(context.Background())
		tf := tl.live[path]
		if tf == nil {
			t.Fatal("file not followed")
		}
		if tf.offset > int64(len(content)) {
			t.Fatalf("offset %d past the end %d", tf.offset, len(content))
		}
		lines := int64(bytes.Count(content, []byte("\n")))
		if tf.id.FP != "" && tf.line != lines {
			t.Fatalf("line %d after reading, want %d", tf.line, lines)
		}
		if got := int64(store.count() + len(*rejects)); got > lines {
			t.Fatalf("%d records and rejections from %d lines", got, lines)
		}
	})
}
