package ingest

import "unicode/utf8"

// Size limits on individual strings. Identifiers are rejected when longer
// because a cut identifier would silently name something else; free text is
// cut with truncMarker because a long stack trace is still worth keeping.
const (
	maxIdent = 256     // ids, service, environment, label and attribute keys, ...
	maxValue = 4 << 10 // url, error type, label values
	maxText  = 64 << 10

	// truncMarker ends a string cut to maxText. The result, marker
	// included, is at most maxText bytes.
	truncMarker = "…[truncated]"
)

// truncateText cuts s to maxText bytes, marker included, on a rune boundary.
func truncateText(s string) string {
	if len(s) <= maxText {
		return s
	}
	return truncateUTF8(s, maxText-len(truncMarker)) + truncMarker
}

// truncateUTF8 returns the longest prefix of s of at most n bytes that does
// not split a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
