// Package duration provides Duration, a time.Duration that configuration
// files and JSON write as a Go duration string ("500ms", "90s", "2h"),
// shared by every section of correlator's configuration so that all of
// them read and report durations the same way. (The Prometheus collector
// keeps its own, which also reads Prometheus' "1d".)
package duration

import (
	"encoding/json"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in YAML and JSON as a Go duration
// string.
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
		return fmt.Errorf("invalid duration %q (want a number and a unit such as 500ms, 1s or 2h)", s)
	}
	*d = Duration(v)
	return nil
}
