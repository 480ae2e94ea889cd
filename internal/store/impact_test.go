package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// impactBatch: in api and web between t0 and t0+1h,
//   - u1 (customer c1) fails 3 times on api: an error event (sampled 0.5)
//     and a 500 access-log line (unsampled) for trace t1 — one failure —
//     plus errors for traces t2 and t3 at 0.5;
//   - u2 (c1) fails once on web through an ERROR log line;
//   - u3 (c2) fails twice on api at 0.5, once more a minute past the
//     window (not counted);
//   - u4 (c2) only logs a slow request (failed only with a threshold);
//   - a failure without a user (anonymous) on api;
//   - u5 only leaves a warning event and an INFO request line (active, not
//     failed), u6 only INFO lines sampled at 0.25.
func impactBatch() *event.Batch {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	errEv := func(id, trace, svc, user, cust string, m int, rate float64, level string) event.ErrorEvent {
		return event.ErrorEvent{ID: id, Time: at(m), Service: svc, Fingerprint: "fp-" + id, Type: "KeyError", Message: "missing key",
			UserID: user, CustomerID: cust, TraceID: trace, Level: level, SampleRate: rate,
			Attributes: map[string]string{"http.route": "GET /cart"}}
	}
	logLine := func(svc, sev, user, cust, trace string, m int, attrs map[string]string) event.LogRecord {
		return event.LogRecord{Time: at(m), Service: svc, Severity: sev, Body: sev + " line " + trace, UserID: user, CustomerID: cust, TraceID: trace, Attributes: attrs}
	}
	return &event.Batch{
		Errors: []event.ErrorEvent{
			errEv("e1", "t1", "api", "u1", "c1", 5, 0.5, "error"),
			errEv("e2", "t2", "api", "u1", "c1", 6, 0.5, "error"),
			errEv("e3", "t3", "api", "u1", "c1", 7, 0.5, "fatal"),
			errEv("e4", "t4", "api", "u3", "c2", 8, 0.5, "error"),
			errEv("e5", "t5", "api", "u3", "c2", 9, 0.5, "error"),
			errEv("e6", "t6", "api", "u3", "c2", 61, 0.5, "error"),
			errEv("e7", "t7", "api", "", "", 10, 0.5, "error"),
			errEv("e8", "t8", "api", "u5", "c3", 11, 0.5, "warning"),
		},
		Logs: []event.LogRecord{
			logLine("api", "INFO", "u1", "c1", "t1", 5, map[string]string{"http.status_code": "500", "http.route": "GET /cart"}),
			logLine("web", "ERROR", "u2", "c1", "t9", 12, nil),
			logLine("api", "INFO", "u4", "c2", "t10", 13, map[string]string{"http.status_code": "200", "duration_ms": "2500"}),
			logLine("api", "INFO", "u5", "c3", "t11", 14, map[string]string{"http.status_code": "200"}),
			logLine("api", "INFO", "u6", "c3", "t12", 15, map[string]string{"http.status_code": "200", "sample_rate": "0.25"}),
			logLine("api", "INFO", "u6", "c3", "t13", 16, map[string]string{"http.status_code": "200", "sample_rate": "0.25"}),
		},
	}
}

func TestFailureFrequencies(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Write(ctx, impactBatch()); err != nil {
			t.Fatal(err)
		}
		// The window, and a baseline an hour earlier with nothing in it.
		scope := store.FailureScope{Services: []string{"api", "web"}, Windows: []store.Window{{t0, t0.Add(time.Hour)}, {t0.Add(-time.Hour), t0}}}
		rows, err := s.FailureFrequencies(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		byEntity := func(rows []store.FreqRow, e store.Entity) []store.FreqRow {
			var out []store.FreqRow
			for _, r := range rows {
				if r.Entity == e {
					if r.Window != 0 {
						t.Errorf("a row in the empty baseline: %+v", r)
					}
					r.Entity, r.Window = "", 0
					out = append(out, r)
				}
			}
			return out
		}
		users := byEntity(rows, store.Users)
		// u1: t1 was kept for sure by the access log, so u1 is filed
		// under rate 1 with that one failure; u2 under 1 (its log line);
		// u3 under 0.5, seen twice (the third failure is past the window).
		// Errors, Logs, Both: how the failures counted were kept (u1's t1
		// by the access log at rate 1; u3's by error events at 0.5).
		want := []store.FreqRow{
			{Service: "", Rate: 0.5, Seen: 2, Entities: 1, Errors: 2},
			{Service: "", Rate: 1, Seen: 1, Entities: 2, Logs: 2},
			{Service: "api", Rate: 0.5, Seen: 2, Entities: 1, Errors: 2},
			{Service: "api", Rate: 1, Seen: 1, Entities: 1, Logs: 1},
			{Service: "web", Rate: 1, Seen: 1, Entities: 1, Logs: 1},
		}
		if !reflect.DeepEqual(users, want) {
			t.Errorf("users:\ngot  %+v\nwant %+v", users, want)
		}
		cust := byEntity(rows, store.Customers)
		wantCust := []store.FreqRow{
			{Service: "", Rate: 0.5, Seen: 2, Entities: 1, Errors: 2},
			{Service: "", Rate: 1, Seen: 2, Entities: 1, Logs: 2},
			{Service: "api", Rate: 0.5, Seen: 2, Entities: 1, Errors: 2},
			{Service: "api", Rate: 1, Seen: 1, Entities: 1, Logs: 1},
			{Service: "web", Rate: 1, Seen: 1, Entities: 1, Logs: 1},
		}
		if !reflect.DeepEqual(cust, wantCust) {
			t.Errorf("customers:\ngot  %+v\nwant %+v", cust, wantCust)
		}
		// With a 2 s latency threshold u4's slow request is a failure.
		scope.LatencyMS = 2000
		slow, err := s.FailureFrequencies(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, r := range byEntity(slow, store.Users) {
			if r.Service == "" {
				n += r.Entities
			}
		}
		if n != 4 {
			t.Errorf("with a latency threshold: %d users, want 4 (%+v)", n, slow)
		}
		if _, err := s.FailureFrequencies(ctx, store.FailureScope{Services: []string{"api"}}); err == nil {
			t.Error("a scope without a window was accepted")
		}
	})
}

