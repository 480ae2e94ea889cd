package logpattern

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// Wildcard stands for a variable part of a line in a template: a masked
// value or a position where the lines of a cluster differ.
const Wildcard = "<*>"

// Masking replaces the values that obviously vary between lines of one
// template before the tree sees them, as Drain's preprocessing does. It
// works token by token (a token is a maximal run of non-space characters)
// and is deliberately conservative: it replaces what is certainly a value
// and leaves words alone, because Drain's merge step turns the positions
// where lines disagree into wildcards anyway, while a word masked by
// mistake merges messages that should stay apart.
//
// Within a token, after the enclosing punctuation is set aside (openPunct
// before, closePunct after), these become Wildcard wherever they start a
// run of word characters ([A-Za-z0-9_]) and end at one's end:
//   - UUIDs (8-4-4-4-12 hex digits);
//   - ISO 8601 dates and date-times, and clock times (10:15:32.123Z);
//   - IPv4 addresses, and runs of hex digits with at least two colons and
//     a decimal digit (IPv6 addresses, times);
//   - 0x-prefixed hex numbers, and runs of eight or more hex digits with
//     at least one decimal digit (ids, hashes);
//   - decimal numbers, with an optional fraction and a unit from units
//     ("15ms", "2.5GiB", "99.9%", Go durations such as "1h2m3.5s"), and
//     dotted versions ("4.12.0"; "v1.42.0" keeps its "v1").
//
// Words that merely contain digits ("v1", "http2", "x86_64", a pod
// suffix "x2k4p") are kept: they route to the tree's wildcard branch and
// Drain generalises them if they vary. When nothing but wildcards and
// punctuation remains of a token ("10.0.0.1:8080", "12/03/2026",
// "-0700]", "(42)"), the whole token becomes one Wildcard, so that values
// of different shapes and surroundings agree.
//
// key=value: the value is replaced ("order_id=<*>", "path=<*>") unless it
// is a bare word (letters, '_', '-', '.'), so that enumerations such as
// level=error and level=info stay apart. A quoted value that continues
// into the next tokens (msg="payment failed") is masked like free text.
//
// Quoted strings are otherwise left as they are: their words are often
// the message itself.

// openPunct and closePunct are the punctuation set aside at the start and
// end of a token before masking its core. '<' and '>' are not among them
// so that masking is idempotent on Wildcard and on "key=<*>".
const (
	openPunct  = "([{\"'"
	closePunct = ")]}\"',;:.!?"
)

// units are the suffixes accepted after a number, lower case, longest
// first so that "ms" is tried before "m". A unit must be followed by a
// non-word character, the end of the token or, for compound durations
// such as 1h30m, another number.
var units = [...]string{
	"kbps", "mbps", "gbps", "mins", "secs", "msec", "usec", "nsec",
	"kib", "mib", "gib", "tib", "min", "sec", "hrs", "bps", "rps", "qps",
	"ns", "us", "µs", "μs", "ms", "kb", "mb", "gb", "tb", "pb", "hr",
	"s", "m", "h", "d", "w", "b", "k", "g", "x", "%",
}

func isDigit(c byte) bool { return c-'0' < 10 }

func isHex(c byte) bool { return isDigit(c) || (c|0x20)-'a' < 6 }

func isLetter(c byte) bool { return (c|0x20)-'a' < 26 }

