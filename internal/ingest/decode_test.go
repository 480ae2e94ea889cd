package ingest

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
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// testNow is the decoder clock of the tests: testdata timestamps lie around
// it.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testOptions() Options {
	return Options{Now: func() time.Time { return testNow }}
}

// decodeAll decodes input and returns the Result with every emitted batch
// merged into one.
func decodeAll(t testing.TB, kind event.Kind, input string, opt Options) (Result, *event.Batch, error) {
	t.Helper()
	all := new(event.Batch)
	res, err := Decode(context.Background(), kind, strings.NewReader(input), opt, func(b *event.Batch) error {
		all.Append(b)
		return nil
	})
	return res, all, err
}

// records returns the records of kind in b.
func records(kind event.Kind, b *event.Batch) any {
	switch kind {
	case event.KindChanges:
		return b.Changes
	case event.KindErrors:
		return b.Errors
	case event.KindLogs:
		return b.Logs
	case event.KindMetrics:
		return b.Metrics
	case event.KindServices:
		return b.Services
	}
	panic("unknown kind " + kind)
}

// fileKind returns the kind a testdata file is for: its name up to the first
// underscore.
func fileKind(t testing.TB, name string) event.Kind {
	k, ok := event.ParseKind(strings.SplitN(filepath.Base(name), "_", 2)[0])
	if !ok {
		t.Fatalf("testdata file %s: name does not start with a kind", name)
	}
	return k
}

// inputFiles lists the testdata inputs.
func inputFiles(t testing.TB) []string {
	var files []string
	for _, pat := range []string{"testdata/*.ndjson", "testdata/*.json"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no testdata inputs")
	}
	return files
}

// TestDecodeFiles decodes every testdata input and compares the result and
// the records with the input's .golden file. Run with -update to rewrite the
// golden files, then read the diff.
func TestDecodeFiles(t *testing.T) {
	for _, name := range inputFiles(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			kind := fileKind(t, name)
			input, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			res, batch, err := decodeAll(t, kind, string(input), testOptions())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got, err := json.MarshalIndent(struct {
				Result  Result `json:"result"`
				Records any    `json:"records"`
			}{res, records(kind, batch)}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := name + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update and inspect the diff):\n%s", golden, got)
			}
		})
	}
}

