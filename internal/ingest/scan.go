package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"
)

// This file holds the small JSON helpers the record decoders use. A record is
// checked once by valid and then walked by the other helpers, which rely on
// that check and skip the grammar: several times cheaper than decoding into
// a map, and it keeps field-level type errors exact.

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

// members iterates over the members of a JSON object valid accepted.
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

// elements iterates over the elements of a JSON array valid accepted.
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
		// Unreachable: raw came from a record valid accepted.
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

// maxDepth is the deepest nesting valid accepts, the same as encoding/json's.
const maxDepth = 10000

// valid reports whether b is exactly one JSON value, with optional
// whitespace around it. It accepts what json.Valid accepts (FuzzValid checks
// this), including invalid UTF-8 inside strings, but runs several times
// faster on the flat, string-heavy objects that ingest sees: on the
// benchmark json.Valid took a third of the decoding time. On false, callers
// ask encoding/json for the message.
func valid(b []byte) bool {
	var stackBuf [32]byte
	stack := stackBuf[:0] // '{' or '[' per open container
	i := skipSpace(b, 0)
	for {
		// Here a value must start at b[i].
		if i >= len(b) {
			return false
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(stack) >= maxDepth {
				return false
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				i++ // an empty container is a complete value
				break
			}
			stack = append(stack, c)
			if c == '{' {
				var ok bool
				if i, ok = objectKey(b, i); !ok {
					return false
				}
			}
			continue
		case '"':
			var ok bool
			if i, ok = scanString(b, i); !ok {
				return false
			}
		case 't':
			if !bytes.HasPrefix(b[i:], []byte("true")) {
				return false
			}
			i += 4
		case 'f':
			if !bytes.HasPrefix(b[i:], []byte("false")) {
				return false
			}
			i += 5
		case 'n':
			if !bytes.HasPrefix(b[i:], []byte("null")) {
				return false
			}
			i += 4
		default:
			var ok bool
			if i, ok = scanNumber(b, i); !ok {
				return false
			}
		}
		// After a value: close containers or move to the next element.
		for {
			i = skipSpace(b, i)
			if len(stack) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			top := stack[len(stack)-1]
			if b[i] == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return false
			}
			i = skipSpace(b, i+1)
			if top == '{' {
				var ok bool
				if i, ok = objectKey(b, i); !ok {
					return false
				}
			}
			break
		}
	}
}

// objectKey scans `"key" :` at b[i] and the whitespace after it, returning
// the index of the member's value.
func objectKey(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	i, ok := scanString(b, i)
	if !ok {
		return i, false
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, false
	}
	return skipSpace(b, i+1), true
}

// Constants for the word-at-a-time string scan.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// scanString checks the string literal at b[i] and returns the index after
// it. Eight bytes at a time it looks for the only bytes that need attention:
// a quote, a backslash or a control character.
func scanString(b []byte, i int) (int, bool) {
	i++
	for {
		for i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			q := w ^ (ones * '"')
			s := w ^ (ones * '\\')
			// A zero byte in q or s marks a quote or backslash; a byte
			// below 0x20 in w a control character. The usual has-zero
			// and has-less tricks, which may err only towards "found".
			if ((q-ones)&^q|(s-ones)&^s|(w-ones*0x20)&^w)&highs != 0 {
				break
			}
			i += 8
		}
		if i >= len(b) {
			return i, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(b) {
				return i, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return i, false
				}
				for k := i + 2; k < i+6; k++ {
					if !isHexDigit(b[k]) {
						return i, false
					}
				}
				i += 6
			default:
				return i, false
			}
		case c < 0x20:
			return i, false
		default:
			i++
		}
	}
}

// scanNumber checks the number at b[i] against JSON's grammar and returns
// the index after it.
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}
