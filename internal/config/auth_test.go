package config

import "testing"

func TestAuthenticate(t *testing.T) {
	c := Config{Auth: Auth{Tokens: []Token{
		{Name: "ci", Token: "ci-token-0123456789abcdef", Scopes: []Scope{ScopeIngest}},
		{Name: "grafana", Token: "grafana-token-0123456789abcdef", Scopes: []Scope{ScopeRead}},
	}}}
	tests := []struct {
		bearer   string
		wantName string // "" for no match
	}{
		{"ci-token-0123456789abcdef", "ci"},
		{"grafana-token-0123456789abcdef", "grafana"},
		{"wrong-token-0123456789abcdef", ""},
		{"ci-token-0123456789abcde", ""},   // prefix
		{"ci-token-0123456789abcdef0", ""}, // extension
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.bearer, func(t *testing.T) {
			tok, ok := c.Authenticate(tt.bearer)
			if ok != (tt.wantName != "") || tok.Name != tt.wantName {
				t.Errorf("Authenticate = %q, %v; want %q", tok.Name, ok, tt.wantName)
			}
		})
	}

	// An empty bearer does not match an (invalid) empty token, nor does
	// anything match when there are no tokens.
	empty := Config{Auth: Auth{Tokens: []Token{{Name: "blank"}}}}
	if _, ok := empty.Authenticate(""); ok {
		t.Error("empty bearer matched an empty token")
	}
	if _, ok := (Config{}).Authenticate("anything-0123456789"); ok {
		t.Error("matched with no tokens")
	}
}

func TestAllows(t *testing.T) {
	tests := []struct {
		scopes []Scope
		want   map[Scope]bool
	}{
		{[]Scope{ScopeIngest}, map[Scope]bool{ScopeIngest: true, ScopeRead: false, ScopeAdmin: false}},
		{[]Scope{ScopeRead}, map[Scope]bool{ScopeIngest: false, ScopeRead: true, ScopeAdmin: false}},
		{[]Scope{ScopeIngest, ScopeRead}, map[Scope]bool{ScopeIngest: true, ScopeRead: true, ScopeAdmin: false}},
		{[]Scope{ScopeAdmin}, map[Scope]bool{ScopeIngest: true, ScopeRead: true, ScopeAdmin: true}},
		{nil, map[Scope]bool{ScopeIngest: false, ScopeRead: false, ScopeAdmin: false}},
	}
	for _, tt := range tests {
		tok := Token{Scopes: tt.scopes}
		for s, want := range tt.want {
			if got := tok.Allows(s); got != want {
				t.Errorf("Token%v.Allows(%s) = %v, want %v", tt.scopes, s, got, want)
			}
		}
	}
}

func TestEffectiveListen(t *testing.T) {
	withToken := []Token{{Name: "ci", Token: "ci-token-0123456789abcdef", Scopes: []Scope{ScopeIngest}}}
	tests := []struct {
		listen       string
		tokens       []Token
		want         string
		wantLoopback bool
	}{
		{":8080", nil, "127.0.0.1:8080", true},
		{"0.0.0.0:9000", nil, "127.0.0.1:9000", true},
		{"[::]:8080", nil, "127.0.0.1:8080", true},
		{"example.com:8080", nil, "127.0.0.1:8080", true},
		{"127.0.0.1:8080", nil, "127.0.0.1:8080", true},
		{"[::1]:8080", nil, "[::1]:8080", true}, // already loopback: kept
		{"8080", nil, "8080", true},             // invalid: left to fail at bind
		{":8080", withToken, ":8080", false},
		{"0.0.0.0:9000", withToken, "0.0.0.0:9000", false},
	}
	for _, tt := range tests {
		c := Config{Listen: tt.listen, Auth: Auth{Tokens: tt.tokens}}
		got, loopback := c.EffectiveListen()
		if got != tt.want || loopback != tt.wantLoopback {
			t.Errorf("EffectiveListen(%q, %d tokens) = %q, %v; want %q, %v",
				tt.listen, len(tt.tokens), got, loopback, tt.want, tt.wantLoopback)
		}
	}
}
