package ingest

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// This file holds the small JSON helpers the record decoders use. They work on
// one record's bytes after json.Valid accepted them, so they can walk the
// structure without re-checking the grammar: a record is validated once by the
// standard library and then split into members here, which is several times
// cheaper than decoding it into a map and keeps field-level type errors exact.

// isSpace reports whether c is JSON whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// trimSpace removes JSON whitespace from both ends of b.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the string literal starting at b[i].
// The common case, a string without escapes, is found by IndexByte alone.
func stringEnd(b []byte, i int) int {
	j := i + 1
	for {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return len(b) // unreachable for valid JSON
		}
		bs := bytes.IndexByte(b[j:j+q], '\\')
		if bs < 0 {
			return j + q + 1
		}
		// Skip the escape's backslash and the byte after it: neither a quote
		// nor a backslash can follow in \uXXXX, so resuming is safe.
		j += bs + 2
	}
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return j
			}
			j++
		}
		return j
	}
}

// members iterates over the members of a valid JSON object.
type members struct {
	b []byte
	i int // index of the next member's key, or of the closing brace
}

func newMembers(obj []byte) members {
	return members{b: obj, i: skipSpace(obj, 1)}
}

// next returns the next member's raw key (quotes included) and raw value.
func (m *members) next() (key, val []byte, ok bool) {
	b := m.b
	i := m.i
	if i >= len(b) || b[i] == '}' {
		return nil, nil, false
	}
	ke := stringEnd(b, i)
	key = b[i:ke]
	i = skipSpace(b, ke)
	i = skipSpace(b, i+1) // the colon
	ve := valueEnd(b, i)
	val = b[i:ve]
	i = skipSpace(b, ve)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	m.i = i
	return key, val, true
}

// elements iterates over the elements of a valid JSON array.
type elements struct {
	b []byte
	i int
}

func newElements(arr []byte) elements {
	return elements{b: arr, i: skipSpace(arr, 1)}
}

func (e *elements) next() (val []byte, ok bool) {
	b := e.b
	i := e.i
	if i >= len(b) || b[i] == ']' {
		return nil, false
	}
	ve := valueEnd(b, i)
	val = b[i:ve]
	i = skipSpace(b, ve)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	e.i = i
	return val, true
}

// jsonType names the JSON type of a raw value for error messages.
func jsonType(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func isNull(raw []byte) bool {
	return len(raw) == 4 && raw[0] == 'n'
}

// plainString returns the contents of a string literal when it needs no
// unescaping and is valid UTF-8, so that callers can use it without copying.
func plainString(raw []byte) ([]byte, bool) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return nil, false
	}
	return inner, true
}

// unquote returns the value of a string literal. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func unquote(raw []byte) string {
	if inner, ok := plainString(raw); ok {
		return string(inner)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		// Unreachable: raw came from a record json.Valid accepted.
		panic("ingest: unquote valid string: " + err.Error())
	}
	return s
}

// compact returns raw without insignificant whitespace, for nested values
// that are stored as JSON text.
func compact(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw) // unreachable: raw is valid JSON
	}
	return buf.String()
}
