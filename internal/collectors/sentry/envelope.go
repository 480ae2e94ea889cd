package sentry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// envelope is a parsed Sentry envelope
// (https://develop.sentry.dev/sdk/foundations/data-model/envelopes/).
type envelope struct {
	Header envelopeHeader
	Items  []envelopeItem
}

// envelopeHeader holds the envelope headers the intake reads; the others
// (sdk, trace, ...) are ignored.
type envelopeHeader struct {
	EventID string `json:"event_id"`
	DSN     string `json:"dsn"`
	SentAt  string `json:"sent_at"`
}

// envelopeItem is one item: its type and its payload. Payload aliases the
// envelope's bytes.
type envelopeItem struct {
	Type    string
	Payload []byte
}

// EnvelopeError is a structural problem of an envelope. Item is the index
// of the item it concerns, -1 for the envelope header.
type EnvelopeError struct {
	Item int
	Msg  string
}

func (e *EnvelopeError) Error() string {
	if e.Item < 0 {
		return "envelope header: " + e.Msg
	}
	return fmt.Sprintf("envelope items[%d]: %s", e.Item, e.Msg)
}

// maxItems bounds the items of one envelope, so that a body of newlines
// cannot make millions of them.
const maxItems = 1000

// parseEnvelope splits b into its header and items. On a structural error
// it returns the items read before it with the error, so that they can
// still be kept.
//
// The grammar is Headers { "\n" Item } [ "\n" ], an Item being a header line
// and a payload that is either "length" bytes followed by "\n" or the end,
// or, without a length, the rest of the line. Trailing whitespace after the
// last item is tolerated.
func parseEnvelope(b []byte) (*envelope, error) {
	env := &envelope{}
	line, rest, _ := bytes.Cut(b, []byte{'\n'})
	if err := decodeHeader(line, &env.Header); err != nil {
		return env, &EnvelopeError{Item: -1, Msg: err.Error()}
	}
	for i := 0; len(bytes.TrimSpace(rest)) > 0; i++ {
		if i == maxItems {
			return env, &EnvelopeError{Item: i, Msg: fmt.Sprintf("more than %d items", maxItems)}
		}
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		var h struct {
			Type   *string         `json:"type"`
			Length json.RawMessage `json:"length"`
		}
		if err := decodeHeader(line, &h); err != nil {
			return env, &EnvelopeError{Item: i, Msg: "item header: " + err.Error()}
		}
		if h.Type == nil || *h.Type == "" {
			return env, &EnvelopeError{Item: i, Msg: "item header: field type is required"}
		}
		var payload []byte
		if isNull(h.Length) {
			payload, rest, _ = bytes.Cut(rest, []byte{'\n'})
		} else {
			var n int64
			if err := json.Unmarshal(h.Length, &n); err != nil || n < 0 {
				return env, &EnvelopeError{Item: i, Msg: fmt.Sprintf("item header: field length: %s is not a byte count", cut(string(h.Length), 32))}
			}
			if n > int64(len(rest)) {
				return env, &EnvelopeError{Item: i, Msg: fmt.Sprintf("payload is %d bytes, shorter than its length %d", len(rest), n)}
			}
			payload, rest = rest[:n], rest[n:]
			if len(rest) > 0 {
				if rest[0] != '\n' {
					return env, &EnvelopeError{Item: i, Msg: fmt.Sprintf("payload is longer than its length %d", n)}
				}
				rest = rest[1:]
			}
		}
		env.Items = append(env.Items, envelopeItem{Type: *h.Type, Payload: payload})
	}
	return env, nil
}

// decodeHeader decodes one header line, which must be a JSON object.
func decodeHeader(line []byte, v any) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return fmt.Errorf("expected a JSON object, got %s", kindOf(line))
	}
	if err := json.Unmarshal(line, v); err != nil {
		return jsonError("", err)
	}
	return nil
}

// parseDSN returns the public key and project id of a DSN
// (https://PUBLIC_KEY[:SECRET]@HOST[/PATH]/PROJECT_ID).
func parseDSN(dsn string) (key, project string, err error) {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil || u.Host == "" {
		return "", "", fmt.Errorf("dsn is not a DSN URL with a public key")
	}
	key = u.User.Username()
	path := strings.TrimSuffix(u.Path, "/")
	project = path[strings.LastIndexByte(path, '/')+1:]
	if key == "" || !isDigits(project) {
		return "", "", fmt.Errorf("dsn lacks a public key or a numeric project id")
	}
	return key, project, nil
}

// authKey returns the sentry_key of an X-Sentry-Auth (or Authorization)
// header value: "Sentry sentry_version=7, sentry_client=..., sentry_key=KEY".
func authKey(h string) string {
	h = strings.TrimSpace(h)
	if len(h) < 7 || !strings.EqualFold(h[:7], "sentry ") {
		return ""
	}
	for _, kv := range strings.Split(h[7:], ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.TrimSpace(k) == "sentry_key" {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}
