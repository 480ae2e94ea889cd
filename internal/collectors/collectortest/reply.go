package collectortest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// Reply is a change receiver's JSON answer as the checks read it: the
// fields of changes.Reply, decoded from the same names (this package
// cannot import changes, whose tests use it).
type Reply struct {
	Status  string `json:"status"`
	Changes int    `json:"changes"`
	Reason  string `json:"reason"`
}

// ReadReply decodes the answer in rec, failing t when it is not JSON.
func ReadReply(t testing.TB, rec *httptest.ResponseRecorder) Reply {
	t.Helper()
	var rep Reply
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("%d: the body is not a JSON reply: %v: %q", rec.Code, err, rec.Body.Bytes())
	}
	return rep
}

// CheckReply reads a change receiver's answer in rec (see ReadReply),
// checks it against what its writer w saw and returns it. The invariants
// of every change receiver:
//
//   - 200 "accepted": one write, which succeeded, of as many changes as the
//     reply counts, and at least one;
//   - 202 "ignored" with a reason, and nothing written;
//   - 4xx "error" with a reason that is not blank, and nothing written;
//   - 503 with a reason only after one write that failed;
//   - no other status.
//
// Then every written change must pass CheckChange. validate is
// changes.Validate.
func CheckReply(t testing.TB, rec *httptest.ResponseRecorder, w *Writer, validate func(*event.Change) error) Reply {
	t.Helper()
	rep := ReadReply(t, rec)
	got := w.Changes()
	switch code, calls := rec.Code, w.Calls(); {
	case code == http.StatusOK:
		if rep.Status != "accepted" || calls != 1 || w.Fail || rep.Changes == 0 || rep.Changes != len(got) {
			t.Fatalf("200 %+v after %d writes of %d changes", rep, calls, len(got))
		}
	case code == http.StatusAccepted:
		if rep.Status != "ignored" || rep.Reason == "" || calls != 0 {
			t.Fatalf("202 %+v after %d writes", rep, calls)
		}
	case code >= 400 && code < 500:
		if rep.Status != "error" || strings.TrimSpace(rep.Reason) == "" || calls != 0 {
			t.Fatalf("%d %+v after %d writes", code, rep, calls)
		}
	case code == http.StatusServiceUnavailable:
		if !w.Fail || calls != 1 || rep.Reason == "" {
			t.Fatalf("503 %+v, but the writer did not fail", rep)
		}
	default:
		t.Fatalf("status %d %+v", code, rep)
	}
	for _, c := range got {
		CheckChange(t, c, validate)
	}
	return rep
}

// CheckChange checks what every written change needs: a service, a known
// kind, a time in UTC and an id; that validate (changes.Validate) accepts
// it; and that it can be encoded.
func CheckChange(t testing.TB, c event.Change, validate func(*event.Change) error) {
	t.Helper()
	if strings.TrimSpace(c.Service) == "" || !slices.Contains(event.ChangeKinds, c.Kind) || c.Time.IsZero() || c.ID == "" {
		t.Fatalf("invalid change %+v", c)
	}
	if c.Time.Location() != time.UTC {
		t.Fatalf("time %v not in UTC", c.Time)
	}
	v := c
	if err := validate(&v); err != nil {
		t.Fatalf("written change does not validate: %v\n%+v", err, c)
	}
	if _, err := json.Marshal(c); err != nil {
		t.Fatalf("written change cannot be encoded: %v\n%+v", err, c)
	}
}
