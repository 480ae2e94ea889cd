package changes

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// Flag changes carry their flag and its states in these attributes, which
// the engine reads: a state is "on", "off" or a rollout percentage such as
// "10%".
const (
	FlagAttr = "flag"
	OldAttr  = "old"
	NewAttr  = "new"
)

// FormatPercent writes a rollout share in percent as a flag state: "off"
// at 0, "on" at 100, else "10%" or "12.5%".
func FormatPercent(p float64) string {
	// Round first, so that 99.9999 is "on" rather than "100%".
	p = math.Round(p*1000) / 1000
	switch {
	case p <= 0:
		return "off"
	case p >= 100:
		return "on"
	}
	return strconv.FormatFloat(p, 'f', -1, 64) + "%"
}

// FlagState normalises a flag state as people write it: on, true or
// enabled is "on"; off, false or disabled is "off"; a number from 0 to 100,
// with or without "%", is a percentage (FormatPercent).
func FlagState(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "on", "true", "enabled":
		return "on", nil
	case "off", "false", "disabled":
		return "off", nil
	}
	p, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, "%")), 64)
	if err != nil || p < 0 || p > 100 || math.IsNaN(p) {
		return "", fmt.Errorf("%q is not a flag state: want on, off or a percentage such as 10%%", s)
	}
	return FormatPercent(p), nil
}

// ParseTime reads a time as scripts write it: RFC 3339, "now", a negative
// offset from now ("-5m"), or Unix seconds or milliseconds.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "now":
		return now.UTC(), nil
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s[1:])
		if err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("cannot parse %q as an offset such as -5m", s)
		}
		return now.Add(-d).UTC(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return unixTime(n), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot parse %q: want RFC 3339 (2026-11-21T15:04:05Z), now, -DURATION or Unix seconds", s)
	}
	return t.UTC(), nil
}

// unixTime reads Unix seconds, or milliseconds when the number is too
// large to be seconds of this era.
func unixTime(n int64) time.Time {
	if n > 1e11 || n < -1e11 {
		return time.UnixMilli(n).UTC()
	}
	return time.Unix(n, 0).UTC()
}

// Limits a change must respect to be accepted by the ingest API.
const (
	maxIdent = 1024
	maxText  = 64 << 10
)

// Validate checks what the store needs of a change: a time (in the years 1
// to 9999), a known kind (any case; it is normalised), a service, and
// names of reasonable length.
func Validate(c *event.Change) error {
	var errs []error
	if c.Time.IsZero() {
		errs = append(errs, errors.New("time: missing"))
	} else if y := c.Time.UTC().Year(); y < 1 || y > 9999 {
		// RFC 3339, and so the JSON of the API, cannot write it.
		errs = append(errs, fmt.Errorf("time: year %d is outside 1 to 9999", y))
	}
	k := event.ChangeKind(strings.ToLower(strings.TrimSpace(string(c.Kind))))
	if !slices.Contains(event.ChangeKinds, k) {
		errs = append(errs, fmt.Errorf("kind: %q is not one of deploy, flag, config, rollback, infra", c.Kind))
	} else {
		c.Kind = k
	}
	if strings.TrimSpace(c.Service) == "" {
		errs = append(errs, errors.New("service: missing"))
	}
	for _, f := range [...]struct{ name, v string }{
		{"id", c.ID}, {"service", c.Service}, {"environment", c.Environment}, {"version", c.Version},
		{"previous_version", c.PreviousVersion}, {"commit", c.Commit}, {"author", c.Author}, {"source", c.Source},
	} {
		if len(f.v) > maxIdent {
			errs = append(errs, fmt.Errorf("%s: longer than %d bytes", f.name, maxIdent))
		}
	}
	if len(c.Title) > maxText || len(c.URL) > maxText {
		errs = append(errs, fmt.Errorf("title and url: at most %d bytes", maxText))
	}
	for k, v := range c.Attributes {
		if len(k) > maxIdent || len(v) > maxText {
			errs = append(errs, fmt.Errorf("attributes.%.40s: too long", k))
		}
	}
	return errors.Join(errs...)
}

// ContentID derives an id from everything a change says, for changes
// without an identity whose source gave no event id.
func ContentID(c *event.Change) string {
	parts := []string{"correlator.change.content.v1", c.Time.UTC().Format(time.RFC3339Nano), string(c.Kind), c.Service,
		c.Environment, c.Version, c.PreviousVersion, c.Commit, c.Author, c.Title, c.URL, c.Source}
	keys := make([]string, 0, len(c.Attributes))
	for k := range c.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, k, c.Attributes[k])
	}
	return HashID(parts...)
}

// AssignID sets c's id when it has none: IdentityID when c has an
// identity, else ContentID.
func AssignID(c *event.Change) {
	if c.ID != "" {
		return
	}
	if c.ID = IdentityID(c); c.ID == "" {
		c.ID = ContentID(c)
	}
}
