package prometheus

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A query template is PromQL with placeholders. Each placeholder is
// replaced in a way that cannot change the structure of the query, whatever
// the service is called:
//
//   - {{service}}: the service's label value, escaped for a PromQL
//     double-quoted string (backslash, quote and control characters become
//     Go escapes, which PromQL shares). It is allowed only inside a
//     "double-quoted" string, so the value can never end the string.
//   - {{service_regex}}: the same value with regular-expression
//     metacharacters escaped (regexp.QuoteMeta) and then escaped as above,
//     for =~ and !~ matchers; also only inside a double-quoted string.
//   - {{match}}: the matcher service_label="value" (label name checked
//     against ^[a-zA-Z_][a-zA-Z0-9_]*$, value escaped as above); allowed
//     only outside strings, e.g. http_requests_total{{{match}},code=~"5.."}.
//   - {{labels}}: the kept labels, comma separated ("version, instance,
//     region"; empty when none are kept), for by (...) clauses; outside
//     strings.
//   - {{range}}: the step as a PromQL duration ("1m", "15s"), for range
//     selectors; outside strings.
//
// Any other {{name}} is an error, as is a placeholder in the wrong place,
// so a typo fails at start-up instead of sending odd PromQL. Comments
// (# to the end of the line) and single-quoted and back-quoted strings are
// recognised so that a placeholder in them is rejected too.

// placeholder names, as written between {{ and }}.
const (
	phService      = "service"
	phServiceRegex = "service_regex"
	phMatch        = "match"
	phLabels       = "labels"
	phRange        = "range"
)

// inString reports whether a placeholder belongs inside a double-quoted
// string (true) or outside any string (false).
var placeholders = map[string]bool{
	phService:      true,
	phServiceRegex: true,
	phMatch:        false,
	phLabels:       false,
	phRange:        false,
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// templateVars are the values substituted into a template.
type templateVars struct {
	service string // the service label's value in Prometheus
	label   string // the service label's name
	labels  []string
	rng     string // the step as a PromQL duration
}

// lexState is where the template scanner is.
type lexState int

const (
	inCode lexState = iota
	inDouble
	inSingle
	inBack
	inComment
)

// expand substitutes vars into tmpl. It fails on an unknown placeholder or
// one in the wrong place; checkTemplate runs the same scan without values.
func expand(tmpl string, v templateVars) (string, error) {
	var b strings.Builder
	b.Grow(len(tmpl) + 64)
	err := scanTemplate(tmpl, func(lit string) { b.WriteString(lit) }, func(name string) {
		switch name {
		case phService:
			b.WriteString(escapeDouble(v.service))
		case phServiceRegex:
			b.WriteString(escapeDouble(regexp.QuoteMeta(v.service)))
		case phMatch:
			b.WriteString(v.label)
			b.WriteString(`="`)
			b.WriteString(escapeDouble(v.service))
			b.WriteString(`"`)
		case phLabels:
			b.WriteString(strings.Join(v.labels, ", "))
		case phRange:
			b.WriteString(v.rng)
		}
	})
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// checkTemplate reports whether tmpl is a usable template.
func checkTemplate(tmpl string) error {
	if strings.TrimSpace(tmpl) == "" {
		return fmt.Errorf("empty query")
	}
	return scanTemplate(tmpl, func(string) {}, func(string) {})
}

// escapeDouble escapes s for the inside of a PromQL double-quoted string.
// PromQL unquotes strings with Go's rules, so Go's quoting is exact.
func escapeDouble(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// scanTemplate walks tmpl, handing literal text to lit and each
// placeholder's name to ph, and checks that every placeholder is known and
// in its place. It tracks strings and comments the way PromQL's lexer does:
// backslash escapes in single- and double-quoted strings, none in
// back-quoted ones, and # comments to the end of the line.
func scanTemplate(tmpl string, lit func(string), ph func(string)) error {
	state := inCode
	start := 0 // start of the pending literal
	for i := 0; i < len(tmpl); {
		if strings.HasPrefix(tmpl[i:], "{{") {
			if name, n, ok := placeholderAt(tmpl[i:]); ok {
				wantString, known := placeholders[name]
				switch {
				case !known:
					return fmt.Errorf("unknown placeholder {{%s}} at offset %d (known: {{service}}, {{service_regex}}, {{match}}, {{labels}}, {{range}})", name, i)
				case wantString && state != inDouble:
					return fmt.Errorf("placeholder {{%s}} at offset %d must be inside a double-quoted string", name, i)
				case !wantString && state != inCode:
					return fmt.Errorf("placeholder {{%s}} at offset %d must be outside strings and comments", name, i)
				}
				lit(tmpl[start:i])
				ph(name)
				i += n
				start = i
				continue
			}
		}
		c := tmpl[i]
		switch state {
		case inCode:
			switch c {
			case '"':
				state = inDouble
			case '\'':
				state = inSingle
			case '`':
				state = inBack
			case '#':
				state = inComment
			}
		case inDouble, inSingle:
			if c == '\\' {
				i += 2 // the escaped byte cannot end the string
				continue
			}
			if c == '"' && state == inDouble || c == '\'' && state == inSingle {
				state = inCode
			}
		case inBack:
			if c == '`' {
				state = inCode
			}
		case inComment:
			if c == '\n' {
				state = inCode
			}
		}
		i++
	}
	if state == inDouble || state == inSingle || state == inBack {
		return fmt.Errorf("unterminated string")
	}
	lit(tmpl[start:])
	return nil
}

// placeholderAt reports whether s starts with {{name}} where name is made
// of lower-case letters, digits and underscores, and returns the name and
// the placeholder's length. "{{{match}}}" is not one at offset 0 (the third
// brace is not a name character), so the scanner moves on by one byte and
// finds {{match}} at offset 1.
func placeholderAt(s string) (name string, n int, ok bool) {
	j := 2
	for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9' || s[j] == '_') {
		j++
	}
	if j == 2 || !strings.HasPrefix(s[j:], "}}") {
		return "", 0, false
	}
	return s[2:j], j + 2, true
}
