package jsonlines

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/ingest"
)

// Limits, as ingest applies them: identifiers are rejected when longer,
// free text is cut.
const (
	maxIdent    = 256
	maxText     = 64 << 10
	truncMarker = "…[truncated]"
	maxFuture   = 24 * time.Hour
)

// minTime is the earliest accepted timestamp; it also catches a wrong unit.
var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// LineError reports one rejected line of a tailed file. Field is empty when
// the line as a whole is at fault.
type LineError struct {
	Path    string `json:"path"`
	Line    int64  `json:"line"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// Reason is the metric label: json, too_long, or the field at fault.
	Reason string `json:"-"`
}

// Error returns, for instance, `/var/log/app.log:12: field "time": missing`.
func (e LineError) Error() string {
	s := e.Path + ":" + strconv.FormatInt(e.Line, 10) + ": "
	if e.Field == "" {
		return s + e.Message
	}
	return s + "field " + strconv.Quote(e.Field) + ": " + e.Message
}

// parser maps one decoded line to a record. Fields are resolved (defaults
// filled in); "-" marks a mapping that is off.
type parser struct {
	f   Fields
	now time.Time
}

// fieldErr is a rejection before the file and line are known.
type fieldErr struct{ field, msg, reason string }

func (p *parser) parse(line []byte) (event.LogRecord, *fieldErr) {
	var rec event.LogRecord
	obj, ferr := decodeObject(line)
	if ferr != nil {
		return rec, ferr
	}
	flat := make(map[string]any, len(obj))
	flatten(flat, "", obj)
	take := func(name string) (any, bool) {
		if name == "-" {
			return nil, false
		}
		v, ok := flat[name]
		if ok {
			delete(flat, name)
		}
		return v, ok && v != nil
	}

	raw, ok := take(p.f.Time)
	if !ok {
		return rec, &fieldErr{p.f.Time, "missing", "time"}
	}
	t, msg := parseTime(raw, p.f.TimeFormat, p.now)
	if msg != "" {
		return rec, &fieldErr{p.f.Time, msg, "time"}
	}
	rec.Time = t

	if v, ok := take(p.f.Service); ok {
		rec.Service = text(v)
	}
	if rec.Service == "" {
		rec.Service = p.f.FixedService
	}
	if rec.Service == "" {
		return rec, &fieldErr{p.f.Service, "missing (set fields.fixed_service for lines without one)", "service"}
	}
	if len(rec.Service) > maxIdent {
		return rec, &fieldErr{p.f.Service, fmt.Sprintf("longer than %d bytes", maxIdent), "service"}
	}

	rec.Severity = ingest.SeverityInfo
	if v, ok := take(p.f.Level); ok {
		if s, known := severity(v); known {
			rec.Severity = s
		} else {
			flat[p.f.Level] = v // kept as an attribute for whoever reads it
		}
	}
	if v, ok := take(p.f.Message); ok {
		rec.Body = truncateText(text(v))
	}
	for _, id := range []struct {
		name, reason string
		dst          *string
	}{{p.f.User, "user", &rec.UserID}, {p.f.Customer, "customer", &rec.CustomerID},
		{p.f.TraceID, "trace_id", &rec.TraceID}, {p.f.SpanID, "span_id", &rec.SpanID}} {
		v, ok := take(id.name)
		if !ok {
			continue
		}
		s := text(v)
		if len(s) > maxIdent {
			return rec, &fieldErr{id.name, fmt.Sprintf("longer than %d bytes", maxIdent), id.reason}
		}
		*id.dst = s
	}
	if isHex(rec.TraceID) {
		rec.TraceID = strings.ToLower(rec.TraceID)
	}
	if isHex(rec.SpanID) {
		rec.SpanID = strings.ToLower(rec.SpanID)
	}

	rec.Attributes = make(map[string]string, len(flat)+1)
	for k, v := range flat {
		if v == nil {
			continue
		}
		if len(k) > maxIdent {
			return rec, &fieldErr{truncateUTF8(k, 32) + "...", fmt.Sprintf("key longer than %d bytes", maxIdent), "attributes"}
		}
		rec.Attributes[k] = truncateText(text(v))
	}
	return rec, nil
}

// decodeObject decodes one line that must hold exactly one JSON object.
// Numbers stay json.Number so that large integers keep every digit.
func decodeObject(line []byte) (map[string]any, *fieldErr) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &fieldErr{"", "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: "), "json"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &fieldErr{"", "invalid JSON: data after the object", "json"}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &fieldErr{"", fmt.Sprintf("want a JSON object, got %s", jsonKind(v)), "json"}
	}
	return obj, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "something else"
}

// flatten copies obj into dst, nested objects as dotted keys. Keys are
// visited in order so that a literal dotted key and a nested path that
// collide resolve the same way every time (the later, in key order, wins).
func flatten(dst map[string]any, prefix string, obj map[string]any) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if m, ok := obj[k].(map[string]any); ok {
			flatten(dst, name, m)
			continue
		}
		dst[name] = obj[k]
	}
}

// text renders a decoded JSON value as text: strings as they are, other
// values as their JSON text.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// severity maps a level value to an OpenTelemetry severity text.
func severity(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		if s, ok := ingest.NormalizeSeverity(x); ok {
			return s, true
		}
		if n, err := strconv.Atoi(x); err == nil {
			return severityNumber(n)
		}
	case json.Number:
		if n, err := strconv.Atoi(x.String()); err == nil {
			return severityNumber(n)
		}
	}
	return "", false
}

// severityNumber reads pino's and bunyan's levels (10 trace, 20 debug, 30
// info, 40 warn, 50 error, 60 fatal) and OpenTelemetry's numbers 1-24. The
// multiples of ten go to pino: OpenTelemetry's 10 and 20 (INFO2, ERROR4)
// are rare in files, pino's are everywhere.
func severityNumber(n int) (string, bool) {
	switch n {
	case 10:
		return ingest.SeverityTrace, true
	case 20:
		return ingest.SeverityDebug, true
	case 30:
		return ingest.SeverityInfo, true
	case 40:
		return ingest.SeverityWarn, true
	case 50:
		return ingest.SeverityError, true
	case 60:
		return ingest.SeverityFatal, true
	}
	switch {
	case n >= 1 && n <= 4:
		return ingest.SeverityTrace, true
	case n >= 5 && n <= 8:
		return ingest.SeverityDebug, true
	case n >= 9 && n <= 12:
		return ingest.SeverityInfo, true
	case n >= 13 && n <= 16:
		return ingest.SeverityWarn, true
	case n >= 17 && n <= 20:
		return ingest.SeverityError, true
	case n >= 21 && n <= 24:
		return ingest.SeverityFatal, true
	}
	return "", false
}

// parseTime reads a timestamp in the given format and checks its range.
func parseTime(v any, format string, now time.Time) (time.Time, string) {
	var t time.Time
	var msg string
	switch format {
	case "auto", "unix", "unix_ms", "unix_us", "unix_ns":
		switch x := v.(type) {
		case json.Number:
			t, msg = parseUnix(x.String(), format)
		case string:
			if format == "auto" && !isNumeric(x) {
				t, msg = parseRFC3339(x)
			} else {
				t, msg = parseUnix(x, format)
			}
		default:
			return time.Time{}, "want a string or a number, got " + jsonKind(v)
		}
	case "rfc3339":
		s, ok := v.(string)
		if !ok {
			return time.Time{}, "want an RFC 3339 string, got " + jsonKind(v)
		}
		t, msg = parseRFC3339(s)
	default:
		s, ok := v.(string)
		if !ok {
			return time.Time{}, fmt.Sprintf("want a string in layout %q, got %s", format, jsonKind(v))
		}
		var err error
		if t, err = time.ParseInLocation(format, s, time.UTC); err != nil {
			return time.Time{}, fmt.Sprintf("cannot parse %q in layout %q", truncateUTF8(s, 64), format)
		}
	}
	if msg != "" {
		return time.Time{}, msg
	}
	t = t.UTC()
	if t.Before(minTime) {
		return time.Time{}, fmt.Sprintf("%s is before 2000-01-01 (check fields.time_format)", t.Format(time.RFC3339Nano))
	}
	if t.After(now.Add(maxFuture)) {
		return time.Time{}, fmt.Sprintf("%s is more than 24h in the future (check fields.time_format)", t.Format(time.RFC3339Nano))
	}
	return t, ""
}

func parseRFC3339(s string) (time.Time, string) {
	fixed := s
	if len(s) > 10 && (s[10] == ' ' || s[10] == 't') {
		fixed = s[:10] + "T" + s[11:]
	}
	fixed = strings.TrimSuffix(fixed, "z")
	if len(fixed) < len(s) {
		fixed += "Z"
	}
	t, err := time.Parse(time.RFC3339Nano, fixed)
	if err != nil {
		return time.Time{}, fmt.Sprintf("cannot parse %q as RFC 3339", truncateUTF8(s, 64))
	}
	return t, ""
}

// parseUnix reads a Unix time. In "auto" the unit comes from the
// magnitude: below 1e11 seconds (until the year 5138), below 1e14
// milliseconds, below 1e17 microseconds, else nanoseconds.
func parseUnix(num, format string) (time.Time, string) {
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return time.Time{}, fmt.Sprintf("cannot parse %q as a Unix time", truncateUTF8(num, 64))
	}
	unit := format
	if unit == "auto" {
		switch a := math.Abs(f); {
		case a < 1e11:
			unit = "unix"
		case a < 1e14:
			unit = "unix_ms"
		case a < 1e17:
			unit = "unix_us"
		default:
			unit = "unix_ns"
		}
	}
	perUnit := map[string]float64{"unix": 1e9, "unix_ms": 1e6, "unix_us": 1e3, "unix_ns": 1}[unit]
	// Integers are converted exactly; float64 holds nanoseconds of today
	// only to about a quarter microsecond.
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		mul := int64(perUnit)
		if n > math.MaxInt64/mul || n < math.MinInt64/mul {
			return time.Time{}, fmt.Sprintf("%s is out of range as %s", num, unit)
		}
		return time.Unix(0, n*mul), ""
	}
	ns := f * perUnit
	if ns > math.MaxInt64 || ns < math.MinInt64 {
		return time.Time{}, fmt.Sprintf("%s is out of range as %s", truncateUTF8(num, 64), unit)
	}
	sec := math.Floor(ns / 1e9)
	return time.Unix(int64(sec), int64(math.Round(ns-sec*1e9))), ""
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// truncateText cuts s to maxText bytes, marker included, on a rune boundary.
func truncateText(s string) string {
	if len(s) <= maxText {
		return s
	}
	return truncateUTF8(s, maxText-len(truncMarker)) + truncMarker
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
