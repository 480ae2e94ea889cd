package sentry

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/ingest"
)

// TestMapGolden maps every payload of testdata/events and compares the
// record (or the error) with its .golden file.
func TestMapGolden(t *testing.T) {
	m := newMapper(testConfig().withDefaults())
	files, _ := filepath.Glob("testdata/events/*.json")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			o := origin{fallbackTime: testNow, now: testNow}
			// Webhook and API payloads name their project; SDK payloads
			// get it from the URL.
			if !strings.HasPrefix(name, "webhook_") && !strings.HasPrefix(name, "api_") {
				o.project = "42"
			}
			rec, err := m.toRecord(readFile(t, f), o)
			var got []byte
			switch {
			case errors.Is(err, errNotError):
				got = []byte("ignored: not an error event\n")
			case err != nil:
				got = []byte("error: " + err.Error() + "\n")
			default:
				got, _ = json.MarshalIndent(rec, "", "  ")
				got = append(got, '\n')
			}
			golden := strings.TrimSuffix(f, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := readFile(t, golden); !bytes.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestMapFields pins the rules that the golden files show, so that an
// -update cannot silently accept a regression of one of them.
func TestMapFields(t *testing.T) {
	m := newMapper(testConfig().withDefaults())
	load := func(name, project string) map[string]any {
		t.Helper()
		rec, err := m.toRecord(readFile(t, "testdata/events/"+name), origin{project: project, fallbackTime: testNow, now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(rec)
		var out map[string]any
		json.Unmarshal(b, &out)
		return out
	}
	for _, tc := range []struct {
		file, project, field string
		want                 any
	}{
		// The last exception of a chain is the one raised.
		{"doc_chained.json", "42", "type", "ValueError"},
		{"doc_chained.json", "42", "message", "chained exception"},
		// No timestamp: the time of receipt.
		{"doc_chained.json", "42", "time", testNow.Format(time.RFC3339)},
		{"doc_flat_list.json", "42", "type", "Error"},
		// The service tag wins over the project's service.
		{"custom_fingerprint.json", "42", "service", "payments"},
		{"custom_fingerprint.json", "42", "sample_rate", 0.25},
		{"custom_fingerprint.json", "42", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"},
		// A zone-less timestamp is UTC, cut to milliseconds.
		{"custom_fingerprint.json", "42", "time", "2026-11-20T09:15:00.987Z"},
		{"custom_fingerprint.json", "42", "user_id", hashed("email", "ops@example.com")},
		{"message_object.json", "42", "message", "Payment pi_3Nf8 timed out after 1532ms"},
		{"message_object.json", "42", "level", "warning"},
		{"message_object.json", "42", "customer_id", "globex"},
		{"message_object.json", "42", "user_id", hashed("id", "42")},
		// Float seconds rounded to the microsecond, then cut to ms.
		{"message_object.json", "42", "time", "2023-11-14T22:13:20.123Z"},
		{"message_object.json", "42", "fingerprint", ingest.Fingerprint("checkout", "", "Payment pi_3Nf8 timed out after 1532ms")},
		{"webhook_event_alert.json", "", "service", "frontend"},
		{"webhook_event_alert.json", "", "time", "2019-08-19T21:06:17.677Z"},
		{"webhook_event_alert.json", "", "user_id", hashed("ip", "162.218.85.90")},
		{"api_group_event.json", "", "environment", "prod"},
		{"api_group_event.json", "", "release", "b65bc521378269d3eaefdc964f8ef56621414943"},
		{"api_group_event.json", "", "trace_id", "da6caabcd90e45fdb81f6655824a5f88"},
		{"api_group_event.json", "", "sample_rate", 0.5},
		{"api_group_event.json", "", "user_id", hashed("id", "550747")},
		{"api_group_event.json", "", "id", deriveID("event", "9999aaaaca8b46d797c23c6077c6ff01")},
	} {
		got := load(tc.file, tc.project)[tc.field]
		if got != tc.want {
			t.Errorf("%s: %s = %v, want %v", tc.file, tc.field, got, tc.want)
		}
	}
	attrs := func(name, project string) map[string]any {
		return load(name, project)["attributes"].(map[string]any)
	}
	a := attrs("custom_fingerprint.json", "42")
	for k, want := range map[string]string{
		"flag.new-checkout": "true", "flag.pricing": "variant-b", "attempt": "3", "canary": "true",
		AttrHandled: "false", AttrFrames: "charge (pay.c:88)\nmain (main.c:10)",
	} {
		if a[k] != want {
			t.Errorf("custom_fingerprint attribute %s = %v, want %q", k, a[k], want)
		}
	}
	if _, ok := a["flag.unset"]; ok {
		t.Error("a flag without a result must not become an attribute")
	}
	if _, ok := a[AttrUserIP]; ok {
		t.Error(`ip_address "{{auto}}" is not an address`)
	}
	w := attrs("webhook_event_alert.json", "")
	if _, ok := w["user"]; ok {
		t.Error(`Sentry's "user" tag (ip:...) must be dropped`)
	}
	if w[AttrIssueID] != "1117540176" || w["browser"] != "Chrome 75.0.3770" {
		t.Errorf("webhook attributes: %v", w)
	}
}

func TestFingerprintRules(t *testing.T) {
	fr := func(module, fn string, line int64) frame {
		return frame{Module: module, Function: fn, Lineno: &line, InApp: ptr(true)}
	}
	stack := []frame{fr("app/pay", "charge", 88), fr("app/pay", "handler", 12)}
	moved := []frame{fr("app/pay", "charge", 120), fr("app/pay", "handler", 30)}
	other := []frame{fr("app/pay", "refund", 88), fr("app/pay", "handler", 12)}
	base := fingerprint("checkout", nil, "*pay.DeclinedError", "declined 100", false, stack)
	for _, tc := range []struct {
		name string
		got  string
		same bool
	}{
		{"line numbers moved", fingerprint("checkout", nil, "*pay.DeclinedError", "declined 100", false, moved), true},
		{"message differs", fingerprint("checkout", nil, "*pay.DeclinedError", "declined 250", false, stack), true},
		{"only {{ default }}", fingerprint("checkout", []string{"{{ default }}"}, "*pay.DeclinedError", "x", false, stack), true},
		{"{{default}} spelt tight", fingerprint("checkout", []string{"{{default}}"}, "*pay.DeclinedError", "x", false, stack), true},
		{"another function", fingerprint("checkout", nil, "*pay.DeclinedError", "declined 100", false, other), false},
		{"another type", fingerprint("checkout", nil, "*pay.TimeoutError", "declined 100", false, stack), false},
		{"another service", fingerprint("cart", nil, "*pay.DeclinedError", "declined 100", false, stack), false},
		{"default plus a part", fingerprint("checkout", []string{"{{ default }}", "db"}, "*pay.DeclinedError", "x", false, stack), false},
	} {
		if (tc.got == base) != tc.same {
			t.Errorf("%s: same fingerprint = %v, want %v", tc.name, tc.got == base, tc.same)
		}
	}
	// A custom fingerprint groups whatever the stack.
	a := fingerprint("checkout", []string{"db-down"}, "A", "a", false, stack)
	b := fingerprint("checkout", []string{"db-down"}, "B", "b", false, other)
	if a != b {
		t.Error("a custom fingerprint must not depend on type or stack")
	}
	// A synthetic exception's type is not part of the group.
	if fingerprint("s", nil, "Segfault", "", true, stack) != fingerprint("s", nil, "SIGBUS", "", true, stack) {
		t.Error("synthetic exceptions must group by stack only")
	}
}

func ptr[T any](v T) *T { return &v }

func TestMapRejects(t *testing.T) {
	m := newMapper(testConfig().withDefaults())
	for _, tc := range []struct {
		name, payload, project, want string
		is                           error
	}{
		{"not json", `{"event_id":`, "42", "invalid JSON", nil},
		{"not an object", `[1,2]`, "42", "expected", nil},
		{"bad event id", `{"event_id":"xyz"}`, "42", `field event_id: "xyz" is not a UUID`, nil},
		{"bad timestamp", `{"timestamp":"yesterday"}`, "42", `field timestamp: cannot parse "yesterday"`, nil},
		{"timestamp object", `{"timestamp":{}}`, "42", "field timestamp: expected an RFC 3339 string or Unix seconds", nil},
		{"far future", `{"timestamp":4102444800}`, "42", "field timestamp: 2100-01-01T00:00:00Z is before 2000 or more than a day ahead", nil},
		{"before 2000", `{"timestamp":"1999-12-31T23:59:59Z"}`, "42", "field timestamp:", nil},
		{"level", `{"level":"loud"}`, "42", `field level: unknown level "loud"`, nil},
		{"level type", `{"level":3}`, "42", "field level: expected a string, got a number", nil},
		{"environment type", `{"environment":["prod"]}`, "42", "field environment: expected a string, got an array", nil},
		{"exception type", `{"exception":"boom"}`, "42", "field exception: expected an object with values or an array", nil},
		{"exception values", `{"exception":{"values":{}}}`, "42", "field exception.values: expected an array", nil},
		{"frame line", `{"exception":{"values":[{"type":"E","stacktrace":{"frames":[{"lineno":"12"}]}}]}}`, "42", "field exception.values[0].stacktrace.frames.lineno: expected int64", nil},
		{"tags scalar", `{"tags":"a=b"}`, "42", "field tags: expected an object or an array", nil},
		{"tag pair", `{"tags":[["a"]]}`, "42", "field tags[0]: expected a [key, value] pair", nil},
		{"user id object", `{"user":{"id":{"a":1}}}`, "42", "field user.id: expected a string or number", nil},
		{"trace id", `{"contexts":{"trace":{"trace_id":"abc"}}}`, "42", `field contexts.trace.trace_id: "abc" is not 32 hex digits`, nil},
		{"flag name", `{"contexts":{"flags":{"values":[{"flag":1,"result":true}]}}}`, "42", "field contexts.flags.values[0].flag: expected a string", nil},
		{"fingerprint", `{"fingerprint":"x"}`, "42", "field fingerprint: expected an array", nil},
		{"sample rate tag", `{"tags":{"sample_rate":"2"}}`, "42", `field tags.sample_rate: sample rate "2" is not a number in (0, 1]`, nil},
		{"unknown project", `{"project":77}`, "", "field project: project 77 is not configured", errUnknownProject},
		{"no project", `{}`, "", "field project: missing", errUnknownProject},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.toRecord([]byte(tc.payload), origin{project: tc.project, fallbackTime: testNow, now: testNow})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.is)
			}
		})
	}
}

func TestServiceResolution(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     func(*Config)
		payload string
		want    string
		wantErr error
	}{
		{"project service", nil, `{"server_name":"web-1"}`, "checkout", nil},
		{"tag wins", nil, `{"tags":{"service":"cart"}}`, "cart", nil},
		{"server name fallback", func(c *Config) { c.Projects[0].Service = ""; c.ServiceFromServerName = true }, `{"server_name":"web-1"}`, "web-1", nil},
		{"server name from stored tags", func(c *Config) { c.Projects[0].Service = ""; c.ServiceFromServerName = true }, `{"tags":[["server_name","web-2"]]}`, "web-2", nil},
		{"nothing names it", func(c *Config) { c.Projects[0].Service = ""; c.ServiceFromServerName = true }, `{}`, "", errNoService},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			rec, err := newMapper(cfg.withDefaults()).toRecord([]byte(tc.payload), origin{project: "42", fallbackTime: testNow, now: testNow})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || rec.Service != tc.want {
				t.Fatalf("service = %q, %v; want %q", rec.Service, err, tc.want)
			}
		})
	}
}

