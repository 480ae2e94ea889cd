package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Secret is a string that must not be shown: every way of printing or
// encoding it (fmt with any verb, encoding/json, encoding.TextMarshaler,
// YAML, log/slog) gives "<secret>", or "" when it is empty so that an unset
// secret stays visibly unset. Reveal returns the value for the code that
// needs it. Decoding (YAML, JSON) reads the plain value, so a redacted
// config fed back in holds the literal "<secret>", which Validate rejects.
type Secret string

const redacted = "<secret>"

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

// Duration is a time.Duration written in YAML and JSON as a Go duration
// string: "500ms", "1s", "2h".
type Duration time.Duration

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler. Errors are yaml.TypeErrors so
// they carry the line and are reported alongside the file's other problems.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if v, err := time.ParseDuration(n.Value); err == nil {
			*d = Duration(v)
			return nil
		}
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf(
		"line %d: invalid duration %q (want a number and a unit such as 500ms, 1s or 2h)", n.Line, n.Value)}}
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("decode duration: %w", err)
	}
	*d = Duration(v)
	return nil
}
