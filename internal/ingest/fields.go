package ingest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file holds the field decoders shared by the record kinds. They take
// the raw JSON of one value, from a record valid accepted, and report
// problems as a fieldError naming the field.

// fieldError is why a record was rejected.
type fieldError struct {
	field string // JSON name, "" for the record as a whole
	msg   string
}

func typeError(field, want string, raw []byte) *fieldError {
	return &fieldError{field, "want " + want + ", got " + jsonType(raw)}
}

func tooLongError(field string, n, max int) *fieldError {
	return &fieldError{field, fmt.Sprintf("longer than %d bytes (%d)", max, n)}
}

func missingError(field string) *fieldError {
	return &fieldError{field, "missing or empty"}
}

// maxInterned bounds the intern table so that a body full of distinct values
// cannot grow it without limit; past the bound strings are simply copied.
const maxInterned = 16 << 10

// internBytes returns b as a string, sharing one copy among equal values.
func (d *decoder) internBytes(b []byte) string {
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.intern) < maxInterned && len(s) <= maxIdent {
		d.intern[s] = s
	}
	return s
}

// keyName returns the name of a member from its raw key. The result aliases
// the record when the key has no escapes; it is valid until the next record.
func keyName(key []byte) []byte {
	if inner, ok := plainString(key); ok {
		return inner
	}
	return []byte(unquote(key))
}

// str decodes a string of at most max bytes. null gives "".
func (d *decoder) str(field string, raw []byte, max int) (string, *fieldError) {
	if raw[0] != '"' {
		if isNull(raw) {
			return "", nil
		}
		return "", typeError(field, "a string", raw)
	}
	if inner, ok := plainString(raw); ok {
		if len(inner) > max {
			return "", tooLongError(field, len(inner), max)
		}
		return string(inner), nil
	}
	s := unquote(raw)
	if len(s) > max {
		return "", tooLongError(field, len(s), max)
	}
	return s, nil
}

// name is str for identifiers that repeat across records (service,
// environment, release, ...): it returns a shared copy.
func (d *decoder) name(field string, raw []byte) (string, *fieldError) {
	if raw[0] == '"' {
		if inner, ok := plainString(raw); ok {
			if len(inner) > maxIdent {
				return "", tooLongError(field, len(inner), maxIdent)
			}
			return d.internBytes(inner), nil
		}
	}
	return d.str(field, raw, maxIdent)
}

// text decodes free text, cut to maxText bytes. null gives "".
func (d *decoder) text(field string, raw []byte) (string, *fieldError) {
	if raw[0] != '"' {
		if isNull(raw) {
			return "", nil
		}
		return "", typeError(field, "a string", raw)
	}
	return truncateText(unquote(raw)), nil
}

// timeField decodes a time value; ok is false for null.
func (d *decoder) timeField(field string, raw []byte) (t time.Time, ok bool, fe *fieldError) {
	if isNull(raw) {
		return time.Time{}, false, nil
	}
	t, msg := parseTime(raw, d.now)
	if msg != "" {
		return time.Time{}, false, &fieldError{field, msg}
	}
	return t, true, nil
}

// scalarText converts an attribute or label value to its stored string:
// strings as they are, other scalars as their JSON text, objects and arrays
// as compact JSON text. keep is false for null, which is dropped. Values
// longer than max are cut when truncate is set and rejected otherwise.
func scalarText(field string, raw []byte, max int, truncate bool) (v string, keep bool, fe *fieldError) {
	switch raw[0] {
	case 'n':
		return "", false, nil
	case '"':
		if inner, ok := plainString(raw); ok && len(inner) <= max {
			return string(inner), true, nil
		}
		v = unquote(raw)
	case '{', '[':
		v = strings.ToValidUTF8(compact(raw), "\uFFFD")
	default:
		v = string(raw)
	}
	if len(v) > max {
		if !truncate {
			return "", false, tooLongError(field, len(v), max)
		}
		v = truncateText(v)
	}
	return v, true, nil
}

// attrs decodes an attributes or labels object into m, which it allocates
// when the first value is kept, so that an empty object gives a nil map.
func (d *decoder) attrs(field string, raw []byte, m map[string]string, max int, truncate bool) (map[string]string, *fieldError) {
	if isNull(raw) {
		return m, nil
	}
	if raw[0] != '{' {
		return m, typeError(field, "an object", raw)
	}
	mem := newMembers(raw)
	for {
		key, val, ok := mem.next()
		if !ok {
			return m, nil
		}
		k := keyName(key)
		if len(k) == 0 {
			return m, &fieldError{field, "empty key"}
		}
		if len(k) > maxIdent {
			return m, &fieldError{field + "." + truncateForMessage(string(k)), fmt.Sprintf("key longer than %d bytes", maxIdent)}
		}
		v, keep, fe := scalarText("", val, max, truncate)
		if fe != nil {
			fe.field = field + "." + string(k)
			return m, fe
		}
		if !keep {
			continue
		}
		if m == nil {
			m = make(map[string]string)
		}
		m[d.internBytes(k)] = v
	}
}

// collectUnknown notes a top-level field the kind does not define; the
// caller merges it with mergeUnknown once the record's own attributes are
// known.
func (d *decoder) collectUnknown(key, val []byte) {
	d.unknown = append(d.unknown, unknownField{key: d.internBytes(key), val: val})
}

// mergeUnknown adds the collected unknown fields to m (attributes or
// labels). A key already in m keeps its value: the explicit object is the
// more deliberate statement. Among repeated unknown keys the last wins, as
// for known ones, hence the backward walk.
func (d *decoder) mergeUnknown(m map[string]string, max int, truncate bool) (map[string]string, *fieldError) {
	// seen holds the keys already walked past, needed only to tell a
	// repeated key; a linear scan is cheaper for the usual handful.
	var seen map[string]bool
	if len(d.unknown) > 16 {
		seen = make(map[string]bool, len(d.unknown))
	}
	for i := len(d.unknown) - 1; i >= 0; i-- {
		u := d.unknown[i]
		if u.key == "" {
			return m, &fieldError{"", "empty field name"}
		}
		if len(u.key) > maxIdent {
			return m, &fieldError{truncateForMessage(u.key), fmt.Sprintf("field name longer than %d bytes", maxIdent)}
		}
		if seen != nil {
			if seen[u.key] {
				continue
			}
			seen[u.key] = true
		} else if repeatedLater(d.unknown[i+1:], u.key) {
			continue
		}
		if _, ok := m[u.key]; ok {
			continue
		}
		v, keep, fe := scalarText(u.key, u.val, max, truncate)
		if fe != nil {
			return m, fe
		}
		if !keep {
			continue
		}
		if m == nil {
			m = make(map[string]string)
		}
		m[u.key] = v
	}
	return m, nil
}

func repeatedLater(later []unknownField, key string) bool {
	for _, u := range later {
		if u.key == key {
			return true
		}
	}
	return false
}

// number decodes a JSON number that must be finite.
func number(field string, raw []byte) (float64, *fieldError) {
	if jsonType(raw) != "number" {
		return 0, typeError(field, "a number", raw)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		// The grammar was checked, so this is a range error: 1e400.
		return 0, &fieldError{field, fmt.Sprintf("%s is not a finite number", truncateForMessage(string(raw)))}
	}
	return f, nil
}

// validMetricName reports whether s matches ^[a-zA-Z_:][a-zA-Z0-9_:]*$.
func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') || (i > 0 && isDigit(c)) {
			continue
		}
		return false
	}
	return true
}
