package changes

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/collectors/collectortest"
	"github.com/correlator/correlator/internal/event"
)

// Run one target at a time, e.g.
//
//	go test -run '^$' -fuzz '^FuzzWebhook$' -fuzztime 20s ./internal/collectors/changes/

var fuzzNow = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

const fuzzSecret = "s3cret"

// fuzzTemplates are the template modes FuzzWebhook tries: none (the
// change shape), an array of items, one item, and items in an array
// reached through an index.
var fuzzTemplates = []*Template{
	nil,
	{
		Items: "builds",
		Fields: map[string]string{
			"service": "job.service", "version": "tag", "commit": "scm.commits.0", "time": "finished",
			"author": "user.name", "attributes.pipeline": "job.name", "attributes.number": "number",
		},
		Static: map[string]string{"environment": "production"},
	},
	{
		Fields: map[string]string{"service": "svc", "kind": "kind", "time": "at", "title": "title", "url": "link", "id": "id"},
		Static: map[string]string{"source": "ci", "attributes.team": "core"},
	},
	{
		Items:  "data.0.changes",
		Fields: map[string]string{"service": "s", "environment": "e", "version": "v", "previous_version": "p"},
		Static: map[string]string{"kind": "Rollback"},
	},
}

// FuzzWebhook drives the generic webhook, with and without its template
// modes: it never panics, answers 2xx or 4xx (5xx only when the writer
// fails), says what is wrong in every 4xx, and writes only valid changes.
func FuzzWebhook(f *testing.F) {
	for _, s := range []struct {
		body string
		opts uint8
	}{
		{`{"kind":"Deploy","service":"api","environment":"production","version":"v2","attributes":{"pr":"9"}}`, 0},
		{`[{"time":1795000000,"kind":"config","service":"api","title":"pool"},{"time":"2026-11-21T09:00:00Z","kind":"flag","service":"web","id":"mine"}]`, 1},
		{`{"kind":"deploy"}`, 0},
		{`{"kind":"release","service":"a"}`, 0},
		{`{"kind":"deploy","service":"a","time":"soon"}`, 0},
		{`{"kind":"deploy","service":"a","time":-5e300}`, 0},
		{`{"kind":"deploy","service":"a","time":1e19}`, 0},
		{`{"kind":"deploy","service":"a","time":"-62135596800"}`, 0},
		{`{"kind":"deploy","service":"a","time":"-2562047h"}`, 0},
		{`{"kind":"deploy","service":"a","time":{"x":1}}`, 0},
		{`{"kind":"deploy","service":"a","attributes":{"k":1}}`, 0},
		{`{"kind":"deploy","service":"a"} {}`, 0},
		{`{"kind":`, 0},
		{`[{"kind":"deploy","service":"a"},{}]`, 0},
		{`[]`, 0},
		{`null`, 0},
		{"", 0},
		{`{"kind":"deploy","service":"api"}`, 2 | 1},
		{`{"kind":"deploy","service":"api","title":"` + strings.Repeat("x", 100) + `"}`, 4},
		{`{"kind":"deploy","service":"api"}`, 8},
		{`{"builds":[{"job":{"service":"api","name":"deploy-api"},"tag":"v7","scm":{"commits":["a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"]},"finished":1795000000123,"user":{"name":"ci"},"number":42},{"job":{"service":"web"},"tag":"v8","user":null}]}`, 1 << 4},
		{`{"builds":[{"job":{"service":{"x":1}}}]}`, 1 << 4},
		{`{"builds":{"job":1}}`, 1 << 4},
		{`{"other":1}`, 1 << 4},
		{`{"builds":[1,"a",null,[]]}`, 1 << 4},
		{`{"svc":"api","kind":"Infra","at":"2026-11-21T10:00:00.5+01:00","title":"t","link":"https://x","id":"e-1"}`, 2 << 4},
		{`{"svc":"api","kind":"bogus","at":true}`, 2 << 4},
		{`{"svc":12.5e3,"at":-1e3}`, 2 << 4},
		{`{"data":[{"changes":[{"s":"api","e":"prod","v":"v1.2.3","p":"v1.2.2"}]}]}`, 3 << 4},
		{`{"data":[{"changes":[{"s":"","v":1}]}]}`, 3 << 4},
		{`{"data":{"0":{"changes":[]}}}`, 3 << 4},
	} {
		f.Add([]byte(s.body), s.opts)
	}
	f.Fuzz(func(t *testing.T, body []byte, opts uint8) {
		cfg := WebhookConfig{Name: "fuzz", Template: fuzzTemplates[opts>>4&3]}
		withSecret := opts&1 != 0
		if withSecret {
			cfg.Secret = fuzzSecret
		}
		if opts&4 != 0 {
			cfg.MaxBody = 64
		}
		fw := &collectortest.Writer{Fail: opts&8 != 0}
		h, err := NewWebhook(cfg, fw, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.now = func() time.Time { return fuzzNow }
		req := httptest.NewRequest(http.MethodPost, "/collect/webhook/fuzz", bytes.NewReader(body))
		wrongSecret := opts&2 != 0
		if wrongSecret {
			req.Header.Set(SecretHeader, "not the secret")
		} else {
			req.Header.Set("Authorization", "Bearer "+fuzzSecret)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		collectortest.CheckReply(t, rec, fw, Validate)
		if opts&4 != 0 && len(body) > 64 && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("%d bytes over a limit of 64 answered %d", len(body), rec.Code)
		}
		if withSecret && wrongSecret && rec.Code/100 == 2 {
			t.Fatalf("wrong secret answered %d", rec.Code)
		}
		for _, c := range fw.Changes() {
			if cfg.Template == nil && c.Source == "" {
				t.Fatalf("change without a source %+v", c)
			}
		}
	})
}

// FuzzWebhookTemplate fuzzes the template's paths along with the body.
func FuzzWebhookTemplate(f *testing.F) {
	f.Add([]byte(`{"builds":[{"job":{"service":"api"},"finished":1795000000123,"kind":"deploy","n":[1,2]}]}`), "builds", "job.service", "finished", "kind", "n.1")
	f.Add([]byte(`{"job":{"service":"api"},"finished":"2026-11-21T10:00:00Z"}`), "", "job.service", "finished", "", "")
	f.Add([]byte(`[{"s":"a"},{"s":"b","t":"-5m"}]`), "", "s", "t", "k", "")
	f.Add([]byte(`[[{"s":"a"}]]`), "0", "s", "", "", "")
	f.Add([]byte(`{"a":{"":{"b":"api"}}}`), "", "a..b", "", "", "a")
	f.Add([]byte(`{"x":[{"s":"api"}]}`), "x.-1", "s", "", "", "x.99999999999999999999")
	f.Fuzz(func(t *testing.T, body []byte, items, service, tm, kind, attr string) {
		tpl := &Template{Items: items, Fields: map[string]string{"service": service, "time": tm, "kind": kind, "attributes.x": attr}}
		fw := &collectortest.Writer{}
		h, err := NewWebhook(WebhookConfig{Name: "fuzz", Template: tpl}, fw, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.now = func() time.Time { return fuzzNow }
		req := httptest.NewRequest(http.MethodPost, "/collect/webhook/fuzz", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		collectortest.CheckReply(t, rec, fw, Validate)
		for _, c := range fw.Changes() {
			if c.Source != "fuzz" {
				t.Fatalf("source %q, want the webhook's name", c.Source)
			}
		}
	})
}

// FuzzParseMarkArgs: the arguments of `correlator mark` (one a line) give
// a valid change or an error that says what is wrong; never a panic.
func FuzzParseMarkArgs(f *testing.F) {
	for _, s := range []struct{ kind, args string }{
		{"deploy", "--service\napi\n--version\nv1.4.2\n--previous\nv1.4.1\n--env\nproduction\n--commit\na84d88e\n--title\nShip it\n--at\n2026-11-21T10:00:00Z\n--url\nhttps://ci.example.com/run/7\n--attr\npipeline=deploy-prod\n--attr\npr=81"},
		{"flag", "--service=checkout\n--flag\nnew-cart\n--old\n10\n--new\ntrue\n--env\nproduction"},
		{"config", "--service\napi\n--key\npool_size\n--old\n10\n--new\n50\n--version\ncfg-42"},
		{"infra", "--service=db\n--at=-90m\n--attr=region=eu"},
		{"Rollback", "--service= api \n--commit=A84D88E7554FC1FA21BCBC4EFAE3C782A70D2B9D\n--at=1795000000123"},
		{"deploy", ""},
		{"flag", "--service\napi\n--flag\nf\n--new\nhalf"},
		{"flag", "--service\napi\n--flag\nf\n--new\nNaN%\n--old\n200%"},
		{"flag", "--service\napi\n--flag\nf\n--new\n99.9999\n--old\n0.0001%"},
		{"deploy", "--service\napi\n--version\n1\n--at\n9223372036854775807"},
		{"deploy", "--service\napi\n--version\n1\n--url\nci/run/7"},
		{"deploy", "--service\napi\n--version\n1\n--bogus"},
		{"deploy", "--service\napi\nv1"},
		{"deploy", "--service\napi\n--version\n1\n--attr\nnovalue"},
		{"deploy", "-h"},
		{"deploy", "--source=\n--service=a\n--version=1"},
		{"release", "--service\napi"},
	} {
		f.Add(s.kind, s.args)
	}
	f.Fuzz(func(t *testing.T, kind, args string) {
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\n")
		}
		c, err := ParseMarkArgs(kind, argv)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("an empty error")
			}
			return
		}
		if !slices.Contains(MarkKinds, string(c.Kind)) || strings.TrimSpace(c.Service) == "" || c.Time.IsZero() || c.Source == "" {
			t.Fatalf("invalid change %+v", c)
		}
		if v := c; Validate(&v) != nil {
			t.Fatalf("change does not validate: %v\n%+v", Validate(&v), c)
		}
		if c.ID != IdentityID(&c) {
			t.Fatalf("id %q, want the identity %q", c.ID, IdentityID(&c))
		}
		if c.Kind == event.ChangeFlag {
			fuzzCheckFlagStates(t, c)
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("change cannot be encoded: %v\n%+v", err, c)
		}
	})
}

// FuzzParseTime: ParseTime gives a time in UTC, or an error naming the
// input; never a panic.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"", "now", " now ", "-5m", "-1h30m", "--5m", "-9223372036854775807ns", "1795000000", "1795000000123",
		"-1", "9223372036854775807", "2026-11-21T10:00:00Z", "2026-11-21T10:00:00.123456789+05:30", "2026-11-21", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s, fuzzNow)
		if err != nil {
			if !strings.Contains(err.Error(), "cannot parse") {
				t.Fatalf("error %q does not say what it cannot parse", err)
			}
			return
		}
		if tm.Location() != time.UTC {
			t.Fatalf("%q: %v not in UTC", s, tm)
		}
	})
}

// fuzzCheckFlagStates checks the states of a flag change.
func fuzzCheckFlagStates(t *testing.T, c event.Change) {
	t.Helper()
	if c.Attributes[FlagAttr] == "" {
		t.Fatalf("flag change without a flag %+v", c)
	}
	for _, a := range []string{OldAttr, NewAttr} {
		s, ok := c.Attributes[a]
		if !ok {
			continue
		}
		if got, err := FlagState(s); err != nil || got != s {
			t.Fatalf("%s state %q is not a normalised flag state", a, s)
		}
	}
}
