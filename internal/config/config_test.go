package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// canary is part of every secret in testdata; no error message may
// contain it.
const canary = "canary"

// isolateDefaults makes Default independent of the developer's home.
func isolateDefaults(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dir)
	return filepath.Join(dir, "correlator")
}

func TestGoodFiles(t *testing.T) {
	isolateDefaults(t)
	files, err := filepath.Glob("testdata/*.good.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestBadFiles(t *testing.T) {
	isolateDefaults(t)
	tests := map[string]string{
		"unknown_field.bad.yml":           "unknown_field.bad.yml: line 3: field sentri not found in type config.Config",
		"unknown_nested_field.bad.yml":    "unknown_nested_field.bad.yml: line 2: field max_body_byte not found in type config.Ingest",
		"bad_scope.bad.yml":               `auth.tokens[1].scopes[0]: unknown scope "reed" (want ingest, read or admin)`,
		"empty_scopes.bad.yml":            "auth.tokens[0].scopes: empty",
		"short_token.bad.yml":             "auth.tokens[0].token: too short: 12 characters, want at least 16",
		"space_token.bad.yml":             "auth.tokens[0].token: must be printable ASCII without spaces",
		"redacted_token.bad.yml":          `auth.tokens[0].token: is the redacted placeholder "<secret>"`,
		"duplicate_token.bad.yml":         "auth.tokens[1].token: same value as auth.tokens[0].token",
		"duplicate_token_name.bad.yml":    `auth.tokens[1].name: "ci" already used by auth.tokens[0]`,
		"missing_token.bad.yml":           "auth.tokens[0].token: empty (set token or token_file)",
		"token_and_token_file.bad.yml":    "token_and_token_file.bad.yml: auth.tokens[0]: token and token_file are mutually exclusive",
		"missing_token_file.bad.yml":      "missing_token_file.bad.yml: auth.tokens[0].token_file: open testdata/tokens/does-not-exist.token: no such file",
		"empty_token_file.bad.yml":        "empty_token_file.bad.yml: auth.tokens[0].token_file: testdata/tokens/empty.token is empty",
		"two_token_file_problems.bad.yml": "two_token_file_problems.bad.yml: auth.tokens[0].token_file: open testdata/tokens/does-not-exist.token: no such file or directory\ntestdata/two_token_file_problems.bad.yml: auth.tokens[1].token_file: testdata/tokens/empty.token is empty",
		"bad_duration.bad.yml":            `bad_duration.bad.yml: line 2: invalid duration "1 second"`,
		"unitless_duration.bad.yml":       `unitless_duration.bad.yml: line 2: invalid duration "5"`,
		"zero_duration.bad.yml":           "ingest.flush_interval: must be positive, got 0s",
		"bad_listen.bad.yml":              `listen: invalid address "8080" (want host:port`,
		"bad_listen_port.bad.yml":         `listen: invalid port "http-alt" in ":http-alt"`,
		"empty_listen.bad.yml":            `listen: invalid address ""`,
		"zero_max_body_bytes.bad.yml":     "ingest.max_body_bytes: must be positive, got 0",
		"negative_batch_rows.bad.yml":     "ingest.batch_rows: must be positive, got -1",
		"small_spool.bad.yml":             "ingest.spool_max_bytes: must be at least 1048576 (1 MiB), got 4096",
		"wrong_type.bad.yml":              "wrong_type.bad.yml: line 2: cannot unmarshal !!str `64MiB` into int64",
		"bad_log_level.bad.yml":           `log.level: unknown level "verbose" (want debug, info, warn or error)`,
		"bad_log_format.bad.yml":          `log.format: unknown format "logfmt" (want json or text)`,
		"cluster_without_dsn.bad.yml":     "clickhouse.cluster: set without clickhouse.dsn",
		"bad_database.bad.yml":            `clickhouse.database: invalid database name "db; DROP TABLE x"`,
		"bad_dsn.bad.yml":                 "clickhouse.dsn: not a DSN",
		"unparsable_dsn.bad.yml":          "clickhouse.dsn: not a DSN",
		"empty_data_dir.bad.yml":          "data_dir: empty",
		"duplicate_key.bad.yml":           `duplicate_key.bad.yml: line 2: mapping key "listen" already defined at line 1`,
		"syntax.bad.yml":                  "syntax.bad.yml: line 2: mapping values are not allowed in this context",
		"two_documents.bad.yml":           "two_documents.bad.yml: more than one YAML document",
		"many_problems.bad.yml":           `log.level: unknown level "loud"`,
		"bad_impact_severity.bad.yml":     "impact.severity[0].min_share: 1.5 is outside [0, 1]\nimpact.severity[1].name: \"P1\" appears twice",
		"bad_impact_latency.bad.yml":      "bad_impact_latency.bad.yml: line 2: cannot unmarshal !!str `soon` into time.Duration",
	}

	// Every bad file must be listed, so none goes untested.
	files, _ := filepath.Glob("testdata/*.bad.yml")
	for _, f := range files {
		if _, ok := tests[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expected error in the table", f)
		}
	}

	for file, want := range tests {
		t.Run(file, func(t *testing.T) {
			err := loadAndValidate(filepath.Join("testdata", file))
			if err == nil {
				t.Fatalf("no error, want %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n%v\nwant substring:\n%s", err, want)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error leaks a secret:\n%v", err)
			}
		})
	}
}

func loadAndValidate(path string) error {
	c, err := Load(path)
	if err != nil {
		return err
	}
	return c.Validate()
}

func TestValidateReportsEveryProblem(t *testing.T) {
	isolateDefaults(t)
	err := loadAndValidate("testdata/many_problems.bad.yml")
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error %v is not joined", err)
	}
	want := []string{
		"listen: ",
		"ingest.max_body_bytes: ",
		"auth.tokens[0].token: too short",
		"auth.tokens[0].scopes[0]: unknown scope",
		"log.level: ",
	}
	got := joined.Unwrap()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i].Error(), w) {
			t.Errorf("error %d = %q, want prefix %q", i, got[i], w)
		}
	}
}

