package sentry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/ingest"
	sentrygo "github.com/getsentry/sentry-go"
	"github.com/prometheus/client_golang/prometheus"
)

// These tests use the real sentry-go SDK as the client: its DSN points at
// the intake on an httptest server.

// paymentError is the error the tests capture; Unwrap gives sentry-go a
// chain of two exceptions.
type paymentError struct {
	amount int
	cause  error
}

func (e *paymentError) Error() string { return fmt.Sprintf("charge of %d cents declined", e.amount) }
func (e *paymentError) Unwrap() error { return e.cause }

var errCardDeclined = fmt.Errorf("card declined by issuer")

func charge(amount int) error { return &paymentError{amount: amount, cause: errCardDeclined} }

const testTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"

type sdkSetup struct {
	in  *Intake
	rec *recorder
	srv *httptest.Server
}

func startIntake(t *testing.T) *sdkSetup {
	t.Helper()
	rec := &recorder{}
	in, err := NewIntake(testConfig(), rec, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	in.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &sdkSetup{in: in, rec: rec, srv: srv}
}

func (s *sdkSetup) dsn(key string) string {
	return "http://" + key + "@" + s.srv.Listener.Addr().String() + "/42"
}

// newHub returns a hub whose scope carries what the tests assert on:
// user, customer tag, evaluated flags and a known trace.
func newHub(t *testing.T, opts sentrygo.ClientOptions) (*sentrygo.Hub, *sentrygo.Client) {
	t.Helper()
	opts.Release, opts.Environment, opts.ServerName = "checkout@1.4.2", "production", "web-1"
	client, err := sentrygo.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	hub := sentrygo.NewHub(client, sentrygo.NewScope())
	pc, err := sentrygo.PropagationContextFromHeaders(testTraceID+"-00f067aa0ba902b7-1", "")
	if err != nil {
		t.Fatal(err)
	}
	hub.ConfigureScope(func(s *sentrygo.Scope) {
		s.SetUser(sentrygo.User{ID: "u-123", Email: "jane@example.com", IPAddress: "203.0.113.7"})
		s.SetTag("customer_id", "acme")
		s.SetContext("flags", sentrygo.Context{"values": []map[string]any{
			{"flag": "new-checkout", "result": true},
			{"flag": "dark-mode", "result": false},
		}})
		s.SetPropagationContext(pc)
	})
	return hub, client
}

func TestSDKCaptureException(t *testing.T) {
	s := startIntake(t)
	hub, client := newHub(t, sentrygo.ClientOptions{Dsn: s.dsn(testKey)})
	before := time.Now().UTC().Truncate(time.Millisecond)
	// Two captures of the same error from two lines: the fingerprint must
	// not depend on the line.
	id1 := hub.CaptureException(charge(100))
	id2 := hub.CaptureException(charge(250))
	if !client.Flush(5 * time.Second) {
		t.Fatal("sentry-go did not flush")
	}
	after := time.Now().UTC()
	got := s.rec.events()
	if len(got) != 2 || id1 == nil || id2 == nil {
		t.Fatalf("got %d events (ids %v %v), want 2", len(got), id1, id2)
	}
	byID := map[string]event.ErrorEvent{}
	for _, e := range got {
		byID[e.ID] = e
	}
	for i, tc := range []struct {
		eventID *sentrygo.EventID
		amount  int
	}{{id1, 100}, {id2, 250}} {
		e, ok := byID[deriveID("event", string(*tc.eventID))]
		if !ok {
			t.Fatalf("capture %d (event %s) not stored under its derived id", i, *tc.eventID)
		}
		if e.Time.Before(before) || e.Time.After(after) {
			t.Errorf("time %v not within the capture [%v, %v]", e.Time, before, after)
		}
		want := map[string]string{
			"service":     e.Service + "|checkout",
			"environment": e.Environment + "|production",
			"release":     e.Release + "|checkout@1.4.2",
			"type":        e.Type + "|*sentry.paymentError",
			"message":     e.Message + "|" + fmt.Sprintf("charge of %d cents declined", tc.amount),
			"user_id":     e.UserID + "|" + hashed("id", "u-123"),
			"customer_id": e.CustomerID + "|acme",
			"trace_id":    e.TraceID + "|" + testTraceID,
			"level":       e.Level + "|error",
			"user.email":  e.Attributes[AttrUserEmail] + "|" + hashed("email", "jane@example.com"),
			"user.ip":     e.Attributes[AttrUserIP] + "|" + hashed("ip", "203.0.113.7"),
			"flag on":     e.Attributes["flag.new-checkout"] + "|true",
			"flag off":    e.Attributes["flag.dark-mode"] + "|false",
			"event id":    e.Attributes[AttrEventID] + "|" + string(*tc.eventID),
			"project":     e.Attributes[AttrProject] + "|42",
			"server name": e.Attributes[AttrServerName] + "|web-1",
		}
		for field, pair := range want {
			g, w, _ := strings.Cut(pair, "|")
			if g != w {
				t.Errorf("capture %d: %s = %q, want %q", i, field, g, w)
			}
		}
		if e.SampleRate != 1 {
			t.Errorf("sample rate = %v, want 1", e.SampleRate)
		}
		// The top in-app frame is this test function; sentry-go's own
		// frames and the runtime's are not in-app.
		frames := strings.Split(e.Attributes[AttrFrames], "\n")
		if !strings.HasPrefix(frames[0], "github.com/correlator/correlator/internal/collectors/sentry.TestSDKCaptureException (sdk_test.go:") {
			t.Errorf("top frame %q is not this test", frames[0])
		}
		for _, f := range frames {
			if strings.Contains(f, "getsentry") || strings.HasPrefix(f, "testing.") || strings.HasPrefix(f, "runtime.") {
				t.Errorf("frame %q should not be in-app", f)
			}
		}
		// No raw user data anywhere in the record.
		b, _ := json.Marshal(e)
		for _, raw := range []string{"u-123", "jane@example.com", "203.0.113.7"} {
			if bytes.Contains(b, []byte(raw)) {
				t.Errorf("raw %q stored: %s", raw, b)
			}
		}
	}
	e1, e2 := byID[deriveID("event", string(*id1))], byID[deriveID("event", string(*id2))]
	if e1.Fingerprint == "" || e1.Fingerprint != e2.Fingerprint {
		t.Errorf("fingerprints %q and %q differ for the same error", e1.Fingerprint, e2.Fingerprint)
	}
	if e1.Attributes[AttrFrames] == e2.Attributes[AttrFrames] {
		t.Error("the two captures should differ in their line numbers")
	}

	// Another error type from the same place is another group.
	id3 := hub.CaptureException(errCardDeclined)
	client.Flush(5 * time.Second)
	e3 := findEvent(t, s.rec, id3)
	if e3.Fingerprint == e1.Fingerprint || e3.Type != "*errors.errorString" {
		t.Errorf("a different error: type %q, fingerprint %q (first %q)", e3.Type, e3.Fingerprint, e1.Fingerprint)
	}
	if value(t, s.in.met.accepted) != 3 {
		t.Errorf("accepted = %v, want 3", value(t, s.in.met.accepted))
	}
}

func findEvent(t *testing.T, rec *recorder, id *sentrygo.EventID) event.ErrorEvent {
	t.Helper()
	if id == nil {
		t.Fatal("sentry-go did not capture")
	}
	for _, e := range rec.events() {
		if e.ID == deriveID("event", string(*id)) {
			return e
		}
	}
	t.Fatalf("event %s not stored", *id)
	return event.ErrorEvent{}
}

func TestSDKCaptureMessage(t *testing.T) {
	s := startIntake(t)
	hub, client := newHub(t, sentrygo.ClientOptions{Dsn: s.dsn(testKey)})
	id := hub.CaptureMessage("cache miss storm on 12 shards")
	client.Flush(5 * time.Second)
	e := findEvent(t, s.rec, id)
	if e.Level != "info" || e.Message != "cache miss storm on 12 shards" || e.Type != "" {
		t.Errorf("level %q, message %q, type %q", e.Level, e.Message, e.Type)
	}
	// No stack: the NDJSON ingest's fingerprint, numbers masked.
	if want := ingest.Fingerprint("checkout", "", "cache miss storm on 12 shards"); e.Fingerprint != want {
		t.Errorf("fingerprint %q, want %q", e.Fingerprint, want)
	}
	if e.CustomerID != "acme" || e.TraceID != testTraceID || e.Attributes["flag.new-checkout"] != "true" {
		t.Errorf("scope data lost: %+v", e)
	}
}

func TestSDKCustomFingerprintAndSyncTransport(t *testing.T) {
	s := startIntake(t)
	hub, client := newHub(t, sentrygo.ClientOptions{Dsn: s.dsn(testKey), Transport: sentrygo.NewHTTPSyncTransport()})
	var ids []*sentrygo.EventID
	hub.WithScope(func(scope *sentrygo.Scope) {
		scope.SetFingerprint([]string{"payment-provider-down"})
		ids = append(ids, hub.CaptureException(charge(1)))
		ids = append(ids, hub.CaptureMessage("provider timeout"))
	})
	client.Flush(5 * time.Second)
	a, b := findEvent(t, s.rec, ids[0]), findEvent(t, s.rec, ids[1])
	if a.Fingerprint != b.Fingerprint {
		t.Errorf("the SDK's fingerprint must group an exception and a message: %q vs %q", a.Fingerprint, b.Fingerprint)
	}
	if a.Fingerprint != fingerprint("checkout", []string{"payment-provider-down"}, "", "", false, nil) {
		t.Error("the fingerprint is not the SDK's")
	}
}

func TestSDKWrongKey(t *testing.T) {
	s := startIntake(t)
	hub, client := newHub(t, sentrygo.ClientOptions{Dsn: s.dsn("ffffffffffffffffffffffffffffffff")})
	hub.CaptureException(charge(100))
	client.Flush(5 * time.Second)
	if n := len(s.rec.events()); n != 0 {
		t.Fatalf("%d events written with a wrong key", n)
	}
	if got := value(t, s.in.met.rejected.WithLabelValues(reasonForbidden)); got != 1 {
		t.Errorf("rejected{forbidden} = %v, want 1", got)
	}
	if got := value(t, s.in.met.accepted); got != 0 {
		t.Errorf("accepted = %v", got)
	}
}

// gzipTransport compresses what sentry-go sends, as a relay or an SDK with
// transport compression does.
type gzipTransport struct {
	compressed *int
}

func (g gzipTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	z := gz(body)
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(z))
	r2.ContentLength = int64(len(z))
	r2.Header.Set("Content-Encoding", "gzip")
	*g.compressed++
	return http.DefaultTransport.RoundTrip(r2)
}

func TestSDKGzip(t *testing.T) {
	s := startIntake(t)
	var n int
	hub, client := newHub(t, sentrygo.ClientOptions{
		Dsn:        s.dsn(testKey),
		HTTPClient: &http.Client{Transport: gzipTransport{compressed: &n}},
	})
	id := hub.CaptureException(charge(100))
	client.Flush(5 * time.Second)
	e := findEvent(t, s.rec, id)
	if n == 0 {
		t.Fatal("the request was not compressed")
	}
	if e.Type != "*sentry.paymentError" || e.UserID != hashed("id", "u-123") || e.TraceID != testTraceID {
		t.Errorf("gzip event: %+v", e)
	}
}
