package spool

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/correlator/correlator/internal/event"
)

// FuzzDecodeBatch: any payload either decodes or is refused as malformed,
// never panics or allocates beyond its size; what decodes encodes back to
// a payload that decodes to the same batch.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(appendBatch(nil, sampleBatch(0, 2)))
	f.Add(appendBatch(nil, sampleBatch(5, 1)))
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := decodeBatch(p)
		if err != nil {
			return
		}
		if n, err := batchLen(p); err != nil || n != b.Len() {
			t.Fatalf("batchLen = %d, %v; decode found %d records", n, err, b.Len())
		}
		again, err := decodeBatch(appendBatch(nil, b))
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if !hasNaN(b) && !reflect.DeepEqual(again, b) {
			t.Fatalf("round trip changed the batch:\n%+v\n%+v", again, b)
		}
	})
}

// hasNaN reports a NaN value, which no batch equals.
func hasNaN(b *event.Batch) bool {
	for _, e := range b.Errors {
		if math.IsNaN(e.SampleRate) {
			return true
		}
	}
	for _, m := range b.Metrics {
		if math.IsNaN(m.Value) {
			return true
		}
	}
	return false
}

// segmentBytes is a segment file holding one record per batch.
func segmentBytes(batches ...*event.Batch) []byte {
	d := make([]byte, headerSize)
	copy(d, segmentMagic)
	binary.LittleEndian.PutUint16(d[6:], segmentVersion)
	binary.LittleEndian.PutUint64(d[8:], uint64(t0.UnixNano()))
	for _, b := range batches {
		p := appendBatch(nil, b)
		d = binary.LittleEndian.AppendUint32(d, uint32(len(p)))
		d = binary.LittleEndian.AppendUint32(d, crc32.Checksum(p, castagnoli))
		d = append(d, p...)
	}
	return d
}

// FuzzScanSegment: any file content is a segment, a torn tail or an error
// at Open, never a panic; after Open, what is left reads back whole.
func FuzzScanSegment(f *testing.F) {
	good := segmentBytes(sampleBatch(0, 1), sampleBatch(1, 2), &event.Batch{Services: []event.Service{{Service: "s"}}})
	f.Add(good, true)
	f.Add(good, false)
	f.Add(good[:len(good)-3], true)
	f.Add(good[:headerSize+frameSize+2], false)
	f.Add(append(good, make([]byte, 100)...), true)
	f.Add([]byte("CORSPL"), true)
	f.Fuzz(func(t *testing.T, data []byte, last bool) {
		seg, cut, _, err := scanData(data, last)
		if err != nil {
			return
		}
		if cut > int64(len(data)) || (!last && cut >= 0) {
			t.Fatalf("cut at %d of %d bytes (last %v)", cut, len(data), last)
		}
		if cut >= 0 {
			data = data[:cut]
		}
		if len(data) == 0 {
			return
		}
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "00000000000000000001.seg"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(d, Options{})
		if err != nil {
			t.Fatalf("Open after a clean scan: %v", err)
		}
		defer s.Close()
		if st := s.Stats(); st.Records != seg.Records {
			t.Fatalf("Open counts %d records, scan %d", st.Records, seg.Records)
		}
		if o, ok := s.Oldest(); ok {
			if _, err := s.Read(o); err != nil {
				t.Fatalf("Read after a clean scan: %v", err)
			}
		}
		if err := s.Append(context.Background(), sampleBatch(0, 1)); err != nil {
			t.Fatalf("Append after Open: %v", err)
		}
	})
}