// TestRejects checks that each bad record is rejected with an error naming
// its line and field.
func TestRejects(t *testing.T) {
	const ok = `"time":"2025-06-01T11:00:00Z","service":"checkout"`
	long := strings.Repeat("x", 257)
	tests := []struct {
		kind      event.Kind
		input     string
		wantField string
		wantMsg   string // substring of the message
	}{
		{event.KindChanges, `{"time":"2025-06-01T11:00:00Z","kind":"deploy"}`, "service", "missing"},
		{event.KindChanges, `{"time":"2025-06-01T11:00:00Z","kind":"deploy","service":"` + long + `"}`, "service", "longer than 256 bytes"},
		{event.KindChanges, `{` + ok + `,"kind":"deploy","url":7}`, "url", "want a string, got number"},
		{event.KindChanges, `{` + ok + `,"kind":"deploy","attributes":{"a":"b","` + long + `":"c"}}`, "attributes." + long[:64] + "...", "key longer than 256 bytes"},
		{event.KindChanges, `{` + ok + `,"kind":"deploy","` + long + `":1}`, long[:64] + "...", "field name longer than 256 bytes"},
		{event.KindChanges, `{` + ok + `,"kind":"upgrade"}`, "kind", `unknown change kind "upgrade"`},
		{event.KindChanges, `{"time":"yesterday","service":"a","kind":"deploy"}`, "time", `cannot parse "yesterday": want RFC 3339 or Unix milliseconds`},
		{event.KindErrors, `{` + ok + `,"sample_rate":"0.5"}`, "sample_rate", "want a number, got string"},
		{event.KindErrors, `{` + ok + `,"sample_rate":0}`, "sample_rate", "not in (0, 1]"},
		{event.KindErrors, `{` + ok + `,"sample_rate":1.0001}`, "sample_rate", "not in (0, 1]"},
		{event.KindErrors, `{` + ok + `,"level":"loud"}`, "level", `unknown level "loud"`},
		{event.KindErrors, `{` + ok + `,"type":"` + strings.Repeat("T", maxValue+1) + `"}`, "type", "longer than 4096 bytes"},
		{event.KindErrors, `{"service":"a"}`, "time", "missing"},
		{event.KindErrors, `{` + ok + `,"attributes":{"a":{"b":1},"c":"d"},"x":null,"y":[1,` + long + `]}`, "", "invalid JSON"},
		{event.KindLogs, `{` + ok + `}`, "body", "missing"},
		{event.KindLogs, `{` + ok + `,"body":"x","severity":"loud"}`, "severity", `unknown severity "loud"`},
		{event.KindLogs, `{` + ok + `,"body":"x","severity":25}`, "severity", "not in 0..24"},
		{event.KindLogs, `{` + ok + `,"body":"x","severity":[]}`, "severity", "want a string or an OpenTelemetry severity number, got array"},
		{event.KindLogs, `{` + ok + `,"body":"x","trace_id":"` + long + `"}`, "trace_id", "longer than 256 bytes"},
		{event.KindMetrics, `{` + ok + `,"name":"a-b","value":1}`, "name", "invalid metric name"},
		{event.KindMetrics, `{` + ok + `,"name":"up","value":"1"}`, "value", "want a number, got string"},
		{event.KindMetrics, `{` + ok + `,"name":"up","value":-1e999}`, "value", "not a finite number"},
		{event.KindMetrics, `{` + ok + `,"name":"up","value":1,"labels":{"a":"` + strings.Repeat("v", maxValue+1) + `"}}`, "labels.a", "longer than 4096 bytes"},
		{event.KindMetrics, `{` + ok + `,"name":"up","value":1,"pod":"` + strings.Repeat("v", maxValue+1) + `"}`, "pod", "longer than 4096 bytes"},
		{event.KindMetrics, `{` + ok + `,"name":"up"}`, "value", "missing"},
		{event.KindServices, `{"service":"a","depends_on":["b","a"]}`, "depends_on[1]", "is the service itself"},
		{event.KindServices, `{"service":"a","depends_on":["b",""]}`, "depends_on[1]", "empty service name"},
		{event.KindServices, `{"service":"a","depends_on":[["b"]]}`, "depends_on[0]", "want a string, got array"},
		{event.KindServices, `{"service":"a","team":"x"}`, "team", "unknown field"},
		{event.KindServices, `{"service":"a","time":"2031-01-01T00:00:00Z"}`, "time", "more than 24h in the future"},
		{event.KindServices, `{"depends_on":["b"]}`, "service", "missing"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d_%s", i, tt.kind), func(t *testing.T) {
			// The bad record is line 3, between two blank lines, so the
			// line number is checked too.
			input := "\n\n" + tt.input + "\n\n"
			res, batch, err := decodeAll(t, tt.kind, input, testOptions())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if res.Accepted != 0 || res.Rejected != 1 || batch.Len() != 0 || len(res.Errors) != 1 {
				t.Fatalf("got %+v and %d records, want one rejection", res, batch.Len())
			}
			e := res.Errors[0]
			if e.Line != 3 || e.Field != tt.wantField || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("got %v (field %q), want line 3, field %q, message containing %q", e, e.Field, tt.wantField, tt.wantMsg)
			}
		})
	}
}

