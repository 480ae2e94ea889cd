package ingest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// benchNow is the clock of the benchmarks; the generated events lie in the
// hour before it.
var benchNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// errorLines generates n NDJSON error events shaped like a Sentry export:
// a few dozen services, messages with ids and durations in them, trace ids,
// a handful of attributes, no ids (so every id is derived) and a fingerprint
// on only a third of them (so most fingerprints are derived too).
func errorLines(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	services := make([]string, 40)
	for i := range services {
		services[i] = fmt.Sprintf("svc-%02d", i)
	}
	messages := []string{
		"timeout after %dms calling payments for order %d",
		"connection refused: dial tcp 10.0.%d.%d:5432",
		"user %d not found",
		"invalid token for session %08x%08x",
		"NullPointerException at com.example.checkout.CartService.total(CartService.java:%d) item=%d",
	}
	types := []string{"TimeoutError", "ConnectionError", "NotFound", "AuthError", "java.lang.NullPointerException"}
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		m := rng.IntN(len(messages))
		msg := fmt.Sprintf(messages[m], rng.IntN(5000), rng.IntN(100000))
		if m == 3 {
			msg = fmt.Sprintf(messages[m], rng.Uint32(), rng.Uint32())
		}
		t := benchNow.Add(-time.Duration(rng.IntN(3600_000)) * time.Millisecond)
		fmt.Fprintf(&buf, `{"time":%q,"service":%q,"environment":"production","release":"%s@1.%d.0","type":%q,"message":%q,"user_id":"u-%d","customer_id":"c-%d","trace_id":"%016x%016x","level":"error"`,
			t.Format(time.RFC3339Nano), services[rng.IntN(len(services))], services[i%len(services)], rng.IntN(20), types[m], msg,
			rng.IntN(1_000_000), rng.IntN(5000), rng.Uint64(), rng.Uint64())
		if i%3 == 0 {
			fmt.Fprintf(&buf, `,"fingerprint":"fp-%d"`, m)
		}
		fmt.Fprintf(&buf, `,"attributes":{"http.method":"GET","http.route":"/api/orders/{id}","http.status_code":%d,"k8s.pod":"%s-7d9f8c6b5-%05d"}}`+"\n",
			500+rng.IntN(5), services[i%len(services)], rng.IntN(100000))
	}
	return buf.Bytes()
}

func BenchmarkDecodeErrors(b *testing.B) {
	const n = 100_000
	data := errorLines(n)
	opt := Options{Now: func() time.Time { return benchNow }}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := Decode(context.Background(), event.KindErrors, bytes.NewReader(data), opt, func(*event.Batch) error { return nil })
		if err != nil || res.Accepted != n {
			b.Fatalf("Decode: accepted %d of %d, errors %v, err %v", res.Accepted, n, res.Errors, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecodeErrorsArray is BenchmarkDecodeErrors with the same events as
// one JSON array, which goes through the array splitter.
func BenchmarkDecodeErrorsArray(b *testing.B) {
	const n = 100_000
	data := []byte(toArray(string(errorLines(n))))
	opt := Options{Now: func() time.Time { return benchNow }}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := Decode(context.Background(), event.KindErrors, bytes.NewReader(data), opt, func(*event.Batch) error { return nil })
		if err != nil || res.Accepted != n {
			b.Fatalf("Decode: accepted %d of %d, errors %v, err %v", res.Accepted, n, res.Errors, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