func TestActiveUserFrequencies(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Write(ctx, impactBatch()); err != nil {
			t.Fatal(err)
		}
		got, err := s.ActiveUserFrequencies(ctx, store.FailureScope{Services: []string{"api"}, Windows: []store.Window{{t0, t0.Add(time.Hour)}}})
		if err != nil {
			t.Fatal(err)
		}
		// u6 left two lines sampled at 0.25; u1 four records (3 errors, 1
		// line), u3 two errors at 0.5 (the third is past the window), u4
		// one line, u5 a warning and a line; all but u6 are filed under
		// rate 1 or their errors' 0.5.
		want := []store.FreqRow{
			{Entity: store.Users, Rate: 0.25, Seen: 2, Entities: 1},
			{Entity: store.Users, Rate: 0.5, Seen: 2, Entities: 1},
			{Entity: store.Users, Rate: 1, Seen: 1, Entities: 3},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	})
}

func TestFailuresByCustomerAndRoute(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Write(ctx, impactBatch()); err != nil {
			t.Fatal(err)
		}
		// The second window (a baseline) is not part of the breakdowns.
		scope := store.FailureScope{Services: []string{"api", "web"}, Windows: []store.Window{{t0, t0.Add(time.Hour)}, {t0.Add(time.Hour), t0.Add(2 * time.Hour)}}}
		cust, err := s.FailuresByCustomer(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.CustomerFailures{
			// c1: t1 (kept surely) + t2, t3 at 0.5 + web's t9 = 1+2+2+1.
			{Customer: "c1", Users: 2, Failures: 6, FirstFailure: t0.Add(5 * time.Minute), LastFailure: t0.Add(12 * time.Minute),
				TopError: "KeyError: missing key", Services: []string{"api", "web"}},
			{Customer: "c2", Users: 1, Failures: 4, FirstFailure: t0.Add(8 * time.Minute), LastFailure: t0.Add(9 * time.Minute),
				TopError: "KeyError: missing key", Services: []string{"api"}},
		}
		if !reflect.DeepEqual(cust, want) {
			t.Errorf("customers:\ngot  %+v\nwant %+v", cust, want)
		}
		routes, err := s.FailuresByRoute(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		wantRoutes := []store.RouteFailures{
			{Service: "api", Route: "GET /cart", Users: 2, Failures: 11, AnonymousFailures: 2, TopError: "KeyError: missing key"},
			{Service: "web", Route: "", Users: 1, Failures: 1, TopError: "ERROR line t9"},
		}
		if !reflect.DeepEqual(routes, wantRoutes) {
			t.Errorf("routes:\ngot  %+v\nwant %+v", routes, wantRoutes)
		}
	})
}

func TestFailureFrequenciesCountOverlap(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		b := impactBatch()
		// u3's t4 is also seen by a log line sampled at 0.5, as its error was.
		b.Logs = append(b.Logs, event.LogRecord{Time: t0.Add(8 * time.Minute), Service: "api", Severity: "ERROR", Body: "boom",
			UserID: "u3", CustomerID: "c2", TraceID: "t4", Attributes: map[string]string{"sample_rate": "0.5"}})
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		rows, err := s.FailureFrequencies(ctx, store.FailureScope{Services: []string{"api", "web"}, Windows: []store.Window{{t0.Add(-time.Hour), t0}, {t0, t0.Add(time.Hour)}}})
		if err != nil {
			t.Fatal(err)
		}
		var got []store.FreqRow
		for _, r := range rows {
			if r.Entity == store.Users && r.Service == "" && r.Rate < 1 {
				got = append(got, r)
			}
		}
		// At 0.5, in the second window: u3's t4 and t5 by error events, t4
		// by a log line too; the anonymous t7 counts for no user.
		want := []store.FreqRow{{Window: 1, Entity: store.Users, Rate: 0.5, Seen: 2, Entities: 1, Errors: 2, Logs: 1, Both: 1}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
}

func TestActiveUsersAddSourcesAtOneRate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		// u7 leaves an error event and a log line, both sampled at 0.5; a
		// sample rate below a millionth (or 0) is read as a millionth.
		b := &event.Batch{
			Errors: []event.ErrorEvent{
				{ID: "a1", Time: t0.Add(time.Minute), Service: "api", UserID: "u7", Level: "error", SampleRate: 0.5, Message: "x"},
				{ID: "a2", Time: t0.Add(2 * time.Minute), Service: "api", UserID: "u8", Level: "error", SampleRate: 1e-9, Message: "x"},
			},
			Logs: []event.LogRecord{{Time: t0.Add(3 * time.Minute), Service: "api", Body: "ok", UserID: "u7", Attributes: map[string]string{"sample_rate": "0.5"}}},
		}
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		scope := store.FailureScope{Services: []string{"api"}, Windows: []store.Window{{t0, t0.Add(time.Hour)}}}
		got, err := s.ActiveUserFrequencies(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.FreqRow{
			{Entity: store.Users, Rate: 1e-6, Seen: 1, Entities: 1},
			{Entity: store.Users, Rate: 0.5, Seen: 2, Entities: 1},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
		freq, err := s.FailureFrequencies(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range freq {
			if !(r.Rate >= 1e-6) {
				t.Errorf("a rate below the floor: %+v", r)
			}
		}
	})
}