func TestLineErrorString(t *testing.T) {
	tests := []struct {
		err  LineError
		want string
	}{
		{LineError{12, "time", `cannot parse "yesterday": want RFC 3339 or Unix milliseconds`},
			`line 12: field "time": cannot parse "yesterday": want RFC 3339 or Unix milliseconds`},
		{LineError{3, "", "line is longer than 10 bytes"}, "line 3: line is longer than 10 bytes"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
}

// TestLayout covers how the input is split into records: NDJSON and arrays,
// blank lines, CRLF, byte order marks, long lines, and what is left after a
// syntax error.
func TestLayout(t *testing.T) {
	rec := func(body string) string {
		return `{"time":"2025-06-01T11:00:00Z","service":"s","body":"` + body + `"}`
	}
	tests := []struct {
		name         string
		input        string
		maxLine      int
		wantBodies   []string
		wantRejected int
		wantLines    []int // of the errors
	}{
		{name: "empty", input: ""},
		{name: "whitespace only", input: " \n\t\r\n"},
		{name: "ndjson no final newline", input: rec("a") + "\n" + rec("b"), wantBodies: []string{"a", "b"}},
		{name: "blank lines", input: "\n\n" + rec("a") + "\n  \t\n\n" + rec("b") + "\n\n", wantBodies: []string{"a", "b"}},
		{name: "crlf", input: rec("a") + "\r\n\r\n" + rec("b") + "\r\n" + `{"time":1,"service":"s","body":"x"}` + "\r\n", wantBodies: []string{"a", "b"}, wantRejected: 1, wantLines: []int{4}},
		{name: "bom", input: "\ufeff" + rec("a") + "\n", wantBodies: []string{"a"}},
		{name: "bad line in the middle", input: rec("a") + "\n{oops\n" + rec("b") + "\nnull\n" + rec("c"), wantBodies: []string{"a", "b", "c"}, wantRejected: 2, wantLines: []int{2, 4}},
		{name: "oversized line", input: rec("a") + "\n" + rec(strings.Repeat("x", 200)) + "\n" + rec("b"), maxLine: 100, wantBodies: []string{"a", "b"}, wantRejected: 1, wantLines: []int{2}},
		{name: "oversized line beyond read buffer", input: rec("a") + "\n" + rec(strings.Repeat("x", 3*readBufferSize)) + "\n" + rec("b"), maxLine: readBufferSize + 10, wantBodies: []string{"a", "b"}, wantRejected: 1, wantLines: []int{2}},
		{name: "long line within limit", input: rec("a") + "\n" + rec(strings.Repeat("x", 3*readBufferSize)) + "\n" + rec("b"), wantBodies: []string{"a", truncateText(strings.Repeat("x", 3*readBufferSize)), "b"}},
		{name: "oversized last line without newline", input: rec("a") + "\n" + rec(strings.Repeat("x", 200)), maxLine: 100, wantBodies: []string{"a"}, wantRejected: 1, wantLines: []int{2}},
		{name: "long blank line", input: rec("a") + "\n" + strings.Repeat(" ", 300) + "\n" + rec("b"), maxLine: 100, wantBodies: []string{"a", "b"}},
		{name: "long blank line beyond read buffer", input: rec("a") + "\n" + strings.Repeat(" \t", 2*readBufferSize) + "\r\n" + rec("b"), maxLine: 100, wantBodies: []string{"a", "b"}},
		{name: "lone bracket", input: "\n[", wantRejected: 1, wantLines: []int{2}},
		{name: "array", input: "\n [" + rec("a") + ",\n" + rec("b") + "]\n", wantBodies: []string{"a", "b"}},
		{name: "empty array", input: "[ ]"},
		{name: "array bad element", input: "[" + rec("a") + ",\n\n1,\n" + `{"body":"x"}` + ",\n" + rec("b") + "]", wantBodies: []string{"a", "b"}, wantRejected: 2, wantLines: []int{3, 4}},
		{name: "array syntax error", input: "[" + rec("a") + ",\n" + `{"time": tru}` + ",\n" + rec("b") + "]", wantBodies: []string{"a"}, wantRejected: 1, wantLines: []int{2}},
		{name: "array syntax error on later line of element", input: "[" + rec("a") + ",\n{\n\"time\":\n tru}]", wantBodies: []string{"a"}, wantRejected: 1, wantLines: []int{4}},
		{name: "array missing comma", input: "[" + rec("a") + "\n" + rec("b") + "]", wantBodies: []string{"a"}, wantRejected: 1, wantLines: []int{2}},
		{name: "array trailing comma", input: "[" + rec("a") + ",\n]", wantBodies: []string{"a"}, wantRejected: 1, wantLines: []int{2}},
		{name: "array unterminated", input: "[" + rec("a") + ",\n" + rec("b"), wantBodies: []string{"a", "b"}, wantRejected: 1, wantLines: []int{2}},
		{name: "array unterminated string", input: "[" + rec("a") + ",\n" + `{"body":"abc`, wantBodies: []string{"a"}, wantRejected: 1, wantLines: []int{2}},
		{name: "array trailing data", input: "[" + rec("a") + "]\n\n" + rec("b"), wantBodies: []string{"a"}, wantRejected: 1, wantLines: []int{3}},
		{name: "array oversized element", input: "[" + rec("a") + ",\n" + rec(strings.Repeat("x", 200)) + ",\n" + rec("b") + "]", maxLine: 100, wantBodies: []string{"a", "b"}, wantRejected: 1, wantLines: []int{2}},
		{name: "array of arrays", input: "[[1]]", wantRejected: 1, wantLines: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := testOptions()
			opt.MaxLineBytes = tt.maxLine
			res, batch, err := decodeAll(t, event.KindLogs, tt.input, opt)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var bodies []string
			for _, l := range batch.Logs {
				bodies = append(bodies, l.Body)
			}
			var lines []int
			for _, e := range res.Errors {
				lines = append(lines, e.Line)
			}
			if !reflect.DeepEqual(bodies, tt.wantBodies) || res.Accepted != len(tt.wantBodies) ||
				res.Rejected != tt.wantRejected || !reflect.DeepEqual(lines, tt.wantLines) {
				t.Errorf("got bodies %.80q, %+v; want bodies %.80q, accepted %d, rejected %d at lines %v",
					bodies, res, tt.wantBodies, len(tt.wantBodies), tt.wantRejected, tt.wantLines)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		raw     string
		want    time.Time
		wantMsg string // substring of the error; "" for success
	}{
		{`"2025-06-01T10:00:00Z"`, time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), ""},
		{`"2025-06-01T10:00:00.5Z"`, time.Date(2025, 6, 1, 10, 0, 0, 5e8, time.UTC), ""},
		{`"2025-06-01T10:00:00.123456789Z"`, time.Date(2025, 6, 1, 10, 0, 0, 123456789, time.UTC), ""},
		{`"2025-06-01T12:00:00+02:00"`, time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), ""},
		{`"2025-06-01T05:30:00-04:30"`, time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), ""},
		{`"2025-06-01t10:00:00z"`, time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), ""},
		{`"2025-06-01 10:00:00Z"`, time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), ""},
		{`1748772000000`, time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), ""},
		{`1748772000123`, time.Date(2025, 6, 1, 10, 0, 0, 123e6, time.UTC), ""},
		{`1.748772e12`, time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), ""},
		{`"1748772000000"`, time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), ""},
		{`"2000-01-01T00:00:00Z"`, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), ""},
		{`"2025-06-02T12:00:00Z"`, time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC), ""}, // exactly 24h ahead
		{`"yesterday"`, time.Time{}, `cannot parse "yesterday": want RFC 3339 or Unix milliseconds`},
		{`""`, time.Time{}, `cannot parse ""`},
		{`"2025-06-01"`, time.Time{}, `cannot parse "2025-06-01"`},
		{`"2025-06-01T10:00:00"`, time.Time{}, "needs a UTC offset"},
		{`"2025-06-01T10:00:00.250"`, time.Time{}, "needs a UTC offset"},
		{`"2025-06-01T25:00:00Z"`, time.Time{}, "cannot parse"},
		{`"1999-12-31T23:59:59Z"`, time.Time{}, "is before 2000-01-01"},
		{`"2025-06-02T12:00:00.001Z"`, time.Time{}, "more than 24h in the future"},
		{`1748772000`, time.Time{}, "it looks like Unix seconds, send 1748772000000"},
		{`"1748772000"`, time.Time{}, "it looks like Unix seconds"},
		{`1748772000000000`, time.Time{}, "it looks like Unix microseconds, send 1748772000000"},
		{`1748772000000000000`, time.Time{}, "it looks like Unix nanoseconds, send 1748772000000"},
		{`99999999999999999999`, time.Time{}, "out of range"},
		{`-1`, time.Time{}, "before 2000-01-01"},
		{`0`, time.Time{}, "before 2000-01-01 as Unix milliseconds"},
		{`1748772000000.5`, time.Time{}, "want RFC 3339 or integer Unix milliseconds"},
		{`true`, time.Time{}, "want an RFC 3339 string or Unix milliseconds, got boolean"},
		{`{}`, time.Time{}, "got object"},
	}
	for _, tt := range tests {
		got, msg := parseTime([]byte(tt.raw), testNow)
		switch {
		case tt.wantMsg == "" && (msg != "" || !got.Equal(tt.want) || got.Location() != time.UTC):
			t.Errorf("parseTime(%s) = %v, %q; want %v", tt.raw, got, msg, tt.want)
		case tt.wantMsg != "" && !strings.Contains(msg, tt.wantMsg):
			t.Errorf("parseTime(%s) = %v, %q; want error containing %q", tt.raw, got, msg, tt.wantMsg)
		}
	}
}

