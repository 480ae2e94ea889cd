// Package config is correlator's configuration: its types, defaults, YAML
// loading, environment overrides and validation.
//
// A configuration is built in layers, each overriding the one before:
//
//  1. Default()
//  2. the YAML file, if any (Load), decoded strictly so a misspelt key is an
//     error that names its line
//  3. environment variables (ApplyEnv)
//  4. command-line flags, set by the caller on the returned Config
//  5. Validate, which reports every problem at once
//
// Secrets (the ClickHouse DSN, API tokens) have the type Secret, which prints
// as "<secret>" through fmt, encoding/json, YAML and log/slog, so a Config can
// be logged or shown by `correlator check-config` without leaking them.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/correlator/correlator/internal/collectors/alertmanager"
	"github.com/correlator/correlator/internal/collectors/jsonlines"
	"github.com/correlator/correlator/internal/collectors/otlplogs"
	"github.com/correlator/correlator/internal/collectors/prometheus"
	"github.com/correlator/correlator/internal/collectors/sentry"
	"github.com/correlator/correlator/internal/grafana"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/postmortem"
)

// Config is correlator's whole configuration. The zero value is not useful;
// start from Default or Load.
type Config struct {
	// Listen is the HTTP API address, host:port. Without tokens the server
	// binds to loopback only; see EffectiveListen.
	Listen string `yaml:"listen" json:"listen"`
	// DataDir is the embedded store's directory. Only used when
	// ClickHouse.DSN is empty.
	DataDir string `yaml:"data_dir" json:"data_dir"`
	// ClickHouse selects a ClickHouse server instead of the embedded engine.
	ClickHouse ClickHouse `yaml:"clickhouse" json:"clickhouse"`
	// ChDBLib is the path to libchdb.so for the embedded engine; empty means
	// the pinned copy that `make chdb` installs in the user cache.
	ChDBLib string `yaml:"chdb_lib" json:"chdb_lib"`
	// Ingest bounds the ingest API and its batching.
	Ingest Ingest `yaml:"ingest" json:"ingest"`
	// Auth holds the API tokens.
	Auth Auth `yaml:"auth" json:"auth"`
	// Log configures the process logger.
	Log Log `yaml:"log" json:"log"`
	// Changes configures the change collectors: GitHub, Argo CD, feature
	// flags, generic webhooks, and how their reports merge.
	Changes Changes `yaml:"changes" json:"changes"`
	// Sentry configures the Sentry-compatible error intake, its issue-alert
	// webhook and its REST API poller.
	Sentry sentry.Config `yaml:"sentry" json:"sentry"`
	// Prometheus configures the metrics pull from a Prometheus server's
	// query API; set url and services to enable it.
	Prometheus prometheus.Config `yaml:"prometheus" json:"prometheus"`
	// Alertmanager configures the webhook receiver that opens and resolves
	// incidents from alert groups.
	Alertmanager alertmanager.Config `yaml:"alertmanager" json:"alertmanager"`
	// OTLPLogs configures the OTLP/HTTP logs receiver at POST /v1/logs,
	// served behind the API's bearer tokens (ingest scope).
	OTLPLogs otlplogs.Config `yaml:"otlp_logs" json:"otlp_logs"`
	// JSONLines configures tailing JSON-lines log files; set paths to
	// enable it. state_dir defaults to <data_dir>/jsonlines-state.
	JSONLines jsonlines.Config `yaml:"jsonlines" json:"jsonlines"`
	// Impact configures impact estimates: what counts as a failure beyond
	// errors, the baseline windows, the severity scale and the intervals.
	Impact impact.Config `yaml:"impact" json:"impact"`
	// Incidents configures the incident lifecycle: the snapshots of the
	// ranked causes and the impact kept while an incident is open.
	Incidents Incidents `yaml:"incidents" json:"incidents"`
	// ExternalURL is correlator's address as people reach it in a browser
	// (https://correlator.example.com): links in Grafana annotations and
	// post-mortem bundles point there. Optional.
	ExternalURL string `yaml:"external_url" json:"external_url"`
	// Grafana configures the annotation overlay: changes and incidents
	// pushed to Grafana as annotations; set url to enable it.
	Grafana grafana.Config `yaml:"grafana" json:"grafana"`
	// Postmortem configures where a resolved incident's evidence bundle
	// is attached: a directory and/or a webhook.
	Postmortem postmortem.AttachConfig `yaml:"postmortem" json:"postmortem"`
}

