package ingest

import (
	"crypto/sha256"
	"encoding/hex"
)

// Placeholders that FingerprintMessage puts in place of variable parts.
const (
	placeholderNum  = "<num>"
	placeholderHex  = "<hex>"
	placeholderUUID = "<uuid>"
)

// minHexLen is the shortest run of hex digits treated as an id. Six keeps
// short git hashes (7) and pod-template hashes (9-10) while sparing most
// words that happen to mix a digit into a-f ("a1").
const minHexLen = 6

// FingerprintMessage returns msg with its variable parts replaced by
// placeholders, so that messages differing only in the numbers and ids they
// mention group together: "timeout after 1532ms for order 8812" and "timeout
// after 20ms for order 1" both become "timeout after <num>ms for order <num>".
//
// The rules, applied left to right to runs of ASCII letters and digits:
//   - a UUID (8-4-4-4-12 hex digits) becomes <uuid>;
//   - a run of at least six hex digits with at least one digit and one
//     letter, or a 0x-prefixed hex number, becomes <hex>;
//   - every other run of decimal digits becomes <num>, wherever it stands,
//     so "1532ms", "order-8812" and "user8812" all lose their number.
//
// Everything else, punctuation and non-ASCII text included, is kept as is.
// The replacement of every digit run also merges names such as "http1" and
// "http2"; for grouping error messages that is the better mistake.
func FingerprintMessage(msg string) string {
	return string(appendFingerprintMessage(make([]byte, 0, len(msg)), msg))
}

func appendFingerprintMessage(dst []byte, msg string) []byte {
	for i := 0; i < len(msg); {
		c := msg[i]
		if !isAlnum(c) {
			dst = append(dst, c)
			i++
			continue
		}
		if isUUIDAt(msg, i) {
			dst = append(dst, placeholderUUID...)
			i += 36
			continue
		}
		j := i
		for j < len(msg) && isAlnum(msg[j]) {
			j++
		}
		tok := msg[i:j]
		if isHexID(tok) {
			dst = append(dst, placeholderHex...)
			i = j
			continue
		}
		for k := 0; k < len(tok); {
			if !isDigit(tok[k]) {
				dst = append(dst, tok[k])
				k++
				continue
			}
			for k < len(tok) && isDigit(tok[k]) {
				k++
			}
			dst = append(dst, placeholderNum...)
		}
		i = j
	}
	return dst
}

// Fingerprint returns the grouping key of an error event that did not bring
// its own: a hash of the service, the error type and the message with its
// variable parts replaced (see FingerprintMessage). It is 32 hex digits.
func Fingerprint(service, typ, message string) string {
	var stack [512]byte
	b := appendField(stack[:0], "correlator.fingerprint.v1")
	b = appendField(b, service)
	b = appendField(b, typ)
	// The message goes last and unprefixed: every field before it is
	// length-prefixed, so the encoding stays unambiguous without knowing
	// the normalised length in advance.
	b = appendFingerprintMessage(b, message)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func isAlnum(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

// isUUIDAt reports whether a UUID starts at s[i] and is not followed by
// another letter or digit.
func isUUIDAt(s string, i int) bool {
	if len(s)-i < 36 {
		return false
	}
	u := s[i : i+36]
	for k := 0; k < 36; k++ {
		switch k {
		case 8, 13, 18, 23:
			if u[k] != '-' {
				return false
			}
		default:
			if !isHexDigit(u[k]) {
				return false
			}
		}
	}
	return i+36 == len(s) || !isAlnum(s[i+36])
}

// isHexID reports whether tok, a maximal run of letters and digits, looks
// like a hexadecimal id rather than a word or a decimal number.
func isHexID(tok string) bool {
	if len(tok) > 2 && tok[0] == '0' && tok[1]|0x20 == 'x' {
		for k := 2; k < len(tok); k++ {
			if !isHexDigit(tok[k]) {
				return false
			}
		}
		return true
	}
	if len(tok) < minHexLen {
		return false
	}
	digit, letter := false, false
	for k := 0; k < len(tok); k++ {
		c := tok[k]
		switch {
		case isDigit(c):
			digit = true
		case isHexDigit(c):
			letter = true
		default:
			return false
		}
	}
	return digit && letter
}
