package ingest

import "strings"

// The OpenTelemetry severity texts that log records are normalised to.
const (
	SeverityTrace = "TRACE"
	SeverityDebug = "DEBUG"
	SeverityInfo  = "INFO"
	SeverityWarn  = "WARN"
	SeverityError = "ERROR"
	SeverityFatal = "FATAL"
)

// severityAliases maps lower-case severity spellings seen in the wild (log
// libraries, syslog, OpenTelemetry) to the OpenTelemetry short names.
var severityAliases = map[string]string{
	"trace": SeverityTrace, "finest": SeverityTrace,
	"debug": SeverityDebug, "dbg": SeverityDebug, "verbose": SeverityDebug, "fine": SeverityDebug,
	"info": SeverityInfo, "information": SeverityInfo, "informational": SeverityInfo, "notice": SeverityInfo,
	"warn": SeverityWarn, "warning": SeverityWarn,
	"error": SeverityError, "err": SeverityError, "severe": SeverityError,
	"fatal": SeverityFatal, "critical": SeverityFatal, "crit": SeverityFatal, "alert": SeverityFatal,
	"emerg": SeverityFatal, "emergency": SeverityFatal, "panic": SeverityFatal,
}

// NormalizeSeverity returns the OpenTelemetry severity text (TRACE, DEBUG,
// INFO, WARN, ERROR or FATAL) for a severity as a log library, syslog or
// OpenTelemetry spells it, case-insensitively: "warning" gives WARN, "err"
// ERROR, "critical" FATAL, and OpenTelemetry's numbered forms such as "INFO2"
// give their base name. It reports false for anything it does not know.
func NormalizeSeverity(s string) (string, bool) {
	switch s {
	case SeverityTrace, SeverityDebug, SeverityInfo, SeverityWarn, SeverityError, SeverityFatal:
		return s, true // the common case: already canonical, no allocation
	}
	if len(s) == 0 || len(s) > 16 {
		return "", false
	}
	var buf [16]byte
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	// OpenTelemetry's finer texts: TRACE2..4, DEBUG2..4 and so on.
	if n := len(b); n > 1 && b[n-1] >= '2' && b[n-1] <= '4' {
		if v, ok := severityAliases[string(b[:n-1])]; ok && strings.EqualFold(s[:n-1], v) {
			return v, true
		}
	}
	v, ok := severityAliases[string(b)]
	return v, ok
}

// severityFromNumber maps an OpenTelemetry SeverityNumber (1-24) to its text.
// 0 is UNSPECIFIED and reported as not ok so the caller applies the default.
func severityFromNumber(n int) (string, bool) {
	switch {
	case n >= 1 && n <= 4:
		return SeverityTrace, true
	case n >= 5 && n <= 8:
		return SeverityDebug, true
	case n >= 9 && n <= 12:
		return SeverityInfo, true
	case n >= 13 && n <= 16:
		return SeverityWarn, true
	case n >= 17 && n <= 20:
		return SeverityError, true
	case n >= 21 && n <= 24:
		return SeverityFatal, true
	}
	return "", false
}

// levelAliases maps lower-case spellings to the Sentry levels that error
// events carry: debug, info, warning, error, fatal.
var levelAliases = map[string]string{
	"debug": "debug", "trace": "debug",
	"info": "info", "information": "info", "notice": "info", "log": "info",
	"warning": "warning", "warn": "warning",
	"error": "error", "err": "error",
	"fatal": "fatal", "critical": "fatal", "crit": "fatal", "panic": "fatal",
}

func normalizeLevel(s string) (string, bool) {
	switch s {
	case "error", "warning", "fatal", "info", "debug":
		return s, true
	}
	if len(s) > 16 {
		return "", false
	}
	var buf [16]byte
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	v, ok := levelAliases[string(b)]
	return v, ok
}