// Incidents configures the incident lifecycle.
type Incidents struct {
	// SnapshotInterval is how often `correlator serve` snapshots every
	// open incident (besides the snapshots at open, update and resolve).
	// Zero means DefaultSnapshotInterval; see EffectiveSnapshotInterval.
	SnapshotInterval Duration `yaml:"snapshot_interval" json:"snapshot_interval"`
	// LinkSecret signs the links to incidents' live pages (/incidents/ID),
	// which browsers open without a bearer token; at least 32 bytes.
	// Without it the page needs a read token like the rest of the API.
	// Also CORRELATOR_LINK_SECRET.
	LinkSecret Secret `yaml:"link_secret" json:"link_secret"`
	// LinkTTL is how long a signed link stays valid after the incident
	// opened; default 30 days (post-mortems are read days later).
	LinkTTL Duration `yaml:"link_ttl" json:"link_ttl"`
}

// EffectiveSnapshotInterval is SnapshotInterval, or its default when unset.
func (i Incidents) EffectiveSnapshotInterval() time.Duration {
	if i.SnapshotInterval == 0 {
		return time.Duration(DefaultSnapshotInterval)
	}
	return time.Duration(i.SnapshotInterval)
}

// ClickHouse configures a ClickHouse server. With an empty DSN correlator
// uses the embedded chDB engine under Config.DataDir.
type ClickHouse struct {
	// DSN is the server address, for example
	// clickhouse://user:password@host:9000/database. It is a Secret because
	// it can carry a password.
	DSN Secret `yaml:"dsn" json:"dsn"`
	// Cluster, when set, makes migrations run ON CLUSTER this name. It
	// requires DSN.
	Cluster string `yaml:"cluster" json:"cluster"`
	// Database is the database holding correlator's tables. Empty means
	// "default" for the embedded engine and the DSN's database for a server.
	Database string `yaml:"database" json:"database"`
	// LogsTable reads logs in place from an existing otel_logs table (for
	// example "otel.otel_logs", written by the OpenTelemetry Collector's
	// ClickHouse exporter) instead of correlator's own; empty means its
	// own. See docs/collectors.md for the exporter versions it reads.
	LogsTable string `yaml:"logs_table" json:"logs_table"`
}

// Ingest bounds the ingest API and the store's insert batches.
type Ingest struct {
	// MaxBodyBytes is the largest accepted request body; larger requests
	// get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes"`
	// BatchRows flushes a batch once it holds this many rows.
	BatchRows int `yaml:"batch_rows" json:"batch_rows"`
	// FlushInterval flushes a non-empty batch at least this often.
	FlushInterval Duration `yaml:"flush_interval" json:"flush_interval"`
	// SpoolDir is the write-ahead spool of `correlator serve`: accepted
	// records are fsynced there before the API acknowledges them, and stay
	// until ClickHouse has them, so that neither a crash nor an outage of
	// ClickHouse loses them. Empty means the default of EffectiveSpoolDir.
	// One process per directory (it is locked).
	SpoolDir string `yaml:"spool_dir" json:"spool_dir"`
	// SpoolMaxBytes bounds the spool; beyond it ingest requests get 503
	// with Retry-After until the store catches up.
	SpoolMaxBytes int64 `yaml:"spool_max_bytes" json:"spool_max_bytes"`
}

// EffectiveSpoolDir is where `correlator serve` keeps its spool:
// Ingest.SpoolDir when set; else <data_dir>/spool for the embedded store,
// which keeps the spool with the data it belongs to; else, for a ClickHouse
// server, $XDG_STATE_HOME/correlator/spool/<host>_<database> (or
// ~/.local/state/...), named after the server so that the spools of two
// servers never mix: a spool is only ever replayed into the store its
// records were sent to. It is "" when no default can be found (no data
// directory, or no state or home directory), which Validate reports.
func (c Config) EffectiveSpoolDir() string {
	return c.effectiveSpoolDir(os.Getenv, os.UserHomeDir)
}

func (c Config) effectiveSpoolDir(getenv func(string) string, home func() (string, error)) string {
	switch {
	case c.Ingest.SpoolDir != "":
		return c.Ingest.SpoolDir
	case c.ClickHouse.DSN == "":
		if c.DataDir == "" {
			return ""
		}
		return filepath.Join(c.DataDir, "spool")
	}
	state := ""
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		state = filepath.Join(x, "correlator")
	} else if h, err := home(); err == nil && h != "" {
		state = filepath.Join(h, ".local", "state", "correlator")
	} else {
		return ""
	}
	// The host list and database only: never the user or password.
	host, db := "server", c.ClickHouse.Database
	if u, err := url.Parse(c.ClickHouse.DSN.Reveal()); err == nil {
		host = u.Host
		if db == "" {
			db = strings.Trim(u.Path, "/")
		}
	}
	if db == "" {
		db = "default"
	}
	return filepath.Join(state, "spool", spoolName(host+"_"+db))
}

// spoolName keeps letters, digits, '.', '-' and '_' of s and turns the rest
// (':' of ports, ',' between hosts) into '_'.
func spoolName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Auth holds the bearer tokens accepted by the API.
type Auth struct {
	// Tokens lists the accepted tokens. With none, the API is
	// unauthenticated and served on loopback only.
	Tokens []Token `yaml:"tokens" json:"tokens"`
}

