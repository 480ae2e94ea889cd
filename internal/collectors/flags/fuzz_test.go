package flags

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/collectors/collectortest"
	"github.com/correlator/correlator/internal/event"
)

// Run one target at a time, e.g.
//
//	go test -run '^$' -fuzz '^FuzzLaunchDarkly$' -fuzztime 20s ./internal/collectors/flags/

const (
	fuzzLDSecret      = "ld-secret"
	fuzzUnleashSecret = "unleash-secret"
)

// fuzzConfig picks a configuration from the low bits of opts.
func fuzzConfig(opts uint8) Config {
	c := Config{
		LaunchDarkly: Provider{Environments: map[string]string{"production": "production", "test": "staging"}},
		Unleash:      Provider{SiteURL: "https://unleash.example.com/", Environments: map[string]string{"development": "dev"}},
		Services: []Rule{
			{Prefix: "checkout-", Service: "checkout"},
			{Project: "payments", Service: "payments"},
			{Tag: "team-search", Service: "search"},
			{Tag: "simple:team-ads", Prefix: "ads", Service: "ads"},
		},
	}
	if opts&1 != 0 {
		c.DefaultService = "fallback"
	}
	if opts&2 != 0 {
		c.LaunchDarkly.Secret, c.Unleash.Secret = fuzzLDSecret, fuzzUnleashSecret
	}
	if opts&4 != 0 {
		c.ServiceTag = "svc"
	}
	return c
}

// fuzzLDEntry is an audit log entry as LaunchDarkly's webhook posts it: a
// boolean flag turned on in production with a 10% rollout, and its
// targeting rules changed in test.
const fuzzLDEntry = `{"_links":{"canonical":{"href":"/api/v2/flags/default/checkout-new-cart","type":"application/json"}},` +
	`"_id":"6740a8e29969090743529965","_accountId":"1234","date":1795000000123,` +
	`"accesses":[{"action":"updateOn","resource":"proj/default:env/production:flag/checkout-new-cart"},` +
	`{"action":"updateFallthrough","resource":"proj/default:env/production:flag/checkout-new-cart"},` +
	`{"action":"updateRules","resource":"proj/default;tag:env/test:flag/checkout-new-cart"},` +
	`{"action":"updateName","resource":"proj/default:env/test:flag/checkout-new-cart"}],` +
	`"kind":"flag","name":"checkout-new-cart","description":"* Turned the flag on",` +
	`"member":{"_id":"1234","email":"michelle@example.com","firstName":"Michelle","lastName":"Doe"},` +
	`"previousVersion":{"key":"checkout-new-cart","kind":"boolean","tags":[],` +
	`"variations":[{"value":true},{"value":false}],"defaults":{"onVariation":0,"offVariation":1},` +
	`"environments":{"production":{"on":false,"offVariation":1,"fallthrough":{"variation":0}},` +
	`"test":{"on":true,"fallthrough":{"variation":0}}}},` +
	`"currentVersion":{"key":"checkout-new-cart","kind":"boolean","tags":["service:cart"],` +
	`"variations":[{"value":true},{"value":false}],"defaults":{"onVariation":0,"offVariation":1},` +
	`"environments":{"production":{"on":true,"offVariation":1,"fallthrough":{"rollout":{"variations":[{"variation":0,"weight":10000},{"variation":1,"weight":90000}]}},` +
	`"_site":{"href":"/default/production/features/checkout-new-cart"}},` +
	`"test":{"on":true,"fallthrough":{"variation":0}}}}}`