func TestLoadValues(t *testing.T) {
	dataDir := isolateDefaults(t)
	def := Default()
	if def.DataDir != dataDir {
		t.Fatalf("Default().DataDir = %q, want %q", def.DataDir, dataDir)
	}
	tests := []struct {
		file string
		want func() Config
	}{
		{"", Default},
		{"testdata/empty.good.yml", Default},
		{"testdata/null_sections.good.yml", Default},
		{"testdata/server.good.yml", func() Config {
			c := Default()
			c.Listen = "[::]:8080"
			c.ClickHouse = ClickHouse{
				DSN:      "clickhouse://correlator:canary-dsn-password@clickhouse:9000/observability",
				Cluster:  "main-cluster",
				Database: "observability",
			}
			c.Ingest = Ingest{MaxBodyBytes: 1 << 20, BatchRows: 1000, FlushInterval: Duration(500 * time.Millisecond),
				SpoolDir: "/var/spool/correlator", SpoolMaxBytes: 2 << 30}
			c.Auth.Tokens = []Token{
				// The file's surrounding white space is trimmed.
				{Name: "grafana", Token: "canary-grafana-0123456789abcdef", TokenFile: "tokens/grafana.token", Scopes: []Scope{ScopeRead}},
				{Name: "ops", Token: "canary-ops-0123456789abcdef", Scopes: []Scope{ScopeAdmin}},
			}
			return c
		}},
		{"testdata/embedded.good.yml", func() Config {
			c := Default()
			c.Listen = "0.0.0.0:9000"
			c.DataDir = "/var/lib/correlator"
			c.ChDBLib = "/usr/local/lib/libchdb.so"
			c.Auth.Tokens = []Token{{Name: "ci", Token: "canary-ci-0123456789abcdef", Scopes: []Scope{ScopeIngest}}}
			c.Log = Log{Level: "debug", Format: "text"}
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Load(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(); !reflect.DeepEqual(got, want) {
				// Reveal nothing even in a failing test's output.
				t.Errorf("Load(%q) =\n%+v\nwant\n%+v", tt.file, got, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want one wrapping os.ErrNotExist", err)
	}
	if want := "read config: open testdata/does-not-exist.yml"; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want substring %q", err, want)
	}
}

func TestDefaultDataDir(t *testing.T) {
	home := func() (string, error) { return "/home/ann", nil }
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	tests := []struct {
		name string
		xdg  string
		home func() (string, error)
		want string
	}{
		{"xdg", "/data", home, "/data/correlator"},
		{"relative xdg ignored", "data", home, "/home/ann/.local/share/correlator"},
		{"home", "", home, "/home/ann/.local/share/correlator"},
		{"nothing", "", noHome, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "XDG_DATA_HOME" {
					return tt.xdg
				}
				return ""
			}
			if got := defaultDataDir(getenv, tt.home); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEffectiveSpoolDir(t *testing.T) {
	home := func() (string, error) { return "/home/ann", nil }
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	tests := []struct {
		name                string
		spoolDir, dataDir   string
		dsn                 Secret
		database, stateHome string
		home                func() (string, error)
		want                string
	}{
		{name: "explicit", spoolDir: "/spool", dataDir: "/data", home: home, want: "/spool"},
		{name: "explicit with a server", spoolDir: "/spool", dsn: "clickhouse://u:canary@ch:9000/db", home: noHome, want: "/spool"},
		{name: "embedded: beside the data", dataDir: "/data", home: home, want: "/data/spool"},
		{name: "embedded without data dir", home: home, want: ""},
		{name: "server: named after host and database, never the password", dsn: "clickhouse://u:canary@ch:9000/obs", home: home,
			want: "/home/ann/.local/state/correlator/spool/ch_9000_obs"},
		{name: "server with several hosts", dsn: "clickhouse://u:canary@h1:9000,h2:9000/obs", stateHome: "/state", home: home,
			want: "/state/correlator/spool/h1_9000_h2_9000_obs"},
		{name: "clickhouse.database wins over the DSN's", dsn: "clickhouse://ch:9000/obs", database: "other", home: home,
			want: "/home/ann/.local/state/correlator/spool/ch_9000_other"},
		{name: "server without database", dsn: "tcp://ch:9000", home: home, want: "/home/ann/.local/state/correlator/spool/ch_9000_default"},
		{name: "relative XDG_STATE_HOME ignored", dsn: "tcp://ch:9000", stateHome: "state", home: home,
			want: "/home/ann/.local/state/correlator/spool/ch_9000_default"},
		{name: "server without state or home", dsn: "tcp://ch:9000", home: noHome, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{DataDir: tt.dataDir, ClickHouse: ClickHouse{DSN: tt.dsn, Database: tt.database}, Ingest: Ingest{SpoolDir: tt.spoolDir}}
			getenv := func(k string) string {
				if k == "XDG_STATE_HOME" {
					return tt.stateHome
				}
				return ""
			}
			got := c.effectiveSpoolDir(getenv, tt.home)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if strings.Contains(got, canary) {
				t.Errorf("spool directory %q contains the DSN's password", got)
			}
		})
	}
}

func TestLogSlogLevel(t *testing.T) {
	for level, want := range map[string]string{"debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR", "": "INFO"} {
		if got := (Log{Level: level}).SlogLevel().String(); got != want {
			t.Errorf("SlogLevel(%q) = %s, want %s", level, got, want)
		}
	}
}

// TestExampleDocumentsEveryKey keeps the example linked from the README in
// step with the structs: every YAML key must appear in it (commented out
// counts), and it must reproduce the defaults it claims.
func TestExampleDocumentsEveryKey(t *testing.T) {
	const example = "testdata/correlator.example.good.yml"
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeOf(Config{})) {
		if key == "-" {
			continue // set by correlator, not by the file
		}
		if !strings.Contains(string(data), key+":") {
			t.Errorf("%s does not document %q", example, key)
		}
	}

	c, err := Load(example)
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if c.Listen != def.Listen || c.Ingest != def.Ingest || c.Log.Level != def.Log.Level {
		t.Errorf("example differs from the defaults it documents:\n%+v\n%+v", c, def)
	}
}

// yamlKeys returns the yaml tag of every field of t, recursively.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		keys = append(keys, strings.Split(f.Tag.Get("yaml"), ",")[0])
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			keys = append(keys, yamlKeys(ft)...)
		}
	}
	return keys
}

func TestValidateDSN(t *testing.T) {
	tests := []struct {
		dsn    Secret
		wantOK bool
	}{
		{"clickhouse://u:canary@h1:9000,h2:9000/db", true},
		{"clickhouse://localhost", true},
		{"tcp://u:canary@db:9000?database=x", true},
		{"https://u:canary@db:8443/x", true},
		{"localhost:9000", false},
		{"postgres://u:canary@db/x", false},
		{"clickhouse:///x", false},
		{"clickhouse://u:canary@db:port/x", false},
	}
	for i, tt := range tests {
		c := Default()
		c.ClickHouse.DSN = tt.dsn
		err := c.Validate()
		if (err == nil) != tt.wantOK {
			t.Errorf("case %d: Validate() = %v, want ok=%v", i, err, tt.wantOK)
		}
		if err != nil && strings.Contains(err.Error(), canary) {
			t.Errorf("error leaks the DSN: %v", err)
		}
	}
}
