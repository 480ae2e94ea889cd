package config

import (
	"reflect"
	"strings"
	"testing"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestApplyEnvOverridesYAML(t *testing.T) {
	isolateDefaults(t)
	c, err := Load("testdata/server.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.ApplyEnv(envFrom(map[string]string{
		"CORRELATOR_LISTEN":              "127.0.0.1:9999",
		"CORRELATOR_DATA_DIR":            "/srv/correlator",
		"CORRELATOR_CLICKHOUSE_DSN":      "tcp://other:9000/db",
		"CORRELATOR_CLICKHOUSE_CLUSTER":  "other",
		"CORRELATOR_CLICKHOUSE_DATABASE": "db",
		"CORRELATOR_CHDB_LIB":            "/opt/libchdb.so",
		"CORRELATOR_LOG_LEVEL":           "warn",
		"CORRELATOR_LOG_FORMAT":          "text",
		"CORRELATOR_MAX_BODY_BYTES":      "1024",
		"CORRELATOR_TOKENS_FILE":         "testdata/tokens.env",
		"CORRELATOR_TOKENS":              "env:admin:canary-env-0123456789abcdef",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen:     "127.0.0.1:9999",
		DataDir:    "/srv/correlator",
		ClickHouse: ClickHouse{DSN: "tcp://other:9000/db", Cluster: "other", Database: "db"},
		ChDBLib:    "/opt/libchdb.so",
		// Settings without a variable keep the file's values.
		Ingest: Ingest{MaxBodyBytes: 1024, BatchRows: 1000, FlushInterval: c.Ingest.FlushInterval,
			SpoolDir: "/var/spool/correlator", SpoolMaxBytes: 2 << 30},
		Log:    Log{Level: "warn", Format: "text"},
		Impact: c.Impact,
	}
	got := c
	got.Auth = Auth{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}

	// Tokens are appended: the YAML file's, then those of
	// CORRELATOR_TOKENS_FILE, then those of CORRELATOR_TOKENS.
	var names []string
	for _, tok := range c.Auth.Tokens {
		names = append(names, tok.Name)
	}
	if want := []string{"grafana", "ops", "grafana", "ci", "env"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("token names = %v, want %v", names, want)
	}
	if got := c.Auth.Tokens[3].Token.Reveal(); got != "canary-file-ci,with,commas" {
		t.Errorf("file token 2 = %q", got)
	}

	// The duplicate name "grafana" is Validate's to report.
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `auth.tokens[2].name: "grafana" already used by auth.tokens[0]`) {
		t.Errorf("Validate() = %v", err)
	}
}

func TestApplyEnvUnsetChangesNothing(t *testing.T) {
	isolateDefaults(t)
	c, err := Load("testdata/server.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	before := c
	before.Auth.Tokens = append([]Token(nil), c.Auth.Tokens...)
	if err := c.ApplyEnv(envFrom(nil)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, before) {
		t.Errorf("empty environment changed the config:\n%+v\n%+v", c, before)
	}
}

func TestApplyEnvTokens(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    []Token
		wantErr string
	}{
		{
			name: "one",
			env:  map[string]string{"CORRELATOR_TOKENS": "ci:ingest:canary-0123456789abcdef"},
			want: []Token{{Name: "ci", Token: "canary-0123456789abcdef", Scopes: []Scope{ScopeIngest}}},
		},
		{
			name: "several, spaces, trailing comma, colon in token",
			env:  map[string]string{"CORRELATOR_TOKENS": " ci : ingest+read : canary:0123456789 , ops:admin:canary-0123456789abcdef,"},
			want: []Token{
				{Name: "ci", Token: "canary:0123456789", Scopes: []Scope{ScopeIngest, ScopeRead}},
				{Name: "ops", Token: "canary-0123456789abcdef", Scopes: []Scope{ScopeAdmin}},
			},
		},
		{
			name:    "too few fields",
			env:     map[string]string{"CORRELATOR_TOKENS": "ci:ingest:canary-0123456789abcdef,canary-no-name"},
			wantErr: "CORRELATOR_TOKENS: entry 2: want name:scopes:token",
		},
		{
			name:    "empty token",
			env:     map[string]string{"CORRELATOR_TOKENS": "ci:ingest:"},
			wantErr: "CORRELATOR_TOKENS: entry 1: want name:scopes:token",
		},
		{
			name:    "unknown scope",
			env:     map[string]string{"CORRELATOR_TOKENS": "ci:ingest+reed:canary-0123456789abcdef"},
			wantErr: `CORRELATOR_TOKENS: entry 1 ("ci"): unknown scope "reed" (want ingest, read or admin)`,
		},
		{
			name: "file",
			env:  map[string]string{"CORRELATOR_TOKENS_FILE": "testdata/tokens.env"},
			want: []Token{
				{Name: "grafana", Token: "canary-file-grafana-0123456789", Scopes: []Scope{ScopeRead}},
				{Name: "ci", Token: "canary-file-ci,with,commas", Scopes: []Scope{ScopeIngest, ScopeRead}},
			},
		},
		{
			name:    "bad file",
			env:     map[string]string{"CORRELATOR_TOKENS_FILE": "testdata/tokens-bad.env"},
			wantErr: "CORRELATOR_TOKENS_FILE: testdata/tokens-bad.env: line 1 (\"grafana\"): unknown scope \"reed\" (want ingest, read or admin)\nCORRELATOR_TOKENS_FILE: testdata/tokens-bad.env: line 2: want name:scopes:token",
		},
		{
			name:    "missing file",
			env:     map[string]string{"CORRELATOR_TOKENS_FILE": "testdata/nope.env"},
			wantErr: "CORRELATOR_TOKENS_FILE: open testdata/nope.env: no such file or directory",
		},
		{
			name:    "max body bytes",
			env:     map[string]string{"CORRELATOR_MAX_BODY_BYTES": "64MiB"},
			wantErr: `CORRELATOR_MAX_BODY_BYTES: invalid integer "64MiB"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			err := c.ApplyEnv(envFrom(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), canary) {
					t.Fatalf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Auth.Tokens, tt.want) {
				t.Errorf("tokens = %+v, want %+v", c.Auth.Tokens, tt.want)
			}
		})
	}
}