func TestNormalizeSeverity(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for not ok
	}{
		{"INFO", "INFO"}, {"info", "INFO"}, {"Information", "INFO"}, {"notice", "INFO"},
		{"trace", "TRACE"}, {"TRACE3", "TRACE"}, {"debug", "DEBUG"}, {"Debug4", "DEBUG"}, {"verbose", "DEBUG"},
		{"warn", "WARN"}, {"Warning", "WARN"}, {"WARNING", "WARN"}, {"warn2", "WARN"},
		{"error", "ERROR"}, {"err", "ERROR"}, {"ERR", "ERROR"}, {"severe", "ERROR"},
		{"fatal", "FATAL"}, {"critical", "FATAL"}, {"CRIT", "FATAL"}, {"emerg", "FATAL"}, {"panic", "FATAL"},
		{"", ""}, {"loud", ""}, {"info5", ""}, {"warning2", ""}, {"err2", ""}, {"INFO ", ""},
		{strings.Repeat("i", 40), ""},
	}
	for _, tt := range tests {
		got, ok := NormalizeSeverity(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("NormalizeSeverity(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
	for n, want := range map[int]string{1: "TRACE", 4: "TRACE", 5: "DEBUG", 9: "INFO", 12: "INFO", 13: "WARN", 17: "ERROR", 21: "FATAL", 24: "FATAL"} {
		if got, ok := severityFromNumber(n); got != want || !ok {
			t.Errorf("severityFromNumber(%d) = %q, %v; want %q", n, got, ok, want)
		}
	}
}

func TestFingerprintMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"timeout after 1532ms for order 8812", "timeout after <num>ms for order <num>"},
		{"timeout after 20ms for order 1", "timeout after <num>ms for order <num>"},
		{"user 6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6 not found", "user <uuid> not found"},
		{"user 6F1C2A8E-3B4D-4C5E-9F60-718293A4B5C6", "user <uuid>"},
		{"6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6x", "<hex>-<num>b<num>d-<num>c<num>e-<num>f<num>-<num>a<num>b<num>c<num>x"}, // glued to a letter: no UUID
		{"bad pointer 0x7ffe12ab and 0XFF", "bad pointer <hex> and <hex>"},
		{"commit 9f2c1e7 failed", "commit <hex> failed"},
		{"trace 4bf92f3577b34da6a3ce929d0e0e4736", "trace <hex>"},
		{"pod api-7d9f8c6b5-x2k4p", "pod api-<hex>-x<num>k<num>p"},
		{"dial tcp 10.0.3.17:5432", "dial tcp <num>.<num>.<num>.<num>:<num>"},
		{"took 1.5s", "took <num>.<num>s"},
		{"user_8812 and order-17", "user_<num> and order-<num>"},
		{"added a decade ago", "added a decade ago"}, // hex letters without a digit stay
		{"a1 b2 cafe12", "a<num> b<num> <hex>"},
		{"naïve 42 ünïcode", "naïve <num> ünïcode"},
		{"", ""},
		{"no numbers here", "no numbers here"},
	}
	for _, tt := range tests {
		if got := FingerprintMessage(tt.in); got != tt.want {
			t.Errorf("FingerprintMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}

	same := [][2]string{
		{"timeout after 1532ms for order 8812", "timeout after 20ms for order 1"},
		{"session 0xdeadbeef expired", "session 0x12 expired"},
	}
	for _, p := range same {
		if Fingerprint("svc", "T", p[0]) != Fingerprint("svc", "T", p[1]) {
			t.Errorf("Fingerprint differs for %q and %q", p[0], p[1])
		}
	}
	fp := Fingerprint("svc", "T", "boom")
	for _, other := range []string{Fingerprint("svc2", "T", "boom"), Fingerprint("svc", "U", "boom"),
		Fingerprint("svc", "T", "bang"), Fingerprint("svcT", "", "boom"), Fingerprint("sv", "cT", "boom")} {
		if other == fp {
			t.Errorf("Fingerprint collides: %s", fp)
		}
	}
	if len(fp) != 32 {
		t.Errorf("Fingerprint = %q, want 32 hex digits", fp)
	}
}

// TestDerivedIDs checks that a record without an id gets the same id however
// it is spelled, and a different one when anything about it changes.
func TestDerivedIDs(t *testing.T) {
	tests := []struct {
		kind event.Kind
		base string
		same []string // equivalent spellings of base
		diff []string // each differs from base in one field
	}{
		{
			kind: event.KindChanges,
			base: `{"time":"2025-06-01T10:00:00Z","kind":"deploy","service":"a","version":"v2","attributes":{"x":"1","y":"2"}}`,
			same: []string{
				`{"attributes":{"y":"2","x":"1"},"version":"v2","service":"a","kind":"deploy","time":"2025-06-01T10:00:00Z"}`,
				`{"time":"2025-06-01T12:00:00+02:00","kind":"DEPLOY","service":"a","version":"v2","attributes":{"x":1,"y":"2"}}`,
				`{"time":1748772000000,"kind":"deploy","service":"a","version":"v2","x":"1","y":"2"}`,
				`{"time":"2025-06-01T10:00:00Z","kind":"deploy","service":"a","version":"v2","environment":null,"id":"","attributes":{"x":"1","y":"2","z":null}}`,
			},
			diff: []string{
				`{"time":"2025-06-01T10:00:00.001Z","kind":"deploy","service":"a","version":"v2","attributes":{"x":"1","y":"2"}}`,
				`{"time":"2025-06-01T10:00:00Z","kind":"flag","service":"a","version":"v2","attributes":{"x":"1","y":"2"}}`,
				`{"time":"2025-06-01T10:00:00Z","kind":"deploy","service":"b","version":"v2","attributes":{"x":"1","y":"2"}}`,
				`{"time":"2025-06-01T10:00:00Z","kind":"deploy","service":"a","version":"v3","attributes":{"x":"1","y":"2"}}`,
				`{"time":"2025-06-01T10:00:00Z","kind":"deploy","service":"a","previous_version":"v2","attributes":{"x":"1","y":"2"}}`,
				`{"time":"2025-06-01T10:00:00Z","kind":"deploy","service":"a","version":"v2","author":"bob","attributes":{"x":"1","y":"2"}}`,
				`{"time":"2025-06-01T10:00:00Z","kind":"deploy","service":"a","version":"v2","attributes":{"x":"1","y":"3"}}`,
				`{"time":"2025-06-01T10:00:00Z","kind":"deploy","service":"a","version":"v2","attributes":{"x":"1","y":"2","z":""}}`,
				`{"time":"2025-06-01T10:00:00Z","kind":"deploy","service":"a","version":"v2","attributes":{"x":"1","y":"2","xy":""}}`,
				`{"time":"2025-06-01T10:00:00Z","kind":"deploy","service":"a","version":"v2","attributes":{"x":"12"}}`,
			},
		},
		{
			kind: event.KindErrors,
			base: `{"time":"2025-06-01T10:00:00Z","service":"a","type":"E","message":"boom 1"}`,
			same: []string{
				`{"message":"boom 1","type":"E","service":"a","time":"2025-06-01T10:00:00Z","level":"error","sample_rate":1}`,
				`{"time":"2025-06-01T10:00:00Z","service":"a","type":"E","message":"boom 1","level":"ERR"}`,
			},
			diff: []string{
				`{"time":"2025-06-01T10:00:00Z","service":"a","type":"E","message":"boom 2"}`, // same fingerprint, other message
				`{"time":"2025-06-01T10:00:00Z","service":"a","type":"E","message":"boom 1","sample_rate":0.5}`,
				`{"time":"2025-06-01T10:00:00Z","service":"a","type":"E","message":"boom 1","level":"fatal"}`,
				`{"time":"2025-06-01T10:00:00Z","service":"a","type":"E","message":"boom 1","user_id":"u"}`,
				`{"time":"2025-06-01T10:00:00Z","service":"a","type":"E","message":"boom 1","customer_id":"u"}`,
				`{"time":"2025-06-01T10:00:00Z","service":"a","type":"E","message":"boom 1","fingerprint":"f"}`,
			},
		},
		{
			kind: event.KindLogs,
			base: `{"time":"2025-06-01T10:00:00Z","service":"a","body":"hello","severity":"WARN"}`,
			same: []string{
				`{"time":"2025-06-01T10:00:00Z","service":"a","body":"hello","severity":"warning"}`,
				`{"time":"2025-06-01T10:00:00Z","service":"a","body":"hello","severity":13}`,
			},
			diff: []string{
				`{"time":"2025-06-01T10:00:00Z","service":"a","body":"hello","severity":"ERROR"}`,
				`{"time":"2025-06-01T10:00:00Z","service":"a","body":"hello!","severity":"WARN"}`,
				`{"time":"2025-06-01T10:00:00Z","service":"a","body":"hello","severity":"WARN","span_id":"1"}`,
				`{"time":"2025-06-01T10:00:00Z","service":"a","body":"hello","severity":"WARN","user_id":"1"}`,
				`{"time":"2025-06-01T10:00:00Z","service":"a","body":"hello","severity":"WARN","customer_id":"1"}`,
			},
		},
	}
	id := func(t *testing.T, kind event.Kind, line string) string {
		t.Helper()
		res, b, err := decodeAll(t, kind, line, testOptions())
		if err != nil || res.Accepted != 1 {
			t.Fatalf("decode %s: %+v, %v", line, res, err)
		}
		switch kind {
		case event.KindChanges:
			return b.Changes[0].ID
		case event.KindErrors:
			return b.Errors[0].ID
		default:
			return b.Logs[0].ID
		}
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			base := id(t, tt.kind, tt.base)
			if len(base) != 32 {
				t.Errorf("id %q, want 32 hex digits", base)
			}
			if again := id(t, tt.kind, tt.base); again != base {
				t.Errorf("same record, different ids: %s, %s", base, again)
			}
			for _, s := range tt.same {
				if got := id(t, tt.kind, s); got != base {
					t.Errorf("id of %s = %s, want %s as for %s", s, got, base, tt.base)
				}
			}
			seen := map[string]string{base: tt.base}
			for _, s := range tt.diff {
				got := id(t, tt.kind, s)
				if prev, ok := seen[got]; ok {
					t.Errorf("id of %s = %s, the same as for %s", s, got, prev)
				}
				seen[got] = s
			}
		})
	}

	// An explicit id is kept as sent.
	_, b, _ := decodeAll(t, event.KindLogs, `{"id":"mine","time":"2025-06-01T10:00:00Z","service":"a","body":""}`, testOptions())
	if len(b.Logs) != 1 || b.Logs[0].ID != "mine" {
		t.Errorf("explicit id not kept: %+v", b.Logs)
	}
}

