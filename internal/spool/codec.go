package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// The payload of a record is one event.Batch in a compact binary form of
// our own. gob, which would need no code, round-trips a chunk of 5000 error
// events at about a fifth of the rate (BenchmarkCodec: 265k against 1.38M
// records/s on the 2-core CI class, sizes alike), because a self-contained
// record makes it describe and compile its types every time. The layout,
// version 1 (segmentVersion):
//
//	uvarint × 5   number of changes, errors, logs, metrics, services
//	the records, kind by kind in that order, each field in declaration
//	order of its event type:
//	  string      uvarint length, then the bytes
//	  time        zigzag varint Unix seconds, uvarint nanoseconds (UTC)
//	  float64     8 bytes, little-endian IEEE 754 bits
//	  map         uvarint count, then key and value strings
//	  []string    uvarint count, then the strings
//
// Empty maps and slices decode as nil, which the store treats as empty.

// appendBatch appends the encoding of b to dst.
func appendBatch(dst []byte, b *event.Batch) []byte {
	for _, n := range [...]int{len(b.Changes), len(b.Errors), len(b.Logs), len(b.Metrics), len(b.Services)} {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		dst = appendString(dst, c.ID)
		dst = appendTime(dst, c.Time)
		dst = appendString(dst, string(c.Kind))
		dst = appendString(dst, c.Service)
		dst = appendString(dst, c.Environment)
		dst = appendString(dst, c.Version)
		dst = appendString(dst, c.PreviousVersion)
		dst = appendString(dst, c.Commit)
		dst = appendString(dst, c.Author)
		dst = appendString(dst, c.Title)
		dst = appendString(dst, c.URL)
		dst = appendString(dst, c.Source)
		dst = appendMap(dst, c.Attributes)
	}
	for i := range b.Errors {
		e := &b.Errors[i]
		dst = appendString(dst, e.ID)
		dst = appendTime(dst, e.Time)
		dst = appendString(dst, e.Service)
		dst = appendString(dst, e.Environment)
		dst = appendString(dst, e.Release)
		dst = appendString(dst, e.Fingerprint)
		dst = appendString(dst, e.Type)
		dst = appendString(dst, e.Message)
		dst = appendString(dst, e.UserID)
		dst = appendString(dst, e.CustomerID)
		dst = appendString(dst, e.TraceID)
		dst = appendString(dst, e.Level)
		dst = appendFloat(dst, e.SampleRate)
		dst = appendMap(dst, e.Attributes)
	}
	for i := range b.Logs {
		l := &b.Logs[i]
		dst = appendString(dst, l.ID)
		dst = appendTime(dst, l.Time)
		dst = appendString(dst, l.Service)
		dst = appendString(dst, l.Severity)
		dst = appendString(dst, l.Body)
		dst = appendString(dst, l.UserID)
		dst = appendString(dst, l.CustomerID)
		dst = appendString(dst, l.TraceID)
		dst = appendString(dst, l.SpanID)
		dst = appendMap(dst, l.Attributes)
	}
	for i := range b.Metrics {
		m := &b.Metrics[i]
		dst = appendTime(dst, m.Time)
		dst = appendString(dst, m.Service)
		dst = appendString(dst, m.Name)
		dst = appendFloat(dst, m.Value)
		dst = appendMap(dst, m.Labels)
	}
	for i := range b.Services {
		s := &b.Services[i]
		dst = appendString(dst, s.Service)
		dst = binary.AppendUvarint(dst, uint64(len(s.DependsOn)))
		for _, d := range s.DependsOn {
			dst = appendString(dst, d)
		}
		dst = appendTime(dst, s.Time)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

func appendFloat(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

func appendMap(dst []byte, m map[string]string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	for k, v := range m {
		dst = appendString(dst, k)
		dst = appendString(dst, v)
	}
	return dst
}

// batchLen reads the record count of an encoded batch without decoding it.
// Each count is bounded by the payload's size, as decodeBatch bounds them.
func batchLen(p []byte) (int, error) {
	n := uint64(0)
	for range 5 {
		c, k := binary.Uvarint(p)
		if k <= 0 {
			return 0, fmt.Errorf("%w: bad count", errMalformed)
		}
		p = p[k:]
		n += c
		if n > uint64(len(p)) {
			return 0, fmt.Errorf("%w: %d records announced in %d bytes", errMalformed, n, len(p))
		}
	}
	return int(n), nil
}

// errMalformed is wrapped by every decoding error.
var errMalformed = errors.New("malformed record")

// decodeBatch decodes one payload. The strings of the result share one copy
// of p, which is the only allocation for text: a segment's records are
// written to the store together and dropped together.
func decodeBatch(p []byte) (*event.Batch, error) {
	d := decoder{s: string(p)}
	var n [5]int
	for i := range n {
		n[i] = d.count()
	}
	if d.err != nil {
		return nil, d.err
	}
	// Every record takes at least one byte, so the counts together cannot
	// exceed what is left; this bounds the allocations below by the input.
	if total := n[0] + n[1] + n[2] + n[3] + n[4]; total > len(d.s)-d.pos {
		return nil, fmt.Errorf("%w: %d records announced in %d bytes", errMalformed, total, len(d.s)-d.pos)
	}
	b := &event.Batch{}
	if n[0] > 0 {
		b.Changes = make([]event.Change, n[0])
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		c.ID, c.Time, c.Kind, c.Service = d.str(), d.time(), event.ChangeKind(d.str()), d.str()
		c.Environment, c.Version, c.PreviousVersion, c.Commit = d.str(), d.str(), d.str(), d.str()
		c.Author, c.Title, c.URL, c.Source = d.str(), d.str(), d.str(), d.str()
		c.Attributes = d.strMap()
	}
	if n[1] > 0 {
		b.Errors = make([]event.ErrorEvent, n[1])
	}
	for i := range b.Errors {
		e := &b.Errors[i]
		e.ID, e.Time, e.Service, e.Environment, e.Release = d.str(), d.time(), d.str(), d.str(), d.str()
		e.Fingerprint, e.Type, e.Message, e.UserID, e.CustomerID = d.str(), d.str(), d.str(), d.str(), d.str()
		e.TraceID, e.Level, e.SampleRate, e.Attributes = d.str(), d.str(), d.float(), d.strMap()
	}
	if n[2] > 0 {
		b.Logs = make([]event.LogRecord, n[2])
	}
	for i := range b.Logs {
		l := &b.Logs[i]
		l.ID, l.Time, l.Service, l.Severity, l.Body = d.str(), d.time(), d.str(), d.str(), d.str()
		l.UserID, l.CustomerID, l.TraceID, l.SpanID, l.Attributes = d.str(), d.str(), d.str(), d.str(), d.strMap()
	}
	if n[3] > 0 {
		b.Metrics = make([]event.MetricPoint, n[3])
	}
	for i := range b.Metrics {
		m := &b.Metrics[i]
		m.Time, m.Service, m.Name, m.Value, m.Labels = d.time(), d.str(), d.str(), d.float(), d.strMap()
	}
	if n[4] > 0 {
		b.Services = make([]event.Service, n[4])
	}
	for i := range b.Services {
		s := &b.Services[i]
		s.Service = d.str()
		if k := d.count(); k > 0 && d.err == nil {
			s.DependsOn = make([]string, k)
			for j := range s.DependsOn {
				s.DependsOn[j] = d.str()
			}
		}
		s.Time = d.time()
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.pos != len(d.s) {
		return nil, fmt.Errorf("%w: %d bytes after the last record", errMalformed, len(d.s)-d.pos)
	}
	return b, nil
}

// decoder reads the encoding from s. The first error sticks: later reads
// return zero values, so callers check err once at the end.
type decoder struct {
	s   string
	pos int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s at byte %d", errMalformed, what, d.pos)
	}
	d.pos = len(d.s)
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		if d.pos >= len(d.s) {
			break
		}
		c := d.s[d.pos]
		d.pos++
		if c < 0x80 {
			if shift == 63 && c > 1 {
				break
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
	}
	d.fail(what)
	return 0
}

// count reads a length or count and checks that it fits in what is left.
func (d *decoder) count() int {
	n := d.uvarint("count")
	if n > uint64(len(d.s)-d.pos) {
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.count()
	s := d.s[d.pos : d.pos+n]
	d.pos += n
	return s
}

func (d *decoder) time() time.Time {
	u := d.uvarint("time")
	sec := int64(u>>1) ^ -int64(u&1) // zigzag, as binary.AppendVarint
	nsec := d.uvarint("time")
	if nsec >= 1e9 {
		d.fail("time")
		return time.Time{}
	}
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) float() float64 {
	if d.err != nil {
		return 0
	}
	if len(d.s)-d.pos < 8 {
		d.fail("float")
		return 0
	}
	var u uint64
	for i := 7; i >= 0; i-- {
		u = u<<8 | uint64(d.s[d.pos+i])
	}
	d.pos += 8
	return math.Float64frombits(u)
}

func (d *decoder) strMap() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, min(n, 64))
	for range n {
		k := d.str()
		m[k] = d.str()
		if d.err != nil {
			return nil
		}
	}
	return m
}
