package ingest

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/correlator/correlator/internal/event"
)

// The decode fuzz targets, one per kind so that each can be run on its own:
//
//	go test -fuzz '^FuzzDecodeErrors$' -fuzztime 30s ./internal/ingest/
//
// Each checks, for any input, that Decode does not panic; that on NDJSON
// input every non-blank line is either accepted or rejected; that every
// emitted record satisfies the invariants checkRecord states independently
// of the decoder; and that re-encoding the emitted records with
// encoding/json and decoding them again gives the same records, which also
// proves the output is acceptable input.

func FuzzDecodeChanges(f *testing.F)  { fuzzDecode(f, event.KindChanges) }
func FuzzDecodeErrors(f *testing.F)   { fuzzDecode(f, event.KindErrors) }
func FuzzDecodeLogs(f *testing.F)     { fuzzDecode(f, event.KindLogs) }
func FuzzDecodeMetrics(f *testing.F)  { fuzzDecode(f, event.KindMetrics) }
func FuzzDecodeServices(f *testing.F) { fuzzDecode(f, event.KindServices) }

// fuzzOptions keeps lines and batches small so that the fuzzer reaches the
// long-line and chunking paths with small inputs.
func fuzzOptions() Options {
	return Options{ChunkSize: 3, MaxErrors: 5, MaxLineBytes: 2048, Now: testOptions().Now}
}

func fuzzDecode(f *testing.F, kind event.Kind) {
	// Seeds: every testdata input, whole and line by line, and the same
	// lines as a JSON array. Inputs of other kinds are useful too: they
	// exercise the rejections.
	for _, name := range inputFiles(f) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		if !strings.HasSuffix(name, ".ndjson") {
			continue
		}
		f.Add([]byte(toArray(string(data))))
		for _, line := range bytes.Split(data, []byte("\n")) {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, batch, err := decodeAll(t, kind, string(data), fuzzOptions())
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if res.Accepted != batch.Len() {
			t.Fatalf("accepted %d, emitted %d", res.Accepted, batch.Len())
		}
		if len(res.Errors) > 5 || (res.Rejected <= 5 && len(res.Errors) != res.Rejected) {
			t.Fatalf("rejected %d, kept %d errors with MaxErrors 5", res.Rejected, len(res.Errors))
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, e := range res.Errors {
			if e.Line < 1 || e.Line > lines || e.Message == "" || !utf8.ValidString(e.Message) {
				t.Fatalf("bad error %q in input of %d lines", e, lines)
			}
		}
		if n, ok := nonBlankLines(data); ok && res.Accepted+res.Rejected != n {
			t.Fatalf("NDJSON of %d non-blank lines: accepted %d + rejected %d", n, res.Accepted, res.Rejected)
		}
		checkBatch(t, kind, batch)

		// Round trip.
		var again bytes.Buffer
		enc := json.NewEncoder(&again)
		recs := reflect.ValueOf(records(kind, batch))
		for i := 0; i < recs.Len(); i++ {
			if err := enc.Encode(recs.Index(i).Interface()); err != nil {
				t.Fatal(err)
			}
		}
		res2, batch2, err := decodeAll(t, kind, again.String(), Options{MaxLineBytes: 1 << 30, Now: testOptions().Now})
		if err != nil || res2.Rejected != 0 {
			t.Fatalf("re-decoding the output: %+v, %v\n%s", res2, err, again.Bytes())
		}
		if got, want := records(kind, batch2), records(kind, batch); recs.Len() > 0 && !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the records:\nfirst  %+v\nsecond %+v", want, got)
		}
	})
}

// nonBlankLines counts the lines of NDJSON input that are not blank, the
// way the package comment defines them; ok is false for array input.
func nonBlankLines(data []byte) (n int, ok bool) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if t := trimSpace(data); len(t) > 0 && t[0] == '[' {
		return 0, false
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.Trim(line, " \t\r")) > 0 {
			n++
		}
	}
	return n, true
}

var metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// checkBatch checks the invariants every emitted record must satisfy,
// written out independently of the decoder's code.
func checkBatch(t *testing.T, kind event.Kind, b *event.Batch) {
	t.Helper()
	if b.Len() != reflect.ValueOf(records(kind, b)).Len() {
		t.Fatalf("batch holds records of other kinds than %s", kind)
	}
	ident := func(what, s string, required bool) {
		t.Helper()
		if (required && s == "") || len(s) > maxIdent || !utf8.ValidString(s) {
			t.Fatalf("%s %q: want valid UTF-8 of at most %d bytes", what, s, maxIdent)
		}
	}
	text := func(what, s string, max int) {
		t.Helper()
		if len(s) > max || !utf8.ValidString(s) {
			t.Fatalf("%s: %d bytes, want valid UTF-8 of at most %d", what, len(s), max)
		}
	}
	attrs := func(what string, m map[string]string, max int) {
		t.Helper()
		if m != nil && len(m) == 0 {
			t.Fatalf("%s: empty map, want nil", what)
		}
		for k, v := range m {
			ident(what+" key", k, true)
			text(what+" value", v, max)
		}
	}
	for _, c := range b.Changes {
		checkTime(t, c.Time)
		ident("id", c.ID, true)
		ident("service", c.Service, true)
		if !slices.Contains(event.ChangeKinds, c.Kind) {
			t.Fatalf("change kind %q", c.Kind)
		}
		for _, s := range []string{c.Environment, c.Version, c.PreviousVersion, c.Commit, c.Author, c.Source} {
			ident("field", s, false)
		}
		text("title", c.Title, maxText)
		text("url", c.URL, maxValue)
		attrs("attributes", c.Attributes, maxText)
	}
	for _, e := range b.Errors {
		checkTime(t, e.Time)
		ident("id", e.ID, true)
		ident("service", e.Service, true)
		ident("fingerprint", e.Fingerprint, true)
		for _, s := range []string{e.Environment, e.Release, e.UserID, e.CustomerID, e.TraceID} {
			ident("field", s, false)
		}
		if !slices.Contains([]string{"debug", "info", "warning", "error", "fatal"}, e.Level) {
			t.Fatalf("level %q", e.Level)
		}
		if !(e.SampleRate > 0 && e.SampleRate <= 1) {
			t.Fatalf("sample rate %v", e.SampleRate)
		}
		text("type", e.Type, maxValue)
		text("message", e.Message, maxText)
		attrs("attributes", e.Attributes, maxText)
	}
	for _, l := range b.Logs {
		checkTime(t, l.Time)
		ident("id", l.ID, true)
		ident("service", l.Service, true)
		for _, s := range []string{l.UserID, l.CustomerID, l.TraceID, l.SpanID} {
			ident("field", s, false)
		}
		if !slices.Contains([]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}, l.Severity) {
			t.Fatalf("severity %q", l.Severity)
		}
		text("body", l.Body, maxText)
		attrs("attributes", l.Attributes, maxText)
	}
	for _, m := range b.Metrics {
		checkTime(t, m.Time)
		ident("service", m.Service, true)
		if !metricNameRE.MatchString(m.Name) || len(m.Name) > maxIdent {
			t.Fatalf("metric name %q", m.Name)
		}
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			t.Fatalf("metric value %v", m.Value)
		}
		attrs("labels", m.Labels, maxValue)
	}
	for _, s := range b.Services {
		checkTime(t, s.Time)
		ident("service", s.Service, true)
		if s.DependsOn == nil {
			t.Fatal("depends_on is nil, want [] for none")
		}
		seen := map[string]bool{}
		for _, d := range s.DependsOn {
			ident("depends_on", d, true)
			if d == s.Service || seen[d] {
				t.Fatalf("depends_on %q of %q: self or repeated", s.DependsOn, s.Service)
			}
			seen[d] = true
		}
	}
}

// checkTime checks that t is in UTC and inside the accepted window.
func checkTime(t *testing.T, tm time.Time) {
	t.Helper()
	if tm.Location() != time.UTC || tm.Before(minTime) || tm.After(testNow.Add(maxFuture)) {
		t.Fatalf("time %v outside [%v, now+24h] or not UTC", tm, minTime)
	}
}

// FuzzValid checks that valid agrees with json.Valid, which it replaces on
// the hot path.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,-2.5e+3,true,false,null,"x\u00e9\n"]}`, ` "s" `, `01`, `1.`, `-`, `{"a" 1}`,
		`[1,]`, `{"a":1,}`, "\"\x01\"", `"\x"`, `"\u12"`, `nul`, `[[[[]]]]`, `{"a":{"b":{}}}`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := valid(data), json.Valid(data); got != want {
			t.Fatalf("valid(%q) = %v, json.Valid says %v", data, got, want)
		}
	})
}

// FuzzFingerprintMessage checks that normalising is idempotent: the
// placeholders themselves are never replaced again.
func FuzzFingerprintMessage(f *testing.F) {
	for _, s := range []string{"timeout after 1532ms for order 8812", "user 6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6", "0x1f deadbeef12 a1b2c3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		once := FingerprintMessage(msg)
		if twice := FingerprintMessage(once); twice != once {
			t.Fatalf("FingerprintMessage(%q) = %q, but again gives %q", msg, once, twice)
		}
	})
}
