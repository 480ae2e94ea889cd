package livelink

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSignedLinks(t *testing.T) {
	t0 := time.Date(2026, 3, 9, 14, 0, 0, 0, time.UTC)
	now := t0
	s, err := New([]byte(strings.Repeat("k", 32)), "https://correlator.example.com/", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return now }
	link := s.URL("inc-1", t0)
	if again := s.URL("inc-1", t0); again != link {
		t.Errorf("two links to one incident differ: %q, %q", link, again)
	}
	if !strings.HasPrefix(link, "https://correlator.example.com/incidents/inc-1?") {
		t.Fatalf("link %q: want the base URL and the page path", link)
	}
	u, _ := url.Parse(link)
	req := func(u *url.URL) error { return s.Check(httptest.NewRequest("GET", u.RequestURI(), nil), "inc-1") }
	if err := req(u); err != nil {
		t.Fatalf("fresh link refused: %v", err)
	}
	// Another incident's page with this link's signature.
	if err := s.Check(httptest.NewRequest("GET", u.RequestURI(), nil), "inc-2"); !errors.Is(err, ErrBadSig) {
		t.Errorf("link reused for another incident: %v, want ErrBadSig", err)
	}
	// A later expiry with the same signature.
	q := u.Query()
	q.Set("exp", "99999999999")
	forged := *u
	forged.RawQuery = q.Encode()
	if err := req(&forged); !errors.Is(err, ErrBadSig) {
		t.Errorf("extended link: %v, want ErrBadSig", err)
	}
	// No signature.
	bare := *u
	bare.RawQuery = ""
	if err := req(&bare); !errors.Is(err, ErrUnsigned) {
		t.Errorf("bare link: %v, want ErrUnsigned", err)
	}
	now = t0.Add(2 * time.Hour)
	if err := req(u); !errors.Is(err, ErrExpired) {
		t.Errorf("link after its TTL: %v, want ErrExpired", err)
	}
	// Another key does not accept it.
	other, _ := New([]byte(strings.Repeat("o", 32)), "", time.Hour)
	other.Now = func() time.Time { return t0 }
	if err := other.Check(httptest.NewRequest("GET", u.RequestURI(), nil), "inc-1"); !errors.Is(err, ErrBadSig) {
		t.Errorf("another key: %v, want ErrBadSig", err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		key, base, want string
	}{
		{"short", "", "link key: 5 bytes"},
		{strings.Repeat("k", 32), "ftp://x", "external URL"},
		{strings.Repeat("k", 32), "https://", "external URL"},
	} {
		if _, err := New([]byte(tc.key), tc.base, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %q) = %v, want an error containing %q", tc.key, tc.base, err, tc.want)
		}
	}
	var nilSigner *Signer
	if got := nilSigner.URL("a b", time.Time{}); got != "/incidents/a%20b" {
		t.Errorf("nil signer URL = %q", got)
	}
}
