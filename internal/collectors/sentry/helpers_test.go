package sentry

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	testKey  = "e12d836b15bb49d7bbf99e64295d995b"
	testSalt = "test-salt"
)

// testNow is the clock of the mapping tests: after every fixture's time.
var testNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// recorder is a Writer that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	errs []event.ErrorEvent
	fail error // fail, when set, is returned by Add instead of keeping
}

func (r *recorder) Add(_ context.Context, b *event.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	if len(b.Changes)+len(b.Logs)+len(b.Metrics)+len(b.Services) > 0 {
		return errors.New("recorder: only errors expected")
	}
	r.errs = append(r.errs, b.Errors...)
	return nil
}

func (r *recorder) events() []event.ErrorEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.ErrorEvent(nil), r.errs...)
}

// testConfig has the projects of the fixtures: 42 (the SDK tests and the
// envelope examples), 1 (the webhook examples) and 5236886, 2 (the API
// examples).
func testConfig() Config {
	return Config{
		Projects: []Project{
			{ID: "42", Service: "checkout", PublicKeys: []Secret{testKey, "0123456789abcdef0123456789abcdef"}},
			{ID: "1", Service: "frontend"},
			{ID: "5236886", Service: "sentry-web", SampleRate: 0.5},
		},
		ServiceTag:    "service",
		SampleRateTag: "sample_rate",
		UserSalt:      testSalt,
		WebhookSecret: "webhook-client-secret",
	}
}

// hashed is the expected hashed user value, computed independently of
// the code under test.
func hashed(kind, v string) string {
	h := hmac.New(sha256.New, []byte(testSalt))
	h.Write([]byte(kind + ":" + v))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// value reads a counter or gauge (one child of a vector, or a plain one).
func value(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%v is neither a counter nor a gauge", c.Desc())
	return 0
}
