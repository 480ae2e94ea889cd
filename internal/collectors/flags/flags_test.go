package flags

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/event"
)

type recorder struct{ changes []event.Change }

func (r *recorder) Add(_ context.Context, b *event.Batch) error {
	r.changes = append(r.changes, b.Changes...)
	return nil
}

var testConfig = Config{
	LaunchDarkly: Provider{Secret: "ld-secret", Environments: map[string]string{"production": "production", "test": "staging"}},
	Unleash:      Provider{Secret: "unleash-secret", SiteURL: "https://unleash.example.com"},
	Services: []Rule{
		{Prefix: "checkout-", Service: "checkout"},
		{Project: "payments", Service: "payments"},
		{Tag: "team-search", Service: "search"},
	},
}

// ldEntryJSON is an audit log entry as LaunchDarkly's webhook posts it: a
// boolean flag turned on in production with a 10% rollout of true on its
// default rule, and its targeting rules changed in test.
func ldEntryJSON(key string, tags string) string {
	env := func(on bool, ft string) string {
		return `{"on": ` + map[bool]string{true: "true", false: "false"}[on] + `, "archived": false, "salt": "s", "sel": "s",
		  "lastModified": 1729123465190, "version": 2, "targets": [], "contextTargets": [], "rules": [],
		  "fallthrough": ` + ft + `, "offVariation": 1, "prerequisites": [],
		  "_site": {"href": "/default/production/features/` + key + `", "type": "text/html"}, "_environmentName": "Production",
		  "trackEvents": false, "trackEventsFallthrough": false}`
	}
	version := func(prod, test string) string {
		return `{"name": "` + key + `", "kind": "boolean", "key": "` + key + `", "_version": 3, "creationDate": 1729123465176,
		  "variations": [{"_id": "a", "value": true, "name": "on"}, {"_id": "b", "value": false, "name": "off"}],
		  "temporary": false, "tags": ` + tags + `, "archived": false, "deprecated": false,
		  "defaults": {"onVariation": 0, "offVariation": 1},
		  "environments": {"production": ` + prod + `, "test": ` + test + `}}`
	}
	rollout := `{"rollout": {"variations": [{"variation": 0, "weight": 10000}, {"variation": 1, "weight": 90000}]}}`
	return `{
	  "_links": {"canonical": {"href": "/api/v2/flags/default/` + key + `", "type": "application/json"}},
	  "_id": "6740a8e29969090743529965", "_accountId": "1234", "date": 1795000000123,
	  "accesses": [
	    {"action": "updateOn", "resource": "proj/default:env/production:flag/` + key + `"},
	    {"action": "updateFallthrough", "resource": "proj/default:env/production:flag/` + key + `"},
	    {"action": "updateRules", "resource": "proj/default:env/test:flag/` + key + `"},
	    {"action": "updateName", "resource": "proj/default:env/test:flag/` + key + `"}
	  ],
	  "kind": "flag", "name": "` + key + `", "description": "* Turned the flag on",
	  "member": {"_id": "1234", "email": "michelle@example.com", "firstName": "Michelle", "lastName": "Doe"},
	  "titleVerb": "updated the flag",
	  "previousVersion": ` + version(env(false, `{"variation": 0}`), env(true, `{"variation": 0}`)) + `,
	  "currentVersion": ` + version(env(true, rollout), env(true, `{"variation": 0}`)) + `
	}`
}

func post(t *testing.T, h http.Handler, body string, header ...string) (int, changes.Reply) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/collect/flags", strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var rep changes.Reply
	_ = json.Unmarshal(rec.Body.Bytes(), &rep)
	return rec.Code, rep
}