func TestUnknownFields(t *testing.T) {
	_, b, err := decodeAll(t, event.KindErrors,
		`{"time":"2025-06-01T10:00:00Z","service":"a","browser":"firefox","retries":3,"ok":false,"gone":null,`+
			`"tags":[ "a", 1 ],"ctx":{ "k" : "v" },"dup":"1","dup":"2","attributes":{"browser":"chrome"}}`, testOptions())
	if err != nil || len(b.Errors) != 1 {
		t.Fatalf("Decode: %+v, %v", b, err)
	}
	want := map[string]string{"browser": "chrome", "retries": "3", "ok": "false", "tags": `["a",1]`, "ctx": `{"k":"v"}`, "dup": "2"}
	if got := b.Errors[0].Attributes; !reflect.DeepEqual(got, want) {
		t.Errorf("attributes = %v, want %v", got, want)
	}

	_, b, _ = decodeAll(t, event.KindMetrics, `{"time":"2025-06-01T10:00:00Z","service":"a","name":"up","value":1,"pod":"p-1","labels":{"zone":"b"}}`, testOptions())
	if want := map[string]string{"pod": "p-1", "zone": "b"}; len(b.Metrics) != 1 || !reflect.DeepEqual(b.Metrics[0].Labels, want) {
		t.Errorf("labels = %+v, want %v", b.Metrics, want)
	}
}

