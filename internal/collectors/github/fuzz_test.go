package github

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/collectors/collectortest"
	"github.com/correlator/correlator/internal/event"
)

// Run one target at a time, e.g.
//
//	go test -run '^$' -fuzz '^FuzzWebhook$' -fuzztime 20s -fuzzminimizetime 2s ./internal/collectors/github/
//
// (the seeds are payloads of a few KiB, which the default minimisation
// budget of a minute per input spends the whole run on).

const fuzzSecret = "It's a Secret to Everybody"

// fuzzConfig picks a configuration from the low bits of opts, so that the
// fuzzer reaches every branch of the receiver.
func fuzzConfig(opts uint8) Config {
	c := Config{
		Secret: fuzzSecret,
		Repositories: map[string]Repository{
			"octocat/example": {Service: "example", Environment: "production"},
			"octocat/any-env": {Service: "any"},
		},
		Version:  []string{"auto", "ref", "sha", ""}[opts&3],
		Releases: []string{"skip", "deploy"}[opts>>2&1],
	}
	if opts&8 != 0 {
		c.UnknownRepositories = "reject"
	}
	if opts&16 != 0 {
		c.APIURL = "https://github.example.com/api/v3"
	}
	return c
}

// FuzzWebhook drives the whole receiver with a correctly signed body (or,
// when opts has its top bit set, with the fuzzed signature header): it
// never panics, answers 2xx or 4xx (5xx only when the writer fails), says
// what is wrong in every 4xx, and writes only valid changes.
func FuzzWebhook(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		// Compact seeds keep the fuzzer's minimisation short.
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		b := buf.Bytes()
		for _, ev := range []string{"deployment_status", "release"} {
			f.Add(ev, b, "", uint8(0))
			f.Add(ev, b, "", uint8(4))
		}
	}
	for _, s := range []struct {
		ev, body string
		opts     uint8
	}{
		{"ping", `{"zen":"Keep it logically awesome.","hook_id":1}`, 0},
		{"push", `{}`, 0},
		{"deployment_status", `{"repository":{"full_name":"octocat/example"},"deployment":{"ref":"v1.2.3","sha":"b3a5c1e0f9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4","environment":"production"},"deployment_status":{"state":"success"}}`, 0},
		{"deployment_status", `{"repository":{"full_name":"OctoCat/Any-Env"},"deployment":{"ref":"main","sha":"abc1234","environment":" Staging ","created_at":"2026-11-21T10:00:00Z"},"deployment_status":{"state":"FAILURE","description":"boom","created_at":"2026-11-21T10:01:00+02:00"}}`, 1},
		{"deployment_status", `{"repository":{"full_name":"octocat/example"},"deployment":null,"deployment_status":{"state":"success"}}`, 0},
		{"deployment_status", `{"repository":{"full_name":"nobody/else"}}`, 8},
		{"deployment_status", `{"repository":{"full_name":"octocat/example"},"deployment":{"id":1e30}}`, 0},
		{"deployment_status", `{"repository":{"full_name":"octocat/example"},"deployment":{"environment":"production","created_at":"0000-01-01T00:00:00Z"},"deployment_status":{"state":"error","created_at":"9999-12-31T23:59:59.999999999-23:59"}}`, 2},
		{"release", `{"action":"published","repository":{"full_name":"octocat/any-env"},"release":{"tag_name":"v2","target_commitish":"main","published_at":"2026-11-21T10:00:00Z"}}`, 4},
		{"release", `{"action":"published","repository":{"full_name":"octocat/example"},"release":{"tag_name":"v2","draft":true}}`, 4},
		{"release", `{"action":"published","repository":{"full_name":"octocat/example"},"release":{"tag_name":"v3"}}`, 4},
		{"release", `[1,2,3]`, 4},
		{"release", `{"action":"published"`, 4},
		{"deployment_status", `{}`, 0x80},
	} {
		f.Add(s.ev, []byte(s.body), "", s.opts)
	}
	f.Add("deployment_status", []byte(`{}`), "sha256=00", uint8(0x80))
	f.Add("deployment_status", []byte(`{}`), "sha256="+changes.SignHMACSHA256(fuzzSecret, []byte(`{}`)), uint8(0x80))

	f.Fuzz(func(t *testing.T, ev string, body []byte, sig string, opts uint8) {
		fw := &collectortest.Writer{Fail: opts&32 != 0}
		h, err := NewWebhook(fuzzConfig(opts), fw, nil)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/collect/github", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", ev)
		signed := opts&0x80 == 0
		if signed {
			req.Header.Set("X-Hub-Signature-256", "sha256="+changes.SignHMACSHA256(fuzzSecret, body))
		} else {
			req.Header.Set("X-Hub-Signature-256", sig)
			s, ok := strings.CutPrefix(sig, "sha256=")
			signed = ok && changes.ValidHMACSHA256(fuzzSecret, body, s)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		rep := fuzzReply(t, rec, fw)
		if !signed && rec.Code != http.StatusUnauthorized {
			t.Fatalf("bad signature %q answered %d", sig, rec.Code)
		}
		if rec.Code == http.StatusOK && rep.Status == "pong" && ev != "ping" {
			t.Fatalf("pong to event %q", ev)
		}
		for _, c := range fw.Changes() {
			if c.Kind != event.ChangeDeploy || c.Source != Source || (c.Service != "example" && c.Service != "any") {
				t.Fatalf("unexpected change %+v", c)
			}
			if c.Attributes[changes.StatusAttr] != changes.StatusSucceeded && c.Attributes[changes.StatusAttr] != changes.StatusFailed {
				t.Fatalf("status attribute %q", c.Attributes[changes.StatusAttr])
			}
		}
	})
}

// fuzzReply checks the answer of the receiver against what the writer saw
// and returns it: a 200 "pong" (the answer to a ping) after writing
// nothing, or what collectortest.CheckReply checks of every change
// receiver.
func fuzzReply(t *testing.T, rec *httptest.ResponseRecorder, fw *collectortest.Writer) collectortest.Reply {
	t.Helper()
	if rep := collectortest.ReadReply(t, rec); rec.Code == http.StatusOK && rep.Status == "pong" {
		if fw.Calls() != 0 {
			t.Fatal("pong after writing")
		}
		return rep
	}
	return collectortest.CheckReply(t, rec, fw, changes.Validate)
}
