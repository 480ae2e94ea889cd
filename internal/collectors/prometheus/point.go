package prometheus

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"

	"github.com/correlator/correlator/internal/event"
)

// pointIDVersion tags the encoding PointID hashes; bump it if the encoding
// changes.
const pointIDVersion = "correlator.metric.point.v1"

// PointID is the identity of a metric point: 32 hex digits of SHA-256 over
// its service, name, labels (in key order) and time (Unix nanoseconds),
// each length-prefixed so that no two different points share an input. It
// is the same identity the store deduplicates metric_points on (service,
// name, a hash of the labels, time), in the hex-id form ingest gives other
// records; the value is not part of it, so a re-pulled point with a
// corrected value replaces the old one instead of adding to it.
func PointID(p event.MetricPoint) string {
	b := make([]byte, 0, 128)
	field := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	field(pointIDVersion)
	field(p.Service)
	field(p.Name)
	keys := make([]string, 0, len(p.Labels))
	for k := range p.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		field(k)
		field(p.Labels[k])
	}
	b = binary.BigEndian.AppendUint64(b, uint64(p.Time.UnixNano()))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