func TestTruncation(t *testing.T) {
	long := strings.Repeat("é", maxText) // 2 bytes each: twice the limit
	line := `{"time":"2025-06-01T10:00:00Z","service":"a","message":"` + long + `","attributes":{"stack":"` + long + `"}}`
	_, b, err := decodeAll(t, event.KindErrors, line, testOptions())
	if err != nil || len(b.Errors) != 1 {
		t.Fatalf("Decode: %v, %d records", err, b.Len())
	}
	for _, s := range []string{b.Errors[0].Message, b.Errors[0].Attributes["stack"]} {
		if len(s) > maxText || !strings.HasSuffix(s, truncMarker) || !strings.HasPrefix(s, "éé") || strings.ContainsRune(s, '\uFFFD') {
			t.Errorf("truncated to %d bytes ending %q, want at most %d ending in the marker on a rune boundary", len(s), s[len(s)-20:], maxText)
		}
	}
}

func TestInvalidUTF8(t *testing.T) {
	line := "{\"time\":\"2025-06-01T10:00:00Z\",\"service\":\"a\xff\",\"body\":\"b\xc3\",\"x\":{\"k\":\"\xfe\"}}"
	_, b, err := decodeAll(t, event.KindLogs, line, testOptions())
	if err != nil || len(b.Logs) != 1 {
		t.Fatalf("Decode: %v, %d records", err, b.Len())
	}
	l := b.Logs[0]
	if l.Service != "a\uFFFD" || l.Body != "b\uFFFD" || l.Attributes["x"] != "{\"k\":\"\uFFFD\"}" {
		t.Errorf("got %q %q %q, want U+FFFD in place of invalid bytes", l.Service, l.Body, l.Attributes["x"])
	}
}

