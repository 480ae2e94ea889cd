package correlate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a point in time as users write it: RFC 3339, Unix
// milliseconds, "now", or a negative offset from now such as "-30m".
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "now":
		return now.UTC(), nil
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("cannot parse %q as an offset like -30m", s)
		}
		return now.Add(-d).UTC(), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 1e11 {
			return time.Time{}, fmt.Errorf("%q looks like Unix seconds; want Unix milliseconds", s)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot parse %q: want RFC 3339, Unix milliseconds, now or -DURATION", s)
	}
	return t.UTC(), nil
}

// ParseDuration reads a duration as users write it: a Go duration such as
// 2h or 90m, or a whole number of days such as 1d.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("cannot parse %q as a duration like 2h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q as a duration like 2h", s)
	}
	return d, nil
}

// ParseLookback reads a positive duration such as 2h or 90m (also 1d).
func ParseLookback(s string) (time.Duration, error) {
	d, err := ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, errors.New("must be positive")
	}
	if d > 30*24*time.Hour {
		return 0, errors.New("must be at most 30 days")
	}
	return d, nil
}
