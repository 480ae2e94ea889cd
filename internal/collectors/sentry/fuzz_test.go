package sentry

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

// The seeds are real payloads of several KiB, which the fuzzer is slow to
// minimise: run with -fuzzminimizetime 2s, e.g.
//
//	go test -run '^$' -fuzz '^FuzzMapEvent$' -fuzztime 30s -fuzzminimizetime 2s ./internal/collectors/sentry/

// seed adds every file matching pattern to the corpus.
func seed(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(p)
		for _, file := range files {
			f.Add(readFile(f, file))
		}
	}
}

// FuzzParseEnvelope: the envelope parser never panics, returns the items it
// read even with an error, and items alias the input within bounds.
func FuzzParseEnvelope(f *testing.F) {
	seed(f, "testdata/envelopes/*.envelope")
	f.Add([]byte("{}\n{\"type\":\"event\",\"length\":3}\n{}\n"))
	f.Add([]byte("{}\n{\"type\":\"event\",\"length\":18446744073709551615}\n"))
	f.Add([]byte("{}\n\n\n{\"type\":\"x\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := parseEnvelope(b)
		if env == nil {
			t.Fatal("nil envelope")
		}
		total := 0
		for _, it := range env.Items {
			if it.Type == "" {
				t.Fatal("item without a type")
			}
			total += len(it.Payload)
		}
		if total > len(b) {
			t.Fatalf("payloads (%d bytes) longer than the input (%d)", total, len(b))
		}
		var ee *EnvelopeError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("error %T is not an EnvelopeError", err)
		}
	})
}

// FuzzMapEvent: any payload either maps to a valid record or gives an
// error; it never panics, and a record always has what the store needs.
func FuzzMapEvent(f *testing.F) {
	seed(f, "testdata/events/*.json")
	f.Add([]byte(`{"exception":[{"type":"E","stacktrace":{"frames":[{"function":"f","in_app":true,"lineno":1}]}}],"tags":[["a",1],{"key":"b","value":null}]}`))
	f.Add([]byte(`{"timestamp":1e308}`))
	f.Add([]byte(`{"timestamp":"NaN"}`))
	f.Add([]byte(`{"fingerprint":["{{ default }}",1,true]}`))
	f.Add([]byte(`{"user":{"id":1e400}}`))
	m := newMapper(testConfig().withDefaults())
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, project := range []string{"42", ""} {
			rec, err := m.toRecord(b, origin{project: project, fallbackTime: testNow, now: testNow})
			if err != nil {
				continue
			}
			if len(rec.ID) != 32 || rec.Service == "" || rec.Fingerprint == "" || rec.Level == "" {
				t.Fatalf("incomplete record %+v", rec)
			}
			if rec.SampleRate <= 0 || rec.SampleRate > 1 {
				t.Fatalf("sample rate %v", rec.SampleRate)
			}
			if rec.Time.Before(minTime) || rec.Time.After(testNow.Add(24*60*60*1e9)) {
				t.Fatalf("time %v out of bounds", rec.Time)
			}
			if len(rec.Message) > maxText || len(rec.Type) > maxValue || len(rec.Release) > maxIdent {
				t.Fatal("a field exceeds its limit")
			}
			if !utf8.ValidString(rec.Message) {
				t.Fatalf("message is not UTF-8: %q", rec.Message)
			}
		}
	})
}

// FuzzIntakeStore runs the whole handler: decompression, the legacy
// base64 form and the mapping, with whatever body.
func FuzzIntakeStore(f *testing.F) {
	seed(f, "testdata/events/*.json")
	f.Add([]byte("eJyrVkrLz1eyUkpKLFKqBQAbDwQ9"))
	rec := &recorder{}
	in, err := NewIntake(testConfig(), rec, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	in.now = func() time.Time { return testNow }
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, path := range []string{"/api/42/store/", "/api/42/envelope/"} {
			req := httptest.NewRequest(http.MethodPost, path+"?sentry_key="+testKey, bytes.NewReader(b))
			w := httptest.NewRecorder()
			in.ServeHTTP(w, req)
			switch w.Code {
			case 200, 400, 403, 413:
			default:
				t.Fatalf("%s: status %d: %s", path, w.Code, w.Body)
			}
		}
	})
}

// FuzzHeaders covers the small parsers of header values.
func FuzzHeaders(f *testing.F) {
	f.Add(`<https://sentry.io/api/0/x/?cursor=0:25:0>; rel="next"; results="true"; cursor="0:25:0"`)
	f.Add("Sentry sentry_key=abc, sentry_version=7")
	f.Add("https://e12d@o1.ingest.sentry.io/42")
	f.Add("<<<,>;;=,")
	f.Fuzz(func(t *testing.T, s string) {
		nextCursor(s)
		authKey(s)
		if k, p, err := parseDSN(s); err == nil && (k == "" || !isDigits(p)) {
			t.Fatalf("parseDSN(%q) = %q, %q without error", s, k, p)
		}
		if id, ok := normalizeEventID(s); ok && !isHex(id, 32) {
			t.Fatalf("normalizeEventID(%q) = %q", s, id)
		}
	})
}
