package alertmanager

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Message is an Alertmanager webhook notification, version 4 of the
// documented payload (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config):
// one alert group, firing while any of its alerts fires, resolved when all
// have.
type Message struct {
	Version           string
	GroupKey          string // identifies the group (route and group labels); stable across notifications
	TruncatedAlerts   uint64 // alerts left out because of the receiver's max_alerts
	Status            string // StatusFiring or StatusResolved
	Receiver          string
	GroupLabels       map[string]string
	CommonLabels      map[string]string
	CommonAnnotations map[string]string
	ExternalURL       string
	Alerts            []Alert
}

// Alert is one alert of a notification.
type Alert struct {
	Status       string
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time // zero when absent
	EndsAt       time.Time // zero when absent or Alertmanager's "0001-01-01T00:00:00Z"
	GeneratorURL string
	Fingerprint  string
}

// The values of Message.Status and Alert.Status.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// FieldError is a problem with one field of a payload. Field is a path
// such as "alerts[2].startsAt", or "" when the body is not JSON at all.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Parse decodes and checks a webhook payload. The error is a *FieldError
// naming the first bad field. Unknown fields are ignored (newer
// Alertmanagers add some, such as notification_reason); a field given as
// null counts as absent. Parse never panics, whatever the input.
func Parse(body []byte) (*Message, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) || len(bytes.TrimSpace(body)) == 0 {
			return nil, &FieldError{"", "invalid JSON: " + err.Error()}
		}
		return nil, &FieldError{"", "invalid JSON: want an object: " + err.Error()}
	}
	if top == nil {
		return nil, &FieldError{"", "want a JSON object, got null"}
	}
	m := &Message{}
	var err error
	if m.Version, err = str(top, "", "version"); err != nil {
		return nil, err
	}
	switch m.Version {
	case "4":
	case "":
		return nil, &FieldError{"version", `missing (want "4")`}
	default:
		return nil, &FieldError{"version", fmt.Sprintf("unsupported version %q (want \"4\")", m.Version)}
	}
	if m.GroupKey, err = str(top, "", "groupKey"); err != nil {
		return nil, err
	}
	if m.GroupKey == "" {
		return nil, &FieldError{"groupKey", "missing"}
	}
	if m.Status, err = status(top, "", "status"); err != nil {
		return nil, err
	}
	if m.Receiver, err = str(top, "", "receiver"); err != nil {
		return nil, err
	}
	if m.ExternalURL, err = str(top, "", "externalURL"); err != nil {
		return nil, err
	}
	if raw, ok := top["truncatedAlerts"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &m.TruncatedAlerts); err != nil {
			return nil, &FieldError{"truncatedAlerts", "want a non-negative integer, got " + describe(raw)}
		}
	}
	for _, f := range []struct {
		name string
		dst  *map[string]string
	}{{"groupLabels", &m.GroupLabels}, {"commonLabels", &m.CommonLabels}, {"commonAnnotations", &m.CommonAnnotations}} {
		if *f.dst, err = kv(top, "", f.name); err != nil {
			return nil, err
		}
	}
	raw, ok := top["alerts"]
	if !ok || isNull(raw) {
		return nil, &FieldError{"alerts", "missing"}
	}
	var alerts []json.RawMessage
	if err := json.Unmarshal(raw, &alerts); err != nil {
		return nil, &FieldError{"alerts", "want an array, got " + describe(raw)}
	}
	m.Alerts = make([]Alert, len(alerts))
	for i, ar := range alerts {
		if err := parseAlert(ar, fmt.Sprintf("alerts[%d]", i), &m.Alerts[i]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func parseAlert(raw json.RawMessage, path string, a *Alert) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return &FieldError{path, "want an object, got " + describe(raw)}
	}
	var err error
	if a.Status, err = status(obj, path+".", "status"); err != nil {
		return err
	}
	if a.Labels, err = kv(obj, path+".", "labels"); err != nil {
		return err
	}
	if a.Annotations, err = kv(obj, path+".", "annotations"); err != nil {
		return err
	}
	if a.StartsAt, err = timestamp(obj, path+".", "startsAt"); err != nil {
		return err
	}
	if a.EndsAt, err = timestamp(obj, path+".", "endsAt"); err != nil {
		return err
	}
	if a.GeneratorURL, err = str(obj, path+".", "generatorURL"); err != nil {
		return err
	}
	if a.Fingerprint, err = str(obj, path+".", "fingerprint"); err != nil {
		return err
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// describe names the JSON type of raw for messages, without echoing it.
func describe(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// str reads an optional string field.
func str(obj map[string]json.RawMessage, prefix, name string) (string, error) {
	raw, ok := obj[name]
	if !ok || isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &FieldError{prefix + name, "want a string, got " + describe(raw)}
	}
	return s, nil
}

// status reads a required status field: firing or resolved.
func status(obj map[string]json.RawMessage, prefix, name string) (string, error) {
	s, err := str(obj, prefix, name)
	if err != nil {
		return "", err
	}
	switch s {
	case StatusFiring, StatusResolved:
		return s, nil
	case "":
		return "", &FieldError{prefix + name, `missing (want "firing" or "resolved")`}
	}
	return "", &FieldError{prefix + name, fmt.Sprintf("%q is not \"firing\" or \"resolved\"", truncate(s, 64))}
}

// kv reads an optional object of strings (labels, annotations).
func kv(obj map[string]json.RawMessage, prefix, name string) (map[string]string, error) {
	raw, ok := obj[name]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, &FieldError{prefix + name, "want an object of strings, got " + describe(raw)}
	}
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, &FieldError{prefix + name + "." + truncate(k, 64), "want a string, got " + describe(v)}
		}
		out[k] = s
	}
	return out, nil
}

// timestamp reads an optional RFC 3339 time. Alertmanager writes Go's zero
// time, 0001-01-01T00:00:00Z, for "not set"; it becomes the zero time.
func timestamp(obj map[string]json.RawMessage, prefix, name string) (time.Time, error) {
	s, err := str(obj, prefix, name)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, perr := time.Parse(time.RFC3339Nano, s)
	if perr != nil {
		return time.Time{}, &FieldError{prefix + name, fmt.Sprintf("cannot parse %q as an RFC 3339 time", truncate(s, 64))}
	}
	if t.Year() <= 1 {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// truncate cuts s to at most n bytes for an error message, on a rune
// boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