// isWord reports whether c is an ASCII word character, [A-Za-z0-9_].
func isWord(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' }

// punct classifies bytes as openPunct or closePunct, built once from
// them and never written after.
var punct = func() (t [256]uint8) {
	for i := 0; i < len(openPunct); i++ {
		t[openPunct[i]] |= isOpen
	}
	for i := 0; i < len(closePunct); i++ {
		t[closePunct[i]] |= isClose
	}
	return t
}()

const (
	isOpen = 1 << iota
	isClose
)

// nextToken returns the bounds of the first token of s at or after i, or
// start == len(s) if there is none. Tokens are separated by Unicode white
// space; ASCII is checked first because it is nearly all there is.
func nextToken(s string, i int) (start, end int) {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != ' ' && (c < '\t' || c > '\r') {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	start = i
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == ' ' || (c >= '\t' && c <= '\r') {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			break
		}
		i += n
	}
	return start, i
}

// maxMaskPasses bounds maskToken's passes. Each pass that changes a token
// removes word characters or shortens it, so the bound is only a guard;
// two passes are the rule, three are rare.
const maxMaskPasses = 8

// maskToken masks tok, held in in, using out as scratch, and returns the
// result and the two buffers for reuse. It repeats appendMasked until the
// token no longer changes, which makes masking idempotent: one pass can
// refuse a match that spans the next value ("a1:cd:ef:12g" is not an IPv6
// address) and then mask that value ("a1:cd:ef:<*>"), after which the
// match applies.
func maskToken(in, out []byte) (masked, in2, out2 []byte) {
	out = appendMasked(out[:0], in)
	for pass := 1; pass < maxMaskPasses && !bytes.Equal(in, out); pass++ {
		in, out = out, in
		out = appendMasked(out[:0], in)
	}
	return out, in, out
}

// appendMasked appends the masked form of tok to dst: one pass.
func appendMasked(dst, tok []byte) []byte {
	i, j := 0, len(tok)
	for i < j && punct[tok[i]]&isOpen != 0 {
		i++
	}
	for j > i && punct[tok[j-1]]&isClose != 0 {
		j--
	}
	if i == j {
		return append(dst, tok...)
	}
	start := len(dst)
	dst = append(dst, tok[:i]...)
	core, suffix := tok[i:j], tok[j:]
	if k := keyLen(core); k > 0 {
		return appendKeyValue(dst, core[:k+1], core[k+1:], suffix)
	}
	dst = appendMaskedCore(dst, core)
	dst = append(dst, suffix...)
	if onlyWildcards(dst[start:]) {
		// "(12)", "[::1]:8080", "10.0.0.1:80:" are all one value.
		dst = append(dst[:start], Wildcard...)
	}
	return dst
}

// keyLen returns the length of the key if s starts with key=, where a key
// is a letter or '_' followed by letters, digits, '_', '.' or '-'; else 0.
func keyLen(s []byte) int {
	if !isLetter(s[0]) && s[0] != '_' {
		return 0
	}
	for k := 1; k < len(s); k++ {
		c := s[k]
		switch {
		case c == '=':
			return k
		case isWord(c) || c == '.' || c == '-':
		default:
			return 0
		}
	}
	return 0
}

// appendKeyValue appends key (which ends in '='), the masked value and
// suffix, the closing punctuation that followed the value.
func appendKeyValue(dst, key, value, suffix []byte) []byte {
	dst = append(dst, key...)
	if len(value) == 0 {
		return append(dst, suffix...)
	}
	inner, quote := value, byte(0)
	if value[0] == '"' || value[0] == '\'' {
		inner, quote = value[1:], value[0]
	}
	if isBareWord(inner) {
		dst = append(dst, value...)
		return append(dst, suffix...)
	}
	if quote == 0 {
		dst = append(dst, Wildcard...)
		return append(dst, suffix...)
	}
	if k := bytes.IndexByte(suffix, quote); k >= 0 {
		// Drop the closing quote with the value it closed.
		dst = append(dst, Wildcard...)
		dst = append(dst, suffix[:k]...)
		return append(dst, suffix[k+1:]...)
	}
	// msg="dial tcp ...: the value goes on in the next tokens and is
	// masked as text.
	dst = append(dst, quote)
	dst = appendMaskedCore(dst, inner)
	return append(dst, suffix...)
}

// isBareWord reports whether s is a non-empty run of letters, '_', '-',
// '.' and non-ASCII characters: a value such as error, GET or
// kube-scheduler that names something rather than measuring it.
func isBareWord(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && c != '_' && c != '-' && c != '.' && c < utf8.RuneSelf {
			return false
		}
	}
	return true
}

// appendMaskedCore appends s with its values replaced, then collapses the
// result to a single Wildcard if nothing but wildcards and punctuation is
// left of it.
func appendMaskedCore(dst, s []byte) []byte {
	start := len(dst)
	for i := 0; i < len(s); {
		c := s[i]
		if !isWord(c) {
			dst = append(dst, c)
			i++
			continue
		}
		// i starts a run of word characters: either i == 0 or s[i-1]
		// is not a word character, since runs are consumed whole.
		if n := matchValue(s, i); n > 0 {
			dst = append(dst, Wildcard...)
			i += n
			continue
		}
		j := i + 1
		for j < len(s) && isWord(s[j]) {
			j++
		}
		dst = append(dst, s[i:j]...)
		i = j
	}
	if onlyWildcards(dst[start:]) {
		dst = append(dst[:start], Wildcard...)
	}
	return dst
}

