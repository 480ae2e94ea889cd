package sentry

import (
	"strings"
	"testing"
)

func TestParseEnvelopeDocExamples(t *testing.T) {
	type item struct {
		typ     string
		payload string
	}
	for _, tc := range []struct {
		file    string
		eventID string
		dsn     string
		items   []item
	}{
		{"doc_two_items.envelope", "9ec79c33ec9942ab8353589fcb2e04dc", "https://e12d836b15bb49d7bbf99e64295d995b:@sentry.io/42",
			[]item{{"attachment", "\xef\xbb\xbfHello\r\n"}, {"event", `{"message":"hello world","level":"error"}`}}},
		{"doc_two_items_no_final_newline.envelope", "9ec79c33ec9942ab8353589fcb2e04dc", "https://e12d836b15bb49d7bbf99e64295d995b:@sentry.io/42",
			[]item{{"attachment", "\xef\xbb\xbfHello\r\n"}, {"event", `{"message":"hello world","level":"error"}`}}},
		{"doc_empty_attachments.envelope", "9ec79c33ec9942ab8353589fcb2e04dc", "", []item{{"attachment", ""}, {"attachment", ""}}},
		{"doc_empty_attachments_no_final_newline.envelope", "9ec79c33ec9942ab8353589fcb2e04dc", "", []item{{"attachment", ""}, {"attachment", ""}}},
		{"doc_implicit_length.envelope", "9ec79c33ec9942ab8353589fcb2e04dc", "", []item{{"attachment", "helloworld"}}},
		{"doc_implicit_length_eof.envelope", "9ec79c33ec9942ab8353589fcb2e04dc", "", []item{{"attachment", "helloworld"}}},
		{"doc_session_no_headers.envelope", "", "", []item{{"session", `{"started": "2020-02-07T14:16:00Z","attrs":{"release":"sentry-test@1.0.0"}}`}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			env, err := parseEnvelope(readFile(t, "testdata/envelopes/"+tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if env.Header.EventID != tc.eventID || env.Header.DSN != tc.dsn {
				t.Errorf("header = %+v", env.Header)
			}
			if len(env.Items) != len(tc.items) {
				t.Fatalf("%d items, want %d", len(env.Items), len(tc.items))
			}
			for i, want := range tc.items {
				if got := env.Items[i]; got.Type != want.typ || string(got.Payload) != want.payload {
					t.Errorf("item %d = %s %q, want %s %q", i, got.Type, got.Payload, want.typ, want.payload)
				}
			}
		})
	}
}

func TestParseEnvelopeSentryGo(t *testing.T) {
	env, err := parseEnvelope(readFile(t, "testdata/envelopes/sentry_go_exception.envelope"))
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Items) != 1 || env.Items[0].Type != "event" || len(env.Items[0].Payload) != 1168 {
		t.Fatalf("items = %+v", env.Items)
	}
	key, project, err := parseDSN(env.Header.DSN)
	if key != testKey || project != "42" || err != nil {
		t.Errorf("dsn = %q %q %v", key, project, err)
	}
}

func TestParseEnvelopeMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		kept       int // items parsed before the error
		want       string
	}{
		{"empty", "", 0, "envelope header: expected a JSON object, got nothing"},
		{"header not object", "[1]\n", 0, "envelope header: expected a JSON object, got an array"},
		{"header bad json", "{\"event_id\":\n", 0, "envelope header: invalid JSON"},
		{"item header not json", "{}\nnope\n", 0, "envelope items[0]: item header: expected a JSON object"},
		{"item without type", "{}\n{\"length\":2}\n{}\n", 0, "envelope items[0]: item header: field type is required"},
		{"negative length", "{}\n{\"type\":\"event\",\"length\":-1}\n", 0, "envelope items[0]: item header: field length: -1 is not a byte count"},
		{"length not a number", "{}\n{\"type\":\"event\",\"length\":\"2\"}\n{}\n", 0, `field length: "2" is not a byte count`},
		{"truncated payload", "{}\n{\"type\":\"event\",\"length\":10}\n{}\n", 0, "envelope items[0]: payload is 3 bytes, shorter than its length 10"},
		{"payload too long", "{}\n{\"type\":\"event\",\"length\":2}\n{}xx\n", 0, "envelope items[0]: payload is longer than its length 2"},
		{"second item bad", "{}\n{\"type\":\"session\"}\n{}\n{\"type\":\"event\",\"length\":99}\n{}", 1, "envelope items[1]: payload is 2 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := parseEnvelope([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if len(env.Items) != tc.kept {
				t.Errorf("kept %d items, want %d", len(env.Items), tc.kept)
			}
		})
	}
}

func TestAuthKeyAndDSN(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"Sentry sentry_version=7, sentry_client=sentry.go/0.50.0, sentry_key=abc", "abc"},
		{"sentry sentry_key=abc,sentry_version=7", "abc"},
		{`Sentry sentry_key="abc", sentry_secret=xyz`, "abc"},
		{"Bearer abc", ""},
		{"Sentry sentry_version=7", ""},
		{"", ""},
	} {
		if got := authKey(tc.header); got != tc.want {
			t.Errorf("authKey(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
	for _, tc := range []struct{ dsn, key, project, err string }{
		{"https://e12d@o1.ingest.sentry.io/42", "e12d", "42", ""},
		{"http://k:secret@localhost:9000/sentry/7/", "k", "7", ""},
		{"https://sentry.io/42", "", "", "public key"},
		{"https://k@sentry.io/abc", "", "", "numeric project id"},
		{"::", "", "", "not a DSN"},
	} {
		k, p, err := parseDSN(tc.dsn)
		if k != tc.key || p != tc.project || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseDSN(%q) = %q %q %v", tc.dsn, k, p, err)
		}
	}
}
