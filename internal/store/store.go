// Package store keeps correlator's data in ClickHouse: the schema and its
// migrations, the batched writes of every record kind and the queries the
// engines run. One dialect serves both transports: the embedded engine
// (package chdb, libchdb in-process) and a ClickHouse server or cluster
// (package chserver, clickhouse-go). Statement text is always a constant of
// this package; values travel only as ClickHouse's {name:Type} parameters,
// and identifiers come from the closed schema below.
package store

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
)

// Engine is what the store needs of a ClickHouse. Implementations are safe
// for concurrent use. Statement text passed to Exec and Query is trusted
// (a constant of this package); every value goes in params as ClickHouse's
// text form of the placeholder's type.
type Engine interface {
	Exec(ctx context.Context, query string, params map[string]string) error
	Query(ctx context.Context, query string, params map[string]string) (Rows, error)
	// Insert appends one batch: data holds one slice per column ([]string,
	// []time.Time, []float64, []map[string]string, ...), all of one length.
	Insert(ctx context.Context, table string, cols []Column, data []any) error
	Close() error
}

// Rows iterates a query result. The caller must Close it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Column is a column name and its ClickHouse type, as written in inserts.
type Column struct{ Name, Type string }

// Options configure a Store.
type Options struct {
	// Database is the database holding the tables (used in cluster DDL).
	Database string
	// Cluster, when set, makes migrations create replicated tables on every
	// node of the named cluster with Distributed tables over them.
	Cluster string
	// LogsTable is the otel_logs-shaped table to read logs from. Empty means
	// correlator's own "otel_logs".
	LogsTable string
	Logger    *slog.Logger
	Metrics   *Metrics
}

// Store is correlator's data in one ClickHouse. It keeps no state of its
// own beyond configuration, so any number of correlator processes can share
// one ClickHouse.
type Store struct {
	eng     Engine
	db      string
	cluster string
	logs    string // logs is the table logs are read from.
	ownLogs bool   // ownLogs is set when logs is correlator's own table.
	log     *slog.Logger
	metrics *Metrics
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// New wraps an open engine.
func New(eng Engine, opt Options) (*Store, error) {
	if opt.Database == "" {
		opt.Database = "default"
	}
	if !identRE.MatchString(opt.Database) {
		return nil, fmt.Errorf("invalid database name %q", opt.Database)
	}
	if opt.Cluster != "" && !identRE.MatchString(opt.Cluster) {
		return nil, fmt.Errorf("invalid cluster name %q", opt.Cluster)
	}
	s := &Store{eng: eng, db: opt.Database, cluster: opt.Cluster, logs: "otel_logs", ownLogs: true, log: opt.Logger, metrics: opt.Metrics}
	if opt.LogsTable != "" && opt.LogsTable != "otel_logs" {
		// A user's table may be qualified with its database.
		if !regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$`).MatchString(opt.LogsTable) {
			return nil, fmt.Errorf("invalid logs table name %q", opt.LogsTable)
		}
		s.logs, s.ownLogs = opt.LogsTable, false
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	return s, nil
}

// Engine returns the underlying engine, for tests and benchmarks that need
// raw SQL.
func (s *Store) Engine() Engine { return s.eng }

// Close closes the engine.
func (s *Store) Close() error { return s.eng.Close() }

// Ping checks that the engine answers.
func (s *Store) Ping(ctx context.Context) error {
	rows, err := s.eng.Query(ctx, "SELECT 1", nil)
	if err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// Database is the database holding correlator's tables.
func (s *Store) Database() string { return s.db }