// onlyWildcards reports whether b holds at least one Wildcard and
// otherwise only ASCII punctuation.
func onlyWildcards(b []byte) bool {
	seen := false
	for i := 0; i < len(b); {
		if i+2 < len(b) && b[i] == '<' && b[i+1] == '*' && b[i+2] == '>' {
			seen = true
			i += 3
			continue
		}
		if isWord(b[i]) || b[i] >= utf8.RuneSelf {
			return false
		}
		i++
	}
	return seen
}

// Bounds on the matches that span several runs of word characters, so
// that a failed match costs a bounded look ahead and masking a token stays
// linear in its length ("1.1.1.1…" or "a:a:a:a…" over 64 KiB).
const (
	maxColonHex    = 64 // longer than any IPv6 address or time
	maxNumberParts = 16 // digit runs in one number: 1.2.3, 1h2m3s
)

// matchValue returns the length of the value that starts at s[i], a word
// character at the start of a run, or 0 if none does. Every match ends
// where a run of word characters ends.
func matchValue(s []byte, i int) int {
	c := s[i]
	switch {
	case isDigit(c):
		if n := matchUUID(s, i); n > 0 {
			return n
		}
		if n := matchDateTime(s, i); n > 0 {
			return n
		}
		if n := matchClock(s, i); n > 0 {
			return n
		}
		if n := matchIPv4(s, i); n > 0 {
			return n
		}
		if n := matchColonHex(s, i); n > 0 {
			return n
		}
		if n := match0x(s, i); n > 0 {
			return n
		}
		if n := matchNumber(s, i); n > 0 {
			return n
		}
		return matchHexID(s, i)
	case isHex(c):
		if n := matchUUID(s, i); n > 0 {
			return n
		}
		if n := matchColonHex(s, i); n > 0 {
			return n
		}
		return matchHexID(s, i)
	}
	return 0
}

// endsRun reports whether position j of s ends a run of word characters.
func endsRun(s []byte, j int) bool { return j == len(s) || !isWord(s[j]) }

// digits returns the number of decimal digits at s[i:].
func digits(s []byte, i int) int {
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	return j - i
}

func matchUUID(s []byte, i int) int {
	if len(s)-i < 36 {
		return 0
	}
	for k := 0; k < 36; k++ {
		c := s[i+k]
		switch k {
		case 8, 13, 18, 23:
			if c != '-' {
				return 0
			}
		default:
			if !isHex(c) {
				return 0
			}
		}
	}
	if !endsRun(s, i+36) {
		return 0
	}
	return 36
}

// matchDateTime matches an ISO 8601 date, 2026-03-12, optionally followed
// by T and a clock time.
func matchDateTime(s []byte, i int) int {
	j := i
	for _, want := range [...]int{4, 2, 2} {
		if j > i {
			if j >= len(s) || s[j] != '-' {
				return 0
			}
			j++
		}
		if digits(s, j) != want {
			return 0
		}
		j += want
	}
	if j < len(s) && s[j] == 'T' {
		n := matchClock(s, j+1)
		if n == 0 {
			return 0
		}
		j += 1 + n
	}
	if !endsRun(s, j) {
		return 0
	}
	return j - i
}

// matchClock matches a time of day, hh:mm with optional :ss, fraction and
// zone (Z, +01:00, -0700).
func matchClock(s []byte, i int) int {
	if digits(s, i) != 2 || i+2 >= len(s) || s[i+2] != ':' || digits(s, i+3) != 2 {
		return 0
	}
	j := i + 5
	if j < len(s) && s[j] == ':' && digits(s, j+1) == 2 {
		j += 3
	}
	if j+1 < len(s) && (s[j] == '.' || s[j] == ',') && isDigit(s[j+1]) {
		j += 1 + digits(s, j+1)
	}
	if j < len(s) {
		switch s[j] {
		case 'Z':
			j++
		case '+', '-':
			if n := digits(s, j+1); n == 4 {
				j += 5
			} else if n == 2 && j+3 < len(s) && s[j+3] == ':' && digits(s, j+4) == 2 {
				j += 6
			}
		}
	}
	if !endsRun(s, j) {
		return 0
	}
	return j - i
}

