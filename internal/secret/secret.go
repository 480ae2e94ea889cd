// Package secret is the one string type for passwords, tokens and keys in
// correlator's configuration: it never prints its value.
package secret

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// Secret is a string that must not be shown: every way of printing or
// encoding it (fmt with any verb, encoding/json, encoding.TextMarshaler,
// YAML, log/slog) gives "<secret>", or "" when it is empty so that an unset
// secret stays visibly unset. Reveal returns the value for the code that
// needs it. Decoding (YAML, JSON) reads the plain value, so a redacted
// config fed back in holds the literal "<secret>", which Validate rejects.
type Secret string

// Redacted is what a non-empty Secret prints as.
const Redacted = "<secret>"

const redacted = Redacted

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) masked() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String returns "<secret>", or "" for an empty secret.
func (s Secret) String() string { return s.masked() }

// GoString returns "<secret>" quoted, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.masked()) }

// Format implements fmt.Formatter so that no verb (%x, %d, %q, ...) can
// reach the underlying string. Width and precision are ignored.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || verb == 'v' && f.Flag('#') {
		io.WriteString(f, strconv.Quote(s.masked()))
		return
	}
	io.WriteString(f, s.masked())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.masked()) }

// MarshalText implements encoding.TextMarshaler, for encoders other than
// JSON and YAML.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.masked()), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.masked()) }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return s.masked(), nil }
