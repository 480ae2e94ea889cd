package ingest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"

	"github.com/correlator/correlator/internal/event"
)

// Derived ids make re-sending idempotent: a record without an id gets one
// computed from everything else it says, so the same event sent twice gets
// the same id and the store can drop the copy, while any difference in any
// field gives a different id.
//
// The id is the first 16 bytes of SHA-256, in hex, over a canonical encoding:
// a version tag, the record kind, then every field in a fixed order, each
// length-prefixed (uvarint), the time as Unix nanoseconds and the attributes
// as a count followed by key, value pairs in key order. Length prefixes make
// the encoding injective, so no two different records share an input; the
// fields are the normalised ones (UTC time, upper-case severity, defaults
// filled in), so equivalent spellings of one event share an id.
//
// Changing this encoding changes every derived id: bump idVersion if you must.
const idVersion = "correlator.ingest.id.v1"

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendInt(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// appendAttrs appends m in key order. keys is scratch space, returned for
// reuse.
func appendAttrs(b []byte, m map[string]string, keys []string) ([]byte, []string) {
	keys = keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendField(b, k)
		b = appendField(b, m[k])
	}
	return b, keys
}

// idHasher holds the scratch space for deriving ids. Not safe for concurrent
// use; each Decode call has its own.
type idHasher struct {
	buf  []byte
	keys []string
}

func (h *idHasher) sum() string {
	sum := sha256.Sum256(h.buf)
	return hex.EncodeToString(sum[:16])
}

func (h *idHasher) start(kind event.Kind) []byte {
	b := appendField(h.buf[:0], idVersion)
	return appendField(b, string(kind))
}

func (h *idHasher) change(c *event.Change) string {
	b := h.start(event.KindChanges)
	b = appendInt(b, c.Time.UnixNano())
	for _, s := range [...]string{string(c.Kind), c.Service, c.Environment, c.Version,
		c.PreviousVersion, c.Commit, c.Author, c.Title, c.URL, c.Source} {
		b = appendField(b, s)
	}
	h.buf, h.keys = appendAttrs(b, c.Attributes, h.keys)
	return h.sum()
}

func (h *idHasher) errorEvent(e *event.ErrorEvent) string {
	b := h.start(event.KindErrors)
	b = appendInt(b, e.Time.UnixNano())
	for _, s := range [...]string{e.Service, e.Environment, e.Release, e.Fingerprint,
		e.Type, e.Message, e.UserID, e.CustomerID, e.TraceID, e.Level} {
		b = appendField(b, s)
	}
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.SampleRate))
	h.buf, h.keys = appendAttrs(b, e.Attributes, h.keys)
	return h.sum()
}

func (h *idHasher) log(l *event.LogRecord) string {
	b := h.start(event.KindLogs)
	b = appendInt(b, l.Time.UnixNano())
	for _, s := range [...]string{l.Service, l.Severity, l.Body, l.UserID,
		l.CustomerID, l.TraceID, l.SpanID} {
		b = appendField(b, s)
	}
	h.buf, h.keys = appendAttrs(b, l.Attributes, h.keys)
	return h.sum()
}