func TestUserHashing(t *testing.T) {
	payload := []byte(`{"user":{"id":"u-1","email":"a@example.com","ip_address":"198.51.100.4","username":"ann"}}`)
	cfg := testConfig()
	rec, err := newMapper(cfg.withDefaults()).toRecord(payload, origin{project: "42", fallbackTime: testNow, now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if rec.UserID != hashed("id", "u-1") || rec.Attributes[AttrUserEmail] != hashed("email", "a@example.com") ||
		rec.Attributes[AttrUserIP] != hashed("ip", "198.51.100.4") || rec.Attributes[AttrUserName] != hashed("username", "ann") {
		t.Errorf("hashed user = %q %v", rec.UserID, rec.Attributes)
	}
	b, _ := json.Marshal(rec)
	for _, raw := range []string{"u-1", "a@example.com", "198.51.100.4", "ann"} {
		if bytes.Contains(b, []byte(`"`+raw+`"`)) {
			t.Errorf("raw %q in the record %s", raw, b)
		}
	}
	// Another salt, another id: the salt is what makes it unguessable.
	cfg.UserSalt = "other"
	rec2, _ := newMapper(cfg.withDefaults()).toRecord(payload, origin{project: "42", fallbackTime: testNow, now: testNow})
	if rec2.UserID == rec.UserID {
		t.Error("the salt does not change the hash")
	}
	cfg.KeepRawUser = true
	raw, _ := newMapper(cfg.withDefaults()).toRecord(payload, origin{project: "42", fallbackTime: testNow, now: testNow})
	if raw.UserID != "u-1" || raw.Attributes[AttrUserEmail] != "a@example.com" || raw.Attributes[AttrUserIP] != "198.51.100.4" {
		t.Errorf("keep_raw_user: %q %v", raw.UserID, raw.Attributes)
	}
}

// TestSameEventThreeWays maps one event as the SDK sends it, as a webhook
// carries it and as the REST API returns it: the record the store keys on
// must be the same, so the store keeps one copy.
func TestSameEventThreeWays(t *testing.T) {
	m := newMapper(testConfig().withDefaults())
	sdk := `{"event_id":"6f1b8b0e3c6a4d0e9b1f2a3c4d5e6f70","timestamp":"2026-11-20T10:21:33.123456Z","platform":"go",
		"level":"error","release":"checkout@1.4.2","environment":"production","server_name":"web-1",
		"tags":{"customer_id":"acme"},"user":{"id":"u-123","email":"jane@example.com"},
		"contexts":{"trace":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"},"flags":{"values":[{"flag":"new-checkout","result":true}]}},
		"exception":[{"type":"*pay.DeclinedError","value":"card declined for order 8812","stacktrace":{"frames":[
			{"function":"main","module":"example.com/shop","abs_path":"/src/main.go","lineno":20,"in_app":true},
			{"function":"Charge","module":"example.com/shop/pay","abs_path":"/src/pay/pay.go","lineno":88,"in_app":true}]}}]}`
	hook := `{"event_id":"6f1b8b0e3c6a4d0e9b1f2a3c4d5e6f70","datetime":"2026-11-20T10:21:33.123456Z","timestamp":1795170093.123456,
		"project":42,"issue_id":"77","level":"error","release":"checkout@1.4.2","platform":"go",
		"tags":[["customer_id","acme"],["environment","production"],["level","error"],["server_name","web-1"],["user","id:u-123"]],
		"user":{"id":"u-123","email":"jane@example.com"},
		"contexts":{"trace":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","type":"trace"},"flags":{"values":[{"flag":"new-checkout","result":true}]}},
		"fingerprint":["{{ default }}"],
		"exception":{"values":[{"type":"*pay.DeclinedError","value":"card declined for order 8812","stacktrace":{"frames":[
			{"function":"main","module":"example.com/shop","abs_path":"/src/main.go","lineno":20,"in_app":true},
			{"function":"Charge","module":"example.com/shop/pay","abs_path":"/src/pay/pay.go","lineno":88,"in_app":true}]}}]}}`
	api := `{"eventID":"6f1b8b0e3c6a4d0e9b1f2a3c4d5e6f70","id":"6f1b8b0e3c6a4d0e9b1f2a3c4d5e6f70","groupID":"77","projectID":"42",
		"dateCreated":"2026-11-20T10:21:33.123456Z","platform":"go","message":"","title":"*pay.DeclinedError: card declined for order 8812",
		"tags":[{"key":"customer_id","value":"acme"},{"key":"environment","value":"production"},{"key":"level","value":"error"},
			{"key":"release","value":"checkout@1.4.2"},{"key":"server_name","value":"web-1"},{"key":"user","value":"id:u-123"}],
		"user":{"id":"u-123","email":"jane@example.com","ip_address":null,"username":null,"name":null,"data":null},
		"contexts":{"trace":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","type":"trace"},"flags":{"values":[{"flag":"new-checkout","result":true}]}},
		"entries":[{"type":"exception","data":{"values":[{"type":"*pay.DeclinedError","value":"card declined for order 8812","stacktrace":{"frames":[
			{"function":"main","module":"example.com/shop","absPath":"/src/main.go","lineNo":20,"inApp":true},
			{"function":"Charge","module":"example.com/shop/pay","absPath":"/src/pay/pay.go","lineNo":88,"inApp":true}]}}]}}]}`
	var recs [3]map[string]any
	for i, p := range []struct{ payload, project string }{{sdk, "42"}, {hook, ""}, {api, "42"}} {
		rec, err := m.toRecord([]byte(p.payload), origin{project: p.project, fallbackTime: testNow, now: testNow})
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
		b, _ := json.Marshal(rec)
		json.Unmarshal(b, &recs[i])
		delete(recs[i], "attributes") // Sentry adds its own tags to stored events
	}
	for i, name := range []string{"webhook", "api"} {
		for k, v := range recs[0] {
			if recs[i+1][k] != v {
				t.Errorf("%s: %s = %v, the intake has %v", name, k, recs[i+1][k], v)
			}
		}
	}
	if recs[0]["id"] != deriveID("event", "6f1b8b0e3c6a4d0e9b1f2a3c4d5e6f70") {
		t.Errorf("id = %v", recs[0]["id"])
	}
}
