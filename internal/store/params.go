package store

import (
	"strconv"
	"strings"
	"time"
)

// The functions below render Go values as the text ClickHouse expects for a
// {name:Type} query parameter. Both engines hand the text to the same
// parser (the type's "escaped" text form), so one serializer serves both;
// the contract tests round-trip awkward values through each engine.

// tsvEscaper escapes a String parameter: the engine unescapes backslash
// sequences in parameter values, so a literal backslash must be doubled.
var tsvEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`, "\x00", `\0`)

// ParamString renders a String parameter.
func ParamString(s string) string { return tsvEscaper.Replace(s) }

// quotedEscaper escapes a string inside a quoted literal of a composite
// parameter (Array(String)).
var quotedEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\t", `\t`, "\n", `\n`, "\r", `\r`, "\x00", `\0`)

// ParamStrings renders an Array(String) parameter.
func ParamStrings(ss []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\'')
		b.WriteString(quotedEscaper.Replace(s))
		b.WriteByte('\'')
	}
	b.WriteByte(']')
	return b.String()
}

// ParamTime renders a DateTime64(3, 'UTC') parameter.
func ParamTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// ParamInt renders an integer parameter.
func ParamInt(n int64) string { return strconv.FormatInt(n, 10) }

// ParamFloat renders a Float64 parameter.
func ParamFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
