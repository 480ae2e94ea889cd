package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The environment variables read by ApplyEnv.
const (
	envListen            = "CORRELATOR_LISTEN"
	envDataDir           = "CORRELATOR_DATA_DIR"
	envClickHouseDSN     = "CORRELATOR_CLICKHOUSE_DSN"
	envClickHouseCluster = "CORRELATOR_CLICKHOUSE_CLUSTER"
	envClickHouseDB      = "CORRELATOR_CLICKHOUSE_DATABASE"
	envChDBLib           = "CORRELATOR_CHDB_LIB"
	envLogLevel          = "CORRELATOR_LOG_LEVEL"
	envLogFormat         = "CORRELATOR_LOG_FORMAT"
	envMaxBodyBytes      = "CORRELATOR_MAX_BODY_BYTES"
	envTokens            = "CORRELATOR_TOKENS"
	envTokensFile        = "CORRELATOR_TOKENS_FILE"
	envLinkSecret        = "CORRELATOR_LINK_SECRET"
	envExternalURL       = "CORRELATOR_EXTERNAL_URL"
)

// ApplyEnv overrides c with the environment, the layer between the YAML file
// and command-line flags. getenv is os.Getenv outside tests. A variable that
// is unset or empty leaves its setting alone.
//
//	CORRELATOR_LISTEN               listen
//	CORRELATOR_DATA_DIR             data_dir
//	CORRELATOR_CLICKHOUSE_DSN       clickhouse.dsn
//	CORRELATOR_CLICKHOUSE_CLUSTER   clickhouse.cluster
//	CORRELATOR_CLICKHOUSE_DATABASE  clickhouse.database
//	CORRELATOR_CHDB_LIB             chdb_lib
//	CORRELATOR_LOG_LEVEL            log.level
//	CORRELATOR_LOG_FORMAT           log.format
//	CORRELATOR_MAX_BODY_BYTES       ingest.max_body_bytes (a decimal integer)
//	CORRELATOR_TOKENS               tokens appended to auth.tokens
//	CORRELATOR_TOKENS_FILE          file of tokens appended to auth.tokens
//	CORRELATOR_LINK_SECRET          incidents.link_secret
//	CORRELATOR_EXTERNAL_URL         external_url
//	CORRELATOR_POSTMORTEM_WEBHOOK_URL, _SECRET, _AUTHORIZATION: see postmortem.AttachConfig
//
// CORRELATOR_TOKENS is a comma-separated list of name:scopes:token entries,
// scopes joined by "+":
//
//	CORRELATOR_TOKENS=grafana:read:3f9a...,ci:ingest+read:c81d...
//
// The token is everything after the second colon, so it may contain colons
// but not commas. CORRELATOR_TOKENS_FILE names a file with one such entry
// per line (where a token may contain commas); blank lines and lines starting
// with # are skipped. Tokens from the file are appended first, then those of
// CORRELATOR_TOKENS, both after the YAML file's. Entry syntax and scope names
// are checked here; the rest (length, duplicates) by Validate.
//
// ApplyEnv reports every malformed variable, joined. Error text never
// contains a token or DSN. On error c may be partly updated.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{envListen, &c.Listen},
		{envDataDir, &c.DataDir},
		{envClickHouseCluster, &c.ClickHouse.Cluster},
		{envClickHouseDB, &c.ClickHouse.Database},
		{envChDBLib, &c.ChDBLib},
		{envLogLevel, &c.Log.Level},
		{envLogFormat, &c.Log.Format},
		{envExternalURL, &c.ExternalURL},
	} {
		if v := getenv(s.name); v != "" {
			*s.dst = v
		}
	}
	if v := getenv(envClickHouseDSN); v != "" {
		c.ClickHouse.DSN = Secret(v)
	}
	if v := getenv(envLinkSecret); v != "" {
		c.Incidents.LinkSecret = Secret(v)
	}
	c.Postmortem.ApplyEnv(getenv)

	var errs []error
	if v := getenv(envMaxBodyBytes); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid integer %q", envMaxBodyBytes, v))
		} else {
			c.Ingest.MaxBodyBytes = n
		}
	}
	if p := getenv(envTokensFile); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envTokensFile, err))
		} else {
			toks, err := parseTokens(strings.Split(string(data), "\n"), func(i int) string {
				return fmt.Sprintf("%s: %s: line %d", envTokensFile, p, i+1)
			})
			errs = append(errs, err)
			c.Auth.Tokens = append(c.Auth.Tokens, toks...)
		}
	}
	if v := getenv(envTokens); v != "" {
		toks, err := parseTokens(strings.Split(v, ","), func(i int) string {
			return fmt.Sprintf("%s: entry %d", envTokens, i+1)
		})
		errs = append(errs, err)
		c.Auth.Tokens = append(c.Auth.Tokens, toks...)
	}
	return errors.Join(errs...)
}

// parseTokens parses name:scopes:token entries, skipping blank ones and
// # comments. where names entry i in errors, which never quote an entry
// because it holds a token.
func parseTokens(entries []string, where func(i int) string) ([]Token, error) {
	var (
		toks []Token
		errs []error
	)
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		f := strings.SplitN(e, ":", 3)
		if len(f) != 3 || strings.TrimSpace(f[0]) == "" || strings.TrimSpace(f[1]) == "" || strings.TrimSpace(f[2]) == "" {
			errs = append(errs, fmt.Errorf("%s: want name:scopes:token", where(i)))
			continue
		}
		t := Token{Name: strings.TrimSpace(f[0]), Token: Secret(strings.TrimSpace(f[2]))}
		ok := true
		for _, s := range strings.Split(f[1], "+") {
			s := Scope(strings.TrimSpace(s))
			if !s.known() {
				errs = append(errs, fmt.Errorf("%s (%q): unknown scope %q (want ingest, read or admin)", where(i), t.Name, s))
				ok = false
			}
			t.Scopes = append(t.Scopes, s)
		}
		if ok {
			toks = append(toks, t)
		}
	}
	return toks, errors.Join(errs...)
}
