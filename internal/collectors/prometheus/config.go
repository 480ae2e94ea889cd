package prometheus

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/collectors/httpauth"
)

// Defaults applied by Config.withDefaults to zero fields.
const (
	DefaultStep         = Duration(time.Minute)
	DefaultBackfill     = Duration(6 * time.Hour)
	DefaultDelay        = Duration(time.Minute)
	DefaultTimeout      = Duration(30 * time.Second)
	DefaultMaxPoints    = 10000
	DefaultServiceLabel = "job"

	// maxPointsLimit is Prometheus' own limit: query_range refuses a request
	// that would return more than 11,000 points per series.
	maxPointsLimit = 11000
)

// Config configures the Prometheus collector. It is the "prometheus"
// section of correlator's config file. Durations are Prometheus durations:
// "15s", "1m", "6h", "1d".
type Config struct {
	// URL is the base URL of the Prometheus HTTP API (Prometheus, Thanos
	// Query, Mimir's or Cortex' Prometheus prefix, VictoriaMetrics):
	// http://prometheus:9090. Required.
	URL string `yaml:"url" json:"url"`
	// Credentials are sent with every request (bearer_token,
	// bearer_token_file or basic_auth); optional.
	httpauth.Credentials `yaml:",inline"`
	// Step is the resolution of the pulled series and the window each point
	// covers; default 1m. It must divide a minute (1s, 5s, 15s, 30s, 1m...)
	// so that points add up to the engine's per-minute counts.
	Step Duration `yaml:"step,omitempty" json:"step,omitempty"`
	// Interval is how often the collector pulls; default Step.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Backfill is how far back the first pull after start reaches; default
	// 6h. Later pulls resume where the previous one stopped.
	Backfill Duration `yaml:"backfill,omitempty" json:"backfill,omitempty"`
	// Delay keeps the newest pulled point this far behind now, so that the
	// scrapes of its window have arrived (a point is never pulled twice, so
	// one pulled early would stay incomplete); default 1m. Raise it for
	// remote-write setups that ingest late.
	Delay Duration `yaml:"delay,omitempty" json:"delay,omitempty"`
	// Timeout bounds each request to Prometheus; default 30s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// MaxPointsPerQuery caps the evaluation steps of one query_range
	// request; longer ranges are pulled in chunks. Default 10000, at most
	// 11000 (Prometheus' limit per series).
	MaxPointsPerQuery int `yaml:"max_points_per_query,omitempty" json:"max_points_per_query,omitempty"`
	// ServiceLabel is the Prometheus label that names a service, used by
	// {{match}}; default "job". A service may override it.
	ServiceLabel string `yaml:"service_label,omitempty" json:"service_label,omitempty"`
	// KeepLabels are the labels {{labels}} lists, the ones the default
	// queries keep on the points; default version, instance, region. An
	// explicit empty list keeps none (one series per service).
	KeepLabels []string `yaml:"keep_labels,omitempty" json:"keep_labels,omitempty"`
	// Queries override DefaultQueries by name for every service, or add
	// queries for other metric names; an empty expr drops that query.
	Queries []Query `yaml:"queries,omitempty" json:"queries,omitempty"`
	// Services are the services to pull; at least one.
	Services []Service `yaml:"services" json:"services"`
}

// Query is one PromQL template whose result becomes the points of one
// metric. See the package documentation for the placeholders.
type Query struct {
	// Name is the metric name the points get (requests, errors,
	// latency_p95_ms, memory_usage_bytes, cpu_usage, or any other name
	// matching ^[a-zA-Z_:][a-zA-Z0-9_:]*$).
	Name string `yaml:"name" json:"name"`
	// Expr is the PromQL template. It must aggregate over the step ending
	// at the evaluation time ([{{range}}]), since the point is dated at the
	// start of that window; empty removes the query of this name.
	Expr string `yaml:"expr" json:"expr"`
}

// Service is one service to pull.
type Service struct {
	// Name is the service's name in correlator (the "service" of its
	// changes and errors). Required, unique.
	Name string `yaml:"name" json:"name"`
	// LabelValue is the service label's value in Prometheus, substituted for
	// {{service}} and in {{match}}; default Name.
	LabelValue string `yaml:"label_value,omitempty" json:"label_value,omitempty"`
	// ServiceLabel overrides Config.ServiceLabel for this service.
	ServiceLabel string `yaml:"service_label,omitempty" json:"service_label,omitempty"`
	// Queries override the config's queries by name for this service, or
	// add to them; an empty expr drops that query.
	Queries []Query `yaml:"queries,omitempty" json:"queries,omitempty"`
}

var metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Step == 0 {
		c.Step = DefaultStep
	}
	if c.Interval == 0 {
		c.Interval = c.Step
	}
	if c.Backfill == 0 {
		c.Backfill = DefaultBackfill
	}
	if c.Delay == 0 {
		c.Delay = DefaultDelay
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxPointsPerQuery == 0 {
		c.MaxPointsPerQuery = DefaultMaxPoints
	}
	if c.ServiceLabel == "" {
		c.ServiceLabel = DefaultServiceLabel
	}
	if c.KeepLabels == nil {
		c.KeepLabels = DefaultKeepLabels
	}
	return c
}

// Validate reports every problem of the config (after defaults), each
// naming its field: prometheus.services[2].queries[0].expr: ....
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.URL == "" {
		add("prometheus.url: missing")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("prometheus.url: %q is not an http(s) URL", c.URL)
	} else if u.User != nil {
		add("prometheus.url: credentials in the URL are not allowed; use basic_auth")
	}
	if err := c.Credentials.Validate("prometheus"); err != nil {
		errs = append(errs, err)
	}
	step := time.Duration(c.Step)
	if step < time.Second || time.Minute%step != 0 {
		add("prometheus.step: %s does not divide a minute (want 1s, 5s, 10s, 15s, 30s, 1m, ...)", c.Step)
	}
	if c.Interval < Duration(time.Second) {
		add("prometheus.interval: %s is shorter than 1s", c.Interval)
	}
	if c.MaxPointsPerQuery < 1 || c.MaxPointsPerQuery > maxPointsLimit {
		add("prometheus.max_points_per_query: %d is not in [1, %d]", c.MaxPointsPerQuery, maxPointsLimit)
	}
	if !labelNameRE.MatchString(c.ServiceLabel) {
		add("prometheus.service_label: invalid label name %q", c.ServiceLabel)
	}
	for i, l := range c.KeepLabels {
		if !labelNameRE.MatchString(l) {
			add("prometheus.keep_labels[%d]: invalid label name %q", i, l)
		}
	}
	errs = append(errs, validateQueries("prometheus.queries", c.Queries)...)
	if len(c.Services) == 0 {
		add("prometheus.services: at least one service is required")
	}
	seen := map[string]int{}
	for i, s := range c.Services {
		f := fmt.Sprintf("prometheus.services[%d]", i)
		switch {
		case s.Name == "":
			add("%s.name: missing", f)
		case strings.TrimSpace(s.Name) != s.Name || len(s.Name) > 256:
			add("%s.name: %q is not a valid service name (no surrounding space, at most 256 bytes)", f, s.Name)
		}
		if j, dup := seen[s.Name]; dup && s.Name != "" {
			add("%s.name: %q already configured at services[%d]", f, s.Name, j)
		}
		seen[s.Name] = i
		if s.ServiceLabel != "" && !labelNameRE.MatchString(s.ServiceLabel) {
			add("%s.service_label: invalid label name %q", f, s.ServiceLabel)
		}
		errs = append(errs, validateQueries(f+".queries", s.Queries)...)
		if len(errs) == 0 && len(c.queriesFor(s)) == 0 {
			add("%s: every query is removed; nothing to pull", f)
		}
	}
	return errors.Join(errs...)
}

func validateQueries(field string, qs []Query) []error {
	var errs []error
	seen := map[string]int{}
	for i, q := range qs {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !metricNameRE.MatchString(q.Name) {
			errs = append(errs, fmt.Errorf("%s.name: invalid metric name %q: want ^[a-zA-Z_:][a-zA-Z0-9_:]*$", f, q.Name))
		}
		if j, dup := seen[q.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q already defined at %s[%d]", f, q.Name, field, j))
		}
		seen[q.Name] = i
		if q.Expr != "" {
			if err := checkTemplate(q.Expr); err != nil {
				errs = append(errs, fmt.Errorf("%s.expr: %w", f, err))
			}
		}
	}
	return errs
}

// queriesFor merges the defaults, the config's queries and the service's
// by name, in that order of precedence (last wins), dropping empty ones,
// and keeps the defaults' order followed by additions.
func (c Config) queriesFor(s Service) []Query {
	var out []Query
	set := func(q Query) {
		if i := slices.IndexFunc(out, func(o Query) bool { return o.Name == q.Name }); i >= 0 {
			out[i].Expr = q.Expr
			return
		}
		out = append(out, q)
	}
	for _, qs := range [][]Query{DefaultQueries, c.Queries, s.Queries} {
		for _, q := range qs {
			set(q)
		}
	}
	return slices.DeleteFunc(out, func(q Query) bool { return q.Expr == "" })
}
