package config

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"slices"
)

// Scope is a permission granted to a token.
type Scope string

// The scopes. ScopeAdmin implies the others.
const (
	ScopeIngest Scope = "ingest" // POST /api/v1/ingest/...
	ScopeRead   Scope = "read"   // query endpoints
	ScopeAdmin  Scope = "admin"  // everything
)

// scopes lists the known scopes in the order error messages name them.
var scopes = []Scope{ScopeIngest, ScopeRead, ScopeAdmin}

func (s Scope) known() bool { return slices.Contains(scopes, s) }

// Token is one API bearer token.
type Token struct {
	// Name identifies the token's holder in logs; it is not secret.
	Name string `yaml:"name" json:"name"`
	// Token is the bearer value. Load fills it from TokenFile when that is
	// set; the two are mutually exclusive in the file.
	Token Secret `yaml:"token" json:"token"`
	// TokenFile names a file holding the token, relative to the config
	// file's directory.
	TokenFile string `yaml:"token_file" json:"token_file"`
	// Scopes lists what the token may do.
	Scopes []Scope `yaml:"scopes" json:"scopes"`
}

// Allows reports whether t grants s; admin grants every scope.
func (t Token) Allows(s Scope) bool {
	return slices.Contains(t.Scopes, s) || slices.Contains(t.Scopes, ScopeAdmin)
}

// Authenticate returns the token whose value is bearer. Every configured
// token is compared, in constant time over hashes of equal length, so
// neither the position of a match nor the length of a token shows in the
// timing. An empty bearer never matches.
func (c Config) Authenticate(bearer string) (Token, bool) {
	if bearer == "" {
		return Token{}, false
	}
	got := sha256.Sum256([]byte(bearer))
	match := -1
	for i, t := range c.Auth.Tokens {
		want := sha256.Sum256([]byte(t.Token))
		eq := subtle.ConstantTimeCompare(got[:], want[:])
		if eq == 1 && t.Token != "" && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return Token{}, false
	}
	return c.Auth.Tokens[match], true
}

// EffectiveListen returns the address the server should bind. With no
// tokens the API is unauthenticated, so the host is replaced by 127.0.0.1
// (unless it is already a loopback address) and loopbackOnly is true: ":8080"
// becomes "127.0.0.1:8080". With tokens, Listen is returned unchanged. An
// address that does not parse as host:port (which Validate rejects) is
// returned unchanged so that binding it fails.
func (c *Config) EffectiveListen() (addr string, loopbackOnly bool) {
	if len(c.Auth.Tokens) > 0 {
		return c.Listen, false
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return c.Listen, true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return c.Listen, true
	}
	return net.JoinHostPort("127.0.0.1", port), true
}