func matchIPv4(s []byte, i int) int {
	j := i
	for part := 0; part < 4; part++ {
		if part > 0 {
			if j >= len(s) || s[j] != '.' {
				return 0
			}
			j++
		}
		n := digits(s, j)
		if n == 0 || n > 3 {
			return 0
		}
		j += n
	}
	if !endsRun(s, j) || (j+1 < len(s) && s[j] == '.' && isDigit(s[j+1])) {
		return 0
	}
	return j - i
}

// matchColonHex matches a run of hex digits, colons and dots with at least
// two colons and a decimal digit: IPv6 addresses, and times the clock
// pattern does not know (2026:10:15:32 in access logs).
func matchColonHex(s []byte, i int) int {
	j, colons, digit := i, 0, false
	limit := min(len(s), i+maxColonHex+1)
	for ; j < limit; j++ {
		c := s[j]
		if c == ':' {
			colons++
		} else if isDigit(c) {
			digit = true
		} else if !isHex(c) && c != '.' {
			break
		}
	}
	for j > i && (s[j-1] == ':' || s[j-1] == '.') {
		if s[j-1] == ':' {
			colons--
		}
		j--
	}
	if colons < 2 || !digit || j-i > maxColonHex || !endsRun(s, j) {
		return 0
	}
	return j - i
}

func match0x(s []byte, i int) int {
	if i+2 >= len(s) || s[i] != '0' || s[i+1]|0x20 != 'x' || !isHex(s[i+2]) {
		return 0
	}
	j := i + 2
	for j < len(s) && isHex(s[j]) {
		j++
	}
	if !endsRun(s, j) {
		return 0
	}
	return j - i
}

// matchNumber matches a decimal number with an optional fraction or
// further dotted parts and an optional unit, repeated for compound
// durations (1h2m3.5s).
func matchNumber(s []byte, i int) int {
	j := i
	for parts := 0; ; parts++ {
		if parts == maxNumberParts {
			return 0
		}
		n := digits(s, j)
		if n == 0 {
			return 0
		}
		j += n
		// A fraction, or the parts of a dotted version (4.12.0).
		for j+1 < len(s) && s[j] == '.' && isDigit(s[j+1]) {
			if parts++; parts == maxNumberParts {
				return 0
			}
			j += 1 + digits(s, j+1)
		}
		u := matchUnit(s, j)
		j += u
		if u == 0 || j == len(s) || !isDigit(s[j]) {
			break
		}
	}
	if !endsRun(s, j) {
		return 0
	}
	return j - i
}

// matchUnit returns the length of the unit at s[j:], or 0.
func matchUnit(s []byte, j int) int {
	if j == len(s) {
		return 0
	}
	// Every unit starts with a letter, '%' or the lead byte of µ or μ.
	if c := s[j]; !isLetter(c) && c != '%' && c != 0xc2 && c != 0xce {
		return 0
	}
	for _, u := range units {
		if len(s)-j < len(u) {
			continue
		}
		ok := true
		for k := 0; k < len(u); k++ {
			c := s[j+k]
			if c >= 'A' && c <= 'Z' {
				c |= 0x20
			}
			if c != u[k] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if e := j + len(u); e == len(s) || !isWord(s[e]) || isDigit(s[e]) {
			return len(u)
		}
	}
	return 0
}

// matchHexID matches a run of at least eight hex digits with a decimal
// digit among them.
func matchHexID(s []byte, i int) int {
	j, digit := i, false
	for j < len(s) && isHex(s[j]) {
		digit = digit || isDigit(s[j])
		j++
	}
	if j-i < 8 || !digit || !endsRun(s, j) {
		return 0
	}
	return j - i
}

// hasDigit reports whether tok contains a decimal digit. Drain sends such
// tokens down the wildcard branch of the tree: they are likely values.
func hasDigit(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if isDigit(tok[i]) {
			return true
		}
	}
	return false
}

// keyPrefix returns the part of a key=value token up to and including
// '=', opening punctuation included, or "" if tok is not key=value.
func keyPrefix(tok string) string {
	i := 0
	for i < len(tok) && punct[tok[i]]&isOpen != 0 {
		i++
	}
	if i == len(tok) {
		return ""
	}
	if k := keyLen([]byte(tok[i:])); k > 0 {
		return tok[:i+k+1]
	}
	return ""
}
