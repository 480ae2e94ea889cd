package jsonlines

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Config configures the tailer. Paths and StateDir are required.
type Config struct {
	// Paths are glob patterns (filepath.Match syntax) naming the files to
	// tail, re-expanded at every poll so that new files are picked up.
	Paths []string `yaml:"paths" json:"paths"`
	// StateDir holds one state file per tailed file. It must be private to
	// this correlator process and survive restarts.
	StateDir string `yaml:"state_dir" json:"state_dir"`
	// PollInterval is how often files are checked for new lines. Default
	// 1s; at least 10ms.
	PollInterval time.Duration `yaml:"poll_interval" json:"poll_interval"`
	// RotateWait is how long a file renamed away from its path is still
	// read through the open handle before it is closed. Default 5s.
	RotateWait time.Duration `yaml:"rotate_wait" json:"rotate_wait"`
	// StartAt is where a file without saved state is first read from when
	// it exists at start-up: "beginning" (default) or "end". Files that
	// appear later are always read from their beginning.
	StartAt string `yaml:"start_at" json:"start_at"`
	// MaxLineBytes is the longest line decoded; longer lines are rejected.
	// Default 1 MiB.
	MaxLineBytes int `yaml:"max_line_bytes" json:"max_line_bytes"`
	// BatchSize is the number of records per write; the offset is saved
	// after each. Default 5000.
	BatchSize int `yaml:"batch_size" json:"batch_size"`
	// StateRetention is how long the state of a file no longer tailed is
	// kept. Default 168h.
	StateRetention time.Duration `yaml:"state_retention" json:"state_retention"`
	// Fields maps JSON fields to record fields.
	Fields Fields `yaml:"fields" json:"fields"`
}

// Fields names the JSON fields of a line that fill a record. A name may be
// a dotted path into nested objects ("log.level" reads {"log":{"level":..}})
// or a key that contains dots. "-" turns a mapping off; empty means the
// default.
type Fields struct {
	// Time is the timestamp field, required in every line. Default "time".
	Time string `yaml:"time" json:"time"`
	// TimeFormat is how Time is written: "auto" (default: RFC 3339
	// strings; numbers as Unix seconds, milliseconds, microseconds or
	// nanoseconds by magnitude), "rfc3339", "unix", "unix_ms", "unix_us",
	// "unix_ns", or a Go time layout such as "2006-01-02 15:04:05.000"
	// (read in UTC when it has no zone).
	TimeFormat string `yaml:"time_format" json:"time_format"`
	// Level is the severity field: a name (warn, ERROR, critical, ...), an
	// OpenTelemetry number (1-24) or a pino/bunyan number (10-60). Default
	// "level". A value not understood leaves the record at INFO and stays
	// an attribute.
	Level string `yaml:"level" json:"level"`
	// Message is the field that becomes the body. Default "msg".
	Message string `yaml:"message" json:"message"`
	// Service is the field naming the service. Default "service".
	Service string `yaml:"service" json:"service"`
	// FixedService is the service of lines without a Service field; with
	// Service "-", of every line.
	FixedService string `yaml:"fixed_service" json:"fixed_service"`
	// User is the user id field. Default "user_id".
	User string `yaml:"user" json:"user"`
	// Customer is the customer (tenant) id field. Default "customer_id".
	Customer string `yaml:"customer" json:"customer"`
	// TraceID is the trace id field. Default "trace_id".
	TraceID string `yaml:"trace_id" json:"trace_id"`
	// SpanID is the span id field. Default "span_id".
	SpanID string `yaml:"span_id" json:"span_id"`
}

// Defaults applied by New to zero Config fields.
const (
	DefaultPollInterval   = time.Second
	DefaultRotateWait     = 5 * time.Second
	DefaultMaxLineBytes   = 1 << 20
	DefaultBatchSize      = 5000
	DefaultStateRetention = 7 * 24 * time.Hour
)

// Validate reports every invalid field, each named.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("jsonlines: "+format, args...)) }
	if len(c.Paths) == 0 {
		bad("paths: at least one glob is required")
	}
	for i, p := range c.Paths {
		if p == "" {
			bad("paths[%d]: empty", i)
		} else if _, err := filepath.Match(p, ""); err != nil {
			bad("paths[%d]: invalid glob %q: %v", i, p, err)
		}
	}
	if c.StateDir == "" {
		bad("state_dir: required")
	}
	if c.PollInterval != 0 && c.PollInterval < 10*time.Millisecond {
		bad("poll_interval: %s is below 10ms (durations need a unit, such as 1s)", c.PollInterval)
	}
	if c.RotateWait < 0 {
		bad("rotate_wait: must not be negative")
	}
	if c.StateRetention < 0 {
		bad("state_retention: must not be negative")
	}
	switch c.StartAt {
	case "", "beginning", "end":
	default:
		bad(`start_at: %q is neither "beginning" nor "end"`, c.StartAt)
	}
	if c.MaxLineBytes < 0 {
		bad("max_line_bytes: must not be negative")
	}
	if c.BatchSize < 0 {
		bad("batch_size: must not be negative")
	}
	f := c.Fields
	switch tf := f.TimeFormat; {
	case tf == "", tf == "auto", tf == "rfc3339", tf == "unix", tf == "unix_ms", tf == "unix_us", tf == "unix_ns":
	case strings.Contains(tf, "2006"):
	default:
		bad(`fields.time_format: %q is not auto, rfc3339, unix, unix_ms, unix_us, unix_ns or a Go layout (with 2006 for the year)`, tf)
	}
	if f.Time == "-" {
		bad("fields.time: required; it cannot be turned off")
	}
	if f.Service == "-" && f.FixedService == "" {
		bad("fields: service is off and fixed_service is empty: every line needs a service")
	}
	if len(f.FixedService) > maxIdent {
		bad("fields.fixed_service: longer than %d bytes", maxIdent)
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RotateWait == 0 {
		c.RotateWait = DefaultRotateWait
	}
	if c.StartAt == "" {
		c.StartAt = "beginning"
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = DefaultMaxLineBytes
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.StateRetention == 0 {
		c.StateRetention = DefaultStateRetention
	}
	f := &c.Fields
	for _, d := range []struct {
		field *string
		def   string
	}{{&f.Time, "time"}, {&f.TimeFormat, "auto"}, {&f.Level, "level"}, {&f.Message, "msg"}, {&f.Service, "service"},
		{&f.User, "user_id"}, {&f.Customer, "customer_id"}, {&f.TraceID, "trace_id"}, {&f.SpanID, "span_id"}} {
		if *d.field == "" {
			*d.field = d.def
		}
	}
	return c
}
