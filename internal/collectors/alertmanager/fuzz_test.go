package alertmanager

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// encode writes m back in the webhook format, for the round trip.
func encode(m *Message) []byte {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "0001-01-01T00:00:00Z"
		}
		return t.Format(time.RFC3339Nano)
	}
	alerts := make([]map[string]any, len(m.Alerts))
	for i, a := range m.Alerts {
		alerts[i] = map[string]any{
			"status": a.Status, "labels": a.Labels, "annotations": a.Annotations,
			"startsAt": ts(a.StartsAt), "endsAt": ts(a.EndsAt),
			"generatorURL": a.GeneratorURL, "fingerprint": a.Fingerprint,
		}
	}
	b, _ := json.Marshal(map[string]any{
		"version": m.Version, "groupKey": m.GroupKey, "truncatedAlerts": m.TruncatedAlerts,
		"status": m.Status, "receiver": m.Receiver, "groupLabels": m.GroupLabels,
		"commonLabels": m.CommonLabels, "commonAnnotations": m.CommonAnnotations,
		"externalURL": m.ExternalURL, "alerts": alerts,
	})
	return b
}

// FuzzParse: Parse never panics; what it accepts satisfies the documented
// invariants and survives a round trip through the webhook format.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"payloads", "bad"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		for _, file := range files {
			f.Add(readPayload(f, filepath.Join(dir, filepath.Base(file))))
		}
	}
	f.Add([]byte(`{"version":"4","groupKey":"k","status":"resolved","alerts":[{"status":"resolved","endsAt":"2026-11-21T10:00:00.123456789+05:30","labels":null}]}`))
	f.Add([]byte(`{"version":"4","groupKey":"k","status":"firing","alerts":[],"version":"3"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Parse(body)
		if err != nil {
			if m != nil {
				t.Fatal("Parse returned a message with an error")
			}
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("error %T is not a *FieldError", err)
			}
			return
		}
		if m.Version != "4" || m.GroupKey == "" || (m.Status != StatusFiring && m.Status != StatusResolved) {
			t.Fatalf("accepted %+v", m)
		}
		for _, a := range m.Alerts {
			if a.Status != StatusFiring && a.Status != StatusResolved {
				t.Fatalf("accepted alert status %q", a.Status)
			}
			for _, tm := range []time.Time{a.StartsAt, a.EndsAt} {
				if !tm.IsZero() && tm.Location() != time.UTC {
					t.Fatalf("time %v not in UTC", tm)
				}
			}
		}
		again, err := Parse(encode(m))
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		// Invalid UTF-8 becomes U+FFFD on the first decode, so the second
		// sees the same strings.
		if !reflect.DeepEqual(normalize(m), normalize(again)) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
		}
	})
}

// normalize makes nil and empty maps equal, and times comparable.
func normalize(m *Message) *Message {
	c := *m
	nz := func(kv map[string]string) map[string]string {
		if len(kv) == 0 {
			return nil
		}
		return kv
	}
	c.GroupLabels, c.CommonLabels, c.CommonAnnotations = nz(c.GroupLabels), nz(c.CommonLabels), nz(c.CommonAnnotations)
	c.Alerts = make([]Alert, len(m.Alerts))
	for i, a := range m.Alerts {
		a.Labels, a.Annotations = nz(a.Labels), nz(a.Annotations)
		a.StartsAt, a.EndsAt = a.StartsAt.Round(0), a.EndsAt.Round(0)
		c.Alerts[i] = a
	}
	return &c
}
