// Package livelink signs the links to an incident's live page
// (/incidents/{id}), so a responder can paste one link in the incident
// channel and everyone who has it can open the page in a browser, which
// cannot send the API's bearer tokens. A link names one incident and
// expires; its signature is an HMAC-SHA256 over both with a server-side
// key, so it cannot be altered to open another incident or live longer.
package livelink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Signer makes and checks signed links. The zero Signer (no key) makes
// unsigned links and accepts none.
type Signer struct {
	// Key is the HMAC key; at least 32 bytes.
	Key []byte
	// BaseURL is where correlator is reached from a browser, e.g.
	// https://correlator.example.com; links are relative without it.
	BaseURL string
	// TTL is how long a link stays valid (default 30 days: an incident's
	// page is also read in its post-mortem, days later).
	TTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// MinKeyLen is the shortest key a Signer accepts.
const MinKeyLen = 32

// DefaultTTL is a link's default lifetime.
const DefaultTTL = 30 * 24 * time.Hour

// New returns a Signer, or an error naming what is wrong with its key.
func New(key []byte, baseURL string, ttl time.Duration) (*Signer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("link key: %d bytes, want at least %d", len(key), MinKeyLen)
	}
	if baseURL != "" {
		u, err := url.Parse(baseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("external URL %q: want http(s)://host[/path]", baseURL)
		}
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Signer{Key: key, BaseURL: strings.TrimSuffix(baseURL, "/"), TTL: ttl}, nil
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Signer) mac(id string, exp int64) string {
	m := hmac.New(sha256.New, s.Key)
	// The id is length-prefixed so that no (id, exp) pair reads as
	// another.
	fmt.Fprintf(m, "%d:%s:%d", len(id), id, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// Path is the live page's path of an incident, without a signature.
func Path(id string) string { return "/incidents/" + url.PathEscape(id) }

// URL is the link to the live page of the incident opened at opened:
// signed when s has a key, absolute when it has a base URL. The link
// expires TTL after the opening, not after now, so the same incident gets
// the same link every time (a Grafana annotation carrying it does not
// change on every sync).
func (s *Signer) URL(id string, opened time.Time) string {
	link := Path(id)
	if s == nil {
		return link
	}
	link = s.BaseURL + link
	if len(s.Key) == 0 {
		return link
	}
	exp := opened.Add(s.TTL).Unix()
	return link + "?" + url.Values{"exp": {strconv.FormatInt(exp, 10)}, "sig": {s.mac(id, exp)}}.Encode()
}

// Errors of Check.
var (
	ErrUnsigned = errors.New("link not signed")
	ErrExpired  = errors.New("link expired")
	ErrBadSig   = errors.New("link signature does not match")
)

// Check verifies the signature of a request for incident id's page.
func (s *Signer) Check(r *http.Request, id string) error {
	q := r.URL.Query()
	if s == nil || len(s.Key) == 0 || q.Get("sig") == "" {
		return ErrUnsigned
	}
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil {
		return ErrBadSig
	}
	if !hmac.Equal([]byte(s.mac(id, exp)), []byte(q.Get("sig"))) {
		return ErrBadSig
	}
	if s.now().Unix() > exp {
		return ErrExpired
	}
	return nil
}
