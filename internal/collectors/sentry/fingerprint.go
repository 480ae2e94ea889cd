package sentry

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"

	"github.com/correlator/correlator/internal/ingest"
)

// fingerprint returns the grouping key of an event, 32 hex digits.
//
// Without a fingerprint from the SDK, or with only "{{ default }}", it is
// the default one:
//   - with a stack trace, a hash of the service, the error type (left out
//     when the exception is synthetic, as Sentry does) and the top in-app
//     frames' module (or file) and function, never their line numbers, so
//     an edit elsewhere in a file keeps the group;
//   - without one, ingest.Fingerprint(service, type, message), the same key
//     as an error sent through the NDJSON ingest API, with the numbers and
//     ids of the message masked.
//
// A fingerprint from the SDK is honoured as Sentry honours it: its parts,
// with "{{ default }}" standing for the default fingerprint, are hashed with
// the service.
func fingerprint(service string, sdk []string, typ, message string, synthetic bool, frames []frame) string {
	def := defaultFingerprint(service, typ, message, synthetic, frames)
	if len(sdk) == 0 || len(sdk) == 1 && isDefaultMarker(sdk[0]) {
		return def
	}
	parts := make([]string, 0, len(sdk)+1)
	parts = append(parts, "custom")
	for _, s := range sdk {
		if isDefaultMarker(s) {
			s = def
		}
		parts = append(parts, s)
	}
	return hashParts(service, parts)
}

func defaultFingerprint(service, typ, message string, synthetic bool, frames []frame) string {
	if len(frames) == 0 {
		return ingest.Fingerprint(service, typ, message)
	}
	parts := make([]string, 0, len(frames)+2)
	parts = append(parts, "stack")
	if synthetic {
		parts = append(parts, "")
	} else {
		parts = append(parts, typ)
	}
	for i := range frames {
		parts = append(parts, frames[i].key())
	}
	return hashParts(service, parts)
}

// isDefaultMarker reports whether s is Sentry's "{{ default }}" variable,
// in any spacing or case.
func isDefaultMarker(s string) bool {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{{") || !strings.HasSuffix(s, "}}") {
		return false
	}
	return strings.EqualFold(strings.TrimSpace(s[2:len(s)-2]), "default")
}

// hashParts hashes a version tag, the service and the parts, each length
// prefixed so that no two lists share an encoding.
func hashParts(service string, parts []string) string {
	b := make([]byte, 0, 256)
	app := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	app("correlator.sentry.fingerprint.v1")
	app(service)
	for _, p := range parts {
		app(p)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