// TestChunking checks that batches hold ChunkSize records, in input order,
// with bad records skipped rather than leaving gaps.
func TestChunking(t *testing.T) {
	var in strings.Builder
	const n = 23
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, `{"time":"2025-06-01T10:00:00Z","service":"a","name":"m","value":%d}`+"\n", i)
		if i == 10 {
			in.WriteString("{bad\n")
		}
	}
	for _, input := range []string{in.String(), toArray(in.String())} {
		var sizes []int
		var values []float64
		res, err := Decode(context.Background(), event.KindMetrics, strings.NewReader(input), Options{ChunkSize: 5, Now: testOptions().Now},
			func(b *event.Batch) error {
				sizes = append(sizes, b.Len())
				for _, m := range b.Metrics {
					values = append(values, m.Value)
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{5, 5, 5, 5, 3}; !reflect.DeepEqual(sizes, want) {
			t.Errorf("batch sizes %v, want %v", sizes, want)
		}
		for i, v := range values {
			if v != float64(i) {
				t.Fatalf("values out of order: %v", values)
			}
		}
		if len(values) != n || res.Accepted != n {
			t.Errorf("got %d values, accepted %d; want %d", len(values), res.Accepted, n)
		}
	}
}

// toArray turns NDJSON into a JSON array, one element per line; a line that
// is not valid JSON stays as it is and breaks the array.
func toArray(ndjson string) string {
	lines := strings.Split(strings.TrimSpace(ndjson), "\n")
	var good []string
	for _, l := range lines {
		if json.Valid([]byte(l)) {
			good = append(good, l)
		}
	}
	return "[\n" + strings.Join(good, ",\n") + "\n]\n"
}

func TestEmitErrorAborts(t *testing.T) {
	var in strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&in, `{"time":"2025-06-01T10:00:00Z","service":"a","body":"%d"}`+"\n", i)
	}
	in.WriteString("not json\n")
	errFull := errors.New("store full")
	calls := 0
	res, err := Decode(context.Background(), event.KindLogs, strings.NewReader(in.String()), Options{ChunkSize: 4, Now: testOptions().Now},
		func(b *event.Batch) error {
			calls++
			if calls == 3 {
				return errFull
			}
			return nil
		})
	if !errors.Is(err, errFull) {
		t.Fatalf("err = %v, want %v", err, errFull)
	}
	// Two batches of four went through; the third was refused and nothing
	// after it was read.
	if calls != 3 || res.Accepted != 8 || res.Rejected != 0 {
		t.Errorf("calls %d, result %+v; want 3 calls, 8 accepted, 0 rejected", calls, res)
	}
}

func TestContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	input := strings.Repeat(`{"time":"2025-06-01T10:00:00Z","service":"a","body":"x"}`+"\n", 100)
	res, err := Decode(ctx, event.KindLogs, strings.NewReader(input), Options{ChunkSize: 10, Now: testOptions().Now},
		func(*event.Batch) error {
			calls++
			cancel()
			return nil
		})
	if !errors.Is(err, context.Canceled) || calls != 1 || res.Accepted != 10 {
		t.Errorf("got %+v, %v after %d calls; want context.Canceled after the first batch", res, err, calls)
	}
}

func TestMaxErrors(t *testing.T) {
	input := strings.Repeat("{}\n", 10)
	for _, tt := range []struct{ max, want int }{{0, 10}, {3, 3}, {-1, 0}} {
		res, _, _ := decodeAll(t, event.KindServices, input, Options{MaxErrors: tt.max})
		if res.Rejected != 10 || len(res.Errors) != tt.want {
			t.Errorf("MaxErrors %d: rejected %d, %d errors kept; want 10, %d", tt.max, res.Rejected, len(res.Errors), tt.want)
		}
	}
}

func TestUnknownKind(t *testing.T) {
	if _, err := Decode(context.Background(), "traces", strings.NewReader("{}"), Options{}, func(*event.Batch) error { return nil }); err == nil {
		t.Error("Decode of kind traces: no error")
	}
}

// errReader fails after its data.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadError(t *testing.T) {
	errBroken := errors.New("connection reset")
	for _, input := range []string{`{"service":"a"}` + "\n" + `{"serv`, `[{"service":"a"}, {"serv`} {
		res, err := Decode(context.Background(), event.KindServices, &errReader{[]byte(input), errBroken}, testOptions(), func(*event.Batch) error { return nil })
		if !errors.Is(err, errBroken) || res.Accepted != 0 {
			t.Errorf("input %q: got %+v, %v; want %v and nothing accepted", input, res, err, errBroken)
		}
	}
}
