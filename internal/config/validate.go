package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"

	"github.com/correlator/correlator/internal/livelink"
)

// MinTokenLength is the shortest accepted API token, in bytes. 16 random
// characters are beyond guessing; shorter values are usually placeholders.
const MinTokenLength = 16

var (
	// databaseRE keeps the database name a plain ClickHouse identifier,
	// since DDL has to interpolate it.
	databaseRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// clusterRE admits the names remote_servers allows (XML element names
	// in practice); the store quotes the name in ON CLUSTER.
	clusterRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	// dsnSchemes are the schemes clickhouse-go's DSN parser accepts.
	dsnSchemes = []string{"clickhouse", "tcp", "http", "https"}
)

// Validate checks c after every layer has been applied and returns all
// problems joined, each naming its field as in the YAML file:
//
//	auth.tokens[1].scopes[0]: unknown scope "reed" (want ingest, read or admin)
//
// Messages never contain a secret's value.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}

	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "invalid address %q (want host:port, such as :8080 or 127.0.0.1:8080)", c.Listen)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		add("listen", "invalid port %q in %q (want a number from 0 to 65535)", port, c.Listen)
	}

	if len(c.Sentry.Projects) > 0 {
		if err := c.Sentry.Validate(); err != nil {
			errs = append(errs, err)
		}
	}

	if err := c.Impact.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Grafana.Enabled() {
		if err := c.Grafana.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.Postmortem.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("external_url", "%q is not an http(s) URL such as https://correlator.example.com", c.ExternalURL)
		}
	}
	if k := c.Incidents.LinkSecret; k != "" && len(k.Reveal()) < livelink.MinKeyLen {
		add("incidents.link_secret", "%d bytes, want at least %d", len(k.Reveal()), livelink.MinKeyLen)
	}
	if c.Incidents.LinkTTL < 0 {
		add("incidents.link_ttl", "negative (%s)", c.Incidents.LinkTTL)
	}

	embedded := c.ClickHouse.DSN == ""
	if embedded && c.DataDir == "" {
		add("data_dir", "empty (needed by the embedded engine when clickhouse.dsn is unset)")
	}
	if !embedded {
		if c.ClickHouse.DSN == redacted {
			add("clickhouse.dsn", "is the redacted placeholder %q, not a DSN", redacted)
		} else if u, err := url.Parse(c.ClickHouse.DSN.Reveal()); err != nil || u.Host == "" || !slices.Contains(dsnSchemes, u.Scheme) {
			// The url error quotes the DSN, password included; never show it.
			add("clickhouse.dsn", "not a DSN (want clickhouse://user:password@host:9000/database; tcp, http and https schemes also work)")
		}
	}
	if cl := c.ClickHouse.Cluster; cl != "" {
		if embedded {
			add("clickhouse.cluster", "set without clickhouse.dsn (the embedded engine has no cluster)")
		}
		if !clusterRE.MatchString(cl) {
			add("clickhouse.cluster", "invalid cluster name %q (want letters, digits, _, . or -)", cl)
		}
	}
	if db := c.ClickHouse.Database; db != "" && !databaseRE.MatchString(db) {
		add("clickhouse.database", "invalid database name %q (want letters, digits and _, not starting with a digit)", db)
	}

	if c.Ingest.MaxBodyBytes <= 0 {
		add("ingest.max_body_bytes", "must be positive, got %d", c.Ingest.MaxBodyBytes)
	}
	if c.Ingest.BatchRows <= 0 {
		add("ingest.batch_rows", "must be positive, got %d", c.Ingest.BatchRows)
	}
	if c.Ingest.FlushInterval <= 0 {
		add("ingest.flush_interval", "must be positive, got %s", c.Ingest.FlushInterval)
	}
	if c.Ingest.SpoolMaxBytes < MinSpoolMaxBytes {
		add("ingest.spool_max_bytes", "must be at least %d (1 MiB), got %d", MinSpoolMaxBytes, c.Ingest.SpoolMaxBytes)
	}
	if c.EffectiveSpoolDir() == "" && !(embedded && c.DataDir == "") {
		add("ingest.spool_dir", "empty, and no state directory to default to ($XDG_STATE_HOME or the home directory); set it")
	}

	if si := c.Incidents.SnapshotInterval; si != 0 && si < MinSnapshotInterval {
		add("incidents.snapshot_interval", "must be at least %s, got %s", MinSnapshotInterval, c.Incidents.SnapshotInterval)
	}

	errs = append(errs, c.validateTokens()...)

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		add("log.format", "unknown format %q (want json or text)", c.Log.Format)
	}
	return errors.Join(errs...)
}

func (c *Config) validateTokens() []error {
	var errs []error
	add := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	names := map[string]int{}
	values := map[Secret]int{}
	for i, t := range c.Auth.Tokens {
		field := fmt.Sprintf("auth.tokens[%d]", i)
		if t.Name == "" {
			add(field+".name", "empty (it identifies the token in logs)")
		} else if j, dup := names[t.Name]; dup {
			add(field+".name", "%q already used by auth.tokens[%d]", t.Name, j)
		} else {
			names[t.Name] = i
		}

		switch {
		case t.Token == "" && t.TokenFile != "":
			add(field+".token", "empty: token_file %q was not read (use config.Load)", t.TokenFile)
		case t.Token == "":
			add(field+".token", "empty (set token or token_file)")
		case t.Token == redacted:
			add(field+".token", "is the redacted placeholder %q, not a token", redacted)
		case len(t.Token) < MinTokenLength:
			add(field+".token", "too short: %d characters, want at least %d", len(t.Token), MinTokenLength)
		case !printableASCII(t.Token.Reveal()):
			add(field+".token", "must be printable ASCII without spaces")
		}
		if t.Token != "" {
			if j, dup := values[t.Token]; dup {
				add(field+".token", "same value as auth.tokens[%d].token", j)
			} else {
				values[t.Token] = i
			}
		}

		if len(t.Scopes) == 0 {
			add(field+".scopes", "empty (want one or more of ingest, read or admin)")
		}
		for k, s := range t.Scopes {
			if !s.known() {
				add(fmt.Sprintf("%s.scopes[%d]", field, k), "unknown scope %q (want ingest, read or admin)", s)
			}
		}
	}
	return errs
}

// printableASCII reports whether s could travel in an Authorization header
// unchanged: no spaces, control characters or non-ASCII bytes.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