// Log configures the process logger.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level" json:"level"`
	// Format is json or text. Empty means json for `correlator serve` and
	// text for the other commands.
	Format string `yaml:"format" json:"format"`
}

// SlogLevel returns Level as a slog.Level, slog.LevelInfo if Level is not
// one of the four names Validate accepts.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Defaults that do not depend on the environment.
const (
	DefaultListen        = ":8080"
	DefaultMaxBodyBytes  = 64 << 20
	DefaultBatchRows     = 50000
	DefaultFlushInterval = Duration(time.Second)
	DefaultSpoolMaxBytes = 1 << 30
	// MinSpoolMaxBytes is the smallest spool limit Validate accepts: less
	// would refuse ordinary requests.
	MinSpoolMaxBytes = 1 << 20
	DefaultLogLevel  = "info"
	// DefaultSnapshotInterval is how often open incidents are snapshotted.
	DefaultSnapshotInterval = Duration(5 * time.Minute)
	// MinSnapshotInterval is the shortest interval Validate accepts: a
	// snapshot runs the engine and the impact queries.
	MinSnapshotInterval = Duration(10 * time.Second)
)

// Default returns the built-in configuration, the first layer. Its DataDir
// is $XDG_DATA_HOME/correlator, or ~/.local/share/correlator when
// XDG_DATA_HOME is unset or not absolute; it is empty when neither that nor
// the home directory is known, which Validate reports in embedded mode.
func Default() Config {
	return Config{
		Listen:  DefaultListen,
		DataDir: defaultDataDir(os.Getenv, os.UserHomeDir),
		Ingest: Ingest{
			MaxBodyBytes:  DefaultMaxBodyBytes,
			BatchRows:     DefaultBatchRows,
			FlushInterval: DefaultFlushInterval,
			SpoolMaxBytes: DefaultSpoolMaxBytes,
		},
		Log:    Log{Level: DefaultLogLevel},
		Impact: impact.DefaultConfig(),
	}
}

// defaultDataDir follows the XDG base directory specification, which says a
// relative XDG_DATA_HOME is invalid and must be ignored.
func defaultDataDir(getenv func(string) string, home func() (string, error)) string {
	if x := getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "correlator")
	}
	h, err := home()
	if err != nil || h == "" {
		return ""
	}
	return filepath.Join(h, ".local", "share", "correlator")
}

// Load returns Default overlaid with the YAML file at path; an empty path
// returns Default alone, as does an empty file. Unknown keys are errors
// ("config.yaml: line 12: field sentri not found in type config.Config"); a
// key present with no value keeps its default. Each token_file is read, with
// surrounding white space trimmed, relative to the file's directory. Load
// does not validate: the caller applies environment and flags first, then
// calls Validate.
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	if err := decodeStrict(data, &c); err != nil {
		return Config{}, prefixErrors(path, err)
	}
	if err := c.readTokenFiles(filepath.Dir(path)); err != nil {
		return Config{}, prefixErrors(path, err)
	}
	return c, nil
}

// decodeStrict decodes one YAML document into c, rejecting unknown fields
// and any second document (which yaml.v3 would otherwise ignore silently).
func decodeStrict(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file (or only comments) keeps the defaults
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

// prefixErrors puts the file name before each problem. yaml.v3 reports type
// errors as one "yaml: unmarshal errors:" block, and readTokenFiles joins
// its errors; both are split so every line reads "config.yaml: ...".
func prefixErrors(path string, err error) error {
	var lines []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		lines = te.Errors
	} else if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			lines = append(lines, e.Error())
		}
	} else {
		// A yaml.v3 syntax error reads "yaml: line 3: ...".
		lines = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	errs := make([]error, len(lines))
	for i, l := range lines {
		errs[i] = fmt.Errorf("%s: %s", path, l)
	}
	return errors.Join(errs...)
}

// readTokenFiles fills Token from TokenFile for every token that has one.
func (c *Config) readTokenFiles(dir string) error {
	var errs []error
	for i := range c.Auth.Tokens {
		t := &c.Auth.Tokens[i]
		if t.TokenFile == "" {
			continue
		}
		field := fmt.Sprintf("auth.tokens[%d]", i)
		if t.Token != "" {
			errs = append(errs, fmt.Errorf("%s: token and token_file are mutually exclusive", field))
			continue
		}
		p := t.TokenFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.token_file: %w", field, err))
			continue
		}
		t.Token = Secret(strings.TrimSpace(string(b)))
		if t.Token == "" {
			errs = append(errs, fmt.Errorf("%s.token_file: %s is empty", field, p))
		}
	}
	return errors.Join(errs...)
}

// Redacted returns the configuration as YAML with every secret replaced by
// "<secret>", for `correlator check-config` and support requests.
func (c Config) Redacted() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}