// FuzzLaunchDarkly drives the whole LaunchDarkly receiver with a correctly
// signed body (or a fuzzed X-LD-Signature when opts has its top bit set):
// it never panics, answers 2xx or 4xx (5xx only when the writer fails),
// says what is wrong in every 4xx, and writes only valid flag changes.
func FuzzLaunchDarkly(f *testing.F) {
	for _, s := range []struct {
		body string
		opts uint8
	}{
		{fuzzLDEntry, 0},
		{fuzzLDEntry, 2},
		{fuzzLDEntry, 8},
		{strings.ReplaceAll(fuzzLDEntry, "checkout-new-cart", "orphan"), 0},
		{strings.ReplaceAll(fuzzLDEntry, "checkout-new-cart", "orphan"), 1 | 4},
		{`{"kind":"environment","accesses":[{"action":"updateName","resource":"proj/alexis:env/test"}]}`, 0},
		{`{"_id":"1","date":1795000000123,"kind":"flag","accesses":[{"action":"createFlag","resource":"proj/default:env/production:flag/checkout-x"}]}`, 0},
		{`{"_id":"2","date":1795000000123,"kind":"flag","accesses":[{"action":"updateOn","resource":"proj/payments:env/*:flag/x"},{"action":"updateOn","resource":"proj/payments:env/prod:flag/x"}]}`, 0},
		{`{"date":-9223372036854775808,"kind":"flag","accesses":[{"action":"updateOn","resource":"env/e:flag/checkout-y"}]}`, 0},
		{`{"date":9223372036854775807,"kind":"flag","accesses":[{"action":"updateOn","resource":"env/e:flag/checkout-y"}]}`, 0},
		{`{"date":1795000000123,"kind":"flag","accesses":[{"action":"updateOn","resource":"env/e"}]}`, 1},
		{`{"date":1795000000123,"kind":"flag","accesses":[{"action":"updateFallthrough","resource":"env/e:flag/checkout-z"}],` +
			`"currentVersion":{"variations":[{"value":"a"},{"value":"b"}],"environments":{"e":{"on":true,"offVariation":-1,` +
			`"fallthrough":{"variation":7,"rollout":{"variations":[{"variation":0,"weight":-5},{"variation":1,"weight":9223372036854775807},{"variation":1,"weight":1}]}}}}}}`, 0},
		{`{"date":1795000000123,"kind":"flag","accesses":[{"action":"updateFallthrough","resource":"env/e:flag/checkout-z"}],` +
			`"currentVersion":{"kind":"boolean","variations":[{"value":true}],"defaults":{"offVariation":5},"environments":{"e":{"on":true,` +
			`"fallthrough":{"rollout":{"variations":[{"variation":0,"weight":1},{"variation":0,"weight":-1}]}}}}}}`, 0},
		{`{"kind":"flag","accesses":null}`, 0},
		{`{"kind":1}`, 0},
		{`[]`, 0},
		{`{"kind":`, 0},
		{``, 0},
	} {
		f.Add([]byte(s.body), "", s.opts)
	}
	f.Add([]byte(fuzzLDEntry), "not hex", uint8(0x80|2))
	f.Add([]byte(`{}`), changes.SignHMACSHA256(fuzzLDSecret, []byte(`{}`)), uint8(0x80|2))
	f.Fuzz(func(t *testing.T, body []byte, sig string, opts uint8) {
		cfg := fuzzConfig(opts)
		fw := &collectortest.Writer{Fail: opts&8 != 0}
		h, err := NewLaunchDarkly(cfg, fw, nil)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/collect/launchdarkly", bytes.NewReader(body))
		signed := true
		if opts&0x80 == 0 {
			req.Header.Set("X-LD-Signature", changes.SignHMACSHA256(fuzzLDSecret, body))
		} else {
			req.Header.Set("X-LD-Signature", sig)
			signed = changes.ValidHMACSHA256(fuzzLDSecret, body, req.Header.Get("X-LD-Signature"))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		fuzzReply(t, rec, fw)
		if cfg.LaunchDarkly.Secret != "" && !signed && rec.Code != http.StatusUnauthorized {
			t.Fatalf("bad signature %q answered %d", sig, rec.Code)
		}
		ids := map[string]bool{}
		for _, c := range fw.Changes() {
			if c.Source != LaunchDarklySource {
				t.Fatalf("source %q", c.Source)
			}
			if ids[c.ID] {
				t.Fatalf("two changes of one entry share the id %s", c.ID)
			}
			ids[c.ID] = true
		}
	})
}

// fuzzUnleashEvent is an Unleash event as the webhook addon posts it.
func fuzzUnleashEvent(typ, data, preData string) string {
	return `{"id":920,"type":"` + typ + `","createdBy":"user@company.com","createdByUserId":1,` +
		`"createdAt":"2022-06-01T10:03:11.549Z","data":` + data + `,"preData":` + preData + `,` +
		`"tags":[{"type":"simple","value":"team-search"}],"featureName":"new-ranking","project":"default","environment":"production"}`
}

// FuzzUnleash drives the whole Unleash receiver, with the Authorization
// header it expects (or a fuzzed one when opts has its top bit set): it
// never panics, answers 2xx or 4xx (5xx only when the writer fails), says
// what is wrong in every 4xx, and writes only valid flag changes.
func FuzzUnleash(f *testing.F) {
	strategy := func(name, param, value string) string {
		return `{"id":"3f4bf713","name":"` + name + `","constraints":[],"parameters":{"groupId":"new-ranking","` + param + `":` + value + `,"stickiness":"default"}}`
	}
	for _, s := range []struct {
		body string
		opts uint8
	}{
		{fuzzUnleashEvent("feature-strategy-update", strategy("flexibleRollout", "rollout", `"32"`), strategy("flexibleRollout", "rollout", `10`)), 0},
		{fuzzUnleashEvent("feature-strategy-update", strategy("flexibleRollout", "rollout", `"32"`), strategy("flexibleRollout", "rollout", `10`)), 2},
		{fuzzUnleashEvent("feature-strategy-update", strategy("flexibleRollout", "rollout", `"NaN"`), strategy("gradualRolloutUserId", "percentage", `"99.9999"`)), 0},
		{fuzzUnleashEvent("feature-strategy-add", strategy("gradualRolloutRandom", "percentage", `"+Inf"`), `null`), 0},
		{fuzzUnleashEvent("feature-strategy-add", strategy("flexibleRollout", "rollout", `1e400`), `null`), 0},
		{fuzzUnleashEvent("feature-strategy-remove", `null`, strategy("default", "x", `{}`)), 0},
		{fuzzUnleashEvent("feature-environment-enabled", `{}`, `null`), 8},
		{fuzzUnleashEvent("feature-environment-disabled", `{}`, `null`), 0},
		{fuzzUnleashEvent("feature-updated", `{"name":"new-ranking","enabled":true,"strategies":[{"name":"default"}]}`, `{"enabled":false}`), 0},
		{fuzzUnleashEvent("feature-updated", `{"enabled":true,"strategies":[{"name":"userWithId","disabled":true},{"name":"x"}]}`, `[1]`), 0},
		{fuzzUnleashEvent("feature-tagged", `{}`, `null`), 0},
		{`{"id":-1,"type":"feature-environment-enabled","featureName":"ads-x","tags":[{"type":"simple","value":"team-ads"}],"createdAt":"0001-01-01T00:00:00Z"}`, 0},
		{`{"type":"feature-environment-enabled","featureName":"x","environment":"Development","tags":[{"type":"svc","value":"billing"}]}`, 4},
		{`{"type":"feature-environment-enabled","featureName":"x","project":"a/b c"}`, 1},
		{`{"type":"feature-environment-enabled"}`, 1},
		{`{"type":"feature-environment-enabled","featureName":"x","createdAt":"9999-12-31T23:59:59-23:59"}`, 1},
		{`{"type":"feature-environment-enabled","featureName":"x","createdAt":"soon"}`, 1},
		{`{"id":"1"}`, 0},
		{`[]`, 0},
		{`{"type":`, 0},
		{``, 0},
	} {
		f.Add([]byte(s.body), "", s.opts)
	}
	f.Add([]byte(`{}`), "Bearer "+fuzzUnleashSecret, uint8(0x80|2))
	f.Add([]byte(`{}`), "wrong", uint8(0x80|2))
	f.Fuzz(func(t *testing.T, body []byte, auth string, opts uint8) {
		cfg := fuzzConfig(opts)
		fw := &collectortest.Writer{Fail: opts&8 != 0}
		h, err := NewUnleash(cfg, fw, nil)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/collect/unleash", bytes.NewReader(body))
		if opts&0x80 == 0 {
			auth = fuzzUnleashSecret
		}
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		fuzzReply(t, rec, fw)
		got := req.Header.Get("Authorization")
		authorized := got == fuzzUnleashSecret || changes.SharedSecret(req) == fuzzUnleashSecret
		if cfg.Unleash.Secret != "" && !authorized && rec.Code != http.StatusUnauthorized {
			t.Fatalf("Authorization %q answered %d", got, rec.Code)
		}
		for _, c := range fw.Changes() {
			if c.Source != UnleashSource || c.Attributes["unleash.event"] == "" {
				t.Fatalf("unexpected change %+v", c)
			}
		}
	})
}

// fuzzReply checks the answer of a receiver against what the writer saw:
// what collectortest.CheckReply checks of every change receiver, and that
// every written change is a flag change.
func fuzzReply(t *testing.T, rec *httptest.ResponseRecorder, fw *collectortest.Writer) {
	t.Helper()
	collectortest.CheckReply(t, rec, fw, changes.Validate)
	for _, c := range fw.Changes() {
		fuzzCheckFlagChange(t, c)
	}
}

// fuzzCheckFlagChange checks what every written flag change needs beyond
// what any change needs (collectortest.CheckChange): the flag kind, a flag,
// and states the engine can read.
func fuzzCheckFlagChange(t *testing.T, c event.Change) {
	t.Helper()
	if c.Kind != event.ChangeFlag {
		t.Fatalf("invalid change %+v", c)
	}
	if c.Attributes[changes.FlagAttr] == "" {
		t.Fatalf("flag change without a flag %+v", c)
	}
	for _, a := range []string{changes.OldAttr, changes.NewAttr} {
		s, ok := c.Attributes[a]
		if !ok {
			continue
		}
		if got, err := changes.FlagState(s); err != nil || got != s {
			t.Fatalf("%s state %q is not a normalised flag state (%q, %v)", a, s, got, err)
		}
	}
}