func TestLaunchDarkly(t *testing.T) {
	w := &recorder{}
	h, err := NewLaunchDarkly(testConfig, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := ldEntryJSON("checkout-new-cart", `[]`)
	sig := changes.SignHMACSHA256("ld-secret", []byte(body))
	if code, _ := post(t, h, body); code != http.StatusUnauthorized {
		t.Errorf("unsigned: %d", code)
	}
	if code, _ := post(t, h, body, "X-LD-Signature", changes.SignHMACSHA256("other", []byte(body))); code != http.StatusUnauthorized {
		t.Errorf("wrong signature: %d", code)
	}
	code, rep := post(t, h, body, "X-LD-Signature", sig)
	if code != http.StatusOK || rep.Changes != 2 {
		t.Fatalf("%d %+v", code, rep)
	}
	prod, test := w.changes[0], w.changes[1]
	if prod.Kind != event.ChangeFlag || prod.Service != "checkout" || prod.Environment != "production" ||
		prod.Attributes["flag"] != "checkout-new-cart" || prod.Attributes["old"] != "off" || prod.Attributes["new"] != "10%" ||
		prod.Attributes["launchdarkly.actions"] != "updateFallthrough,updateOn" || prod.Author != "michelle@example.com" ||
		!prod.Time.Equal(time.UnixMilli(1795000000123)) || prod.Title != "Flag checkout-new-cart: off → 10%" ||
		prod.URL != "https://app.launchdarkly.com/default/production/features/checkout-new-cart" || prod.Source != "launchdarkly" {
		t.Errorf("production: %+v", prod)
	}
	if test.Environment != "staging" || test.Attributes["old"] != "on" || test.Attributes["new"] != "on" ||
		test.Attributes["launchdarkly.actions"] != "updateRules" || test.Title != "Flag checkout-new-cart: targeting changed (on)" {
		t.Errorf("test: %+v", test)
	}
	if prod.ID == test.ID || prod.ID != changes.HashID("launchdarkly", "6740a8e29969090743529965", "production") {
		t.Errorf("ids %s %s", prod.ID, test.ID)
	}

	// Service from a tag, a project rule, no service at all.
	w.changes = nil
	h2, _ := NewLaunchDarkly(Config{}, w, nil)
	if code, rep := post(t, h2, ldEntryJSON("search-ranking", `["service:search-api", "beta"]`)); code != http.StatusOK || w.changes[0].Service != "search-api" {
		t.Errorf("service tag: %d %+v %v", code, rep, w.changes)
	}
	if code, rep := post(t, h2, ldEntryJSON("orphan", `[]`)); code != http.StatusAccepted || !strings.Contains(rep.Reason, "maps to no service") {
		t.Errorf("unmapped: %d %+v", code, rep)
	}
	if code, _ := post(t, h2, `{"kind": "environment", "accesses": [{"action": "updateName", "resource": "proj/alexis:env/test"}]}`); code != http.StatusAccepted {
		t.Errorf("environment entry: %d", code)
	}
	created := `{"_id": "1", "date": 1795000000123, "kind": "flag", "accesses": [{"action": "createFlag", "resource": "proj/default:env/production:flag/checkout-x"}]}`
	if code, rep := post(t, h2, created); code != http.StatusAccepted || !strings.Contains(rep.Reason, "no action that changes") {
		t.Errorf("createFlag: %d %+v", code, rep)
	}
}

func TestLaunchDarklyStates(t *testing.T) {
	i := func(n int) *int { return &n }
	boolFlag := func(e ldEnv) *ldFlag {
		f := &ldFlag{Kind: "boolean", Environments: map[string]ldEnv{"p": e}}
		_ = json.Unmarshal([]byte(`[{"value": true}, {"value": false}]`), &f.Variations)
		return f
	}
	on := ldEnv{On: true}
	on.Fallthrough.Variation = i(0)
	offServed := ldEnv{On: true}
	offServed.Fallthrough.Variation = i(1)
	for name, tc := range map[string]struct {
		f    *ldFlag
		want string
	}{
		"off":          {boolFlag(ldEnv{On: false}), "off"},
		"on":           {boolFlag(on), "on"},
		"serves false": {boolFlag(offServed), "off"},
		"nil":          {nil, ""},
	} {
		if got := tc.f.state("p"); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
	// A multivariate flag: every variation but the off one is the treatment.
	mv := &ldFlag{Kind: "multivariate", Environments: map[string]ldEnv{}}
	_ = json.Unmarshal([]byte(`[{"value": "a"}, {"value": "b"}, {"value": "control"}]`), &mv.Variations)
	e := ldEnv{On: true, OffVariation: i(2)}
	e.Fallthrough.Rollout = &struct {
		Variations []struct {
			Variation int `json:"variation"`
			Weight    int `json:"weight"`
		} `json:"variations"`
	}{}
	_ = json.Unmarshal([]byte(`[{"variation": 0, "weight": 12500}, {"variation": 1, "weight": 12500}, {"variation": 2, "weight": 75000}]`), &e.Fallthrough.Rollout.Variations)
	mv.Environments["p"] = e
	if got := mv.state("p"); got != "25%" {
		t.Errorf("multivariate rollout: %q", got)
	}
	if got := mv.state("missing"); got != "" {
		t.Errorf("missing environment: %q", got)
	}
}

func unleashEventJSON(typ, data, preData string) string {
	return `{
	  "id": 920, "type": "` + typ + `", "createdBy": "user@company.com", "createdByUserId": 1,
	  "createdAt": "2022-06-01T10:03:11.549Z",
	  "data": ` + data + `, "preData": ` + preData + `,
	  "tags": [{"type": "simple", "value": "team-search"}],
	  "featureName": "new-ranking", "project": "default", "environment": "production"
	}`
}

func TestUnleash(t *testing.T) {
	w := &recorder{}
	h, err := NewUnleash(testConfig, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	strategy := func(rollout string) string {
		return `{"id": "3f4bf713-696c-43a4-8ce7-d6c607108858", "name": "flexibleRollout", "constraints": [],
		  "parameters": {"groupId": "new-ranking", "rollout": ` + rollout + `, "stickiness": "default"}}`
	}
	body := unleashEventJSON("feature-strategy-update", strategy(`"32"`), strategy(`10`))
	if code, _ := post(t, h, body); code != http.StatusUnauthorized {
		t.Errorf("without authorization: %d", code)
	}
	code, rep := post(t, h, body, "Authorization", "unleash-secret")
	if code != http.StatusOK || rep.Changes != 1 {
		t.Fatalf("%d %+v", code, rep)
	}
	c := w.changes[0]
	if c.Kind != event.ChangeFlag || c.Service != "search" || c.Environment != "production" || c.Author != "user@company.com" ||
		c.Attributes["flag"] != "new-ranking" || c.Attributes["old"] != "10%" || c.Attributes["new"] != "32%" ||
		c.Attributes["unleash.event"] != "feature-strategy-update" || !c.Time.Equal(time.Date(2022, 6, 1, 10, 3, 11, 549e6, time.UTC)) ||
		c.URL != "https://unleash.example.com/projects/default/features/new-ranking" || c.ID != changes.HashID("unleash", "920") {
		t.Errorf("got %+v", c)
	}
	for typ, want := range map[string][2]string{
		"feature-environment-enabled":  {"off", "on"},
		"feature-environment-disabled": {"on", "off"},
		"feature-strategy-add":         {"", "32%"},
		"feature-strategy-remove":      {"10%", ""},
	} {
		w.changes = nil
		if code, _ := post(t, h, unleashEventJSON(typ, strategy(`"32"`), strategy(`"10"`)), "Authorization", "unleash-secret"); code != http.StatusOK {
			t.Errorf("%s: %d", typ, code)
			continue
		}
		if a := w.changes[0].Attributes; a["old"] != want[0] || a["new"] != want[1] {
			t.Errorf("%s: old %q new %q, want %q %q", typ, a["old"], a["new"], want[0], want[1])
		}
	}
	w.changes = nil
	legacy := unleashEventJSON("feature-updated", `{"name": "new-ranking", "enabled": true, "strategies": [{"name": "default"}]}`, `{"enabled": false}`)
	if code, _ := post(t, h, legacy, changes.SecretHeader, "unleash-secret"); code != http.StatusOK || w.changes[0].Attributes["old"] != "off" || w.changes[0].Attributes["new"] != "on" {
		t.Errorf("feature-updated: %d %+v", code, w.changes)
	}
	if code, rep := post(t, h, unleashEventJSON("feature-tagged", `{}`, `null`), "Authorization", "unleash-secret"); code != http.StatusAccepted || !strings.Contains(rep.Reason, "not a flag change") {
		t.Errorf("feature-tagged: %d %+v", code, rep)
	}
}

func TestServiceRules(t *testing.T) {
	c, err := withDefaults(Config{Services: []Rule{{Prefix: "a-", Project: "p", Service: "both"}, {Prefix: "a-", Service: "prefix"}}, DefaultService: "fallback"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    flagInfo
		want string
	}{
		{flagInfo{key: "a-x", project: "P"}, "both"},
		{flagInfo{key: "a-x", project: "q"}, "prefix"},
		{flagInfo{key: "b", tags: []string{"service:billing"}}, "billing"},
		{flagInfo{key: "b"}, "fallback"},
	} {
		if got := service(&c, tc.f); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
		}
	}
	if _, err := withDefaults(Config{Services: []Rule{{}}}); err == nil || !strings.Contains(err.Error(), "give a prefix") {
		t.Errorf("empty rule: %v", err)
	}
}
