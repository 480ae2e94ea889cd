package ingest

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// minTime is the earliest accepted timestamp. Nothing correlator looks at is
// older, and the bound catches Unix seconds sent where milliseconds belong:
// 1.7e9 read as milliseconds falls in January 1970.
var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// maxFuture is how far past the decoder's clock a timestamp may lie. It allows
// for skewed sender clocks and catches microseconds or nanoseconds sent where
// milliseconds belong.
const maxFuture = 24 * time.Hour

// parseTime decodes a "time" value: an RFC 3339 string, or Unix milliseconds
// as an integer JSON number or a string of digits. The result is in UTC and
// lies within [minTime, now+maxFuture].
func parseTime(raw []byte, now time.Time) (time.Time, string) {
	switch jsonType(raw) {
	case "number":
		return parseMillis(string(raw), now)
	case "string":
	default:
		return time.Time{}, "want an RFC 3339 string or Unix milliseconds, got " + jsonType(raw)
	}
	s := unquote(raw)
	if isDigits(s) {
		return parseMillis(s, now)
	}
	t, err := parseRFC3339(s)
	if err != nil {
		msg := fmt.Sprintf("cannot parse %q: want RFC 3339 or Unix milliseconds", truncateForMessage(s))
		if len(s) == len("2006-01-02T15:04:05") || (len(s) > 20 && s[19] == '.' && lastIsDigit(s)) {
			msg += " (RFC 3339 needs a UTC offset such as Z)"
		}
		return time.Time{}, msg
	}
	t = t.UTC()
	if t.Before(minTime) {
		return time.Time{}, fmt.Sprintf("%s is before 2000-01-01", s)
	}
	if t.After(now.Add(maxFuture)) {
		return time.Time{}, fmt.Sprintf("%s is more than 24h in the future (now %s)", s, now.UTC().Format(time.RFC3339))
	}
	return t, ""
}

// parseRFC3339 parses s as RFC 3339, also accepting the lower-case "t" and "z"
// and the space separator that the RFC permits but time.Parse does not.
func parseRFC3339(s string) (time.Time, error) {
	if len(s) > 19 && len(s) <= 64 && (s[10] == ' ' || s[10] == 't' || s[len(s)-1] == 'z') {
		var buf [64]byte
		b := append(buf[:0], s...)
		if b[10] == ' ' || b[10] == 't' {
			b[10] = 'T'
		}
		if b[len(b)-1] == 'z' {
			b[len(b)-1] = 'Z'
		}
		s = string(b)
	}
	return time.Parse(time.RFC3339, s)
}

// parseMillis decodes Unix milliseconds. A number that is out of range is
// checked against the usual unit mix-ups so the message can name the likely
// mistake.
func parseMillis(s string, now time.Time) (time.Time, string) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Accept integral numbers written with a fraction or exponent
		// (1.7e12); reject real fractions, which are no millisecond count.
		f, ferr := strconv.ParseFloat(s, 64)
		switch {
		case ferr == nil && f == math.Trunc(f) && (f > 1<<53 || f < -(1<<53)):
			return time.Time{}, fmt.Sprintf("%s is out of range for Unix milliseconds", truncateForMessage(s))
		case ferr != nil || f != math.Trunc(f):
			return time.Time{}, fmt.Sprintf("cannot parse %s: want RFC 3339 or integer Unix milliseconds", truncateForMessage(s))
		}
		ms = int64(f)
	}
	t := time.UnixMilli(ms).UTC()
	inRange := func(t time.Time) bool {
		return !t.Before(minTime) && !t.After(now.Add(maxFuture))
	}
	if inRange(t) {
		return t, ""
	}
	if t.Before(minTime) {
		msg := fmt.Sprintf("%d is before 2000-01-01 as Unix milliseconds", ms)
		if ms > 0 && ms <= (1<<63-1)/1000 && inRange(time.UnixMilli(ms*1000)) {
			msg += fmt.Sprintf("; it looks like Unix seconds, send %d", ms*1000)
		}
		return time.Time{}, msg
	}
	msg := fmt.Sprintf("%d is more than 24h in the future as Unix milliseconds", ms)
	switch {
	case inRange(time.UnixMilli(ms / 1000)):
		msg += fmt.Sprintf("; it looks like Unix microseconds, send %d", ms/1000)
	case inRange(time.UnixMilli(ms / 1000000)):
		msg += fmt.Sprintf("; it looks like Unix nanoseconds, send %d", ms/1000000)
	}
	return time.Time{}, msg
}

func isDigits(s string) bool {
	if len(s) == 0 {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func lastIsDigit(s string) bool {
	return s != "" && s[len(s)-1] >= '0' && s[len(s)-1] <= '9'
}

// truncateForMessage keeps error messages short when the offending value is
// long; the user has the line number to find the rest.
func truncateForMessage(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return truncateUTF8(s, max) + "..."
}
