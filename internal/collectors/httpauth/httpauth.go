// Package httpauth holds the HTTP credentials of collectors: the ones a pull
// collector sends to its source (a bearer token or basic auth, as a
// RoundTripper) and the ones a push intake demands of its sender (a
// Verifier). Secrets print as "<secret>" everywhere and are read from files
// when a *_file field names one, so they need not sit in the config.
//
// It has no dependency on internal/config so that the config package can
// embed the collectors' Config structs without an import cycle.
package httpauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/correlator/correlator/internal/secret"
)

// Secret is a string that must not be shown; see package secret.
type Secret = secret.Secret

// BasicAuth is a user name and password for HTTP basic authentication.
type BasicAuth struct {
	// Username is the user name; required.
	Username string `yaml:"username" json:"username"`
	// Password is the password. Set it or PasswordFile, not both.
	Password Secret `yaml:"password,omitempty" json:"password,omitempty"`
	// PasswordFile is a file holding the password (surrounding white space
	// is trimmed). It is read when the credentials are used, so a rotated
	// password is picked up without a restart.
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
}

// Credentials are an optional bearer token or basic auth, never both. The
// zero value means no authentication.
type Credentials struct {
	// BearerToken is sent (or demanded) as "Authorization: Bearer TOKEN".
	BearerToken Secret `yaml:"bearer_token,omitempty" json:"bearer_token,omitempty"`
	// BearerTokenFile is a file holding the bearer token (surrounding white
	// space trimmed), read when the credentials are used.
	BearerTokenFile string `yaml:"bearer_token_file,omitempty" json:"bearer_token_file,omitempty"`
	// BasicAuth is sent (or demanded) as "Authorization: Basic ...".
	BasicAuth *BasicAuth `yaml:"basic_auth,omitempty" json:"basic_auth,omitempty"`
}

// IsZero reports whether c asks for no authentication.
func (c Credentials) IsZero() bool {
	return c.BearerToken == "" && c.BearerTokenFile == "" && c.BasicAuth == nil
}

// Validate checks that at most one scheme is set, each with exactly one
// source for its secret, and that the files it names can be read and are
// not empty. field is the config path for messages ("prometheus").
func (c Credentials) Validate(field string) error {
	var errs []error
	bearer := c.BearerToken != "" || c.BearerTokenFile != ""
	if bearer && c.BasicAuth != nil {
		errs = append(errs, fmt.Errorf("%s: bearer_token and basic_auth are mutually exclusive", field))
	}
	if c.BearerToken != "" && c.BearerTokenFile != "" {
		errs = append(errs, fmt.Errorf("%s: bearer_token and bearer_token_file are mutually exclusive", field))
	}
	if c.BearerTokenFile != "" {
		if _, err := readSecretFile(c.BearerTokenFile); err != nil {
			errs = append(errs, fmt.Errorf("%s.bearer_token_file: %w", field, err))
		}
	}
	if b := c.BasicAuth; b != nil {
		if b.Username == "" {
			errs = append(errs, fmt.Errorf("%s.basic_auth.username: missing", field))
		}
		switch {
		case b.Password != "" && b.PasswordFile != "":
			errs = append(errs, fmt.Errorf("%s.basic_auth: password and password_file are mutually exclusive", field))
		case b.Password == "" && b.PasswordFile == "":
			errs = append(errs, fmt.Errorf("%s.basic_auth: password or password_file is required", field))
		case b.PasswordFile != "":
			if _, err := readSecretFile(b.PasswordFile); err != nil {
				errs = append(errs, fmt.Errorf("%s.basic_auth.password_file: %w", field, err))
			}
		}
	}
	return errors.Join(errs...)
}

// readSecretFile reads a secret from a file. The error names the file but
// never its content.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

func (c Credentials) bearer() (string, error) {
	if c.BearerTokenFile != "" {
		return readSecretFile(c.BearerTokenFile)
	}
	return c.BearerToken.Reveal(), nil
}

func (b *BasicAuth) password() (string, error) {
	if b.PasswordFile != "" {
		return readSecretFile(b.PasswordFile)
	}
	return b.Password.Reveal(), nil
}

// RoundTripper returns next wrapped so that every request carries the
// credentials; with none it returns next. Files are read per request, so
// rotated secrets take effect at once.
func (c Credentials) RoundTripper(next http.RoundTripper) http.RoundTripper {
	if c.IsZero() {
		return next
	}
	return roundTripper{c: c, next: next}
}

type roundTripper struct {
	c    Credentials
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not modify the caller's request.
	r := req.Clone(req.Context())
	if b := rt.c.BasicAuth; b != nil {
		pw, err := b.password()
		if err != nil {
			return nil, err
		}
		r.SetBasicAuth(b.Username, pw)
	} else {
		tok, err := rt.c.bearer()
		if err != nil {
			return nil, err
		}
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return rt.next.RoundTrip(r)
}

// Errors of Verify. Both mean HTTP 401; they differ only for the
// auth-failure metric's reason label.
var (
	ErrMissing = errors.New("missing credentials")
	ErrInvalid = errors.New("invalid credentials")
)

// Verify checks that r carries the credentials c demands. With none
// demanded every request passes. Comparisons take constant time (over
// SHA-256 digests, so not even the length leaks). A secret file that cannot
// be read fails closed with its error, which names the file.
func (c Credentials) Verify(r *http.Request) error {
	if c.IsZero() {
		return nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return ErrMissing
	}
	if b := c.BasicAuth; b != nil {
		user, pw, ok := r.BasicAuth()
		if !ok {
			return ErrInvalid
		}
		want, err := b.password()
		if err != nil {
			return err
		}
		// Evaluate both comparisons so that a wrong user name takes as
		// long as a wrong password.
		u := equal(user, b.Username)
		p := equal(pw, want)
		if !u || !p {
			return ErrInvalid
		}
		return nil
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ErrInvalid
	}
	want, err := c.bearer()
	if err != nil {
		return err
	}
	if !equal(strings.TrimSpace(tok), want) {
		return ErrInvalid
	}
	return nil
}

func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
