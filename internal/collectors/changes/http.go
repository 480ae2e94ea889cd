package changes

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Helpers the webhook receivers share.

// DefaultMaxBody bounds a webhook body: GitHub caps its payloads at 25 MB,
// but the events the collectors read are a few kilobytes.
const DefaultMaxBody = 5 << 20

// SecretHeader is the header carrying a shared secret for receivers that
// check one (Argo CD, the generic webhook); "Authorization: Bearer SECRET"
// works too.
const SecretHeader = "X-Correlator-Secret"

// ValidHMACSHA256 reports whether sigHex is the hex HMAC-SHA256 of body
// under secret. The comparison takes constant time; an empty secret or a
// signature that is not hex never matches.
func ValidHMACSHA256(secret string, body []byte, sigHex string) bool {
	if secret == "" {
		return false
	}
	got, err := hex.DecodeString(strings.TrimSpace(sigHex))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// SignHMACSHA256 returns the hex HMAC-SHA256 of body under secret, for
// tests and senders.
func SignHMACSHA256(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// SecretEqual compares a received secret with the configured one in time
// independent of both (it compares their SHA-256 hashes). An empty want
// never matches.
func SecretEqual(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// SharedSecret returns the secret a request presents in the SecretHeader
// header or as "Authorization: Bearer SECRET", or "".
func SharedSecret(r *http.Request) string {
	if s := r.Header.Get(SecretHeader); s != "" {
		return s
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	return ""
}

// ErrBodyTooLarge is returned by ReadBody for a body over the limit.
var ErrBodyTooLarge = errors.New("body too large")

// ReadBody reads r's body, at most max bytes (DefaultMaxBody if max <= 0).
func ReadBody(r *http.Request, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxBody
	}
	if r.ContentLength > max {
		return nil, ErrBodyTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > max {
		return nil, ErrBodyTooLarge
	}
	return b, nil
}

// Reply is the JSON answer of every receiver.
type Reply struct {
	// Status is "accepted" (changes written), "ignored" (understood, nothing
	// to record), "pong" or "error".
	Status string `json:"status"`
	// Changes counts the changes written.
	Changes int `json:"changes"`
	// Reason says why nothing was recorded, or what went wrong.
	Reason string `json:"reason,omitempty"`
}

// Respond writes a Reply.
func Respond(w http.ResponseWriter, code int, rep Reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(rep)
}

// Fail answers an error with its message.
func Fail(w http.ResponseWriter, code int, format string, args ...any) {
	Respond(w, code, Reply{Status: "error", Reason: fmt.Sprintf(format, args...)})
}

// Ignore answers 202 for a request understood but not recorded.
func Ignore(w http.ResponseWriter, format string, args ...any) {
	Respond(w, http.StatusAccepted, Reply{Status: "ignored", Reason: fmt.Sprintf(format, args...)})
}

// Accept answers 200 for n changes written.
func Accept(w http.ResponseWriter, n int) {
	Respond(w, http.StatusOK, Reply{Status: "accepted", Changes: n})
}

// ReadRequest checks the method and reads the body, answering (and
// returning false) when either is wrong.
func ReadRequest(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		Fail(w, http.StatusMethodNotAllowed, "use POST")
		return nil, false
	}
	body, err := ReadBody(r, max)
	if errors.Is(err, ErrBodyTooLarge) {
		Fail(w, http.StatusRequestEntityTooLarge, "body over the limit of %d bytes", effectiveMax(max))
		return nil, false
	}
	if err != nil {
		Fail(w, http.StatusBadRequest, "%v", err)
		return nil, false
	}
	return body, true
}

func effectiveMax(max int64) int64 {
	if max <= 0 {
		return DefaultMaxBody
	}
	return max
}
